// The Trainer: transformers' Trainer loop for causal LMs (with or without PEFT) in TypeScript.
//
//   const trainer = new Trainer({ model: peftModel, trainDataset, evalDataset, tokenizer, args });
//   const result = await trainer.train();            // or train({ resumeFromCheckpoint: true })
//
// Each optimizer step takes gradientAccumulationSteps micro-batches; the loss of a step is the mean
// cross-entropy over all label tokens of all its micro-batches (each micro-batch's mean weighted by its
// share of the tokens, as transformers' num_items_in_batch), so k micro-batches of b examples give the
// step one batch of k·b gives. Then: gradient clipping, AdamW, the schedule. Logs (loss, lr, grad norm,
// tokens/s) go to the terminal and to trainer_log.jsonl; evaluation every evalSteps; checkpoints every
// saveSteps (see checkpoint.ts) from which train({ resumeFromCheckpoint }) continues bit for bit; at the
// end the adapter (PEFT format), trainer_state.json and the loss curve (training_loss.svg).
//
// Data-parallel: when a process group of several ranks is initialized (dist.initProcessGroup, e.g. under
// `torch-lora train --nproc-per-node N` or torchrun), each rank reads its DistributedSampler shard, the
// trainable parameters start from rank 0's values, and each step's gradients are summed over the ranks
// once after its last micro-batch (DDP with no_sync on the others), each micro-batch weighted by its share
// of the label tokens of the whole global batch (transformers' average_tokens_across_devices): N ranks
// of batch b train as one process of batch N·b. Rank 0 alone prints, logs, evaluates and writes files.
import * as fs from 'fs';
import * as path from 'path';
import { manualSeed, noGrad } from '../autograd';
import { writeFileAtomic } from '../io/fs-atomic';
import { Batch, DataLoader, Dataset, DistributedSampler, Example, IGNORE_INDEX, MaybeMasked, Tokenizer } from '../data';
import { allReduce, barrier, getRank, getWorldSize, isInitialized } from '../distributed/process-group';
import { GradientSync } from '../distributed/gradient-sync';
import { tensor, zeros } from '../creation';
import { dispose, keep, scope } from '../memory';
import { CausalLMInput, CausalLMOutput } from '../models';
import { DecoderOnlyLM } from '../models/decoder-only-lm';
import { LayerNorm, Module, Parameter, RMSNorm } from '../nn';
import { AdamW, clipGradNorm, getScheduler, LambdaLR, Optimizer } from '../optim';
import { BaseHyper } from '../optim/optimizer';
import { stack } from '../ops';
import { createLoraplusOptimizer, PeftModel } from '../peft';
import { Device, Tensor } from '../tensor';
import { resolveTrainingArguments, TrainingArguments, TrainingArgumentsOptions, trainingArgumentsJSON } from './args';
import {
  DataPosition,
  checkpointDir,
  deleteCheckpointsExcept,
  lastCheckpoint,
  loadCheckpoint,
  loadTrainedWeights,
  readTrainerState,
  rotateCheckpoints,
  saveCheckpoint,
  saveTrainedWeights,
  TRAINER_STATE_NAME,
  TrainerState,
} from './checkpoint';
import { EarlyStopping, evalMetricKey, metricValue, updateBest } from './best-model';
import { ComputeMetrics, concatPadded, PreprocessLogitsForMetrics } from './eval-prediction';
import { GradScaler } from './grad-scaler';
import { checkpointedForwardBackward, isSegmentable, Segmentable } from './gradient-checkpointing';
import { JsonlLog, LogEntry } from './log-entry';
import { writeLossPlot } from './loss-plot';
import { castForTraining, checkTrainingPrecision } from './precision';
import { ProgressReporter, ReportStream } from './progress';
import { checkOptions, OptionKeys } from '../options';

/**
 * Steps in a row whose loss or gradients were not finite after which training stops (each such step is
 * skipped, as a GradScaler skips one; a few in a row means the run diverged, not a passing overflow).
 */
export const MAX_NON_FINITE_STEPS = 3;

/** Training diverged: the loss or the gradients stayed NaN/Inf (nothing was saved over the output). */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}
import { checkPadTokenId, checkTokenIds, modelVocabSize } from './token-range';
import { configEosToken, packForTrainer, TrainerPackingOptions } from './packing';

export const LOG_FILE_NAME = 'trainer_log.jsonl';
export const LOSS_PLOT_NAME = 'training_loss.svg';
export const TRAINING_ARGS_NAME = 'training_args.json';

/** Hooks into the loop. */
export interface TrainerCallbacks {
  /** Every log entry, as it is written. */
  onLog?(entry: LogEntry): void;
  /** Before each optimizer step, with the step's gradients accumulated (and clipped) in the parameters. */
  onPreOptimizerStep?(state: { globalStep: number; model: Module }): void;
  /** After each optimizer step (and its logging, evaluation and checkpoint); return true to stop there. */
  onStepEnd?(state: { globalStep: number; epoch: number; maxSteps: number }): boolean | void;
}

export interface TrainerOptions {
  /** A causal LM (LlamaForCausalLM, GPT2LMHeadModel ...) or a PeftModel around one; its trainable parameters are trained. */
  model: Module;
  args: TrainingArgumentsOptions;
  /** Tokenized examples (loadDataset, packDataset ...): input ids and labels (-100: no loss). */
  trainDataset: Dataset<Example | MaybeMasked>;
  evalDataset?: Dataset<Example | MaybeMasked>;
  /** Gives the padding token (and side) for batches of examples of different lengths. */
  tokenizer?: Tokenizer;
  /** The padding token when there is no tokenizer (default: the model config's pad_token_id, else eos). */
  padTokenId?: number;
  callbacks?: TrainerCallbacks;
  /**
   * Pack the datasets (TRL's packing=True): several examples per row of up to seqLen tokens, each
   * attending to itself only with strategy 'bfd' (default). See packDataset.
   */
  packing?: TrainerPackingOptions;
  /** Where progress is printed (default process.stdout). */
  stream?: ReportStream;
  /**
   * Your own optimizer and learning-rate scheduler (transformers' `optimizers=(optimizer, lr_scheduler)`),
   * over the model's trainable parameters; either may be null: the Trainer's AdamW (LoRA+ with
   * args.loraplusLrRatio) and args' schedule. Your optimizer's rates and settings are the ones used (args'
   * learningRate, weightDecay and adam* are not); args' schedule, when it is the Trainer's, scales them.
   * They are yours to dispose; checkpoints save and restore their state.
   */
  optimizers?: [Optimizer<BaseHyper> | null | undefined, LambdaLR | null | undefined];
  /**
   * Metrics from each evaluation's predictions and labels (transformers' compute_metrics), logged as
   * eval_<name> and usable as metricForBestModel. With it, evaluation runs forward() for the logits (not
   * the chunked loss; eval_loss the same up to ~1e-6) and keeps those of the whole evaluation set on the
   * CPU: give preprocessLogitsForMetrics to keep less (e.g. the argmax). Tensors it makes are freed.
   */
  computeMetrics?: ComputeMetrics;
  preprocessLogitsForMetrics?: PreprocessLogitsForMetrics;
}

const TRAINER_OPTIONS: OptionKeys<TrainerOptions> = {
  model: true, args: true, trainDataset: true, evalDataset: true, tokenizer: true, padTokenId: true, callbacks: true, packing: true, stream: true, optimizers: true,
  computeMetrics: true, preprocessLogitsForMetrics: true,
}; // prettier-ignore

