// GemmaForCausalLM as transformers 5 builds it: the Llama graph plus three things. The token embeddings
// are multiplied by sqrt(hidden_size), rounded to the weights' dtype first (GemmaTextScaledWordEmbedding);
// RMSNorm scales by (1 + weight), computed in float32 (GemmaRMSNorm, weights initialized to 0); the MLP's
// activation is gelu_pytorch_tanh ('gelu' in old configs means it too). head_dim is explicit (256).
import { noGrad } from '../autograd';
import { empty, tensor } from '../creation';
import { rmsNorm } from '../functional';
import { scope } from '../memory';
import { Embedding, init, RMSNorm } from '../nn';
import { Device, Tensor } from '../tensor';
import { ModelFactoryOptions } from './causal-lm';
import { configField, HFConfig, LlamaConfig, LlamaFamilySpec, parseLlamaConfig, registerLlamaFamily } from './config';
import { initDecoderWeights } from './init-weights';
import { LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM, LlamaMLP, LlamaModel, LlamaParts, LlamaRotaryEmbedding } from './llama';

export type GemmaConfig = LlamaConfig;

/** 'gelu' in a Gemma config is the tanh approximation (transformers rewrites it so, with a warning). */
export function gemmaActivation(name: string): string {
  return name === 'gelu' ? 'gelu_pytorch_tanh' : name;
}

/**
 * use_bidirectional_attention (EmbeddingGemma and other encoders built on the Gemma families) makes every
 * token attend to every other: not a causal LM, refused rather than computed with a causal mask.
 */
export function refuseBidirectional(c: HFConfig): void {
  if (c.use_bidirectional_attention === true)
    throw new Error(
      `config: use_bidirectional_attention is true (an embedding model such as EmbeddingGemma); AutoModelForCausalLM builds causal models only`,
    );
}

/** transformers' GemmaConfig: its defaults (gemma-7b) where they differ from Llama's; no mlp_bias. */
export const GEMMA_FAMILY: LlamaFamilySpec = registerLlamaFamily({
  modelType: 'gemma',
  className: 'GemmaForCausalLM',
  defaults: {
    vocab_size: 256000,
    hidden_size: 3072,
    intermediate_size: 24576,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    head_dim: 256,
    hidden_act: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192,
    eos_token_id: 1,
    bos_token_id: 2,
    tie_word_embeddings: true,
  },
  omit: ['mlp_bias'],
  parse: (c) => {
    refuseBidirectional(c);
    return {
      hiddenAct: gemmaActivation(configField.str(c, 'hidden_act', 'gelu_pytorch_tanh')),
      // transformers' default pad_token_id (0) is the embedding's padding row.
      padTokenId: c.pad_token_id === undefined ? 0 : configField.optInt(c, 'pad_token_id'),
    };
  },
});

export function parseGemmaConfig(c: HFConfig): GemmaConfig {
  return parseLlamaConfig(c, GEMMA_FAMILY);
}

/** RMSNorm that scales by (1 + weight) in float32 and returns the input's dtype: `GemmaRMSNorm((32,), eps=1e-06)`. */
export class GemmaRMSNorm extends RMSNorm {
  constructor(dim: number, opts: ModelFactoryOptions & { eps?: number } = {}) {
    super(dim, opts);
    if (this.weight.device !== 'meta') noGrad(() => init.zeros_(this.weight)); // transformers' initial value
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      // With a float32 input the fused rmsNorm computes x·rsqrt(mean(x²)+eps)·w all in float32, as transformers.
      const out = rmsNorm(x.float(), this.weight.float().add(1), this.eps);
      return out.dtype === x.dtype ? out : out.to(x.dtype);
    });
  }
}

/**
 * nn.Embedding whose output is multiplied by embed_scale (sqrt(hidden_size), a float32 non-persistent
 * buffer), cast to the weight's dtype first as transformers does (in bfloat16 sqrt(32) is 5.65625).
 */
export class GemmaTextScaledWordEmbedding extends Embedding {
  readonly scalarEmbedScale: number;
  declare embed_scale: Tensor;

  constructor(numEmbeddings: number, embeddingDim: number, opts: ModelFactoryOptions & { paddingIdx?: number; embedScale?: number } = {}) {
    super(numEmbeddings, embeddingDim, opts);
    this.scalarEmbedScale = opts.embedScale ?? 1;
    this.resetBuffers({ device: opts.device });
  }

  /** (Re)creates the embed_scale buffer on `device`; meta allocates nothing. */
  resetBuffers(opts: { device?: Device } = {}): void {
    const old = this.embed_scale as Tensor | undefined;
    const device = opts.device ?? 'cpu';
    const t = scope(() =>
      device === 'meta' ? empty([], { device: 'meta', dtype: 'float32' }) : tensor(new Float32Array([this.scalarEmbedScale]), { device }).reshape([]),
    );
    this.registerBuffer('embed_scale', t, false);
    old?.dispose();
  }

  forward(ids: Tensor): Tensor {
    return scope(() => super.forward(ids).mul(this.embed_scale.to(this.weight.dtype)));
  }
}

export class GemmaRotaryEmbedding extends LlamaRotaryEmbedding {}
export class GemmaAttention extends LlamaAttention {}
export class GemmaMLP extends LlamaMLP {}
export class GemmaDecoderLayer extends LlamaDecoderLayer {}
export class GemmaModel extends LlamaModel {
  declare embed_tokens: GemmaTextScaledWordEmbedding;
}

/** The scaled embedding of the Gemma families: sqrt(hidden_size), the padding row at pad_token_id. */
export function gemmaEmbedding(
  config: LlamaConfig,
  opts: ModelFactoryOptions,
  cls: typeof GemmaTextScaledWordEmbedding = GemmaTextScaledWordEmbedding,
): GemmaTextScaledWordEmbedding {
  return new cls(config.vocabSize, config.hiddenSize, {
    ...opts,
    paddingIdx: config.padTokenId,
    embedScale: Math.sqrt(config.hiddenSize),
  });
}

export const GEMMA_PARTS: LlamaParts = {
  model: GemmaModel,
  decoderLayer: GemmaDecoderLayer,
  attention: GemmaAttention,
  mlp: GemmaMLP,
  rmsNorm: GemmaRMSNorm,
  rotaryEmbedding: GemmaRotaryEmbedding,
  embedding: gemmaEmbedding,
};

export class GemmaForCausalLM extends LlamaForCausalLM {
  declare model: GemmaModel;

  constructor(config: GemmaConfig, opts: ModelFactoryOptions = {}, parts: LlamaParts = GEMMA_PARTS) {
    super(config, opts, parts);
  }

  /** transformers' _init_weights: N(0, initializer_range²) for Linear and Embedding weights, zero padding row and biases, norms 0 (they scale by 1 + weight). */
  initWeights(): this {
    initDecoderWeights(this, this.config.initializerRange, GemmaRMSNorm, 0);
    return this;
  }
}

