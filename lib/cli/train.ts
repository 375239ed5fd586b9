// torch-lora train: a base model folder + a data file -> a LoRA adapter in PEFT's format, with the log,
// the loss curve and checkpoints, through the Trainer. Options come from flags or a JSON config file
// (the same names; flags win).
import * as fs from 'fs';
import * as path from 'path';
import { manualSeed } from '../autograd';
import { countOverlong, Dataset, Example, loadDataset, MaybeMasked, packDataset, PACKING_STRATEGIES, PackingStrategy } from '../data';
import { getPeftModel, InitLoraWeights, LoraBias, LoraConfig, LoraConfigOptions, PeftModel } from '../peft';
import { numParameters, readConfig as readModelConfig } from '../models';
import { SCHEDULER_TYPES, SchedulerType } from '../optim';
import { CpuFloat16Error, resolveCpuDType, resolveTrainingArguments, Trainer, TrainingArgumentsOptions, TrainingDType, TrainOutput } from '../train';
import { CliIO, requireDir, requireFile, say } from './io';
import { writeFileAtomic } from '../io/fs-atomic';
import { checkOutputDir } from './output-dir';
import { checkDevice, float16FlagError, loadAdapter, loadBaseModel, loadTokenizer, requireModelDir } from './load-model';
import type { Command } from './main';
import { BitsAndBytesConfig } from '../quant/bnb-config';
import { camel, kebab, CommandSpec, convertValue, OptionSpec, OptionValue, Parsed, requireOptions, UsageError } from './options';
import { applyModelThreads, applyThreads, threadsOption } from './threads';
import { destroyProcessGroup, initProcessGroup, isInitialized } from '../distributed/process-group';
import { launchedDistributed, readTorchrunEnv } from '../distributed/env';
import { exitWithLauncher, launch, WorkerFailedError } from '../distributed/launch';

const DATA = 'Model and data';
const LORA = 'LoRA';
const TRAIN = 'Training';
const LOG = 'Logging and checkpoints';
const HW = 'Device and precision';
const BEST = 'Early stopping and best model';
const DIST = 'Data-parallel (several processes)';

