// Checkpoints: everything a run needs to continue exactly where it was, in outputDir/checkpoint-<step>/:
//   adapter_config.json, adapter_model.safetensors   the adapter as PEFT saves it (PeftModel.savePretrained),
//     or trainable_params.safetensors                 for a model without PEFT: its trainable parameters
//   optimizer.safetensors + optimizer.json            the optimizer's state (moments; steps and groups)
//   scheduler.json                                    the learning-rate schedule's counters
//   rng_state.safetensors                             the CPU (and GPU) random generators' states
//   scaler.json                                       float16 loss scaling, when used
//   trainer_state.json                                step, epoch, position in the data, log history
// The folder is written under a temporary name and renamed when complete, so a run killed while saving
// leaves either the whole checkpoint or none (never a half-written one that a resume would trust).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cuda } from '../cuda';
import { assertAllFinite } from '../finite';
import { syncDir, writeFileAtomic } from '../io/fs-atomic';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { Module } from '../nn';
import { flattenOptimizerState, LambdaLR, LRSchedulerState, Optimizer, OptimizerStateMeta, unflattenOptimizerState } from '../optim';
import { BaseHyper } from '../optim/optimizer';
import { loadPeftWeights, PeftModel, setPeftModelStateDict } from '../peft';
import { getRngState, setRngState } from '../random-state';
import { Tensor } from '../tensor';
import { BestModelState, EarlyStoppingState } from './best-model';
import { GradScaler, GradScalerState } from './grad-scaler';
import { LogEntry } from './log-entry';

export const PREFIX_CHECKPOINT_DIR = 'checkpoint';
export const TRAINER_STATE_NAME = 'trainer_state.json';
export const OPTIMIZER_WEIGHTS_NAME = 'optimizer.safetensors';
export const OPTIMIZER_META_NAME = 'optimizer.json';
export const SCHEDULER_NAME = 'scheduler.json';
export const RNG_STATE_NAME = 'rng_state.safetensors';
export const SCALER_NAME = 'scaler.json';
export const TRAINABLE_WEIGHTS_NAME = 'trainable_params.safetensors';

/** Where the next batch comes from: the epoch, the batch within it, and how that epoch is ordered. */
export interface DataPosition {
  epoch: number;
  /** Index of the next batch to use in that epoch's order. */
  batch: number;
  batches_per_epoch: number;
  shuffle: boolean;
  shuffle_seed: number;
  num_examples: number;
}

/** trainer_state.json (transformers' TrainerState keys, plus what exact resumption needs). */
export interface TrainerState extends BestModelState {
  global_step: number;
  epoch: number;
  max_steps: number;
  num_train_epochs: number;
  logging_steps: number;
  eval_steps: number | null;
  save_steps: number;
  train_batch_size: number;
  gradient_accumulation_steps: number;
  num_input_tokens_seen: number;
  log_history: LogEntry[];
  data_position: DataPosition;
  /** Losses of the steps since the last log line, so that a resumed run logs the same means. */
  pending_losses: number[];
  pending_tokens: number;
  /** Sum and count of every step's loss so far (the final train_loss). */
  total_loss_sum: number;
  total_loss_steps: number;
  /** Callbacks' states, as transformers keeps them (EarlyStoppingCallback's patience counter). */
  stateful_callbacks?: { EarlyStoppingCallback?: EarlyStoppingState };
  /** Ranks of the data-parallel run (absent in older checkpoints: 1). */
  world_size?: number;
}

/** What a checkpoint saves and restores besides the trainer state. */
export interface CheckpointParts {
  model: Module;
  optimizer: Optimizer<BaseHyper>;
  scheduler: LambdaLR;
  scaler?: GradScaler;
}

/** The checkpoint folder of a step. */
export function checkpointDir(outputDir: string, step: number): string {
  return path.join(outputDir, `${PREFIX_CHECKPOINT_DIR}-${step}`);
}

/** Complete checkpoints in outputDir (those with a trainer_state.json), oldest first. */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  const out: { step: number; dir: string }[] = [];
  for (const name of fs.readdirSync(outputDir)) {
    const m = new RegExp(`^${PREFIX_CHECKPOINT_DIR}-(\\d+)$`).exec(name);
    if (m === null) continue;
    const dir = path.join(outputDir, name);
    if (fs.existsSync(path.join(dir, TRAINER_STATE_NAME))) out.push({ step: Number(m[1]), dir });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint in outputDir, or undefined (transformers' get_last_checkpoint). */
export function lastCheckpoint(outputDir: string): string | undefined {
  const all = listCheckpoints(outputDir);
  return all.length ? all[all.length - 1].dir : undefined;
}

/** The trainable parameters by name (what a model without PEFT saves). */
function trainableParameters(model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, p] of model.namedParameters()) if (p.requiresGrad) out.set(name, p);
  return out;
}

