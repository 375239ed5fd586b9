// Gemma2ForCausalLM as transformers 5 builds it: Gemma plus four things. Each decoder layer has norms on
// both sides of attention and of the MLP (post_attention_layernorm normalizes the attention's output,
// before the residual); attention logits are soft-capped (cap·tanh(scores / cap)) and scaled by
// query_pre_attn_scalar^-0.5 rather than head_dim^-0.5; layers alternate sliding-window (even layers) and
// full attention (layer_types); the final logits are soft-capped too. The config names the activation
// hidden_activation.
import { dropout } from '../functional';
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { arange } from '../creation';
import { AttentionMaskArgs } from './attention-mask';
import { ModelFactoryOptions } from './causal-lm';
import { configField, HFConfig, LlamaConfig, LlamaFamilySpec, parseLlamaConfig, registerLlamaFamily, windowLayerTypes } from './config';
import { gemmaActivation, gemmaEmbedding, refuseBidirectional, GemmaForCausalLM, GemmaRMSNorm, GemmaTextScaledWordEmbedding } from './gemma';
import { LlamaAttention, LlamaDecoderLayer, LlamaLayerContext, LlamaMLP, LlamaModel, LlamaParts, LlamaRotaryEmbedding } from './llama';

export interface Gemma2Config extends LlamaConfig {
  /** The attention scale is queryPreAttnScalar^-0.5. */
  queryPreAttnScalar: number;
  /** cap of cap·tanh(x / cap) on attention scores and on the final logits (undefined: none). */
  attnLogitSoftcapping?: number;
  finalLogitSoftcapping?: number;
}

/** A float config value that may be null (none); absent: transformers' default. */
function optFloat(c: HFConfig, key: string, fallback: number): number | undefined {
  return c[key] === null ? undefined : configField.num(c, key, fallback);
}

/** transformers' Gemma2Config: defaults of gemma-2-2b, hidden_activation, the window and the caps. */
export const GEMMA2_FAMILY = registerLlamaFamily<Gemma2Config>({
  modelType: 'gemma2',
  className: 'Gemma2ForCausalLM',
  defaults: {
    vocab_size: 256000,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    max_position_embeddings: 8192,
    eos_token_id: 1,
    bos_token_id: 2,
    tie_word_embeddings: true,
  },
  omit: ['mlp_bias', 'hidden_act'],
  keys: ['hidden_activation', 'query_pre_attn_scalar', 'sliding_window', 'layer_types', 'final_logit_softcapping', 'attn_logit_softcapping'],
  parse: (c, base) => {
    refuseBidirectional(c);
    const slidingWindow = c.sliding_window === null ? undefined : configField.int(c, 'sliding_window', 4096);
    const layerTypes =
      c.layer_types !== undefined && c.layer_types !== null
        ? windowLayerTypes(c, base.numHiddenLayers, slidingWindow, 0)
        : Array.from({ length: base.numHiddenLayers }, (_, i) => (i % 2 === 0 ? 'sliding_attention' : 'full_attention'));
    return {
      hiddenAct: gemmaActivation(configField.str(c, 'hidden_activation', 'gelu_pytorch_tanh')),
      padTokenId: c.pad_token_id === undefined ? 0 : configField.optInt(c, 'pad_token_id'),
      queryPreAttnScalar: configField.num(c, 'query_pre_attn_scalar', 256),
      slidingWindow,
      layerTypes,
      attnLogitSoftcapping: optFloat(c, 'attn_logit_softcapping', 50),
      finalLogitSoftcapping: optFloat(c, 'final_logit_softcapping', 30),
    };
  },
  write: (c) => ({
    hidden_activation: c.hiddenAct,
    query_pre_attn_scalar: c.queryPreAttnScalar,
    sliding_window: c.slidingWindow ?? null,
    layer_types: [...(c.layerTypes ?? [])],
    attn_logit_softcapping: c.attnLogitSoftcapping ?? null,
    final_logit_softcapping: c.finalLogitSoftcapping ?? null,
  }),
});

export function parseGemma2Config(c: HFConfig): Gemma2Config {
  return parseLlamaConfig(c, GEMMA2_FAMILY);
}

/** The most negative finite value of a float dtype: what transformers adds where the mask says no. */
const LOWEST: Record<string, number> = { float32: -3.4028234663852886e38, float64: -1.7976931348623157e308, float16: -65504, bfloat16: -3.3895313892515355e38 };

