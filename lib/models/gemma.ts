// GemmaForCausalLM as transformers 5 builds it: the Llama graph plus three things. The token embeddings
// are multiplied by sqrt(hidden_size), rounded to the weights' dtype first (GemmaTextScaledWordEmbedding);
// RMSNorm scales by (1 + weight), computed in float32 (GemmaRMSNorm, weights initialized to 0); the MLP's
// activation is gelu_pytorch_tanh ('gelu' in old configs means it too). head_dim is explicit (256).
import { noGrad } from '../autograd';
import { empty, tensor } from '../creation';
import { rmsNorm } from '../functional';
import { scope } from '../memory';
import { Embedding, init, Linear, Module, ModuleList, RMSNorm } from '../nn';
import { Device, Tensor } from '../tensor';
import { causalAttentionMask, defaultPositionIds } from './attention-mask';
import { BaseModelInput, checkInputIds, ModelFactoryOptions } from './causal-lm';
import {
  ConfigToJSONOptions,
  FamilyConfig,
  HFConfig,
  LlamaConfig,
  llamaConfigToJSON,
  parseLlamaConfig,
  registerConfigWriter,
  str,
} from './config';
import { DecoderOnlyLM, DecoderParts, runDecoderLayers } from './decoder-only-lm';
import { LlamaAttention, LlamaLayerContext, LlamaMLP, LlamaRotaryEmbedding } from './llama';

export interface GemmaConfig extends FamilyConfig {
  modelType: 'gemma';
}

/** transformers' GemmaConfig defaults (gemma-7b), where they differ from Llama's. */
const GEMMA_DEFAULTS: HFConfig = {
  vocab_size: 256000,
  hidden_size: 3072,
  intermediate_size: 24576,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 16,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  max_position_embeddings: 8192,
  pad_token_id: 0,
  eos_token_id: 1,
  bos_token_id: 2,
  tie_word_embeddings: true,
};

/**
 * A Llama-shaped config with a family's defaults under the given keys: the keys the config lacks take
 * `defaults` (not written back as extra keys), everything else as parseLlamaConfig reads it.
 */
export function parseLlamaLikeConfig(c: HFConfig, defaults: HFConfig, modelType: string, className: string): FamilyConfig {
  const filled: HFConfig = { ...c };
  for (const [k, v] of Object.entries(defaults)) if (filled[k] === undefined) filled[k] = v;
  const parsed = parseLlamaConfig(filled);
  if (!Array.isArray(c.architectures)) parsed.architectures = [className];
  return { ...parsed, modelType };
}

export function parseGemmaConfig(c: HFConfig): GemmaConfig {
  const parsed = parseLlamaLikeConfig(c, GEMMA_DEFAULTS, 'gemma', 'GemmaForCausalLM') as GemmaConfig;
  // Gemma's first releases wrote hidden_act 'gelu' and meant the tanh approximation, as transformers reads it.
  if (str(c, 'hidden_act', 'gelu_pytorch_tanh') === 'gelu') parsed.hiddenAct = 'gelu_pytorch_tanh';
  return parsed;
}

/** config.json's object for a GemmaConfig: Llama's keys but model_type 'gemma' and no mlp_bias (Gemma has none). */
export function gemmaConfigToJSON(c: GemmaConfig, opts: ConfigToJSONOptions = {}): HFConfig {
  const out = llamaConfigToJSON(c as unknown as LlamaConfig, opts);
  out.model_type = 'gemma';
  if (!('mlp_bias' in (c.extra ?? {}))) delete out.mlp_bias;
  return out;
}
registerConfigWriter('gemma', (c, o) => gemmaConfigToJSON(c as GemmaConfig, o));

/** The Llama modules take a Llama-shaped config; a family's config has the same fields. */
export const asLlama = (c: FamilyConfig): LlamaConfig => c as unknown as LlamaConfig;

/** RMSNorm that scales by (1 + weight) in float32 and returns the input's dtype: `GemmaRMSNorm((32,), eps=1e-06)`. */
export class GemmaRMSNorm extends RMSNorm {
  constructor(dim: number, opts: ModelFactoryOptions & { eps?: number } = {}) {
    super(dim, opts);
    if (this.weight.device !== 'meta') noGrad(() => init.zeros_(this.weight)); // transformers' initial value
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const xf = x.float();
      // With a float32 input the fused rmsNorm computes x·rsqrt(mean(x²)+eps)·w all in float32, as transformers.
      const out = rmsNorm(xf, this.weight.float().add(1), this.eps);
      return out.dtype === x.dtype ? out : out.to(x.dtype);
    });
  }
}

