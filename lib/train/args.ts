// The Trainer's settings, named as transformers' TrainingArguments (camelCase), with its defaults
// where they make sense for LoRA, and checked once so that a wrong value fails before training starts.
import { SCHEDULER_TYPES, SchedulerType } from '../optim';

/** How progress goes to the terminal: a redrawn bar, one line per log, or nothing. 'auto': a bar on a TTY. */
export type ReportMode = 'auto' | 'progress' | 'plain' | 'none';

/** Mixed precision: the model's dtype; the LoRA adapter weights stay float32 unless told. */
export type TrainingDType = 'float32' | 'bfloat16' | 'float16';

export interface TrainingArgumentsOptions {
  /** Where the log, the loss plot, checkpoints and the final adapter go. */
  outputDir: string;
  /** Passes over the training data (default 3; fractions allowed). Ignored when maxSteps > 0. */
  numTrainEpochs?: number;
  /** Optimizer steps to take in all (default -1: numTrainEpochs decides). */
  maxSteps?: number;
  /** Examples per micro-batch (default 8). */
  perDeviceTrainBatchSize?: number;
  /** Examples per evaluation batch (default perDeviceTrainBatchSize). */
  perDeviceEvalBatchSize?: number;
  /** Micro-batches per optimizer step (default 1); the loss is the token mean over all of them. */
  gradientAccumulationSteps?: number;
  /** Peak learning rate of AdamW (default 2e-4, a usual LoRA value; transformers' is 5e-5). */
  learningRate?: number;
  /** 'constant' | 'constant_with_warmup' | 'linear' (default) | 'cosine', as transformers' get_scheduler. */
  lrSchedulerType?: SchedulerType;
  /**
   * Warmup steps (default 0), or, as in transformers 5, a fraction in (0, 1) of the total steps
   * (rounded up, as transformers' get_warmup_steps).
   */
  warmupSteps?: number;
  /** Warmup as a fraction of the total steps, rounded up (transformers 4's warmup_ratio), used when warmupSteps is 0. */
  warmupRatio?: number;
  /** AdamW's decoupled weight decay (default 0), not applied to biases and norm weights (as transformers). */
  weightDecay?: number;
  /**
   * LoRA+ (PEFT's create_loraplus_optimizer): the lora_B matrices (and 1-d parameters) learn at this many
   * times learningRate (e.g. 16); weightDecay applies to every group but biases and LayerNorm weights.
   */
  loraplusLrRatio?: number;
  /** With loraplusLrRatio: the rate of LoRA on embedding layers (default 1e-6, as PEFT). */
  loraplusLrEmbedding?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  adamEpsilon?: number;
  /** Clip the gradient norm to this (default 1; 0 or Infinity: no clipping, the norm is still logged). */
  maxGradNorm?: number;
  /** Evaluate every this many steps (default: only at the end) when there is an evalDataset. */
  evalSteps?: number;
  /** Log (and report) every this many steps (default 10). */
  loggingSteps?: number;
  /** Save a checkpoint every this many steps (default 0: none; the final adapter is always saved). */
  saveSteps?: number;
  /**
   * Keep at most this many checkpoints, deleting the oldest (default: all). The newest and the best
   * (best_model_checkpoint) are never deleted, so with a best model tracked a limit of 1 keeps 2 until
   * the end, when every checkpoint but the best goes (transformers' rotate_checkpoints).
   */
  saveTotalLimit?: number;
  /**
   * Load the best checkpoint's weights at the end (default false), so that the adapter written to outputDir
   * is the best one. Needs evalSteps and saveSteps, saveSteps a multiple of evalSteps (transformers' rule).
   */
  loadBestModelAtEnd?: boolean;
  /**
   * The evaluation metric that ranks checkpoints, with or without the 'eval_' prefix: 'loss', 'perplexity'
   * or one computeMetrics returns (default 'loss' when loadBestModelAtEnd or earlyStoppingPatience is set,
   * else none: no best model is tracked).
   */
  metricForBestModel?: string;
  /** Whether a higher metric is better (default: false for names ending in 'loss' and for 'perplexity', else true). */
  greaterIsBetter?: boolean;
  /**
   * Stop when metricForBestModel has not improved on the best so far in this many evaluations in a row
   * (transformers' EarlyStoppingCallback; default: no early stopping). Needs evalSteps.
   */
  earlyStoppingPatience?: number;
  /** How much better than the best (in absolute value) an evaluation must be to count as improving (default 0). */
  earlyStoppingThreshold?: number;
  /** Seeds dropout and everything random in training (default 42). */
  seed?: number;
  /** Seeds the order of the data (default: seed). */
  dataSeed?: number;
  /** Shuffle the training data each epoch (default true). */
  shuffle?: boolean;
  /** Leave out the last, smaller batch of each epoch (default false). */
  dataloaderDropLast?: boolean;
  /** Move the model and the batches here (default: where the model's parameters are). */
  device?: string;
  /**
   * Cast the model's floating-point weights to this dtype (default: leave them as they are), except the
   * LoRA adapter weights, which are cast to float32 (PEFT's autocast_adapter_dtype) unless trainableDtype
   * says otherwise. modules_to_save copies and trained biases keep this dtype, as under PEFT.
   */
  dtype?: TrainingDType;
  /** 'float32' (default) or 'same': the adapter weights in `dtype` too (all bfloat16). */
  trainableDtype?: 'float32' | 'same';
  /** Recompute each decoder layer's activations in backward instead of keeping them (less memory, ~1/3 more compute). */
  gradientCheckpointing?: boolean;
  /**
   * Data-parallel runs: the size in MB of the gradient buckets that are all-reduced while backward runs
   * (transformers' ddp_bucket_cap_mb; default 25, as PyTorch's DDP).
   */
  ddpBucketCapMb?: number;
  /**
   * Compute the loss with the model's forwardLoss where it has one (default true): the LM head and the
   * cross-entropy chunk by chunk, never holding the [tokens, vocab] logits. false: forward()'s logits,
   * then the loss, as transformers does (the same value up to float rounding, ~1e-6).
   */
  chunkedLoss?: boolean;
  /** Where progress goes (default 'auto'). */
  report?: ReportMode;
  /** Write the loss curve picture (default true). */
  plotLoss?: boolean;
}