export class Gemma2Attention extends LlamaAttention {
  readonly attnLogitSoftcapping?: number;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts?: LlamaParts) {
    super(config, layerIdx, opts, parts);
    const c = config as Gemma2Config;
    this.scaling = c.queryPreAttnScalar ** -0.5;
    this.attnLogitSoftcapping = c.attnLogitSoftcapping;
  }

  /**
   * With a soft-cap, transformers' eager attention (no fused kernel caps the scores): scores =
   * cap·tanh(q·kᵀ·scaling / cap), masked, softmax in float32, back to q's dtype, dropout, ·v.
   */
  protected attend(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMaskArgs): Tensor {
    const cap = this.attnLogitSoftcapping;
    if (cap === undefined) return super.attend(q, k, v, mask);
    return scope(() => {
      const rep = this.numHeads / this.numKeyValueHeads;
      const keys = rep === 1 ? k : k.repeatInterleave(rep, 1);
      const values = rep === 1 ? v : v.repeatInterleave(rep, 1);
      let scores = q.matmul(keys.transpose(2, 3)).mul(this.scaling).div(cap).tanh().mul(cap);
      let allowed = mask.attnMask;
      if (allowed === undefined && mask.isCausal) {
        // the fused kernels' is_causal, spelled out: query i (after t - s earlier keys) sees keys <= t - s + i
        const [s, t] = [q.shape[2], keys.shape[2]];
        allowed = arange(t, { device: q.device }).le(arange(t - s, t, { device: q.device }).unsqueeze(1));
      }
      if (allowed !== undefined) scores = scores.maskedFill(allowed.logicalNot(), LOWEST[scores.dtype] ?? -Infinity);
      let probs = scores.softmax(-1, 'float32').to(q.dtype);
      if (this.training && this.attentionDropout > 0) probs = dropout(probs, this.attentionDropout, true);
      return probs.matmul(values);
    });
  }
}

export class Gemma2RMSNorm extends GemmaRMSNorm {}
export class Gemma2RotaryEmbedding extends LlamaRotaryEmbedding {}
export class Gemma2MLP extends LlamaMLP {}

export class Gemma2DecoderLayer extends LlamaDecoderLayer {
  pre_feedforward_layernorm: Gemma2RMSNorm;
  post_feedforward_layernorm: Gemma2RMSNorm;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts?: LlamaParts) {
    super(config, layerIdx, opts, parts);
    const Norm = parts?.rmsNorm ?? Gemma2RMSNorm; // Gemma 3's layer prints Gemma3RMSNorm
    this.pre_feedforward_layernorm = new Norm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.post_feedforward_layernorm = new Norm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
  }

  /** h + post_norm(attn(norm(h))), then h + post_ff_norm(mlp(pre_ff_norm(h))). */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const attn = this.self_attn.forward(this.input_layernorm.forward(hidden), ctx);
      const h = hidden.add(this.post_attention_layernorm.forward(attn));
      const mlp = this.mlp.forward(this.pre_feedforward_layernorm.forward(h));
      return h.add(this.post_feedforward_layernorm.forward(mlp));
    });
  }
}

export class Gemma2TextScaledWordEmbedding extends GemmaTextScaledWordEmbedding {}
export class Gemma2Model extends LlamaModel {
  declare embed_tokens: Gemma2TextScaledWordEmbedding;
}

export const GEMMA2_PARTS: LlamaParts = {
  model: Gemma2Model,
  decoderLayer: Gemma2DecoderLayer,
  attention: Gemma2Attention,
  mlp: Gemma2MLP,
  rmsNorm: Gemma2RMSNorm,
  rotaryEmbedding: Gemma2RotaryEmbedding,
  embedding: (config, opts) => gemmaEmbedding(config, opts, Gemma2TextScaledWordEmbedding),
};

export class Gemma2ForCausalLM extends GemmaForCausalLM {
  declare readonly config: Gemma2Config;

  constructor(config: Gemma2Config, opts: ModelFactoryOptions = {}, parts: LlamaParts = GEMMA2_PARTS) {
    super(config, opts, parts);
  }

  protected finalLogitSoftcapping(): number | undefined {
    return this.config.finalLogitSoftcapping;
  }
}