/** An evaluation's results: transformers' names, and computeMetrics' with the 'eval_' prefix. */
export interface EvalMetrics {
  eval_loss: number;
  /** exp(eval_loss), as transformers' run_clm.py reports it. */
  eval_perplexity: number;
  eval_runtime: number;
  /** Label tokens the loss was taken on. */
  eval_tokens: number;
  [metric: string]: number;
}

/** The metrics evaluate() gives without computeMetrics. */
const BUILTIN_EVAL_METRICS = ['eval_loss', 'eval_perplexity', 'eval_runtime', 'eval_tokens'];

export interface TrainOptions {
  /** A checkpoint folder, or true: the newest checkpoint in outputDir. */
  resumeFromCheckpoint?: string | boolean;
  /**
   * Aborting it (Ctrl-C in the CLI) ends training after the step under way: a checkpoint of that step is
   * written and train() resolves with interrupted set and the checkpoint's folder.
   */
  signal?: AbortSignal;
}

export interface TrainOutput {
  globalStep: number;
  /** Mean loss over all steps of the training (resumed runs included). */
  trainingLoss: number;
  /** The last evaluation loss, when there was an evalDataset (with loadBestModelAtEnd: the best checkpoint's). */
  evalLoss?: number;
  /** The final log entry: train_loss, train_runtime, the rates, epoch. */
  metrics: LogEntry;
  logHistory: LogEntry[];
  outputDir: string;
  /** Where the trained weights went (the adapter in PEFT format): outputDir. */
  adapterDir: string;
  logFile: string;
  lossPlot?: string;
  /** A checkpoint the run started from. */
  resumedFrom?: string;
  /** A callback or early stopping (earlyStoppingPatience) stopped the run before maxSteps. */
  stoppedEarly: boolean;
  /** The best value of metricForBestModel, when one is tracked (trainer_state.json's best_metric). */
  bestMetric?: number;
  /** The checkpoint of the best evaluation (best_model_checkpoint); with loadBestModelAtEnd its weights were loaded and saved to outputDir. */
  bestModelCheckpoint?: string;
  /** The signal stopped the run: the final adapter was not written; `checkpoint` holds the last step. */
  interrupted?: boolean;
  /** The checkpoint written when the run was interrupted (resume from it with resumeFromCheckpoint). */
  checkpoint?: string;
}

/** Counts from a batch's CPU tensors: label tokens the loss is taken on (after the causal shift) and real tokens. */
function countTokens(b: Batch): { labels: number; tokens: number } {
  const [rows, len] = b.labels.shape;
  const labels = b.labels.data() as BigInt64Array;
  const mask = b.attentionMask.data() as BigInt64Array;
  let nl = 0;
  let nt = 0;
  const ignore = BigInt(IGNORE_INDEX);
  for (let r = 0; r < rows; r++) for (let j = 1; j < len; j++) if (labels[r * len + j] !== ignore) nl++;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0n) nt++;
  return { labels: nl, tokens: nt };
}

/** Whether any example has a label token the loss is taken on (not -100, and not the first token: the causal shift). */
function hasLabelTokens(ds: Dataset<Example | MaybeMasked>): boolean {
  for (const e of ds) for (let j = 1; j < e.labels.length; j++) if (e.labels[j] !== IGNORE_INDEX) return true;
  return false;
}

/**
 * Throws when an example is longer than the model's position table (config.maxPositionEmbeddings): GPT-2's
 * learned positions have no row for it, and a rotary model was never trained that far.
 */
function checkPositions(model: Module, ds: Dataset<Example | MaybeMasked>, what: string): void {
  const positions = (model as { config?: { maxPositionEmbeddings?: number } }).config?.maxPositionEmbeddings;
  if (typeof positions !== 'number') return;
  let i = 0;
  for (const e of ds) {
    // A packed row's positions restart at each of its examples: its longest example is what counts.
    const longest = (e as MaybeMasked).seqLengths ? Math.max(...(e as MaybeMasked).seqLengths!) : e.inputIds.length;
    if (longest > positions)
      throw new Error(
        `Trainer: ${what} example ${i} has ${longest} tokens, more than the model's ${positions} positions ` +
          "(max_position_embeddings); cut the examples to at most that many (loadDataset's maxLength, the CLI's --max-length)",
      );
    i++;
  }
}

/** pad_token_id, else the (first) eos_token_id of a model's config, if it has one. */
function configPadToken(model: Module): number | undefined {
  const c = (model as { config?: { padTokenId?: number | null; eosTokenId?: number | number[] | null } }).config;
  if (c === undefined) return undefined;
  if (typeof c.padTokenId === 'number') return c.padTokenId;
  const eos = Array.isArray(c.eosTokenId) ? c.eosTokenId[0] : c.eosTokenId;
  return typeof eos === 'number' ? eos : undefined;
}

/**
 * transformers' get_warmup_steps: warmupSteps ≥ 1 is a count; a fraction below 1 (transformers 5's
 * form) or, when warmupSteps is 0, warmupRatio (transformers 4's) is a share of the steps, rounded up.
 */
export function warmupSteps(a: Pick<TrainingArguments, 'warmupSteps' | 'warmupRatio'>, maxSteps: number): number {
  if (a.warmupSteps >= 1) return a.warmupSteps;
  return Math.ceil((a.warmupSteps > 0 ? a.warmupSteps : a.warmupRatio) * maxSteps);
}

/**
 * The `optimizers` option checked: the optimizer must train only the model's trainable parameters, and a
 * scheduler must drive that optimizer (a scheduler alone would drive none the Trainer steps).
 */
function checkOptimizers(
  given: TrainerOptions['optimizers'],
  trainable: Set<Parameter>,
  a: TrainingArguments,
): [Optimizer<BaseHyper> | undefined, LambdaLR | undefined] {
  if (given === undefined) return [undefined, undefined];
  if (!Array.isArray(given) || given.length !== 2)
    throw new TypeError('Trainer: `optimizers` must be [optimizer, scheduler] (either may be null), as transformers\' optimizers=(optimizer, lr_scheduler)');
  const [optimizer, scheduler] = given.map((x) => x ?? undefined) as [Optimizer<BaseHyper> | undefined, LambdaLR | undefined];
  if (optimizer !== undefined && !(optimizer instanceof Optimizer))
    throw new TypeError('Trainer: optimizers[0] must be an Optimizer (AdamW, SGD, createLoraplusOptimizer(...)) or null');
  if (scheduler !== undefined && !(scheduler instanceof LambdaLR)) throw new TypeError('Trainer: optimizers[1] must be a LambdaLR (getScheduler(...)) or null');
  if (scheduler !== undefined && optimizer === undefined)
    throw new Error("Trainer: optimizers: a scheduler was given without its optimizer; pass [optimizer, scheduler] with the optimizer it was made for");
  if (scheduler !== undefined && scheduler.optimizer !== optimizer)
    throw new Error('Trainer: optimizers: the scheduler was made for another optimizer than optimizers[0]; make it with getScheduler(name, optimizer, ...)');
  if (optimizer !== undefined) {
    if (a.loraplusLrRatio !== undefined)
      throw new Error('Trainer: loraplusLrRatio makes the Trainer\'s LoRA+ optimizer, and `optimizers` gives one: use one or the other (createLoraplusOptimizer for your own)');
    const foreign = optimizer.paramGroups.reduce((n, g) => n + g.params.filter((p) => !trainable.has(p)).length, 0);
    if (foreign > 0)
      throw new Error(
        `Trainer: optimizers[0] holds ${foreign} parameter(s) that are not trainable parameters of the model (another model's, or frozen ` +
          'ones); make the optimizer over this model\'s trainable parameters, after getPeftModel',
      );
  }
  return [optimizer, scheduler];
}

