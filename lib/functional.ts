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
/**
 * Zeroes elements with probability p and scales the rest by 1/(1-p) when training; identity otherwise.
 * On the CPU the mask is counter-based (one draw from the manualSeed generator, then SplitMix64 per
 * element pair, in parallel: ~20x faster than ATen's element-by-element mt19937 without MKL, and the same
 * for any thread count); it is not PyTorch's CPU stream, unless useAtenDropout(true). CUDA: ATen's.
 */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return Tensor.wrap(native.dropout(x.handle, p, training));
}
/**
 * true: CPU dropout (F.dropout and LoRA dropout) draws its masks with ATen's bernoulli_, seed for seed
 * what PyTorch on the same libtorch build draws (slower); false (default): the counter-based masks.
 */
export function useAtenDropout(on: boolean): void {
  native.setAtenDropout(on);
}
/**
 * true (default): loraLinear's rank-r products on the CPU (float32 adapters on a float32 or bfloat16
 * base) run in torch-lora's own kernels, which read the base dtype directly and add into the output in
 * one pass; false: ATen's matmuls (BLAS), as before. The two differ in float32 summation order only.
 */
export function useLoraCpuKernels(on: boolean): void {
  native.setLoraCpuKernels(on);
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
/** How the scaledDotProductAttention calls of this process ran (a debug aid), counted per call. */
export interface AttentionCounts {
  /** The kernel: libtorch's own choice on >= 2.5 (flash / efficient / cudnn are the fused ones), composite before. */
  composite: number;
  math: number;
  flash: number;
  efficient: number;
  cudnn: number;
  other: number;
  /** The inputs: isCausal without a mask (what a batch without padding gets), an explicit mask, or neither. */
  isCausal: number;
  masked: number;
  unmasked: number;
  /** Grouped-query attention: k/v heads left to the kernel (enable_gqa, no mask) or expanded (with a mask). */
  gqaKernel: number;
  gqaExpanded: number;
}
const ATTENTION_COUNT_NAMES = [
  'composite', 'math', 'flash', 'efficient', 'cudnn', 'other',
  'isCausal', 'masked', 'unmasked', 'gqaKernel', 'gqaExpanded',
] as const;
/** The counts since start or resetAttentionCounts(). With TORCH_LORA_DEBUG set, each new kind of call is also logged. */
export function attentionCounts(): AttentionCounts {
  const n = native.attentionCounts();
  return Object.fromEntries(ATTENTION_COUNT_NAMES.map((k, i) => [k, n[i]])) as unknown as AttentionCounts;
}
export function resetAttentionCounts(): void {
  native.resetAttentionCounts();
}
export function pad(x: Tensor, padding: number[], value = 0): Tensor {
  return Tensor.wrap(native.pad(x.handle, padding, value));
}

// ---- fused training ops (src/lora_linear.cpp, rotary.cpp, causal_lm_loss.cpp, swiglu.cpp) ----

export interface LoraLinearOptions {
  /** Dropout probability on the LoRA input only (default 0). */
  dropoutP?: number;
  /** Apply dropout (the module's training flag; default true). */
  training?: boolean;
  /** The weight is stored [in, out] (GPT-2's Conv1D) rather than [out, in] (default false). */
  fanInFanOut?: boolean;
}
/**
 * A LoRA linear layer as one autograd node: x·Wᵀ + b + scaling·((dropout(x)·Aᵀ)·Bᵀ), x [..., in],
 * W [out, in] (or [in, out] with fanInFanOut), A [r, in], B [out, r]. ΔW is never formed, the LoRA
 * product is accumulated into the base output, and a frozen W gets no gradient (nor its cost).
 * The dropout mask comes from the same generator as F.dropout (manualSeed). Adapters in another float
 * dtype than x (float32 adapters on a bfloat16 base) are applied in their dtype, as PEFT does.
 */
export function loraLinear(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  loraA: Tensor,
  loraB: Tensor,
  scaling: number,
  opts: LoraLinearOptions = {},
): Tensor {
  const p = opts.dropoutP ?? 0;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`loraLinear: dropoutP must be in [0, 1], got ${p}`);
  if (!Number.isFinite(scaling)) throw new RangeError(`loraLinear: scaling must be a finite number, got ${scaling}`);
  return Tensor.wrap(
    native.loraLinear(
      x.handle,
      weight.handle,
      bias?.handle,
      loraA.handle,
      loraB.handle,
      scaling,
      p,
      opts.training ?? true,
      opts.fanInFanOut ?? false,
    ),
  );
}

/**
 * transformers' apply_rotary_pos_emb (rotate_half convention) for q [B, Hq, S, D] and k [B, Hk, S, D]
 * with cos/sin [B or 1, S, D], in one native call and one autograd node: [q·cos + rotate_half(q)·sin, ...].
 */
export function applyRotaryPosEmb(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor] {
  const [qe, ke] = native.applyRotaryPosEmb(q.handle, k.handle, cos.handle, sin.handle);
  return [Tensor.wrap(qe), Tensor.wrap(ke)];
}

export interface CausalLmLossOptions {
  /** Labels equal to this are not scored (default -100). */
  ignoreIndex?: number;
  /** Tokens per chunk of logits (default: about 128 MiB of float32 logits per chunk). */
  chunkSize?: number;
  /** 'mean' over the scored tokens (default, as transformers) or 'sum' (to divide by a count of your own). */
  reduction?: 'mean' | 'sum';
  /**
   * false (default): when gradients will be wanted, the forward computes them chunk by chunk while the
   * logits are at hand (holding a hidden-sized gradient, and a W-sized one if W requires grad, until
   * backward): two LM-head products, as the unfused loss. true: the forward keeps only a logsumexp per
   * token and the backward recomputes the logits (one product more, nothing hidden-sized held).
   */
  recompute?: boolean;
}
/**
 * The causal-LM loss from the LM head's input: cross-entropy of hidden·Wᵀ at position t against
 * labels[:, t+1], as transformers' ForCausalLMLoss (float32 logits, mean over non-ignored tokens), but
 * chunk by chunk, so the [tokens, vocab] logits are never held whole, in the forward or the backward.
 * hidden [B, S, H], lmHeadWeight [V, H], labels [B, S] int64. Returns a float32 scalar (float64 for
 * float64 inputs).
 */
export function causalLmLoss(hidden: Tensor, lmHeadWeight: Tensor, labels: Tensor, opts: CausalLmLossOptions = {}): Tensor {
  const chunk = opts.chunkSize ?? 0;
  if (!Number.isInteger(chunk) || chunk < 0) throw new RangeError(`causalLmLoss: chunkSize must be a positive integer, got ${chunk}`);
  return Tensor.wrap(
    native.causalLmLoss(
      hidden.handle,
      lmHeadWeight.handle,
      labels.handle,
      opts.ignoreIndex ?? -100,
      chunk,
      opts.reduction ?? 'mean',
      opts.recompute ?? false,
    ),
  );
}

/** silu(gate)·up (Llama's MLP) as one autograd node that does not keep silu(gate) for the backward. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  return Tensor.wrap(native.swiglu(gate.handle, up.handle));
}