/** Every setting filled in. */
export interface TrainingArguments
  extends Required<Omit<TrainingArgumentsOptions, 'device' | 'dtype' | 'saveTotalLimit' | 'evalSteps' | 'dataSeed' | 'metricForBestModel' | 'greaterIsBetter' | 'earlyStoppingPatience' | 'loraplusLrRatio' | 'loraplusLrEmbedding' | 'ddpBucketCapMb'>> {
  /** Set when a best model is tracked (loadBestModelAtEnd, earlyStoppingPatience or given). */
  metricForBestModel?: string;
  /** Set with metricForBestModel. */
  greaterIsBetter?: boolean;
  earlyStoppingPatience?: number;
  ddpBucketCapMb?: number;
  device?: string;
  loraplusLrRatio?: number;
  loraplusLrEmbedding?: number;
  dtype?: TrainingDType;
  saveTotalLimit?: number;
  evalSteps?: number;
  dataSeed: number;
}

const DTYPES: TrainingDType[] = ['float32', 'bfloat16', 'float16'];

function check(ok: boolean, what: string, value: unknown, want: string): void {
  if (!ok) throw new RangeError(`TrainingArguments: ${what} must be ${want}, got ${JSON.stringify(value)}`);
}
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v);

/** Fills in the defaults and checks every value; throws a RangeError naming the first bad one. */
export function resolveTrainingArguments(o: TrainingArgumentsOptions): TrainingArguments {
  if (o === null || typeof o !== 'object') throw new TypeError('TrainingArguments: expected an options object with at least outputDir');
  const known = new Set<string>([
    'outputDir', 'numTrainEpochs', 'maxSteps', 'perDeviceTrainBatchSize', 'perDeviceEvalBatchSize', 'gradientAccumulationSteps',
    'learningRate', 'lrSchedulerType', 'warmupSteps', 'warmupRatio', 'weightDecay', 'loraplusLrRatio', 'loraplusLrEmbedding', 'adamBeta1', 'adamBeta2', 'adamEpsilon',
    'maxGradNorm', 'evalSteps', 'loggingSteps', 'saveSteps', 'saveTotalLimit', 'seed', 'dataSeed', 'shuffle',
    'dataloaderDropLast', 'device', 'dtype', 'trainableDtype', 'gradientCheckpointing', 'ddpBucketCapMb', 'chunkedLoss', 'report', 'plotLoss',
    'loadBestModelAtEnd', 'metricForBestModel', 'greaterIsBetter', 'earlyStoppingPatience', 'earlyStoppingThreshold',
  ]); // prettier-ignore
  for (const k of Object.keys(o)) if (!known.has(k)) throw new TypeError(`TrainingArguments: unknown setting '${k}'`);
  check(typeof o.outputDir === 'string' && o.outputDir.length > 0, 'outputDir', o.outputDir, 'a folder path');
  const seed = o.seed ?? 42;
  // transformers' __post_init__: load_best_model_at_end implies metric 'loss'; so does early stopping here
  // (its callback needs a metric, and the eval loss is the one every run has).
  const metric = o.metricForBestModel ?? (o.loadBestModelAtEnd || o.earlyStoppingPatience !== undefined ? 'loss' : undefined);
  const a: TrainingArguments = {
    outputDir: o.outputDir,
    numTrainEpochs: o.numTrainEpochs ?? 3,
    maxSteps: o.maxSteps ?? -1,
    perDeviceTrainBatchSize: o.perDeviceTrainBatchSize ?? 8,
    perDeviceEvalBatchSize: o.perDeviceEvalBatchSize ?? o.perDeviceTrainBatchSize ?? 8,
    gradientAccumulationSteps: o.gradientAccumulationSteps ?? 1,
    learningRate: o.learningRate ?? 2e-4,
    lrSchedulerType: o.lrSchedulerType ?? 'linear',
    warmupSteps: o.warmupSteps ?? 0,
    warmupRatio: o.warmupRatio ?? 0,
    weightDecay: o.weightDecay ?? 0,
    loraplusLrRatio: o.loraplusLrRatio,
    loraplusLrEmbedding: o.loraplusLrEmbedding,
    adamBeta1: o.adamBeta1 ?? 0.9,
    adamBeta2: o.adamBeta2 ?? 0.999,
    adamEpsilon: o.adamEpsilon ?? 1e-8,
    maxGradNorm: o.maxGradNorm ?? 1,
    evalSteps: o.evalSteps,
    loggingSteps: o.loggingSteps ?? 10,
    saveSteps: o.saveSteps ?? 0,
    saveTotalLimit: o.saveTotalLimit,
    seed,
    dataSeed: o.dataSeed ?? seed,
    shuffle: o.shuffle ?? true,
    dataloaderDropLast: o.dataloaderDropLast ?? false,
    device: o.device,
    dtype: o.dtype,
    trainableDtype: o.trainableDtype ?? 'float32',
    gradientCheckpointing: o.gradientCheckpointing ?? false,
    ddpBucketCapMb: o.ddpBucketCapMb,
    chunkedLoss: o.chunkedLoss ?? true,
    report: o.report ?? 'auto',
    plotLoss: o.plotLoss ?? true,
    loadBestModelAtEnd: o.loadBestModelAtEnd ?? false,
    metricForBestModel: metric,
    greaterIsBetter: o.greaterIsBetter ?? (typeof metric === 'string' ? !lowerIsBetter(metric) : undefined),
    earlyStoppingPatience: o.earlyStoppingPatience,
    earlyStoppingThreshold: o.earlyStoppingThreshold ?? 0,
  };
  check(isNum(a.numTrainEpochs) && a.numTrainEpochs > 0, 'numTrainEpochs', a.numTrainEpochs, 'a positive number');
  check(isInt(a.maxSteps) && (a.maxSteps > 0 || a.maxSteps === -1), 'maxSteps', a.maxSteps, 'a positive integer (or -1)');
  check(isInt(a.perDeviceTrainBatchSize) && a.perDeviceTrainBatchSize > 0, 'perDeviceTrainBatchSize', a.perDeviceTrainBatchSize, 'a positive integer');
  check(isInt(a.perDeviceEvalBatchSize) && a.perDeviceEvalBatchSize > 0, 'perDeviceEvalBatchSize', a.perDeviceEvalBatchSize, 'a positive integer');
  check(isInt(a.gradientAccumulationSteps) && a.gradientAccumulationSteps > 0, 'gradientAccumulationSteps', a.gradientAccumulationSteps, 'a positive integer');
  check(isNum(a.learningRate) && a.learningRate >= 0, 'learningRate', a.learningRate, 'a non-negative number');
  check(SCHEDULER_TYPES.includes(a.lrSchedulerType), 'lrSchedulerType', a.lrSchedulerType, `one of ${SCHEDULER_TYPES.join(', ')}`);
  check((isInt(a.warmupSteps) && a.warmupSteps >= 0) || (isNum(a.warmupSteps) && a.warmupSteps > 0 && a.warmupSteps < 1), 'warmupSteps', a.warmupSteps, 'a non-negative integer, or a fraction in (0, 1) of the steps');
  check(isNum(a.warmupRatio) && a.warmupRatio >= 0 && a.warmupRatio <= 1, 'warmupRatio', a.warmupRatio, 'a number in [0, 1]');
  check(isNum(a.weightDecay) && a.weightDecay >= 0, 'weightDecay', a.weightDecay, 'a non-negative number');
  check(a.loraplusLrRatio === undefined || (isNum(a.loraplusLrRatio) && a.loraplusLrRatio > 0 && Number.isFinite(a.loraplusLrRatio)), 'loraplusLrRatio', a.loraplusLrRatio, 'a positive number');
  check(
    a.loraplusLrEmbedding === undefined || (isNum(a.loraplusLrEmbedding) && a.loraplusLrEmbedding >= 0 && Number.isFinite(a.loraplusLrEmbedding)),
    'loraplusLrEmbedding', a.loraplusLrEmbedding, 'a non-negative number',
  ); // prettier-ignore
  if (a.loraplusLrEmbedding !== undefined && a.loraplusLrRatio === undefined)
    throw new RangeError('TrainingArguments: loraplusLrEmbedding is the embedding rate of LoRA+, which needs loraplusLrRatio too');
  check(isNum(a.adamBeta1) && a.adamBeta1 >= 0 && a.adamBeta1 < 1, 'adamBeta1', a.adamBeta1, 'in [0, 1)');
  check(isNum(a.adamBeta2) && a.adamBeta2 >= 0 && a.adamBeta2 < 1, 'adamBeta2', a.adamBeta2, 'in [0, 1)');
  check(isNum(a.adamEpsilon) && a.adamEpsilon >= 0, 'adamEpsilon', a.adamEpsilon, 'a non-negative number');
  check(isNum(a.maxGradNorm) && a.maxGradNorm >= 0, 'maxGradNorm', a.maxGradNorm, 'a non-negative number');
  check(a.evalSteps === undefined || (isInt(a.evalSteps) && a.evalSteps > 0), 'evalSteps', a.evalSteps, 'a positive integer');
  check(isInt(a.loggingSteps) && a.loggingSteps > 0, 'loggingSteps', a.loggingSteps, 'a positive integer');
  check(isInt(a.saveSteps) && a.saveSteps >= 0, 'saveSteps', a.saveSteps, 'a non-negative integer');
  check(a.saveTotalLimit === undefined || (isInt(a.saveTotalLimit) && a.saveTotalLimit > 0), 'saveTotalLimit', a.saveTotalLimit, 'a positive integer');
  check(isInt(a.seed) && a.seed >= 0, 'seed', a.seed, 'a non-negative integer');
  check(isInt(a.dataSeed) && a.dataSeed >= 0, 'dataSeed', a.dataSeed, 'a non-negative integer');
  check(a.device === undefined || /^(cpu|cuda(:\d+)?)$/.test(a.device), 'device', a.device, "'cpu', 'cuda' or 'cuda:N'");
  check(a.dtype === undefined || DTYPES.includes(a.dtype), 'dtype', a.dtype, DTYPES.join(', '));
  check(a.ddpBucketCapMb === undefined || (isNum(a.ddpBucketCapMb) && a.ddpBucketCapMb > 0 && Number.isFinite(a.ddpBucketCapMb)), 'ddpBucketCapMb', a.ddpBucketCapMb, 'a positive number of MB');
  check(a.trainableDtype === 'float32' || a.trainableDtype === 'same', 'trainableDtype', a.trainableDtype, "'float32' or 'same'");
  check(['auto', 'progress', 'plain', 'none'].includes(a.report), 'report', a.report, "'auto', 'progress', 'plain' or 'none'");
  checkBestModel(a, o);
  return a;
}