function disposeBatch(b: Batch): void {
  b.inputIds.dispose();
  b.attentionMask.dispose();
  b.labels.dispose();
  b.positionIds?.dispose();
}

export class Trainer {
  readonly model: Module;
  readonly args: TrainingArguments;
  readonly trainDataset: Dataset<Example | MaybeMasked>;
  readonly evalDataset?: Dataset<Example | MaybeMasked>;
  readonly tokenizer?: Tokenizer;
  private readonly callbacks: TrainerCallbacks;
  private readonly stream?: ReportStream;
  private readonly computeMetrics?: ComputeMetrics;
  private readonly preprocessLogitsForMetrics?: PreprocessLogitsForMetrics;
  /** The model whose forward runs (the PeftModel's base model, with the LoRA layers in it). */
  private readonly core: Module;
  private readonly device: Device;
  private readonly padTokenId?: number;
  private readonly trainLoader: DataLoader;
  private readonly params: Parameter[];
  readonly optimizer: Optimizer<BaseHyper>;
  readonly scheduler: LambdaLR;
  readonly scaler?: GradScaler;
  readonly maxSteps: number;
  readonly stepsPerEpoch: number;
  readonly warmupSteps: number;
  /** This process's rank and the number of ranks (0 and 1 without a process group). */
  readonly rank: number = 0;
  readonly worldSize: number = 1;
  /** The gradient all-reduce over the ranks (data-parallel runs only). */
  readonly gradientSync?: GradientSync;
  /** Optimizer steps taken so far (global_step). */
  private stepIndex = 0;
  /** The log so far. */
  logHistory: LogEntry[] = [];

  constructor(opts: TrainerOptions) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('Trainer: expected { model, args, trainDataset, ... }');
    checkOptions(opts, TRAINER_OPTIONS, 'Trainer');
    if (!(opts.model instanceof Module)) throw new TypeError('Trainer: `model` must be a Module (a causal LM or a PeftModel)');
    if (!(opts.trainDataset instanceof Dataset)) throw new TypeError('Trainer: `trainDataset` must be a Dataset of tokenized examples (loadDataset)');
    if (opts.trainDataset.length === 0) throw new Error('Trainer: the training dataset is empty');
    if (!hasLabelTokens(opts.trainDataset))
      throw new Error(
        `Trainer: none of the ${opts.trainDataset.length} training examples has a token to learn (every label is -100, or examples are ` +
          'a single token long): the loss would be 0/0. Check the examples (a max length cutting off every completion, records without completions)',
      );
    if (opts.evalDataset !== undefined && !(opts.evalDataset instanceof Dataset)) throw new TypeError('Trainer: `evalDataset` must be a Dataset');
    this.args = resolveTrainingArguments(opts.args);
    this.model = opts.model;
    this.trainDataset = opts.trainDataset;
    this.evalDataset = opts.evalDataset?.length ? opts.evalDataset : undefined;

    this.tokenizer = opts.tokenizer;
    this.callbacks = opts.callbacks ?? {};
    this.stream = opts.stream;
    if (opts.computeMetrics !== undefined && typeof opts.computeMetrics !== 'function') throw new TypeError('Trainer: `computeMetrics` must be a function (p: { predictions, labelIds }) => { name: number }');
    if (opts.preprocessLogitsForMetrics !== undefined && typeof opts.preprocessLogitsForMetrics !== 'function')
      throw new TypeError('Trainer: `preprocessLogitsForMetrics` must be a function (logits, labels) => Tensor');
    if (opts.preprocessLogitsForMetrics !== undefined && opts.computeMetrics === undefined)
      throw new TypeError('Trainer: `preprocessLogitsForMetrics` prepares what computeMetrics gets; give computeMetrics too');
    this.computeMetrics = opts.computeMetrics;
    this.preprocessLogitsForMetrics = opts.preprocessLogitsForMetrics;
    this.checkBestModelOptions();
    this.core = this.model instanceof PeftModel ? this.model.getBaseModel() : this.model;
    if (opts.packing !== undefined) {
      const eos = opts.tokenizer?.eosTokenId ?? configEosToken(this.core);
      this.trainDataset = packForTrainer(this.trainDataset, opts.packing, eos, 'training');
      if (this.evalDataset) this.evalDataset = packForTrainer(this.evalDataset, opts.packing, eos, 'evaluation');
    }
    const a = this.args;

    if (a.gradientCheckpointing && !isSegmentable(this.core))
      throw new Error(`Trainer: gradientCheckpointing needs a model that runs its decoder layers one by one (segments()); ${this.core.reprName()} does not`);
    const first = this.model.parameters().next();
    if (first.done) throw new Error('Trainer: the model has no parameters');
    this.device = a.device ?? first.value.device;
    // float16 on a CPU whose libtorch has no float16 matmul fails at the first step: say so now.
    checkTrainingPrecision(a.dtype !== undefined ? [a.dtype] : [...this.model.parameters()].map((p) => p.dtype), this.device);
    // Cast where the weights are, then move: the other order would hold a float32 copy on the GPU.
    if (a.dtype !== undefined) castForTraining(this.model, a.dtype, a.trainableDtype);
    if (a.device !== undefined) this.model.to(a.device);
    const usesFloat16 = [...this.model.parameters()].some((p) => p.dtype === 'float16');
    if (usesFloat16) this.scaler = new GradScaler();

    const named = [...this.model.namedParameters()].filter(([, p]) => p.requiresGrad);
    if (named.length === 0)
      throw new Error('Trainer: the model has no trainable parameters (requiresGrad); wrap it with getPeftModel, or set requiresGrad on what to train');
    this.params = named.map(([, p]) => p);
    if (isInitialized() && getWorldSize() > 1) {
      this.rank = getRank();
      this.worldSize = getWorldSize();
      // (checkpointing runs several backward passes per micro-batch: buckets cannot go out from its hooks)
      this.gradientSync = new GradientSync(this.params, { overlap: !a.gradientCheckpointing, bucketCapMb: a.ddpBucketCapMb });
    }

