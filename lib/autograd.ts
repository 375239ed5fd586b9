// Grad mode and the global random seed.
import { native } from './native';

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev: boolean = native.isGradEnabled();
  native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad/enableGrad(fn): fn must be synchronous (grad mode is per thread, not per await)');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with autograd off (torch.no_grad()): results record no graph and need no memory for it. */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
/** Runs fn with autograd on (torch.enable_grad()), e.g. inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
export function setGradEnabled(enabled: boolean): void {
  native.setGradEnabled(enabled);
}

/** Seeds the CPU and every CUDA generator, as torch.manual_seed: same seed, same random tensors. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`manualSeed(seed): seed must be a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

/** libtorch's intra-op thread count (torch.get_num_threads); starts at the physical cores (lib/threads.ts). */
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** As torch.set_num_threads; sets OpenBLAS's own thread pool too, where libtorch calls OpenBLAS. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new RangeError(`setNumThreads(n): n must be an integer from 1 to 4096, got ${n}`);
  native.setNumThreads(n);
}