/** transformers: a metric whose name ends in 'loss' is better lower; so is the perplexity logged here. */
function lowerIsBetter(metric: string): boolean {
  return metric.endsWith('loss') || metric.replace(/^eval_/, '') === 'perplexity';
}

/** The best-model and early-stopping settings, with transformers' rules on how they go with eval and save steps. */
function checkBestModel(a: TrainingArguments, o: TrainingArgumentsOptions): void {
  check(typeof a.loadBestModelAtEnd === 'boolean', 'loadBestModelAtEnd', a.loadBestModelAtEnd, 'true or false');
  check(a.metricForBestModel === undefined || (typeof a.metricForBestModel === 'string' && /^\S+$/.test(a.metricForBestModel)), 'metricForBestModel', a.metricForBestModel, "a metric name such as 'loss' or 'eval_accuracy'");
  check(o.greaterIsBetter === undefined || typeof o.greaterIsBetter === 'boolean', 'greaterIsBetter', o.greaterIsBetter, 'true or false');
  check(a.earlyStoppingPatience === undefined || (isInt(a.earlyStoppingPatience) && a.earlyStoppingPatience > 0), 'earlyStoppingPatience', a.earlyStoppingPatience, 'a positive integer (evaluations without improvement)');
  check(isNum(a.earlyStoppingThreshold) && a.earlyStoppingThreshold >= 0, 'earlyStoppingThreshold', a.earlyStoppingThreshold, 'a non-negative number');
  if (o.earlyStoppingThreshold !== undefined && a.earlyStoppingPatience === undefined)
    throw new RangeError('TrainingArguments: earlyStoppingThreshold needs earlyStoppingPatience (how many evaluations without such an improvement stop training)');
  if (a.earlyStoppingPatience !== undefined && a.evalSteps === undefined)
    throw new RangeError('TrainingArguments: earlyStoppingPatience counts evaluations, and there are none during training: set evalSteps');
  if (a.loadBestModelAtEnd) {
    // transformers: load_best_model_at_end requires the save and eval strategies to match, and the save steps
    // to be a round multiple of the eval steps (else the best evaluation may have no checkpoint to load).
    if (a.evalSteps === undefined || a.saveSteps === 0)
      throw new RangeError(
        `TrainingArguments: loadBestModelAtEnd requires evaluating and saving during training, but found evalSteps ${a.evalSteps ?? 'unset'} ` +
          `and saveSteps ${a.saveSteps}: set both (saveSteps a multiple of evalSteps)`,
      );
    if (a.saveSteps % a.evalSteps !== 0)
      throw new RangeError(
        `TrainingArguments: loadBestModelAtEnd requires saveSteps to be a round multiple of evalSteps, but found saveSteps ${a.saveSteps}, which is not a round multiple of evalSteps ${a.evalSteps}`,
      );
  }
}

/** The settings as JSON with transformers' snake_case names (training_args.json). */
export function trainingArgumentsJSON(a: TrainingArguments): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v ?? null;
  return out;
}