    checkPositions(this.core, this.trainDataset, 'training');
    if (this.evalDataset) checkPositions(this.core, this.evalDataset, 'evaluation');
    this.padTokenId = opts.padTokenId ?? this.tokenizer?.padTokenId ?? configPadToken(this.core);
    const vocab = modelVocabSize(this.core);
    if (vocab !== undefined) {
      checkTokenIds(this.trainDataset, vocab, 'training');
      if (this.evalDataset) checkTokenIds(this.evalDataset, vocab, 'evaluation');
      checkPadTokenId(this.padTokenId ?? undefined, vocab);
    }
    this.trainLoader = new DataLoader(this.trainDataset, {
      batchSize: a.perDeviceTrainBatchSize,
      shuffle: a.shuffle,
      seed: a.dataSeed,
      dropLast: a.dataloaderDropLast,
      tokenizer: this.tokenizer,
      padTokenId: this.padTokenId,
      sampler: this.worldSize > 1 ? new DistributedSampler({ numReplicas: this.worldSize, rank: this.rank }) : undefined,
    });
    // transformers' set_initial_training_values: an epoch is ceil(batches / accumulation) optimizer steps,
    // its last step taking the remainder batches; epochs give ceil(numTrainEpochs × steps per epoch) steps.
    this.stepsPerEpoch = Math.ceil(this.trainLoader.length / a.gradientAccumulationSteps);
    this.maxSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * this.stepsPerEpoch);
    this.warmupSteps = warmupSteps(a, this.maxSteps);

    const [optimizer, scheduler] = checkOptimizers(opts.optimizers, new Set(this.params), a);
    this.optimizer = optimizer ?? this.createOptimizer(named);
    // As transformers' get_scheduler: 'constant' ignores warmup (warmup needs 'constant_with_warmup').
    this.scheduler = scheduler ?? getScheduler(a.lrSchedulerType, this.optimizer, { numWarmupSteps: this.warmupSteps, numTrainingSteps: this.maxSteps });
  }

  /** AdamW over the weight decay groups, or over LoRA+'s groups (PEFT's create_loraplus_optimizer) with loraplusLrRatio. */
  private createOptimizer(named: [string, Parameter][]): Optimizer<BaseHyper> {
    const a = this.args;
    const adam = { betas: [a.adamBeta1, a.adamBeta2] as [number, number], eps: a.adamEpsilon };
    if (a.loraplusLrRatio === undefined) return new AdamW(this.parameterGroups(named), { ...adam, lr: a.learningRate, weightDecay: a.weightDecay });
    try {
      return createLoraplusOptimizer(
        this.model,
        AdamW,
        { lr: a.learningRate, loraplusLrRatio: a.loraplusLrRatio, loraplusLrEmbedding: a.loraplusLrEmbedding, loraplusWeightDecay: a.weightDecay },
        adam,
      );
    } catch (e) {
      throw new Error(`Trainer: loraplusLrRatio: ${(e as Error).message.replace(/^createLoraplusOptimizer: /, '')}`);
    }
  }

  /**
   * transformers' two groups: weight decay on weights, none on biases and norm weights (a LoRA adapter
   * has only weights). One group when there is no decay or nothing is exempt.
   */
  private parameterGroups(named: [string, Parameter][]): { params: Parameter[]; weightDecay?: number }[] {
    if (this.args.weightDecay === 0) return [{ params: named.map(([, p]) => p) }];
    const exempt = new Set<Parameter>();
    for (const m of this.model.modules()) if (m instanceof LayerNorm || m instanceof RMSNorm) for (const p of m.parameters()) exempt.add(p);
    for (const [name, p] of named) if (name === 'bias' || name.endsWith('.bias')) exempt.add(p);
    const decay = named.filter(([, p]) => !exempt.has(p)).map(([, p]) => p);
    const noDecay = named.filter(([, p]) => exempt.has(p)).map(([, p]) => p);
    if (noDecay.length === 0) return [{ params: decay }];
    if (decay.length === 0) return [{ params: noDecay, weightDecay: 0 }];
    return [{ params: decay }, { params: noDecay, weightDecay: 0 }];
  }

  private dataPosition(epoch: number, batch: number): DataPosition {
    return {
      epoch,
      batch,
      batches_per_epoch: this.trainLoader.length,
      shuffle: this.args.shuffle,
      shuffle_seed: this.args.dataSeed,
      num_examples: this.trainDataset.length,
    };
  }

  /** Forward and backward of one micro-batch whose loss counts `weight` of the step's; returns its loss (detached). */
  private forwardBackward(batch: Batch, weight: number): Tensor {
    return scope(() => {
      const onDevice = (t: Tensor) => (t.device === this.device ? t : t.to(this.device));
      const input: CausalLMInput = {
        inputIds: onDevice(batch.inputIds),
        attentionMask: onDevice(batch.attentionMask),
        labels: onDevice(batch.labels),
        positionIds: batch.positionIds && onDevice(batch.positionIds), // packed rows: restarts at each example
      };
      const scale = weight * (this.scaler?.scale ?? 1);
      if (this.args.gradientCheckpointing) return checkpointedForwardBackward(this.core as unknown as Segmentable, input, scale);
      const loss = this.loss(input);
      (scale === 1 ? loss : loss.mul(scale)).backward();
      return loss.detach();
    });
  }

  /**
   * The model's loss for a batch: forwardLoss of a decoder-only LM or a PeftModel when chunkedLoss is on
   * (the LM head and cross-entropy in chunks, never holding the [tokens, vocab] logits), else forward().loss.
   */
  private loss(input: CausalLMInput): Tensor {
    const m = this.model;
    if (this.args.chunkedLoss && (m instanceof PeftModel || m instanceof DecoderOnlyLM)) return m.forwardLoss({ ...input, labels: input.labels! });
    const out = this.model.forward(input) as CausalLMOutput;
    if (out.loss === undefined) throw new Error(`Trainer: ${this.core.reprName()}'s forward returned no loss for labels`);
    return out.loss;
  }

  /**
   * One optimizer step over `group` (micro-batches on the CPU, disposed here). Returns the step's loss
   * (a 0-d tensor, not read back, so that the device is not waited for), the lr it used, and counts.
   */
  private async trainingStep(group: Batch[]): Promise<{
    loss?: Tensor;
    gradNorm?: Tensor;
    gradNormValue: number;
    lr: number;
    tokens: number;
    skipped: boolean;
    diverging: boolean;
  }> {
    const counts = group.map(countTokens);
    let total = counts.reduce((n, c) => n + c.labels, 0);
    let tokens = counts.reduce((n, c) => n + c.tokens, 0);
    if (this.gradientSync) {
      // Every rank weights its micro-batches by the label tokens of the whole global batch.
      // (on the training device: NCCL reduces CUDA tensors only)
      const both = tensor([total, tokens], { dtype: 'float64', device: this.device });
      try {
        await allReduce(both, 'sum');
        [total, tokens] = scope(() => Array.from(both.cpu().data() as Float64Array));
      } catch (e) {
        group.forEach(disposeBatch);
        throw e;
      } finally {
        both.dispose();
      }
    }
    const lr = this.optimizer.paramGroups[0].lr;
    let loss: Tensor | undefined;
    try {
      group.forEach((b, i) => {
        if (counts[i].labels === 0) return; // nothing to learn from (every label -100)
        // the last micro-batch's backward issues the gradient all-reduces as it goes; the others accumulate
        this.gradientSync?.prepareForBackward(i === group.length - 1);
        const w = counts[i].labels / total;
        const part = this.forwardBackward(b, w);
        const weighted = scope(() => (w === 1 ? part : part.mul(w)));
        if (weighted !== part) part.dispose();
        if (loss === undefined) loss = weighted;
        else {
          const sum = loss.add(weighted);
          loss.dispose();
          weighted.dispose();
          loss = sum;
        }
      });
    } finally {
      group.forEach(disposeBatch);
    }
    if (this.gradientSync) {
      // One sync per step, after the last micro-batch: the summed gradients and the step's global loss.
      const local = loss ?? zeros([], { device: this.device });
      const sum = local.float();
      if (sum !== local) local.dispose();
      try {
        await Promise.all([this.gradientSync.allReduceGradients(), allReduce(sum, 'sum')]);
      } catch (e) {
        sum.dispose();
        throw e;
      }
      loss = total > 0 ? sum : (sum.dispose(), undefined);
    }
    if (this.scaler) this.scaler.unscale(this.params);
    const maxNorm = this.args.maxGradNorm > 0 ? this.args.maxGradNorm : Infinity;
    const gradNorm = clipGradNorm(this.params, maxNorm);
    // A step whose loss or gradients are NaN/Inf is skipped (no update, no schedule step), as a GradScaler
    // skips one; the scaler also backs off. Both values are read back: one small sync per step.
    const lossFinite = loss === undefined || Number.isFinite(loss.item() as number);
    const gradFinite = Number.isFinite(gradNorm.item() as number);
    const skipped = !lossFinite || !gradFinite;
    this.scaler?.update(!gradFinite);
    this.callbacks.onPreOptimizerStep?.({ globalStep: this.stepIndex, model: this.model });
    if (!skipped) {
      this.optimizer.step();
      this.scheduler.step();
    }
    this.optimizer.zeroGrad();
    // float16's overflowing gradients with a finite loss are the scaler's business (it halves the scale
    // until they fit) until the scale falls below 1; anything else non-finite counts toward divergence.
    const diverging = !lossFinite || (!gradFinite && (this.scaler === undefined || this.scaler.scale < 1));
    return { loss: loss === undefined ? undefined : keep(loss), gradNorm: keep(gradNorm), gradNormValue: gradNorm.item() as number, lr, tokens, skipped, diverging };
  }

  /**
   * The loss over `dataset` in eval mode (dropout off) without autograd, as transformers' evaluate():
   * each batch's loss is the mean over its label tokens (padding and -100 ignored), and eval_loss is the
   * mean of those batch losses weighted by each batch's number of examples (trainer.py's evaluation_loop
   * repeats a batch's loss eval_batch_size times and accelerate's gather_for_metrics cuts the last batch's
   * copies to its size). With every example in one batch this is the mean over all label tokens. A batch
   * without any label token is left out (transformers' loss would be 0/0 there, making eval_loss NaN).
   */
  evaluate(dataset: Dataset<Example | MaybeMasked> | undefined = this.evalDataset): EvalMetrics {
    if (dataset === undefined) throw new Error('Trainer.evaluate: there is no evalDataset');
    const t0 = Date.now();
    return this.evalMetrics(this.evaluateBatches(dataset), t0);
  }

  /**
   * evaluate() in a distributed run, on every rank: rank r runs batches r, r + N, r + 2N ... of the batching
   * one process would use (accelerate's BatchSamplerShard), and the batches' sums are added over the ranks,
   * so every rank gets the metrics one process gets, in about 1/N of its time. (With computeMetrics, whose
   * predictions would have to be gathered, rank 0 evaluates alone: see train().)
   */
  private async evaluateSharded(dataset: Dataset<Example | MaybeMasked>): Promise<EvalMetrics> {
    const t0 = Date.now();
    const part = this.evaluateBatches(dataset, { rank: this.rank, worldSize: this.worldSize });
    const sums = tensor([part.sum, part.examples, part.tokens], { dtype: 'float64', device: this.device });
    try {
      await allReduce(sums, 'sum');
      [part.sum, part.examples, part.tokens] = scope(() => Array.from(sums.cpu().data() as Float64Array));
    } finally {
      sums.dispose();
    }
    return this.evalMetrics(part, t0);
  }

  /** The summed, example-weighted batch losses of `dataset` (of one rank's batches when sharded). */
  private evaluateBatches(
    dataset: Dataset<Example | MaybeMasked>,
    shard?: { rank: number; worldSize: number },
  ): { sum: number; examples: number; tokens: number; predictions: Tensor[]; labelIds: Tensor[] } {
    const loader = new DataLoader(dataset, { batchSize: this.args.perDeviceEvalBatchSize, tokenizer: this.tokenizer, padTokenId: this.padTokenId });
    const wasTraining = this.model.training;
    const withPredictions = this.computeMetrics !== undefined;
    this.model.eval();
    let sum = 0;
    let examples = 0;
    let tokens = 0;
    // computeMetrics' inputs, batch by batch, on the CPU.
    const predictions: Tensor[] = [];
    const labelIds: Tensor[] = [];
    try {
      noGrad(() => {
        let acc: Tensor | undefined;
        let k = -1;
        for (const b of loader) {
          if (shard !== undefined && ++k % shard.worldSize !== shard.rank) {
            disposeBatch(b);
            continue;
          }
          const c = countTokens(b);
          const rows = b.inputIds.shape[0];
          if (c.labels > 0 || withPredictions) {
            const part = scope(() => {
              const onDevice = (t: Tensor) => (t.device === this.device ? t : t.to(this.device));
              const input = {
                inputIds: onDevice(b.inputIds),
                attentionMask: onDevice(b.attentionMask),
                labels: onDevice(b.labels),
                positionIds: b.positionIds && onDevice(b.positionIds),
              };
              let loss: Tensor;
              if (withPredictions) {
                // transformers' prediction_step: the loss and the logits of one forward.
                const out = this.model.forward(input) as CausalLMOutput;
                if (out.loss === undefined) throw new Error(`Trainer: ${this.core.reprName()}'s forward returned no loss for labels`);
                loss = out.loss;
                const pred = this.preprocessLogitsForMetrics ? this.preprocessLogitsForMetrics(out.logits, input.labels) : out.logits;
                if (!(pred instanceof Tensor)) throw new TypeError('Trainer: preprocessLogitsForMetrics must return a Tensor');
                const mine = pred === input.labels || pred === input.inputIds || pred === input.attentionMask ? pred.clone() : pred;
                predictions.push(keep(mine.device === 'cpu' ? mine : mine.to('cpu')));
              } else loss = this.loss(input);
              if (c.labels === 0) return acc; // nothing to average: its loss would be 0/0
              const weighted = loss.float().mul(rows);
              return acc === undefined ? weighted : acc.add(weighted);
            });
            if (part !== acc) acc?.dispose();
            acc = part;
            if (c.labels > 0) {
              examples += rows;
              tokens += c.labels;
            }
          }
          if (withPredictions) labelIds.push(b.labels);
          b.inputIds.dispose();
          b.attentionMask.dispose();
          if (!withPredictions) b.labels.dispose();
        }
        if (acc !== undefined) {
          sum = acc.item() as number;
          acc.dispose();
        }
      });
    } catch (e) {
      dispose([predictions, labelIds]);
      throw e;
    } finally {
      this.model.train(wasTraining);
    }
    return { sum, examples, tokens, predictions, labelIds };
  }

  private evalMetrics(part: { sum: number; examples: number; tokens: number; predictions: Tensor[]; labelIds: Tensor[] }, t0: number): EvalMetrics {
    const { sum, examples, tokens, predictions, labelIds } = part;
    const withPredictions = this.computeMetrics !== undefined;
    const evalLoss = examples > 0 ? sum / examples : NaN;
    // run_clm.py's perplexity: exp of the mean loss (Infinity when it overflows).
    const metrics: EvalMetrics = { eval_loss: evalLoss, eval_perplexity: Math.exp(evalLoss), eval_runtime: 0, eval_tokens: tokens };
    if (withPredictions) Object.assign(metrics, this.runComputeMetrics(predictions, labelIds));
    metrics.eval_runtime = (Date.now() - t0) / 1000;
    return metrics;
  }

  /**
   * computeMetrics over the whole evaluation set: the batches' predictions and labels concatenated, padded
   * along the sequence with -100 (transformers' nested_concat); its results are prefixed with 'eval_'.
   */
  private runComputeMetrics(predictions: Tensor[], labelIds: Tensor[]): Record<string, number> {
    let computed: Record<string, unknown>;
    try {
      const p = { predictions: concatPadded(predictions), labelIds: concatPadded(labelIds) };
      try {
        computed = scope(() => this.computeMetrics!(p)) as Record<string, unknown>; // frees the tensors it makes
      } finally {
        p.predictions.dispose();
        p.labelIds.dispose();
      }
    } finally {
      dispose([predictions, labelIds]);
    }
    if (computed === null || typeof computed !== 'object' || Array.isArray(computed) || computed instanceof Promise)
      throw new TypeError(`Trainer: computeMetrics must return an object of numbers (such as { accuracy: 0.5 }), got ${computed instanceof Promise ? 'a Promise' : JSON.stringify(computed)}`);
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(computed)) {
      if (typeof v !== 'number') throw new TypeError(`Trainer: computeMetrics returned '${k}': ${JSON.stringify(v)}; each metric must be a number`);
      out[k.startsWith('eval_') ? k : `eval_${k}`] = v;
    }
    return out;
  }

  /** Trains; see the file's comment. Resolves with the summary once the adapter and the log are written. */
  async train(opts: TrainOptions = {}): Promise<TrainOutput> {
    checkOptions(opts, { resumeFromCheckpoint: true, signal: true }, 'Trainer.train');
    const a = this.args;
    const out = a.outputDir;
    // Rank 0 alone writes files and prints; the other ranks train in step with it.
    const main = this.rank === 0;
    // Every rank evaluates its share of the batches; with computeMetrics rank 0 evaluates alone.
    const sharded = this.gradientSync !== undefined && this.computeMetrics === undefined;
    if (main) {
      await fs.promises.mkdir(out, { recursive: true });
      await writeFileAtomic(path.join(out, TRAINING_ARGS_NAME), JSON.stringify(trainingArgumentsJSON(a), null, 2) + '\n');
    }
    const log = new JsonlLog(path.join(out, LOG_FILE_NAME));
    const reporter = new ProgressReporter({ mode: main ? a.report : 'none', totalSteps: this.maxSteps, stream: this.stream });
    const parts = { model: this.model, optimizer: this.optimizer, scheduler: this.scheduler, scaler: this.scaler };

    manualSeed(a.seed);
    this.model.train();

    // Where to start: step 0, or a checkpoint's state.
    let resumedFrom: string | undefined;
    if (opts.resumeFromCheckpoint) {
      resumedFrom = opts.resumeFromCheckpoint === true ? lastCheckpoint(out) : opts.resumeFromCheckpoint;
      if (resumedFrom === undefined) throw new Error(`resumeFromCheckpoint: there is no checkpoint in '${out}' (folders ${'checkpoint-<step>'} with ${TRAINER_STATE_NAME})`);
      this.checkResumable(readTrainerState(resumedFrom), resumedFrom);
    }
    const state: TrainerState = resumedFrom
      ? await loadCheckpoint(resumedFrom, parts)
      : {
          global_step: 0,
          epoch: 0,
          max_steps: this.maxSteps,
          num_train_epochs: a.numTrainEpochs,
          logging_steps: a.loggingSteps,
          eval_steps: a.evalSteps ?? null,
          save_steps: a.saveSteps,
          train_batch_size: a.perDeviceTrainBatchSize,
          gradient_accumulation_steps: a.gradientAccumulationSteps,
          num_input_tokens_seen: 0,
          log_history: [],
          data_position: this.dataPosition(0, 0),
          pending_losses: [],
          pending_tokens: 0,
          total_loss_sum: 0,
          total_loss_steps: 0,
          best_metric: null,
          best_global_step: null,
          best_model_checkpoint: null,
          world_size: this.worldSize,
        };
    state.max_steps = this.maxSteps;
    state.world_size = this.worldSize;
    this.resumeBestModel(state, reporter);
    const early = a.earlyStoppingPatience !== undefined ? new EarlyStopping(a.earlyStoppingPatience, a.earlyStoppingThreshold) : undefined;
    if (resumedFrom) early?.loadState(state.stateful_callbacks?.EarlyStoppingCallback);
    // DDP's start: every rank from rank 0's trainable values (a fresh LoRA init or the checkpoint's).
    if (this.gradientSync) await this.gradientSync.broadcastParameters(0);
    this.logHistory = state.log_history;
    if (main) log.reset(this.logHistory);
    if (resumedFrom) reporter.message(`resuming from ${resumedFrom} at step ${state.global_step}`);

    // Losses of the steps since the last log, read back from the device only when logged or saved.
    let pendingLoss: Tensor[] = [];
    let pendingValues = state.pending_losses.slice();
    let lastGradNorm: Tensor | undefined;
    let windowStart = Date.now();
    const flush = (): number[] => {
      if (pendingLoss.length) {
        const values = scope(() => Array.from(stack(pendingLoss).float().cpu().data() as Float32Array));
        pendingLoss.forEach((t) => t.dispose());
        pendingLoss = [];
        pendingValues.push(...values);
      }
      return pendingValues;
    };
    const emit = (entry: LogEntry) => {
      this.logHistory.push(entry);
      if (main) log.append(entry);
      reporter.log(entry);
      this.callbacks.onLog?.(entry);
    };
    const evalEntry = (m: EvalMetrics): LogEntry => {
      const { eval_tokens: _tokens, ...logged } = m;
      return { step: state.global_step, epoch: Number(state.epoch.toFixed(4)), ...logged };
    };
    // A checkpoint of this step, with best_model_checkpoint as transformers' _save_checkpoint sets it: the
    // best evaluation's checkpoint when it exists (this one, when this step's evaluation is the best).
    const save = async (): Promise<string> => {
      state.pending_losses = flush().slice();
      if (state.best_global_step !== null) {
        const best = checkpointDir(out, state.best_global_step);
        if (state.best_global_step === state.global_step || fs.existsSync(best)) state.best_model_checkpoint = best;
      }
      if (early) state.stateful_callbacks = { ...state.stateful_callbacks, EarlyStoppingCallback: early.state() };
      return saveCheckpoint(out, parts, state);
    };

    const t0 = Date.now();
    const startStep = state.global_step;
    const startTokens = state.num_input_tokens_seen;
    let lastEvalStep = -1;
    let evalLoss: number | undefined;
    let stoppedEarly = false;
    let epoch = state.data_position.epoch;
    let batchInEpoch = state.data_position.batch;
    let lrUsed = this.optimizer.paramGroups[0].lr;
    let interruptedAt: string | undefined;
    let nonFiniteRun = 0;
    let collapsedRun = 0;
    let sawGradient = false;
    reporter.start(state.global_step);
    try {
      let iterator: Generator<Batch> | undefined;
      while (state.global_step < this.maxSteps) {
        if (batchInEpoch >= this.trainLoader.length) {
          epoch++;
          batchInEpoch = 0;
          iterator = undefined;
        }
        iterator ??= this.trainLoader.batches({ epoch, start: batchInEpoch });
        // A step takes gradientAccumulationSteps micro-batches, fewer at the end of an epoch.
        const group: Batch[] = [];
        while (group.length < a.gradientAccumulationSteps && batchInEpoch < this.trainLoader.length) {
          const next = iterator.next();
          if (next.done) break;
          group.push(next.value);
          batchInEpoch++;
        }
        this.stepIndex = state.global_step;
        const r = await this.trainingStep(group);
        lrUsed = r.lr; // logged as learning_rate: the rate this step used (transformers 5 reads it before lr_scheduler.step())
        nonFiniteRun = r.diverging ? nonFiniteRun + 1 : 0;
        // Gradients that were non-zero and then are exactly zero, with tokens to learn: the weights grew so
        // large that the activations saturate (an RMSNorm of overflowing values gives 0) and the loss no
        // longer depends on them; the run is as lost as a NaN one, only quieter.
        const collapsed = r.loss !== undefined && r.gradNormValue === 0 && sawGradient;
        if (r.gradNormValue > 0 && Number.isFinite(r.gradNormValue)) sawGradient = true;
        collapsedRun = collapsed ? collapsedRun + 1 : 0;
        if (collapsedRun >= MAX_NON_FINITE_STEPS)
          throw new TrainingDivergedError(
            `Trainer: the gradients collapsed to exactly zero in ${collapsedRun} steps in a row (up to step ${state.global_step + 1}): the ` +
              `weights grew until the activations saturated and the loss no longer depends on them; training stopped and the adapter ` +
              `was not saved to '${out}'. Lower the learning rate (learningRate ${a.learningRate}), or resume from a checkpoint saved before this`,
          );
        if (r.diverging) {
          // The step was skipped; its loss stays out of the logged means (a NaN would make them all NaN).
          r.loss?.dispose();
          reporter.message(`step ${state.global_step + 1}: the loss or the gradients were NaN/Inf; step skipped`);
          if (nonFiniteRun >= MAX_NON_FINITE_STEPS)
            throw new TrainingDivergedError(
              `Trainer: the loss or the gradients were NaN/Inf in ${nonFiniteRun} steps in a row (up to step ${state.global_step + 1}); ` +
                `training stopped and the adapter was not saved to '${out}'. Lower the learning rate (learningRate ${a.learningRate}), ` +
                'check the data, or resume from a checkpoint saved before the divergence',
            );
        } else if (r.loss) pendingLoss.push(r.loss);
        lastGradNorm?.dispose();
        lastGradNorm = r.gradNorm;
        state.global_step++;
        state.num_input_tokens_seen += r.tokens;
        state.pending_tokens += r.tokens;
        state.epoch = epoch + batchInEpoch / this.trainLoader.length;
        state.data_position = this.dataPosition(epoch, batchInEpoch);
        const step = state.global_step;
        const last = step === this.maxSteps;
        reporter.update(step);

        if (step % a.loggingSteps === 0 || last) {
          const values = flush();
          const seconds = (Date.now() - windowStart) / 1000;
          const mean = values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN;
          state.total_loss_sum += values.reduce((s, v) => s + v, 0);
          state.total_loss_steps += values.length;
          const entry: LogEntry = {
            step,
            epoch: Number(state.epoch.toFixed(4)),
            loss: mean,
            learning_rate: lrUsed,
            grad_norm: lastGradNorm?.item() as number,
            tokens_per_second: seconds > 0 ? state.pending_tokens / seconds : undefined,
            num_input_tokens_seen: state.num_input_tokens_seen,
          };
          if (entry.tokens_per_second === undefined) delete entry.tokens_per_second;
          emit(entry);
          reporter.update(step, `loss ${mean.toFixed(4)}, lr ${lrUsed.toExponential(2)}`);
          pendingValues = [];
          state.pending_tokens = 0;
          windowStart = Date.now();
        }
        let stopEarly = false;
        if ((main || sharded) && this.evalDataset && a.evalSteps && step % a.evalSteps === 0) {
          const m = sharded ? await this.evaluateSharded(this.evalDataset) : this.evaluate();
          evalLoss = m.eval_loss;
          lastEvalStep = step;
          emit(evalEntry(m));
          if (a.metricForBestModel !== undefined) {
            // As transformers: the early-stopping callback sees the evaluation before the best is updated.
            const value = metricValue(m, a.metricForBestModel);
            stopEarly = early?.onEvaluate(value, state.best_metric, a.greaterIsBetter!) ?? false;
            updateBest(state, value, a.saveSteps > 0 ? step : null, a.greaterIsBetter!);
            if (stopEarly && !last)
              reporter.message(
                `early stopping at step ${step}: ${evalMetricKey(a.metricForBestModel)} did not improve on the best (${state.best_metric}) ` +
                  `by more than ${early!.threshold} in ${early!.counter} evaluations in a row (earlyStoppingPatience ${early!.patience})`,
              );
          }
        }
        let saved: string | undefined;
        if (a.saveSteps > 0 && step % a.saveSteps === 0) {
          saved = checkpointDir(out, step);
          if (main) {
            saved = await save();
            if (a.saveTotalLimit !== undefined) await rotateCheckpoints(out, a.saveTotalLimit, [saved, state.best_model_checkpoint]);
          } else state.pending_losses = flush().slice();
        }
        // Let a signal handler run between steps (the step itself is synchronous native work).
        if (opts.signal !== undefined) await new Promise((resolve) => setImmediate(resolve));
        let aborted = opts.signal?.aborted ?? false;
        let stopAsked: boolean | undefined;
        if (this.gradientSync) {
          // The ranks stop together, after the same step: a signal, a callback's stop or rank 0's early
          // stopping on any rank stops all (one rank leaving the loop alone would leave the others waiting
          // in the next collective).
          stopAsked = this.callbacks.onStepEnd?.({ globalStep: step, epoch: state.epoch, maxSteps: this.maxSteps }) === true;
          const flags = tensor([aborted ? 1 : 0, stopAsked ? 1 : 0, stopEarly ? 1 : 0], { dtype: 'float64', device: this.device });
          try {
            await allReduce(flags, 'max');
            const [a0, s0, e0] = scope(() => Array.from(flags.cpu().data() as Float64Array));
            aborted = a0 > 0;
            stopAsked = s0 > 0;
            stopEarly = e0 > 0;
          } finally {
            flags.dispose();
          }
        }
        if (aborted && !last && !stopEarly) {
          if (saved === undefined) saved = main ? await save() : checkpointDir(out, step);
          if (this.gradientSync) await barrier(); // (the checkpoint is complete when any rank returns)
          interruptedAt = saved;
          break;
        }
        stopAsked ??= this.callbacks.onStepEnd?.({ globalStep: step, epoch: state.epoch, maxSteps: this.maxSteps }) === true;
        if (stopAsked || stopEarly) {
          stoppedEarly = !last;
          break;
        }
      }
      if (interruptedAt === undefined) {
        // Steps after the last log (a run stopped early): their losses count in train_loss, as transformers'.
        const rest = flush();
        state.total_loss_sum += rest.reduce((t, v) => t + v, 0);
        state.total_loss_steps += rest.length;
        pendingValues = [];
      }
    } finally {
      pendingLoss.forEach((t) => t.dispose());
      lastGradNorm?.dispose();
      this.gradientSync?.dispose(); // (its gradient hooks; the next train() makes them again)
      reporter.finish();
    }

    if (interruptedAt !== undefined) {
      const trainingLoss = state.total_loss_steps > 0 ? state.total_loss_sum / state.total_loss_steps : NaN;
      const metrics: LogEntry = { step: state.global_step, epoch: Number(state.epoch.toFixed(4)) };
      return {
        globalStep: state.global_step,
        trainingLoss,
        evalLoss,
        metrics,
        logHistory: this.logHistory,
        outputDir: out,
        adapterDir: interruptedAt,
        logFile: log.file,
        resumedFrom,
        stoppedEarly: true,
        interrupted: true,
        checkpoint: interruptedAt,
      };
    }
    if ((main || sharded) && this.evalDataset && lastEvalStep !== state.global_step) {
      const m = sharded ? await this.evaluateSharded(this.evalDataset) : this.evaluate();
      evalLoss = m.eval_loss;
      emit(evalEntry(m));
    }
    const runtime = (Date.now() - t0) / 1000;
    const stepsRun = state.global_step - startStep;
    const trainingLoss = state.total_loss_steps > 0 ? state.total_loss_sum / state.total_loss_steps : NaN;
    const metrics: LogEntry = {
      step: state.global_step,
      epoch: Number(state.epoch.toFixed(4)),
      train_loss: trainingLoss,
      train_runtime: runtime,
      train_samples_per_second:
        runtime > 0 ? (stepsRun * a.perDeviceTrainBatchSize * a.gradientAccumulationSteps * this.worldSize) / runtime : undefined,
      train_steps_per_second: runtime > 0 ? stepsRun / runtime : undefined,
      train_tokens_per_second: runtime > 0 ? (state.num_input_tokens_seen - startTokens) / runtime : undefined,
    };
    for (const k of Object.keys(metrics)) if (metrics[k] === undefined) delete metrics[k];
    emit(metrics);

    state.pending_losses = [];
    let lossPlot: string | undefined;
    if (main) {
      // transformers: the best checkpoint's weights are loaded after the train metrics are logged; with
      // saveTotalLimit 1 every other checkpoint then goes (the newest was kept only for resuming). Rank 0
      // alone: it alone writes the adapter.
      if (a.loadBestModelAtEnd && state.best_model_checkpoint !== null) {
        reporter.message(`loading the best model from ${state.best_model_checkpoint} (${evalMetricKey(a.metricForBestModel!)} ${state.best_metric})`);
        await loadTrainedWeights(this.model, state.best_model_checkpoint);
        const bestEval = this.logHistory.find((e) => e.step === state.best_global_step && e.eval_loss !== undefined);
        if (bestEval !== undefined) evalLoss = bestEval.eval_loss;
      }
      if (a.saveTotalLimit === 1 && state.best_model_checkpoint !== null) await deleteCheckpointsExcept(out, state.best_model_checkpoint);
      await saveTrainedWeights(this.model, out);
      if (early) state.stateful_callbacks = { ...state.stateful_callbacks, EarlyStoppingCallback: early.state() };
      await writeFileAtomic(path.join(out, TRAINER_STATE_NAME), JSON.stringify(state, null, 2) + '\n');
      if (a.plotLoss) {
        lossPlot = path.join(out, LOSS_PLOT_NAME);
        writeLossPlot(lossPlot, this.logHistory);
      }
    }
    // No rank returns before rank 0's adapter is written (or its failure has ended the job).
    if (this.gradientSync) await barrier();
    return {
      globalStep: state.global_step,
      trainingLoss,
      evalLoss,
      metrics,
      logHistory: this.logHistory,
      outputDir: out,
      adapterDir: out,
      logFile: log.file,
      lossPlot,
      resumedFrom,
      stoppedEarly,
      bestMetric: state.best_metric ?? undefined,
      bestModelCheckpoint: state.best_model_checkpoint ?? undefined,
    };
  }

  /** loadBestModelAtEnd and early stopping rank evaluations: they need an evalDataset and a metric it gives. */
  private checkBestModelOptions(): void {
    const a = this.args;
    const needs = a.loadBestModelAtEnd ? 'loadBestModelAtEnd' : a.earlyStoppingPatience !== undefined ? 'earlyStoppingPatience' : undefined;
    if (needs !== undefined && this.evalDataset === undefined) throw new Error(`Trainer: ${needs} ranks evaluations, and there is no evalDataset (or it is empty)`);
    const metric = a.metricForBestModel;
    if (metric !== undefined && this.computeMetrics === undefined && !BUILTIN_EVAL_METRICS.includes(evalMetricKey(metric)))
      throw new RangeError(
        `TrainingArguments: metricForBestModel '${metric}' is not a metric of the evaluation (${BUILTIN_EVAL_METRICS.join(', ')}); ` +
          "choose one of those, or give the Trainer a computeMetrics that returns it",
      );
  }

  /**
   * A resumed run's best checkpoint: trainer_state.json's, when that folder still exists (transformers drops
   * one that does not); looked for in this outputDir first, so that a run moved elsewhere keeps it.
   */
  private resumeBestModel(state: TrainerState, reporter: ProgressReporter): void {
    state.best_metric ??= null;
    state.best_global_step ??= null;
    state.best_model_checkpoint ??= null;
    const recorded = state.best_model_checkpoint;
    if (recorded === null) return;
    const here = checkpointDir(this.args.outputDir, Number(path.basename(recorded).replace(/^checkpoint-/, '')));
    const isDir = (d: string) => fs.existsSync(d) && fs.statSync(d).isDirectory();
    if (isDir(here)) state.best_model_checkpoint = here;
    else if (!isDir(recorded)) {
      reporter.message(`the best checkpoint ${recorded} recorded in the resumed state does not exist anymore; ignoring it for this run`);
      state.best_model_checkpoint = null;
    }
  }

  /** A checkpoint can continue this run only if the data is batched the same way. */
  private checkResumable(s: TrainerState, dir: string): void {
    const a = this.args;
    const p = s.data_position;
    const problems: string[] = [];
    const world = s.world_size ?? 1;
    if (world !== this.worldSize)
      throw new Error(
        `resumeFromCheckpoint: '${dir}' was made by ${world} process${world === 1 ? '' : 'es'} and this run has ${this.worldSize}: ` +
          `each rank's place in the data depends on the number of ranks; resume with ${world === 1 ? 'a single process' : `${world} processes (--nproc-per-node/--nnodes)`}`,
      );
    if (s.train_batch_size !== a.perDeviceTrainBatchSize) problems.push(`perDeviceTrainBatchSize ${s.train_batch_size} (now ${a.perDeviceTrainBatchSize})`);
    if (s.gradient_accumulation_steps !== a.gradientAccumulationSteps)
      problems.push(`gradientAccumulationSteps ${s.gradient_accumulation_steps} (now ${a.gradientAccumulationSteps})`);
    if (p.num_examples !== this.trainDataset.length) problems.push(`${p.num_examples} training examples (now ${this.trainDataset.length})`);
    if (p.shuffle !== a.shuffle || p.shuffle_seed !== a.dataSeed) problems.push(`shuffle ${p.shuffle} with data seed ${p.shuffle_seed} (now ${a.shuffle}, ${a.dataSeed})`);
    if (p.batches_per_epoch !== this.trainLoader.length) problems.push(`${p.batches_per_epoch} batches per epoch (now ${this.trainLoader.length})`);
    if (problems.length)
      throw new Error(`resumeFromCheckpoint: '${dir}' was made with ${problems.join(', ')}; resume with the same data and batching to continue exactly`);
    if (s.global_step >= this.maxSteps) throw new Error(`resumeFromCheckpoint: '${dir}' is at step ${s.global_step}, and this run has only ${this.maxSteps} steps`);
  }
}