const options: OptionSpec[] = [
  { name: 'model', type: 'string', placeholder: 'DIR', required: true, group: DATA, description: 'base model folder (config.json, model.safetensors, tokenizer.json)' },
  { name: 'data', type: 'string', placeholder: 'FILE', required: true, group: DATA, description: 'training data: JSONL or JSON of {"text"}, {"prompt","completion"} or {"messages"} records' },
  { name: 'output', short: 'o', type: 'string', placeholder: 'DIR', default: 'torch-lora-output', group: DATA, description: 'where the adapter, log, loss curve and checkpoints go' },
  { name: 'eval-data', type: 'string', placeholder: 'FILE', group: DATA, description: 'evaluation data (same formats)' },
  { name: 'eval-split', type: 'number', placeholder: 'X', group: DATA, description: 'hold out this fraction (or count) of --data for evaluation' },
  { name: 'tokenizer', type: 'string', placeholder: 'DIR', group: DATA, description: 'tokenizer folder [default: --model]' },
  { name: 'max-length', type: 'integer', placeholder: 'N', group: DATA, description: 'cut examples to N tokens' },
  { name: 'chat-template', type: 'string', placeholder: 'NAME|FILE', group: DATA, description: "chat template for {\"messages\"} records: one of the tokenizer's named templates, a built-in format (chatml, llama3, gemma) or a .jinja file [default: the tokenizer's]" },
  { name: 'train-on-inputs', type: 'boolean', group: DATA, description: 'take the loss on every token, prompts and user turns too (default: on completions and assistant turns only)' },
  { name: 'packing', type: 'boolean', group: DATA, description: 'pack several examples into each row of up to --seq-len tokens instead of padding each' },
  { name: 'packing-strategy', type: 'string', placeholder: 'S', default: 'bfd', choices: PACKING_STRATEGIES, group: DATA, description: "with --packing: 'bfd' whole examples by best-fit decreasing, each attending to itself only; 'wrapped' concatenated and cut into full blocks (examples see the ones before them)" },
  { name: 'seq-len', type: 'integer', placeholder: 'N', default: 512, group: DATA, description: 'row length with --packing (bfd cuts longer examples to it)' },
  { name: 'adapter', type: 'string', placeholder: 'DIR', group: LORA, description: 'continue training this adapter instead of making a new one' },
  { name: 'r', type: 'integer', placeholder: 'N', default: 8, group: LORA, description: 'LoRA rank' },
  { name: 'lora-alpha', type: 'number', placeholder: 'X', default: 16, group: LORA, description: 'LoRA alpha (scaling alpha/r)' },
  { name: 'lora-dropout', type: 'number', placeholder: 'X', default: 0.05, group: LORA, description: 'dropout on the LoRA input' },
  { name: 'target-modules', type: 'list', placeholder: 'A,B', group: LORA, description: "modules to adapt, e.g. q_proj,v_proj or all-linear [default: PEFT's for the architecture]" },
  { name: 'use-rslora', type: 'boolean', group: LORA, description: 'rank-stabilized scaling alpha/sqrt(r)' },
  { name: 'use-dora', type: 'boolean', group: LORA, description: 'weight-decomposed LoRA (DoRA)' },
  { name: 'exclude-modules', type: 'list', placeholder: 'A,B', group: LORA, description: 'modules never adapted (names or name suffixes)' },
  { name: 'layers-to-transform', type: 'integers', placeholder: 'I,J', group: LORA, description: 'adapt only these layer indices' },
  { name: 'layers-pattern', type: 'list', placeholder: 'NAME', group: LORA, description: "the layer list's name for --layers-to-transform (e.g. layers, h)" },
  { name: 'rank-pattern', type: 'map', placeholder: 'M=N,...', group: LORA, description: 'per-module ranks overriding --r, e.g. q_proj=16 (names or regex suffixes)' },
  { name: 'alpha-pattern', type: 'map', placeholder: 'M=X,...', group: LORA, description: 'per-module alphas overriding --lora-alpha' },
  { name: 'bias', type: 'string', placeholder: 'WHICH', default: 'none', choices: ['none', 'all', 'lora_only'], group: LORA, description: 'which biases of the base train' },
  { name: 'lora-bias', type: 'boolean', group: LORA, description: 'a trainable bias on lora_B' },
  { name: 'modules-to-save', type: 'list', placeholder: 'A,B', group: LORA, description: 'modules trained in full and saved with the adapter (e.g. lm_head)' },
  { name: 'trainable-token-indices', type: 'integers', placeholder: 'I,J', group: LORA, description: "train only these rows of the token embedding (e.g. new special tokens' ids); a tied lm_head follows" },
  { name: 'resize-token-embeddings', type: 'boolean', group: LORA, description: "grow the model's token embedding (and lm_head) to the tokenizer's size when it has added tokens the model lacks (new rows at the old rows' mean)" },
  { name: 'init-lora-weights', type: 'string', placeholder: 'INIT', default: 'true', choices: ['true', 'false', 'gaussian', 'pissa', 'olora'], group: LORA, description: 'how the adapter starts (true: B = 0, a no-op)' },
  { name: 'epochs', type: 'number', placeholder: 'X', default: 3, group: TRAIN, description: 'passes over the data' },
  { name: 'max-steps', type: 'integer', placeholder: 'N', group: TRAIN, description: 'optimizer steps in all (overrides --epochs)' },
  { name: 'batch-size', type: 'integer', placeholder: 'N', default: 8, group: TRAIN, description: 'examples per micro-batch' },
  { name: 'grad-accum', type: 'integer', placeholder: 'N', default: 1, group: TRAIN, description: 'micro-batches per optimizer step' },
  { name: 'lr', type: 'number', placeholder: 'X', default: 2e-4, group: TRAIN, description: 'peak learning rate (AdamW)' },
  { name: 'scheduler', type: 'string', placeholder: 'NAME', default: 'linear', choices: SCHEDULER_TYPES, group: TRAIN, description: 'learning-rate schedule' },
  { name: 'warmup-steps', type: 'number', placeholder: 'N', default: 0, group: TRAIN, description: 'linear warmup steps, or a fraction < 1 of the steps' },
  { name: 'warmup-ratio', type: 'number', placeholder: 'X', default: 0, group: TRAIN, description: 'warmup as a fraction of the steps (when --warmup-steps is 0)' },
  { name: 'weight-decay', type: 'number', placeholder: 'X', default: 0, group: TRAIN, description: 'AdamW weight decay' },
  { name: 'loraplus-lr-ratio', type: 'number', placeholder: 'X', group: TRAIN, description: "LoRA+: lora_B learns at X times --lr (e.g. 16; PEFT's loraplus_lr_ratio)" },
  { name: 'loraplus-lr-embedding', type: 'number', placeholder: 'X', group: TRAIN, description: 'LoRA+: the learning rate of LoRA on embedding layers [default: 1e-6]' },
  { name: 'max-grad-norm', type: 'number', placeholder: 'X', default: 1, group: TRAIN, description: 'clip the gradient norm (0: no clipping)' },
  { name: 'seed', type: 'integer', placeholder: 'N', default: 42, group: TRAIN, description: 'random seed (adapter init, dropout, data order)' },
  { name: 'gradient-checkpointing', type: 'boolean', group: TRAIN, description: 'recompute layer activations in backward (less memory)' },
  { name: 'logging-steps', type: 'integer', placeholder: 'N', default: 10, group: LOG, description: 'log every N steps' },
  { name: 'eval-steps', type: 'integer', placeholder: 'N', group: LOG, description: 'evaluate every N steps [default: at the end]' },
  { name: 'save-steps', type: 'integer', placeholder: 'N', default: 0, group: LOG, description: 'checkpoint every N steps (0: none)' },
  { name: 'save-total-limit', type: 'integer', placeholder: 'N', group: LOG, description: 'keep only the newest N checkpoints' },
  { name: 'overwrite-output-dir', type: 'boolean', group: LOG, description: 'start over in an --output that holds an earlier run (its files are deleted first)' },
  { name: 'resume-from-checkpoint', type: 'string', placeholder: 'DIR', group: LOG, description: "continue from a checkpoint folder, or 'latest' in --output" },
  { name: 'report', type: 'string', placeholder: 'MODE', default: 'auto', choices: ['auto', 'progress', 'plain', 'none'], group: LOG, description: 'progress output (auto: a bar on a terminal)' },
  { name: 'load-best-model-at-end', type: 'boolean', group: BEST, description: 'write the best checkpoint\'s adapter at the end (needs --eval-steps, and --save-steps a multiple of it)' },
  { name: 'metric-for-best-model', type: 'string', placeholder: 'NAME', choices: ['loss', 'eval_loss', 'perplexity', 'eval_perplexity'], group: BEST, description: 'the evaluation metric that ranks checkpoints [default: loss]' },
  { name: 'greater-is-better', type: 'string', placeholder: 'BOOL', choices: ['true', 'false'], group: BEST, description: 'whether a higher metric is better [default: false for loss and perplexity]' },
  { name: 'early-stopping-patience', type: 'integer', placeholder: 'N', group: BEST, description: 'stop after N evaluations in a row without improvement (needs --eval-steps)' },
  { name: 'early-stopping-threshold', type: 'number', placeholder: 'X', group: BEST, description: 'an evaluation improves only when better than the best by more than X [default: 0]' },
  { name: 'device', type: 'string', placeholder: 'DEV', default: 'cpu', group: HW, description: 'cpu, cuda or cuda:N' },
  { name: 'dtype', type: 'string', placeholder: 'TYPE', default: 'float32', choices: ['float32', 'bfloat16', 'float16'], group: HW, description: 'dtype of the base weights (adapters train in float32)' },
  { name: 'load-in-4bit', type: 'boolean', group: HW, description: 'QLoRA: quantize the base to 4 bits on load (NF4, double quantization, computing in --dtype)' },
  { name: 'load-in-8bit', type: 'boolean', group: HW, description: "quantize the base to 8 bits on load (LLM.int8's row-wise int8)" },
  threadsOption(HW),
  { name: 'nproc-per-node', type: 'integer', placeholder: 'N', group: DIST, description: 'worker processes on this machine (one per GPU with --device cuda); each trains on its share of every batch' },
  { name: 'nnodes', type: 'integer', placeholder: 'N', default: 1, group: DIST, description: 'machines in the job (run the same command on each, with its --node-rank)' },
  { name: 'node-rank', type: 'integer', placeholder: 'I', default: 0, group: DIST, description: "this machine's index in [0, --nnodes)" },
  { name: 'master-addr', type: 'string', placeholder: 'HOST', group: DIST, description: 'address of the --node-rank 0 machine, reachable by all [default: 127.0.0.1]' },
  { name: 'master-port', type: 'integer', placeholder: 'PORT', group: DIST, description: 'its rendezvous port [default: a free port on one machine, 29500 on several]' },
  { name: 'dist-timeout', type: 'number', placeholder: 'SECONDS', default: 1800, group: DIST, description: 'how long a rank waits for the others in a collective before failing' },
  { name: 'config', type: 'string', placeholder: 'FILE', group: 'Other', description: 'JSON file of these options (keys like "lr" or "lora-alpha"); flags override it' },
];

