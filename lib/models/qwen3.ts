// Qwen3ForCausalLM as transformers builds it: Qwen2's config (optional sliding window) with an explicit
// head_dim (default 128), attention_bias on all four projections (default none), and a per-head RMSNorm
// on q and k (q_norm, k_norm over head_dim) before the rotary embedding.
import { HFConfig, LlamaConfig, parseLlamaConfig, registerLlamaFamily } from './config';
import { ModelFactoryOptions } from './causal-lm';
import {
  LLAMA_PARTS,
  LlamaAttention,
  LlamaDecoderLayer,
  LlamaForCausalLM,
  LlamaMLP,
  LlamaModel,
  LlamaParts,
  LlamaRMSNorm,
  LlamaRotaryEmbedding,
} from './llama';
import { parseWindowKeys, Qwen2Config, WINDOW_KEYS, writeWindowKeys } from './qwen2';
import { Tensor } from '../tensor';

export type Qwen3Config = Qwen2Config;

export const QWEN3_FAMILY = registerLlamaFamily<Qwen3Config>({
  modelType: 'qwen3',
  className: 'Qwen3ForCausalLM',
  defaults: {
    vocab_size: 151936,
    intermediate_size: 22016,
    num_key_value_heads: 32,
    head_dim: 128,
    max_position_embeddings: 32768,
    bos_token_id: null,
    eos_token_id: null,
  },
  omit: ['mlp_bias'],
  keys: WINDOW_KEYS,
  parse: parseWindowKeys,
  write: writeWindowKeys,
});

export const parseQwen3Config = (c: HFConfig): Qwen3Config => parseLlamaConfig(c, QWEN3_FAMILY);

export class Qwen3RMSNorm extends LlamaRMSNorm {}
export class Qwen3RotaryEmbedding extends LlamaRotaryEmbedding {}
export class Qwen3MLP extends LlamaMLP {}
export class Qwen3DecoderLayer extends LlamaDecoderLayer {}
export class Qwen3Model extends LlamaModel {}

export class Qwen3Attention extends LlamaAttention {
  q_norm: LlamaRMSNorm;
  k_norm: LlamaRMSNorm;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts: LlamaParts = LLAMA_PARTS) {
    super(config, layerIdx, opts, parts);
    // over head_dim only, each head on its own
    this.q_norm = new parts.rmsNorm(config.headDim, { ...opts, eps: config.rmsNormEps });
    this.k_norm = new parts.rmsNorm(config.headDim, { ...opts, eps: config.rmsNormEps });
  }

  protected override projectQKV(hidden: Tensor): [Tensor, Tensor, Tensor] {
    const [b, s] = hidden.shape;
    const q = this.q_norm.forward(this.q_proj.forward(hidden).view(b, s, this.numHeads, this.headDim)).transpose(1, 2);
    const k = this.k_norm.forward(this.k_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim)).transpose(1, 2);
    const v = this.v_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
    return [q, k, v];
  }
}

export const QWEN3_PARTS: LlamaParts = {
  model: Qwen3Model,
  decoderLayer: Qwen3DecoderLayer,
  attention: Qwen3Attention,
  mlp: Qwen3MLP,
  rmsNorm: Qwen3RMSNorm,
  rotaryEmbedding: Qwen3RotaryEmbedding,
};

export class Qwen3ForCausalLM extends LlamaForCausalLM {
  declare readonly config: Qwen3Config;
  constructor(config: Qwen3Config, opts: ModelFactoryOptions = {}) {
    super(config, opts, QWEN3_PARTS);
  }
}
