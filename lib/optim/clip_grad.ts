// torch.nn.utils.clip_grad_norm_: one native call that measures all gradients together and scales
// them in place, returning the norm as a tensor so that nothing waits for the device.
import { native } from '../native';
import { Tensor } from '../tensor';

/**
 * Scales the gradients of `parameters` in place by min(1, maxNorm / (total + 1e-6)), where total is
 * the normType-norm of all of them together ('inf' or Infinity: the largest absolute value), and
 * returns total as a new 0-d tensor (yours to dispose). Parameters without a gradient are skipped.
 * errorIfNonfinite reads the norm back (a device sync) and throws when it is NaN or infinite.
 */
export function clipGradNorm(
  parameters: Tensor | Iterable<Tensor>,
  maxNorm: number,
  normType: number | 'inf' = 2,
  opts: { errorIfNonfinite?: boolean } = {},
): Tensor {
  const params = parameters instanceof Tensor ? [parameters] : [...parameters];
  const p = normType === 'inf' ? Infinity : normType;
  if (typeof p !== 'number' || Number.isNaN(p)) throw new TypeError(`clipGradNorm: normType must be a number or 'inf', got ${String(normType)}`);
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new TypeError(`clipGradNorm: maxNorm must be a number, got ${String(maxNorm)}`);
  params.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new TypeError(`clipGradNorm: parameters[${i}] is not a Tensor`);
  });
  return Tensor.wrap(native.clipGradNorm(params.map((t) => t.handle), maxNorm, p, opts.errorIfNonfinite ?? false));
}
