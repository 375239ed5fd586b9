// MistralForCausalLM as transformers builds it: Llama with sliding-window attention on every layer when
// config.sliding_window is set (Mistral 7B v0.1: 4096; v0.2/v0.3: null), an explicit head_dim (Nemo), and
// no attention_bias / mlp_bias options (the projections have no bias).
import { configField, HFConfig, LlamaConfig, parseLlamaConfig, registerLlamaFamily } from './config';
import { ModelFactoryOptions } from './causal-lm';
import {
  LlamaAttention,
  LlamaDecoderLayer,
  LlamaForCausalLM,
  LlamaMLP,
  LlamaModel,
  LlamaParts,
  LlamaRMSNorm,
  LlamaRotaryEmbedding,
} from './llama';

export type MistralConfig = LlamaConfig;

export const MISTRAL_FAMILY = registerLlamaFamily<MistralConfig>({
  modelType: 'mistral',
  className: 'MistralForCausalLM',
  // MistralConfig's defaults (Mistral 7B), where they differ from LlamaConfig's
  defaults: { intermediate_size: 14336, num_key_value_heads: 8, max_position_embeddings: 4096 * 32 },
  omit: ['attention_bias', 'mlp_bias'],
  keys: ['sliding_window'],
  parse(c: HFConfig, base: LlamaConfig) {
    // absent means MistralConfig's default 4096; null means full attention
    const slidingWindow = c.sliding_window === undefined ? 4096 : configField.optInt(c, 'sliding_window');
    if (slidingWindow === 0) throw new Error("config: 'sliding_window' must be a positive integer (or null for full attention), got 0");
    const type = slidingWindow === undefined ? 'full_attention' : 'sliding_attention';
    return { slidingWindow, layerTypes: Array.from({ length: base.numHiddenLayers }, () => type) };
  },
  write: (c) => ({ sliding_window: c.slidingWindow ?? null }),
});

export const parseMistralConfig = (c: HFConfig): MistralConfig => parseLlamaConfig(c, MISTRAL_FAMILY);

export class MistralRMSNorm extends LlamaRMSNorm {}
export class MistralRotaryEmbedding extends LlamaRotaryEmbedding {}
export class MistralAttention extends LlamaAttention {}
export class MistralMLP extends LlamaMLP {}
export class MistralDecoderLayer extends LlamaDecoderLayer {}
export class MistralModel extends LlamaModel {}

export const MISTRAL_PARTS: LlamaParts = {
  model: MistralModel,
  decoderLayer: MistralDecoderLayer,
  attention: MistralAttention,
  mlp: MistralMLP,
  rmsNorm: MistralRMSNorm,
  rotaryEmbedding: MistralRotaryEmbedding,
};

export class MistralForCausalLM extends LlamaForCausalLM {
  constructor(config: MistralConfig, opts: ModelFactoryOptions = {}) {
    super(config, opts, MISTRAL_PARTS);
  }
}
