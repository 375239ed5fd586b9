// Training: the Trainer (transformers' loop for causal LMs and PEFT adapters), its settings, checkpoints,
// gradient checkpointing, mixed precision, the log and the loss picture.
export { Trainer, LOG_FILE_NAME, LOSS_PLOT_NAME, MAX_NON_FINITE_STEPS, TRAINING_ARGS_NAME, TrainingDivergedError } from './trainer';
export type { EvalMetrics, TrainerOptions, TrainOptions, TrainOutput, TrainerCallbacks } from './trainer';
export type { ComputeMetrics, EvalPrediction, PreprocessLogitsForMetrics } from './eval-prediction';
export { EarlyStopping, evalMetricKey } from './best-model';
export type { BestModelState, EarlyStoppingState } from './best-model';
export type { TrainerPackingOptions } from './packing';
export { resolveTrainingArguments, trainingArgumentsJSON } from './args';
export type { TrainingArguments, TrainingArgumentsOptions, TrainingDType, ReportMode } from './args';
export {
  saveCheckpoint,
  loadCheckpoint,
  lastCheckpoint,
  listCheckpoints,
  checkpointDir,
  readTrainerState,
  saveTrainedWeights,
  loadTrainedWeights,
  PREFIX_CHECKPOINT_DIR,
  TRAINER_STATE_NAME,
} from './checkpoint';
export type { TrainerState, DataPosition, CheckpointParts } from './checkpoint';
export { checkpointedForwardBackward, isSegmentable } from './gradient-checkpointing';
export { castForTraining, checkTrainingPrecision, cpuFloat16Unsupported, CpuFloat16Error, resolveCpuDType } from './precision';
export type { CpuDType, CpuDTypeOptions } from './precision';
export { GradScaler } from './grad-scaler';
export type { GradScalerOptions, GradScalerState } from './grad-scaler';
export { JsonlLog } from './log-entry';
export type { LogEntry } from './log-entry';
export { lossCurveSvg, writeLossPlot, niceTicks } from './loss-plot';
export { ProgressReporter, formatLogLine, formatDuration } from './progress';
export type { ReportStream, ProgressMode } from './progress';
