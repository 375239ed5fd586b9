// torch.nn.functional, in camelCase.
import { DType } from './dtype';
import { native } from './native';
import { Tensor } from './tensor';

export type Reduction = 'mean' | 'sum' | 'none';

export function relu(x: Tensor): Tensor {
  return x.relu();
}
export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  return x.gelu(opts.approximate ?? 'none');
}
export function silu(x: Tensor): Tensor {
  return x.silu();
}
export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.softmax(dim, dtype);
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return x.logSoftmax(dim, dtype);
}
/** y = x·Wᵀ + b */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return Tensor.wrap(native.linear(x.handle, weight.handle, bias?.handle));
}
/** Zeroes elements with probability p and scales the rest by 1/(1-p) when training; identity otherwise. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return Tensor.wrap(native.dropout(x.handle, p, training));
}
/** Rows of `weight` at `input`; the paddingIdx row gets no gradient (negative counts from the end). */
export function embedding(input: Tensor, weight: Tensor, paddingIdx?: number): Tensor {
  let p = -1; // the native op's "no padding"
  if (paddingIdx !== undefined) {
    const n = weight.shape[0];
    if (!Number.isInteger(paddingIdx) || paddingIdx < -n || paddingIdx >= n)
      throw new RangeError(`embedding: paddingIdx must be an integer in [${-n}, ${n - 1}] for ${n} rows, got ${paddingIdx}`);
    p = paddingIdx < 0 ? n + paddingIdx : paddingIdx;
  }
  return Tensor.wrap(native.embedding(weight.handle, input.handle, p));
}
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  return Tensor.wrap(native.layerNorm(x.handle, normalizedShape, weight?.handle, bias?.handle, eps));
}
/** RMSNorm as Hugging Face's LlamaRMSNorm (float32 statistics for half inputs). */
export function rmsNorm(x: Tensor, weight?: Tensor, eps = 1e-6): Tensor {
  return Tensor.wrap(native.rmsNorm(x.handle, weight?.handle, eps));
}
export interface CrossEntropyOptions {
  weight?: Tensor;
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}
/** input [N, C] (or [N, C, d...]) logits, target [N] class indices (int64). */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  return Tensor.wrap(
    native.crossEntropy(
      input.handle,
      target.handle,
      opts.weight?.handle,
      opts.reduction ?? 'mean',
      opts.ignoreIndex ?? -100,
      opts.labelSmoothing ?? 0,
    ),
  );
}
export function nllLoss(input: Tensor, target: Tensor, opts: Omit<CrossEntropyOptions, 'labelSmoothing'> = {}): Tensor {
  return Tensor.wrap(
    native.nllLoss(input.handle, target.handle, opts.weight?.handle, opts.reduction ?? 'mean', opts.ignoreIndex ?? -100),
  );
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return Tensor.wrap(native.mseLoss(input.handle, target.handle, reduction));
}
export interface AttentionOptions {
  /** bool: true where a query may attend to a key; float: added to the scores. Broadcasts to [.., H, L, S]. */
  attnMask?: Tensor;
  dropoutP?: number;
  isCausal?: boolean;
  scale?: number;
  /** Grouped-query attention: key/value may have fewer heads, dividing the query's. */
  enableGqa?: boolean;
}
/**
 * softmax(q·kᵀ·scale + mask)·v over q [.., Hq, L, E], k/v [.., Hk, S, E]. On libtorch >= 2.5 the fused
 * kernels (flash attention on CUDA); before, the same math composed of ATen ops.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return Tensor.wrap(
    native.scaledDotProductAttention(
      q.handle,
      k.handle,
      v.handle,
      opts.attnMask?.handle,
      opts.dropoutP ?? 0,
      opts.isCausal ?? false,
      opts.scale,
      opts.enableGqa ?? false,
    ),
  );
}
export function pad(x: Tensor, padding: number[], value = 0): Tensor {
  return Tensor.wrap(native.pad(x.handle, padding, value));
}
