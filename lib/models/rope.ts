// Rotary position embeddings as transformers 5's modeling_rope_utils computes them: the inverse
// frequencies of each rope_type (default, linear, dynamic NTK, yarn, longrope, llama3) and the factor
// cos and sin are multiplied by (attention scaling). Float32 rounding follows torch's, step by step, so
// that the buffers equal transformers' bit for bit or within an ulp.
import { RopeParameters } from './config';

const f = Math.fround;

export interface RopeContext {
  /** config.max_position_embeddings: dynamic's reference length, the default original context of yarn/longrope. */
  maxPositionEmbeddings?: number;
  /**
   * The sequence length a dynamic or longrope embedding is computed for (max position id + 1); absent
   * at construction, as transformers' __init__ (dynamic: max_position_embeddings; longrope: short factors).
   */
  seqLen?: number;
}

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'];

/** 1 / base^(i/dim) for i = 0, 2, ..., in float32 as torch computes `base ** (arange(0, dim, 2).float() / dim)`. */
function baseFrequencies(base: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim; i += 2) out[i / 2] = f(Math.pow(f(base), f(i / dim)));
  return out;
}

/**
 * Inverse frequencies of rotary embeddings and the attention scaling transformers multiplies cos and sin
 * by. Returns [invFreq, attentionScaling].
 */
export function ropeInverseFrequencies(rope: RopeParameters, headDim: number, ctx: RopeContext = {}): [Float32Array, number] {
  const dim = Math.floor(headDim * rope.partialRotaryFactor);
  if (dim < 2 || dim % 2 !== 0) throw new Error(`rotary dimension ${dim} (head_dim ${headDim} × partial_rotary_factor ${rope.partialRotaryFactor}) must be even and positive`);
  const need = (name: string, v: number | undefined): number => {
    if (v === undefined) throw new Error(`rope_type '${rope.ropeType}' needs rope parameter '${name}' in the config`);
    return v;
  };
  const inverse = (powers: Float32Array): Float32Array => powers.map((p) => f(1 / p));
  const originalMax = (): number => need('original_max_position_embeddings', rope.originalMaxPositionEmbeddings ?? ctx.maxPositionEmbeddings);
  switch (rope.ropeType) {
    case 'default':
      return [inverse(baseFrequencies(rope.ropeTheta, dim)), 1];
    case 'linear': {
      const factor = need('factor', rope.factor);
      return [inverse(baseFrequencies(rope.ropeTheta, dim)).map((x) => f(x / factor)), 1];
    }
    case 'dynamic': {
      // NTK: the base grows with the sequence beyond max_position_embeddings; within it, the default.
      const factor = need('factor', rope.factor);
      const maxPos = need('max_position_embeddings', ctx.maxPositionEmbeddings);
      let base: number;
      if (ctx.seqLen === undefined) {
        // __init__: Python floats (double), seq_len = max_position_embeddings
        base = rope.ropeTheta * Math.pow(factor * maxPos / maxPos - (factor - 1), dim / (dim - 2));
      } else {
        // the forward's update: seq_len is a tensor, so every step is float32
        const seq = Math.max(ctx.seqLen, maxPos);
        const grown = f(f(f(f(factor * seq) / maxPos) - (factor - 1)));
        base = f(f(rope.ropeTheta) * f(Math.pow(grown, f(dim / (dim - 2)))));
      }
      return [inverse(baseFrequencies(base, dim)), 1];
    }
    case 'yarn': {
      const base = rope.ropeTheta;
      const oldContext = originalMax();
      const factor = rope.factor ?? need('max_position_embeddings', ctx.maxPositionEmbeddings) / oldContext;
      const mscaleOf = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      let attention = rope.attentionFactor;
      if (attention === undefined)
        attention = rope.mscale && rope.mscaleAllDim ? mscaleOf(factor, rope.mscale) / mscaleOf(factor, rope.mscaleAllDim) : mscaleOf(factor);
      const betaFast = rope.betaFast || 32;
      const betaSlow = rope.betaSlow || 1;
      const correctionDim = (rotations: number) => (dim * Math.log(oldContext / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (rope.truncate ?? true) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, dim - 1);
      if (low === high) high += 0.001; // as transformers: no division by zero
      const powers = baseFrequencies(base, dim);
      const inv = new Float32Array(dim / 2);
      for (let i = 0; i < inv.length; i++) {
        const extrapolation = f(1 / powers[i]);
        const interpolation = f(1 / f(factor * powers[i]));
        const ramp = Math.min(Math.max(f(f(i - low) / f(high - low)), 0), 1);
        const keep = f(1 - ramp); // the share of the unscaled (extrapolated) frequency
        inv[i] = f(f(interpolation * f(1 - keep)) + f(extrapolation * keep));
      }
      return [inv, attention];
    }
    case 'longrope': {
      const oldContext = originalMax();
      const factor = rope.factor ?? need('max_position_embeddings', ctx.maxPositionEmbeddings) / oldContext;
      let attention = rope.attentionFactor;
      if (attention === undefined) attention = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(oldContext));
      const long = ctx.seqLen !== undefined && ctx.seqLen > oldContext;
      const ext = long ? rope.longFactor : rope.shortFactor;
      if (ext === undefined) throw new Error(`rope_type 'longrope' needs rope parameter '${long ? 'long_factor' : 'short_factor'}' in the config`);
      if (ext.length !== dim / 2)
        throw new Error(`rope parameter '${long ? 'long_factor' : 'short_factor'}' has ${ext.length} values; the rotary dimension ${dim} needs ${dim / 2}`);
      const powers = baseFrequencies(rope.ropeTheta, dim);
      return [powers.map((p, i) => f(1 / f(f(ext[i]) * p))), attention];
    }
    case 'llama3': {
      const inv = inverse(baseFrequencies(rope.ropeTheta, dim));
      const factor = need('factor', rope.factor);
      const low = need('low_freq_factor', rope.lowFreqFactor);
      const high = need('high_freq_factor', rope.highFreqFactor);
      const oldContext = originalMax();
      const lowWavelen = oldContext / low;
      const highWavelen = oldContext / high;
      for (let i = 0; i < inv.length; i++) {
        const wavelen = (2 * Math.PI) / inv[i];
        if (wavelen < highWavelen) continue; // high frequencies: unchanged
        if (wavelen > lowWavelen) {
          inv[i] = inv[i] / factor; // low frequencies: stretched
        } else {
          // in between: interpolate
          const smooth = (oldContext / wavelen - low) / (high - low);
          inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
        }
      }
      return [inv, 1];
    }
    default:
      throw new Error(`rope_type '${rope.ropeType}' is not supported; supported: ${SUPPORTED_ROPE_TYPES.join(', ')}`);
  }
}

/**
 * Whether the inverse frequencies depend on the sequence (dynamic, longrope): transformers recomputes them
 * in the forward from max(position_ids) + 1.
 */
export function isSequenceDependent(ropeType: string): boolean {
  return ropeType === 'dynamic' || ropeType === 'longrope';
}