/** On the CPU (a copy when elsewhere): what the file writer takes. */
function onCpu(tensors: Record<string, Tensor>): { tensors: Record<string, Tensor>; copies: Tensor[] } {
  const out: Record<string, Tensor> = {};
  const copies: Tensor[] = [];
  for (const [k, t] of Object.entries(tensors)) {
    if (t.device === 'cpu') out[k] = t;
    else copies.push((out[k] = t.to('cpu')));
  }
  return { tensors: out, copies };
}

function writeJson(file: string, value: unknown): Promise<void> {
  return writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new Error(`checkpoint file '${file}' is missing`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new Error(`checkpoint file '${file}' is not valid JSON: ${(e as Error).message}`);
  }
}

/** Saves the model's trained weights into `dir`: the PEFT adapter, or the trainable parameters. */
export async function saveTrainedWeights(model: Module, dir: string): Promise<void> {
  if (model instanceof PeftModel) {
    await model.savePretrained(dir);
    return;
  }
  assertAllFinite(trainableParameters(model), `saving the trained weights to '${dir}'`);
  const { tensors, copies } = onCpu(Object.fromEntries(trainableParameters(model)));
  try {
    await saveSafetensors(tensors, path.join(dir, TRAINABLE_WEIGHTS_NAME), { metadata: { format: 'pt' } });
  } finally {
    for (const t of copies) t.dispose();
  }
}

/** Loads what saveTrainedWeights wrote back into the same kind of model. */
export async function loadTrainedWeights(model: Module, dir: string): Promise<void> {
  if (model instanceof PeftModel) {
    for (const name of model.peftConfig.keys()) {
      const folder = name === 'default' ? dir : path.join(dir, name);
      const weights = await loadPeftWeights(folder);
      try {
        const { missingKeys } = setPeftModelStateDict(model, weights, name);
        const missing = missingKeys.filter((k) => k.includes(`.${name}.`) || k.endsWith(`.${name}`));
        if (missing.length) throw new Error(`the adapter '${name}' in '${folder}' lacks weights of this model: ${missing.join(', ')}`);
      } finally {
        for (const t of weights.values()) t.dispose();
      }
    }
    return;
  }
  const file = path.join(dir, TRAINABLE_WEIGHTS_NAME);
  if (!fs.existsSync(file)) throw new Error(`'${dir}' has no ${TRAINABLE_WEIGHTS_NAME} (the trained weights of a model without PEFT)`);
  const loaded = await loadSafetensors(file);
  try {
    const own = trainableParameters(model);
    const keys = Object.keys(loaded);
    const missing = [...own.keys()].filter((k) => !(k in loaded));
    const unexpected = keys.filter((k) => !own.has(k));
    if (missing.length || unexpected.length)
      throw new Error(
        `'${file}' does not match the model's trainable parameters` +
          (missing.length ? `; missing: ${missing.join(', ')}` : '') +
          (unexpected.length ? `; unexpected: ${unexpected.join(', ')}` : ''),
      );
    model.loadStateDict(loaded, { strict: false });
  } finally {
    for (const t of Object.values(loaded)) t.dispose();
  }
}

/** The generators to save: the CPU's and every visible GPU's. */
function rngDevices(): string[] {
  const out = ['cpu'];
  if (cuda.isAvailable()) for (let i = 0; i < cuda.deviceCount(); i++) out.push(`cuda:${i}`);
  return out;
}