const spec: CommandSpec = {
  name: 'train',
  usage: '--model DIR --data FILE [--output DIR] [options]',
  summary: 'Fine-tunes a Hugging Face causal LM with LoRA and writes the adapter in PEFT format.',
  options,
  details: [
    'Examples:',
    '  torch-lora train --model ./my-llama --data train.jsonl --output out --epochs 1 --lr 2e-4',
    '  torch-lora train --config run.json --resume-from-checkpoint latest',
    '  torch-lora train --model ./my-llama --data train.jsonl --nproc-per-node 2        (2 processes, Gloo)',
    '  torch-lora train ... --device cuda --nproc-per-node 4 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1',
    '',
    'Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT set) each process is one rank;',
    '--batch-size is per process, so N processes train as one of batch N x --batch-size. Rank 0 writes.',
    '',
    'Writes into --output: adapter_config.json + adapter_model.safetensors (load them with PEFT),',
    'trainer_log.jsonl, training_loss.svg, trainer_state.json and checkpoint-<step>/ folders.',
  ].join('\n'),
};

/** Values from a --config file, checked against the options (keys in kebab-case or camelCase). */
function readConfig(file: string): Record<string, OptionValue> {
  requireFile(file, 'config file');
  let obj: unknown;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`config file '${file}' is not valid JSON: ${(e as Error).message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`config file '${file}' must hold a JSON object of options`);
  const out: Record<string, OptionValue> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const o = options.find((x) => x.name === k || camel(x.name) === k);
    if (o === undefined || o.name === 'config') throw new UsageError(`unknown option '${k}' in config file '${file}'`);
    out[camel(o.name)] = convertValue(o, v, `'${k}' in '${file}'`);
  }
  return out;
}

/** TrainingArguments' names of the settings whose flag is not their kebab-case name. */
const FLAG_OF: Record<string, string> = {
  numTrainEpochs: 'epochs',
  perDeviceTrainBatchSize: 'batch-size',
  gradientAccumulationSteps: 'grad-accum',
  learningRate: 'lr',
  lrSchedulerType: 'scheduler',
  outputDir: 'output',
};

/**
 * A TrainingArguments or LoraConfig message ("TrainingArguments: numTrainEpochs must be ...") in the
 * words of the command line: the flag the user typed (--epochs must be ...).
 */
export function flagMessage(message: string): string {
  const flagOf = (name: string) => {
    const flag = FLAG_OF[name] ?? kebab(name);
    return options.some((o) => o.name === flag) ? `--${flag}` : undefined;
  };
  return message
    .replace(/^(?:TrainingArguments|LoraConfig): /, '')
    .replace(/`?\b([a-z][A-Za-z]*[A-Z][A-Za-z]*|r)\b`?(=true\b)?/g, (whole, name: string) => flagOf(name) ?? whole);
}

/** The LoraConfig the options ask for; its own checks become usage errors. */
export function loraConfigOf(v: Record<string, OptionValue | undefined>): LoraConfig {
  const targets = v.targetModules as string[] | undefined;
  const pattern = v.layersPattern as string[] | undefined;
  const init = v.initLoraWeights as string;
  const opts: LoraConfigOptions = {
    r: v.r as number,
    loraAlpha: v.loraAlpha as number,
    loraDropout: v.loraDropout as number,
    targetModules: targets === undefined ? null : targets.length === 1 && targets[0] === 'all-linear' ? 'all-linear' : targets,
    excludeModules: (v.excludeModules as string[] | undefined) ?? null,
    layersToTransform: (v.layersToTransform as number[] | undefined) ?? null,
    layersPattern: pattern === undefined ? null : pattern.length === 1 ? pattern[0] : pattern,
    rankPattern: (v.rankPattern as Record<string, number> | undefined) ?? {},
    alphaPattern: (v.alphaPattern as Record<string, number> | undefined) ?? {},
    bias: v.bias as LoraBias,
    loraBias: (v.loraBias as boolean | undefined) ?? false,
    modulesToSave: (v.modulesToSave as string[] | undefined) ?? null,
    initLoraWeights: init === 'true' ? true : init === 'false' ? false : (init as InitLoraWeights),
    useRslora: (v.useRslora as boolean | undefined) ?? false,
    useDora: (v.useDora as boolean | undefined) ?? false,
    trainableTokenIndices: (v.trainableTokenIndices as number[] | undefined) ?? null,
    taskType: 'CAUSAL_LM',
  };
  try {
    return new LoraConfig(opts);
  } catch (e) {
    throw new UsageError(flagMessage((e as Error).message));
  }
}

/** Flags over the config file over the defaults. */
export function resolveTrainOptions(parsed: Parsed): Record<string, OptionValue | undefined> {
  const v = { ...parsed.values };
  const file = v.config as string | undefined;
  if (file !== undefined) for (const [k, x] of Object.entries(readConfig(file))) if (!parsed.given.has(k)) v[k] = x;
  requireOptions(spec, v);
  return v;
}

/** TRL's default max_length (SFTConfig), used unless --max-length says otherwise. */
const DEFAULT_MAX_LENGTH = 1024;

/** The model's position table size (max_position_embeddings, GPT-2's n_positions), if config.json says it. */
function positionTable(modelDir: string): number | undefined {
  const c = readModelConfig(modelDir) as Record<string, unknown>;
  const n = c.max_position_embeddings ?? c.n_positions;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The examples cut to `maxLength` tokens (from the end, as loadDataset's maxLength), and how many were cut. */
function truncate(ds: Dataset<Example>, maxLength: number | undefined): { dataset: Dataset<Example>; cut: number } {
  if (maxLength === undefined) return { dataset: ds, cut: 0 };
  let cut = 0;
  const dataset = ds.map((e) => {
    if (e.inputIds.length <= maxLength) return e;
    cut++;
    return { ...e, inputIds: e.inputIds.slice(0, maxLength), labels: e.labels.slice(0, maxLength) };
  });
  return { dataset, cut };
}

/**
 * Ctrl-C / SIGTERM while training: the first finishes the step under way and writes a checkpoint (the
 * Trainer sees the signal between steps); a second one quits at once. Removed when training ends.
 */
function onStopSignal(io: CliIO): { signal: AbortSignal; remove(): void } {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      io.err.write(`torch-lora train: ${sig} again: quitting without a checkpoint\n`);
      process.exit(130);
    }
    say(io, `\n${sig}: finishing this step and writing a checkpoint (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to quit now)`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    remove: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** A POSIX shell word: as it is when it is safe, else in single quotes. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command line that continues this run from `checkpoint`: the same arguments, with --resume-from-checkpoint. */
export function resumeCommand(argv: string[], checkpoint: string): string {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--resume-from-checkpoint') i++;
    else if (!a.startsWith('--resume-from-checkpoint=')) args.push(a);
  }
  return ['torch-lora', 'train', ...args, '--resume-from-checkpoint', path.resolve(checkpoint)].map(shellWord).join(' ');
}

/**
 * What this process is in a data-parallel job: the launcher of this machine's workers (--nproc-per-node or
 * --nnodes given, no RANK/WORLD_SIZE yet), one of those workers (or torchrun's), or a single process.
 */
function distributedSetup(v: Record<string, OptionValue | undefined>): { launch: boolean; rank: number; worldSize: number; localRank: number } {
  const nproc = v.nprocPerNode as number | undefined;
  const nnodes = v.nnodes as number;
  const nodeRank = v.nodeRank as number;
  if (nproc !== undefined && nproc < 1) throw new UsageError(`--nproc-per-node must be at least 1, got ${nproc}`);
  if (nnodes < 1) throw new UsageError(`--nnodes must be at least 1, got ${nnodes}`);
  if (nodeRank < 0 || nodeRank >= nnodes) throw new UsageError(`--node-rank must be in [0, --nnodes ${nnodes}), got ${nodeRank}`);
  const port = v.masterPort as number | undefined;
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError(`--master-port must be a port in 1..65535, got ${port}`);
  const timeout = v.distTimeout as number;
  if (!(timeout > 0)) throw new UsageError(`--dist-timeout must be a positive number of seconds, got ${timeout}`);
  if (nnodes > 1 && v.masterAddr === undefined) throw new UsageError('--nnodes > 1 needs --master-addr: the address of the --node-rank 0 machine, which every machine can reach');
  let env;
  try {
    env = readTorchrunEnv();
  } catch (e) {
    throw new UsageError(`the torchrun environment is malformed: ${(e as Error).message}`);
  }
  if (launchedDistributed()) {
    if (env.rank === undefined || env.rank >= env.worldSize!) throw new UsageError(`RANK must be set in [0, WORLD_SIZE ${env.worldSize}), got ${process.env.RANK}`);
    return { launch: false, rank: env.rank, worldSize: env.worldSize!, localRank: env.localRank ?? 0 };
  }
  return { launch: (nproc ?? 1) * nnodes > 1, rank: 0, worldSize: 1, localRank: 0 };
}

/** This machine's workers: the same command in nproc processes with the rank variables set; resolves with the exit code. */
async function launchWorkers(v: Record<string, OptionValue | undefined>, parsed: Parsed, io: CliIO): Promise<number> {
  const nproc = (v.nprocPerNode as number | undefined) ?? 1;
  const nnodes = v.nnodes as number;
  const nodeRank = v.nodeRank as number;
  const first = nodeRank * nproc;
  const main = path.join(__dirname, `main${path.extname(__filename)}`);
  const job = launch({
    nprocPerNode: nproc,
    nnodes,
    nodeRank,
    masterAddr: v.masterAddr as string | undefined,
    masterPort: v.masterPort as number | undefined,
    command: [process.execPath, ...process.execArgv, main, 'train', ...(parsed.argv ?? [])],
  });
  say(io, `torch-lora train: ${nproc} worker process${nproc === 1 ? '' : 'es'} (ranks ${first}..${first + nproc - 1} of ${nproc * nnodes}); rank 0 reports`);
  // The workers run in their own process group: Ctrl-C (or a SIGTERM) reaches the launcher alone, which
  // passes it on once; the workers stop after the same step and rank 0 writes a checkpoint.
  const onInt = () => job.stop('SIGINT');
  const onTerm = () => job.stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const exits = await job.done;
    return exits.some((e) => e.code === 130) ? 130 : 0;
  } catch (e) {
    if (!(e instanceof WorkerFailedError)) throw e;
    io.err.write(`torch-lora train: ${e.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

async function run(parsed: Parsed, io: CliIO): Promise<void | number> {
  const v = resolveTrainOptions(parsed);
  const modelDir = v.model as string;
  const dataFile = requireFile(v.data as string, 'data file');
  const evalFile = v.evalData === undefined ? undefined : requireFile(v.evalData as string, 'evaluation data file');
  if (evalFile && v.evalSplit !== undefined) throw new UsageError('give --eval-data or --eval-split, not both');
  applyThreads(v.threads);
  const dtype = v.dtype as TrainingDType;
  const device = checkDevice(v.device as string);
  // float16 on a CPU whose libtorch cannot multiply it: a usage error now, not the Trainer's after loading.
  try {
    resolveCpuDType(dtype, undefined, device, { purpose: 'training' });
  } catch (e) {
    if (e instanceof CpuFloat16Error) throw float16FlagError(e);
    throw e;
  }

  // Checked now, before anything is loaded; a bad value is named by the flag the user typed.
  const args: TrainingArgumentsOptions = {
    outputDir: v.output as string,
    numTrainEpochs: v.epochs as number,
    maxSteps: (v.maxSteps as number | undefined) ?? -1,
    perDeviceTrainBatchSize: v.batchSize as number,
    gradientAccumulationSteps: v.gradAccum as number,
    learningRate: v.lr as number,
    lrSchedulerType: v.scheduler as SchedulerType,
    warmupSteps: v.warmupSteps as number,
    warmupRatio: v.warmupRatio as number,
    weightDecay: v.weightDecay as number,
    loraplusLrRatio: v.loraplusLrRatio as number | undefined,
    loraplusLrEmbedding: v.loraplusLrEmbedding as number | undefined,
    maxGradNorm: v.maxGradNorm as number,
    seed: v.seed as number,
    gradientCheckpointing: (v.gradientCheckpointing as boolean | undefined) ?? false,
    loggingSteps: v.loggingSteps as number,
    evalSteps: v.evalSteps as number | undefined,
    saveSteps: v.saveSteps as number,
    saveTotalLimit: v.saveTotalLimit as number | undefined,
    report: v.report as TrainingArgumentsOptions['report'],
    loadBestModelAtEnd: (v.loadBestModelAtEnd as boolean | undefined) ?? false,
    metricForBestModel: v.metricForBestModel as string | undefined,
    greaterIsBetter: v.greaterIsBetter === undefined ? undefined : v.greaterIsBetter === 'true',
    earlyStoppingPatience: v.earlyStoppingPatience as number | undefined,
    earlyStoppingThreshold: v.earlyStoppingThreshold as number | undefined,
    device,
    dtype: dtype === 'float32' ? undefined : dtype,
  };
  try {
    resolveTrainingArguments(args);
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(flagMessage(e.message));
    throw e;
  }
  const ranking = v.loadBestModelAtEnd ? '--load-best-model-at-end' : v.earlyStoppingPatience !== undefined ? '--early-stopping-patience' : undefined;
  if (ranking !== undefined && evalFile === undefined && v.evalSplit === undefined)
    throw new UsageError(`${ranking} ranks evaluations: give evaluation data with --eval-data or --eval-split`);

  if (v.loadIn4bit && v.loadIn8bit) throw new UsageError('--load-in-4bit and --load-in-8bit exclude each other');
  for (const flag of ['seqLen', 'packingStrategy'])
    if (!v.packing && parsed.given.has(flag)) throw new UsageError(`--${kebab(flag)} is for --packing; add --packing or leave it out`);
  requireModelDir(modelDir);
  if (v.overwriteOutputDir && v.resumeFromCheckpoint !== undefined) throw new UsageError('give --resume-from-checkpoint or --overwrite-output-dir, not both');
  if (path.resolve(v.output as string) === path.resolve(modelDir)) throw new UsageError('--output must not be the --model folder');
  const dist = distributedSetup(v);
  // Rank 0 alone looks at (and clears) the output folder and prints; the other ranks follow it.
  if (dist.rank !== 0) io = { out: { isTTY: false, write: () => true }, err: io.err };
  // (so does the launcher of the first machine: another machine's, whose rank 0 is elsewhere, does not)
  const outputDir =
    dist.rank === 0 && !(dist.launch && (v.nodeRank as number) > 0)
      ? checkOutputDir(v.output as string, { resuming: v.resumeFromCheckpoint !== undefined, overwrite: v.overwriteOutputDir === true })
      : { clear: () => undefined };
  if (dist.launch) return launchWorkers(v, parsed, io);
  if (dist.worldSize > 1) {
    exitWithLauncher();
    const device = args.device as string;
    // Each rank its own GPU (LOCAL_RANK) and NCCL between them; Gloo on CPUs.
    if (device.startsWith('cuda')) args.device = checkDevice(`cuda:${dist.localRank}`);
    await initProcessGroup({ backend: device.startsWith('cuda') ? 'nccl' : 'gloo', timeout: Math.round((v.distTimeout as number) * 1000) });
  }
  const tokenizer = await loadTokenizer((v.tokenizer as string | undefined) ?? modelDir);
  const given = v.maxLength as number | undefined;
  if (given !== undefined && given < 2) throw new UsageError(`--max-length must be at least 2 (a token and the next one to learn), got ${given}`);
  const positions = positionTable(modelDir);
  const tooLong = (flag: string, n: number) =>
    positions !== undefined && n > positions && new UsageError(`${flag} ${n} is more than the model's ${positions} positions (max_position_embeddings in its config.json)`);
  // --seq-len left at its default fits itself to a smaller position table; one the user set is checked.
  const seqLenDefault = options.find((o) => o.name === 'seq-len')!.default as number;
  if (v.packing && !parsed.given.has('seqLen') && v.seqLen === seqLenDefault && positions !== undefined) v.seqLen = Math.min(seqLenDefault, positions);
  const beyond = (given !== undefined && tooLong('--max-length', given)) || (v.packing && tooLong('--seq-len', v.seqLen as number));
  if (beyond) throw beyond;
  // As TRL: records are cut to max_length, 1024 tokens unless told (never beyond the position table); with
  // --packing the blocks are --seq-len long instead, and only a --max-length given cuts the records.
  const maxLength = given ?? (v.packing ? undefined : Math.min(DEFAULT_MAX_LENGTH, positions ?? DEFAULT_MAX_LENGTH));
  const chatTemplate = v.chatTemplate as string | undefined;
  if (chatTemplate !== undefined) {
    try {
      tokenizer.chatTemplate(chatTemplate);
    } catch (e) {
      throw new UsageError(`--chat-template: ${(e as Error).message}`);
    }
  }
  const dataOptions = {
    chatTemplate,
    trainOnInputs: v.trainOnInputs === true,
    onWarning: (m: string) => say(io, `warning: ${m}`),
  };
  const load = (file: string) => {
    const { dataset, cut } = truncate(loadDataset(file, tokenizer, dataOptions), maxLength);
    if (cut > 0)
      say(io, `note: ${cut} of ${dataset.length} records of '${file}' were longer than ${maxLength} tokens and were cut to ${maxLength}` +
        (given === undefined ? ` (the default max length${positions !== undefined && positions < DEFAULT_MAX_LENGTH ? ': the model has ' + positions + ' positions' : ''}; set --max-length)` : ''));
    return dataset;
  };
  let train: Dataset<Example | MaybeMasked> = load(dataFile);
  let evalSet: Dataset<Example | MaybeMasked> | undefined = evalFile ? load(evalFile) : undefined;
  if (v.evalSplit !== undefined) {
    const split = (train as Dataset<Example>).trainTestSplit({ testSize: v.evalSplit as number, seed: v.seed as number });
    train = split.train;
    evalSet = split.test;
  }
  if (v.packing) {
    const strategy = v.packingStrategy as PackingStrategy;
    const opts = { seqLen: v.seqLen as number, eosTokenId: tokenizer.eosTokenId, strategy };
    const pack = (d: Dataset<Example | MaybeMasked>, what: string) => {
      const cut = strategy === 'bfd' ? countOverlong(d as Dataset<Example>, opts) : 0;
      if (cut > 0) say(io, `note: ${cut} of ${d.length} ${what} examples are longer than --seq-len ${opts.seqLen} and were cut to it (raise --seq-len to keep them whole)`);
      return packDataset(d as Dataset<Example>, opts);
    };
    const examples = train.length;
    train = pack(train, 'training');
    if (evalSet) evalSet = pack(evalSet, 'evaluation');
    say(io, `packing (${strategy}): ${examples} examples in ${train.length} rows of up to ${opts.seqLen} tokens`);
  }

  // A new adapter's settings are checked before the model is loaded; an adapter to continue brings its own.
  const loraFlags = options.filter((o) => o.group === LORA && o.name !== 'adapter').map((o) => camel(o.name));
  const ignored = loraFlags.filter((k) => parsed.given.has(k));
  if (v.adapter !== undefined && ignored.length)
    throw new UsageError(`${ignored.map((k) => `--${kebab(k)}`).join(', ')}: the adapter given with --adapter has its own LoRA settings`);
  const loraConfig = v.adapter === undefined ? loraConfigOf(v) : undefined;
  // QLoRA as its paper and transformers' docs set it up: NF4 with double quantization, computing in the
  // base dtype; the Linear layers but lm_head are quantized as each decoder layer is read.
  const quantizationConfig = v.loadIn4bit
    ? new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: dtype })
    : v.loadIn8bit
      ? new BitsAndBytesConfig({ loadIn8bit: true })
      : undefined;
  const base = await loadBaseModel(modelDir, { device, dtype, quantizationConfig });
  applyModelThreads(v.threads, numParameters(base), device);
  if (v.resizeTokenEmbeddings && tokenizer.length > base.config.vocabSize) {
    // transformers' model.resize_token_embeddings(len(tokenizer)): new rows near the old rows' mean (seeded).
    const from = base.config.vocabSize;
    manualSeed(v.seed as number);
    base.resizeTokenEmbeddings(tokenizer.length);
    say(io, `torch-lora train: token embeddings resized from ${from} to ${tokenizer.length} rows (the tokenizer's size)`);
  }
  let model: PeftModel;
  if (loraConfig === undefined) {
    model = await loadAdapter(base, v.adapter as string, { isTrainable: true });
  } else {
    manualSeed(v.seed as number); // the adapter's initial weights depend on the seed
    model = getPeftModel(base, loraConfig);
  }
  const [trainable, all] = model.getNbTrainableParameters();
  say(io, `torch-lora train: ${train.length} training examples${evalSet ? `, ${evalSet.length} for evaluation` : ''}; ` +
    `${trainable.toLocaleString('en-US')} trainable of ${all.toLocaleString('en-US')} parameters (${((100 * trainable) / all).toFixed(4)}%)`);

  let trainer: Trainer;
  try {
    trainer = new Trainer({ model, trainDataset: train, evalDataset: evalSet, tokenizer, args, stream: io.out });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(flagMessage(e.message));
    throw e;
  }
  const resume = v.resumeFromCheckpoint as string | undefined;
  outputDir.clear(); // --overwrite-output-dir: the old run goes once the new one is ready to start
  const stop = onStopSignal(io);
  let result: TrainOutput;
  try {
    result = await trainer.train({ resumeFromCheckpoint: resume === undefined ? undefined : resume === 'latest' ? true : resume, signal: stop.signal });
  } finally {
    stop.remove();
    if (isInitialized()) destroyProcessGroup();
  }
  if (result.interrupted) {
    say(io, `stopped at step ${result.globalStep} of ${trainer.maxSteps}; checkpoint: ${result.checkpoint}`);
    say(io, `resume with: ${resumeCommand(parsed.argv ?? [], result.checkpoint!)}`);
    model.dispose();
    return 130; // 128 + SIGINT, as a shell reports a Ctrl-C
  }
  if (result.stoppedEarly) say(io, `stopped early at step ${result.globalStep} of ${trainer.maxSteps}`);
  if (result.bestModelCheckpoint !== undefined)
    say(io, `best checkpoint: ${result.bestModelCheckpoint} (${args.metricForBestModel ?? 'loss'} ${result.bestMetric})${args.loadBestModelAtEnd ? ', its adapter is the one written' : ''}`);
  if (chatTemplate !== undefined) {
    // As transformers' tokenizer.save_pretrained: the template trained with goes with the adapter, and
    // `merge` puts it into the merged folder (where llama.cpp's converter reads it).
    await writeFileAtomic(path.join(result.adapterDir, 'chat_template.jinja'), tokenizer.chatTemplate(chatTemplate).source);
  }
  say(io, `done: ${result.globalStep} steps, mean loss ${result.trainingLoss.toFixed(4)}${result.evalLoss !== undefined ? `, eval loss ${result.evalLoss.toFixed(4)}` : ''}`);
  say(io, `adapter: ${result.adapterDir} (adapter_config.json, adapter_model.safetensors${chatTemplate !== undefined ? ', chat_template.jinja' : ''})`);
  say(io, `log: ${result.logFile}${result.lossPlot ? `\nloss curve: ${result.lossPlot}` : ''}`);
  model.dispose();
}

export const command: Command = { spec, run };