/**
 * nn.Embedding whose output is multiplied by embed_scale (sqrt(hidden_size), a float32 non-persistent
 * buffer), cast to the weight's dtype first as transformers does (in bfloat16: 48.0 for hidden 2304, not 48.0000x).
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
    const t =
      device === 'meta'
        ? empty([], { device: 'meta', dtype: 'float32' })
        : tensor(new Float32Array([this.scalarEmbedScale]), { device }).reshape([]);
    this.registerBuffer('embed_scale', t, false);
    old?.dispose();
  }

  forward(ids: Tensor): Tensor {
    return scope(() => {
      const scale = this.embed_scale.to(this.weight.dtype);
      return super.forward(ids).mul(scale);
    });
  }
}

export class GemmaRotaryEmbedding extends LlamaRotaryEmbedding {}
export class GemmaAttention extends LlamaAttention {}
export class GemmaMLP extends LlamaMLP {}

export class GemmaDecoderLayer extends Module {
  readonly hiddenSize: number;
  self_attn: GemmaAttention;
  mlp: GemmaMLP;
  input_layernorm: GemmaRMSNorm;
  post_attention_layernorm: GemmaRMSNorm;

  constructor(config: GemmaConfig, layerIdx: number, opts: ModelFactoryOptions = {}) {
    super();
    this.hiddenSize = config.hiddenSize;
    this.self_attn = new GemmaAttention(asLlama(config), layerIdx, opts);
    this.mlp = new GemmaMLP(asLlama(config), opts);
    this.input_layernorm = new GemmaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.post_attention_layernorm = new GemmaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
  }

  /** Pre-norm residual blocks, as Llama's. */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const h = hidden.add(this.self_attn.forward(this.input_layernorm.forward(hidden), ctx));
      return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
    });
  }
}

export class GemmaModel extends Module {
  readonly paddingIdx?: number;
  readonly vocabSize: number;
  embed_tokens: GemmaTextScaledWordEmbedding;
  layers: ModuleList<GemmaDecoderLayer>;
  norm: GemmaRMSNorm;
  rotary_emb: GemmaRotaryEmbedding;

  constructor(config: GemmaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.paddingIdx = config.padTokenId;
    this.vocabSize = config.vocabSize;
    this.embed_tokens = new GemmaTextScaledWordEmbedding(config.vocabSize, config.hiddenSize, {
      ...opts,
      paddingIdx: config.padTokenId,
      embedScale: Math.sqrt(config.hiddenSize),
    });
    this.layers = new ModuleList<GemmaDecoderLayer>();
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new GemmaDecoderLayer(config, i, opts));
    this.norm = new GemmaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.rotary_emb = new GemmaRotaryEmbedding(asLlama(config), opts);
  }

  /** The scaled token embeddings and what every layer needs (rotary cos/sin, the mask), in the caller's scope. */
  embed(input: BaseModelInput): { hidden: Tensor; ctx: LlamaLayerContext } {
    const [b, s] = checkInputIds(input.inputIds);
    const past = input.pastKeyValues?.length() ?? 0;
    const device = input.inputIds.device;
    const positionIds = input.positionIds ?? defaultPositionIds(past, s, device);
    const hidden = this.embed_tokens.forward(input.inputIds);
    const mask = causalAttentionMask(input.attentionMask, b, past, s, device);
    const ctx: LlamaLayerContext = {
      positionEmbeddings: this.rotary_emb.forward(hidden, positionIds),
      attnMask: mask.attnMask,
      isCausal: mask.isCausal,
      pastKeyValues: input.pastKeyValues,
    };
    return { hidden, ctx };
  }

  forward(input: BaseModelInput): Tensor {
    return scope(() => runDecoderLayers(this.embed(input), this.layers, this.norm));
  }
}

export class GemmaForCausalLM extends DecoderOnlyLM<LlamaLayerContext> {
  readonly config: GemmaConfig;
  readonly vocabSize: number;
  model: GemmaModel;
  lm_head: Linear;

  constructor(config: GemmaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.config = config;
    this.vocabSize = config.vocabSize;
    this.model = new GemmaModel(config, opts);
    this.lm_head = new Linear(config.hiddenSize, config.vocabSize, { ...opts, bias: false });
    this.tieWeightsIfConfigured();
  }

  /** transformers' _init_weights: N(0, initializer_range²) for Linear and Embedding weights, zero padding row and biases, norms 0 (they scale by 1 + weight). */
  initWeights(): this {
    initGemmaWeights(this, this.config.initializerRange);
    return this;
  }

  protected decoder(): DecoderParts<LlamaLayerContext> {
    const m = this.model;
    return { model: m, embed: (x) => m.embed(x), layers: m.layers, finalNorm: m.norm, embedTokens: m.embed_tokens };
  }
}

/** The Gemma families' _init_weights, on every module of `model` that is not on 'meta'. */
export function initGemmaWeights(model: Module, std: number): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (m instanceof Linear) {
        if (m.weight.device === 'meta') continue;
        init.normal_(m.weight, 0, std);
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Embedding) {
        if (m.weight.device === 'meta') continue;
        init.normal_(m.weight, 0, std);
        if (m.paddingIdx !== undefined) {
          const row = m.weight.select(0, m.paddingIdx);
          row.zero_();
          row.dispose();
        }
      } else if (m instanceof GemmaRMSNorm) {
        if (m.weight.device !== 'meta') init.zeros_(m.weight);
      }
    }
  });
}
