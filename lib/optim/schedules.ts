// Hugging Face transformers' learning-rate schedules (optimization.py): each is a LambdaLR whose
// factor rises linearly from 0 over the warmup steps, then stays at 1 (constant), falls linearly to
// 0 at numTrainingSteps (linear), or follows half a cosine down to 0 (cosine, numCycles 0.5).
import { LambdaLR } from './lr_scheduler';
import { BaseHyper, Optimizer } from './optimizer';

export type SchedulerType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine';
export const SCHEDULER_TYPES: readonly SchedulerType[] = ['constant', 'constant_with_warmup', 'linear', 'cosine'];

export interface SchedulerOptions {
  numWarmupSteps?: number;
  numTrainingSteps?: number;
  /** Resume from this step (-1: start). */
  lastEpoch?: number;
}

type Opt = Optimizer<BaseHyper>;

export function getConstantSchedule(optimizer: Opt, lastEpoch = -1): LambdaLR {
  return new LambdaLR(optimizer, () => 1, lastEpoch);
}

export function getConstantScheduleWithWarmup(optimizer: Opt, numWarmupSteps: number, lastEpoch = -1): LambdaLR {
  return new LambdaLR(
    optimizer,
    (step) => (step < numWarmupSteps ? step / Math.max(1.0, numWarmupSteps) : 1.0),
    lastEpoch,
  );
}

export function getLinearScheduleWithWarmup(optimizer: Opt, numWarmupSteps: number, numTrainingSteps: number, lastEpoch = -1): LambdaLR {
  return new LambdaLR(
    optimizer,
    (step) => {
      if (step < numWarmupSteps) return step / Math.max(1, numWarmupSteps);
      return Math.max(0.0, (numTrainingSteps - step) / Math.max(1, numTrainingSteps - numWarmupSteps));
    },
    lastEpoch,
  );
}

export function getCosineScheduleWithWarmup(
  optimizer: Opt,
  numWarmupSteps: number,
  numTrainingSteps: number,
  numCycles = 0.5,
  lastEpoch = -1,
): LambdaLR {
  return new LambdaLR(
    optimizer,
    (step) => {
      if (step < numWarmupSteps) return step / Math.max(1, numWarmupSteps);
      const progress = (step - numWarmupSteps) / Math.max(1, numTrainingSteps - numWarmupSteps);
      return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress)));
    },
    lastEpoch,
  );
}

function checkSteps(name: string, key: string, v: number | undefined): number {
  if (v === undefined) throw new Error(`getScheduler: '${name}' requires \`${key}\`, please provide that option`);
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`getScheduler: ${key} must be a non-negative integer, got ${v}`);
  return v;
}

/** transformers' get_scheduler for the four schedules the trainer offers. */
export function getScheduler(name: SchedulerType, optimizer: Opt, opts: SchedulerOptions = {}): LambdaLR {
  const last = opts.lastEpoch ?? -1;
  switch (name) {
    case 'constant':
      return getConstantSchedule(optimizer, last);
    case 'constant_with_warmup':
      return getConstantScheduleWithWarmup(optimizer, checkSteps(name, 'numWarmupSteps', opts.numWarmupSteps), last);
    case 'linear':
    case 'cosine': {
      const w = checkSteps(name, 'numWarmupSteps', opts.numWarmupSteps);
      const n = checkSteps(name, 'numTrainingSteps', opts.numTrainingSteps);
      return name === 'linear' ? getLinearScheduleWithWarmup(optimizer, w, n, last) : getCosineScheduleWithWarmup(optimizer, w, n, 0.5, last);
    }
    default:
      throw new Error(`getScheduler: unknown scheduler '${String(name)}'; expected one of ${SCHEDULER_TYPES.join(', ')}`);
  }
}