/** Writes a checkpoint of `state.global_step` into outputDir (atomically, see above) and returns its folder. */
export async function saveCheckpoint(outputDir: string, parts: CheckpointParts, state: TrainerState): Promise<string> {
  const final = checkpointDir(outputDir, state.global_step);
  const tmp = path.join(outputDir, `.tmp-${path.basename(final)}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.promises.mkdir(tmp, { recursive: true });
  try {
    await saveTrainedWeights(parts.model, tmp);
    const { tensors, meta } = flattenOptimizerState(parts.optimizer.stateDict());
    const opt = onCpu(tensors);
    try {
      await saveSafetensors(opt.tensors, path.join(tmp, OPTIMIZER_WEIGHTS_NAME));
    } finally {
      for (const t of opt.copies) t.dispose();
    }
    await writeJson(path.join(tmp, OPTIMIZER_META_NAME), meta);
    await writeJson(path.join(tmp, SCHEDULER_NAME), parts.scheduler.stateDict());
    if (parts.scaler) await writeJson(path.join(tmp, SCALER_NAME), parts.scaler.stateDict());
    const rng: Record<string, Tensor> = {};
    for (const d of rngDevices()) rng[d] = getRngState(d);
    try {
      await saveSafetensors(rng, path.join(tmp, RNG_STATE_NAME));
    } finally {
      for (const t of Object.values(rng)) t.dispose();
    }
    // trainer_state.json last: its presence marks a complete checkpoint.
    await writeJson(path.join(tmp, TRAINER_STATE_NAME), state);
    await syncDir(tmp);
    if (fs.existsSync(final)) {
      const old = `${tmp}-old`;
      await fs.promises.rename(final, old);
      await fs.promises.rename(tmp, final);
      await fs.promises.rm(old, { recursive: true, force: true });
    } else {
      await fs.promises.rename(tmp, final);
    }
    await syncDir(outputDir);
  } catch (e) {
    await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return final;
}

/** Reads a checkpoint's trainer_state.json. */
export function readTrainerState(dir: string): TrainerState {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`checkpoint folder '${dir}' does not exist`);
  const s = readJson<TrainerState>(path.join(dir, TRAINER_STATE_NAME));
  if (typeof s.global_step !== 'number' || s.data_position === undefined)
    throw new Error(`'${path.join(dir, TRAINER_STATE_NAME)}' is not a trainer state written by this trainer (no global_step / data_position)`);
  return s;
}

/** Restores the model's weights, the optimizer, scheduler, scaler and random generators from a checkpoint. */
export async function loadCheckpoint(dir: string, parts: CheckpointParts): Promise<TrainerState> {
  const state = readTrainerState(dir);
  await loadTrainedWeights(parts.model, dir);
  const optFile = path.join(dir, OPTIMIZER_WEIGHTS_NAME);
  if (!fs.existsSync(optFile)) throw new Error(`checkpoint file '${optFile}' is missing`);
  const tensors = await loadSafetensors(optFile);
  try {
    const sd = unflattenOptimizerState(tensors, readJson<OptimizerStateMeta>(path.join(dir, OPTIMIZER_META_NAME)));
    try {
      parts.optimizer.loadStateDict(sd);
    } catch (e) {
      // Different groups: the run was made with another optimizer setup (LoRA+ has four groups, a user's optimizer its own).
      throw new Error(
        `checkpoint '${dir}' does not fit this run's optimizer: ${(e as Error).message}; resume with the optimizer the run was made with ` +
          "(the same LoRA+ loraplusLrRatio, the CLI's --loraplus-lr-ratio; the same weightDecay; or the same `optimizers`)",
      );
    }
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  parts.scheduler.loadStateDict(readJson<LRSchedulerState>(path.join(dir, SCHEDULER_NAME)));
  if (parts.scaler) parts.scaler.loadStateDict(readJson<GradScalerState>(path.join(dir, SCALER_NAME)));
  const rngFile = path.join(dir, RNG_STATE_NAME);
  if (!fs.existsSync(rngFile)) throw new Error(`checkpoint file '${rngFile}' is missing`);
  const rng = await loadSafetensors(rngFile);
  try {
    const available = new Set(rngDevices());
    for (const [device, t] of Object.entries(rng)) if (available.has(device)) setRngState(t, device);
  } finally {
    for (const t of Object.values(rng)) t.dispose();
  }
  return state;
}

/**
 * Deletes the oldest checkpoints so that at most `limit` remain, as transformers' rotate_checkpoints: the
 * newest and the protected ones (the one just saved, best_model_checkpoint) are never deleted, so more
 * than `limit` may remain (2 with a limit of 1 and a best checkpoint that is not the newest).
 */
export async function rotateCheckpoints(outputDir: string, limit: number, protect: (string | null | undefined)[] = []): Promise<void> {
  const all = listCheckpoints(outputDir);
  if (all.length <= limit) return;
  const kept = new Set(protect.filter((d): d is string => typeof d === 'string').map((d) => path.resolve(d)));
  kept.add(path.resolve(all[all.length - 1].dir));
  const isKept = (dir: string) => kept.has(path.resolve(dir));
  const keep = Math.max(limit, all.filter((c) => isKept(c.dir)).length);
  let remaining = all.length;
  for (const c of all) {
    if (remaining <= keep) break;
    if (isKept(c.dir)) continue;
    await removeCheckpoint(c.dir);
    remaining--;
  }
}

/** Deletes every checkpoint but `keep` (the end of a run with saveTotalLimit 1 and a best checkpoint). */
export async function deleteCheckpointsExcept(outputDir: string, keep: string): Promise<void> {
  for (const c of listCheckpoints(outputDir)) if (path.resolve(c.dir) !== path.resolve(keep)) await removeCheckpoint(c.dir);
}

const DELETING = '.deleting';

/**
 * Removes a checkpoint folder: renamed out of the checkpoint-N names first, so that a process killed while
 * the files go leaves no half-deleted folder that reads as a checkpoint (nor, its trainer_state.json gone
 * first, one no rotation would ever find again); such leftovers of an earlier run go here too.
 */
async function removeCheckpoint(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  for (const name of fs.readdirSync(parent)) {
    if (name.startsWith(`${PREFIX_CHECKPOINT_DIR}-`) && name.endsWith(DELETING)) await fs.promises.rm(path.join(parent, name), { recursive: true, force: true });
  }
  const aside = `${dir}${DELETING}`;
  await fs.promises.rename(dir, aside);
  await fs.promises.rm(aside, { recursive: true, force: true });
}
