// Qwen2ForCausalLM (Qwen2, Qwen2.5) as transformers builds it: Llama with a bias on q/k/v but not on
// o_proj, tied embeddings on small sizes, and an optional sliding window (use_sliding_window) on the
// layers from max_window_layers on (or as layer_types says).
import { configField, HFConfig, LlamaConfig, parseLlamaConfig, registerLlamaFamily, windowLayerTypes } from './config';
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

export interface Qwen2Config extends LlamaConfig {
  useSlidingWindow: boolean;
  maxWindowLayers: number;
}

/** Qwen2Config's and Qwen3Config's window keys: sliding_window only counts with use_sliding_window. */
export function parseWindowKeys(c: HFConfig, base: LlamaConfig): Pick<Qwen2Config, 'useSlidingWindow' | 'maxWindowLayers' | 'slidingWindow' | 'layerTypes'> {
  const useSlidingWindow = configField.bool(c, 'use_sliding_window', false);
  const window = c.sliding_window === undefined ? 4096 : configField.optInt(c, 'sliding_window');
  const slidingWindow = useSlidingWindow ? window : undefined;
  const maxWindowLayers = configField.int(c, 'max_window_layers', 28);
  const layerTypes = windowLayerTypes(c, base.numHiddenLayers, slidingWindow, maxWindowLayers);
  return { useSlidingWindow, maxWindowLayers, slidingWindow, layerTypes };
}

/** Their config.json values, as transformers writes them (sliding_window null when unused). */
export const writeWindowKeys = (c: Qwen2Config): HFConfig => ({
  use_sliding_window: c.useSlidingWindow,
  sliding_window: c.slidingWindow ?? null,
  max_window_layers: c.maxWindowLayers,
  layer_types: [...(c.layerTypes ?? [])],
});

export const WINDOW_KEYS = ['use_sliding_window', 'sliding_window', 'max_window_layers', 'layer_types'];

export const QWEN2_FAMILY = registerLlamaFamily<Qwen2Config>({
  modelType: 'qwen2',
  className: 'Qwen2ForCausalLM',
  defaults: {
    vocab_size: 151936,
    intermediate_size: 22016,
    num_key_value_heads: 32,
    max_position_embeddings: 32768,
    bos_token_id: null,
    eos_token_id: null,
  },
  omit: ['attention_bias', 'mlp_bias'],
  keys: WINDOW_KEYS,
  parse: parseWindowKeys,
  // Qwen2Config has no head_dim: written only when a config.json gave another than hidden / heads
  write: (c) => ({ ...writeWindowKeys(c), head_dim: c.headDim === Math.floor(c.hiddenSize / c.numAttentionHeads) ? undefined : c.headDim }),
});

export const parseQwen2Config = (c: HFConfig): Qwen2Config => parseLlamaConfig(c, QWEN2_FAMILY);

export class Qwen2RMSNorm extends LlamaRMSNorm {}
export class Qwen2RotaryEmbedding extends LlamaRotaryEmbedding {}
export class Qwen2MLP extends LlamaMLP {}
export class Qwen2DecoderLayer extends LlamaDecoderLayer {}
export class Qwen2Model extends LlamaModel {}

export class Qwen2Attention extends LlamaAttention {
  /** q/k/v have a bias, o_proj has none. */
  protected override projectionBias(): [boolean, boolean] {
    return [true, false];
  }
}

export const QWEN2_PARTS: LlamaParts = {
  model: Qwen2Model,
  decoderLayer: Qwen2DecoderLayer,
  attention: Qwen2Attention,
  mlp: Qwen2MLP,
  rmsNorm: Qwen2RMSNorm,
  rotaryEmbedding: Qwen2RotaryEmbedding,
};

export class Qwen2ForCausalLM extends LlamaForCausalLM {
  declare readonly config: Qwen2Config;
  constructor(config: Qwen2Config, opts: ModelFactoryOptions = {}) {
    super(config, opts, QWEN2_PARTS);
  }
}
