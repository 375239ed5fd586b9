// The check that keeps a diverged run's NaN/Inf out of files: saves of adapters, checkpoints and merged
// models refuse weights that are not finite, before anything is written (so a good earlier save stays).
import { noGrad } from './autograd';
import { isFloatingPoint } from './dtype';
import { scope } from './memory';
import { Tensor } from './tensor';

/** The names of the floating-point tensors holding a NaN or an infinity (empty when all are finite). */
export function nonFiniteNames(tensors: Iterable<[string, Tensor]>): string[] {
  const bad: string[] = [];
  noGrad(() => {
    for (const [name, t] of tensors)
      if (isFloatingPoint(t.dtype) && t.device !== 'meta' && !(scope(() => t.isfinite().all().item()) as boolean)) bad.push(name);
  });
  return bad;
}

/** Throws `${what}: <names> hold NaN or Inf ...` when a tensor is not finite; `what` says who refuses. */
export function assertAllFinite(tensors: Iterable<[string, Tensor]>, what: string): void {
  const bad = nonFiniteNames(tensors);
  if (bad.length === 0) return;
  const names = bad.slice(0, 3).join(', ') + (bad.length > 3 ? ` and ${bad.length - 3} more` : '');
  throw new Error(
    `${what}: ${names} hold${bad.length === 1 ? 's' : ''} NaN or Inf values (training diverged?); nothing was written. ` +
      'Train again with a lower learning rate, or from a checkpoint saved before the divergence',
  );
}
