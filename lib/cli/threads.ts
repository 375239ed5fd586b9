// --threads, the same in every command that runs libtorch: left out, the default of lib/threads.ts holds
// (the physical cores, or OMP_NUM_THREADS).
import { setNumThreads } from '../autograd';
import { threadsForModel } from '../threads';
import { OptionSpec, OptionValue, UsageError } from './options';

export function threadsOption(group?: string): OptionSpec {
  return {
    name: 'threads',
    type: 'integer',
    placeholder: 'N',
    ...(group === undefined ? {} : { group }),
    description: 'CPU threads for libtorch [default: the physical cores (1 for a model under 10M parameters), or OMP_NUM_THREADS]',
  };
}

/** Sets the thread count a command was given; a value out of 1..4096 is a usage error (exit 2). */
export function applyThreads(value: OptionValue | undefined): void {
  if (value === undefined) return;
  const n = value as number;
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new UsageError(`--threads must be an integer from 1 to 4096, got ${value}`);
  setNumThreads(n);
}

/**
 * After the model is loaded: with no --threads and no OMP_NUM_THREADS, a small model on the CPU runs on
 * one thread (lib/threads.ts threadsForModel). Returns the count set, if any.
 */
export function applyModelThreads(value: OptionValue | undefined, parameters: number, device: string): number | undefined {
  if (value !== undefined || process.env.OMP_NUM_THREADS || device !== 'cpu') return undefined;
  const n = threadsForModel(parameters);
  setNumThreads(n);
  return n;
}
