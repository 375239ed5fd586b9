// Gemma3ForCausalLM (model_type gemma3_text, the text model of Gemma 3) as transformers 5 builds it:
// Gemma 2's layer (norms on both sides of attention and MLP, query_pre_attn_scalar, optional soft-caps,
// here off by default) plus a per-head RMSNorm on q and k (q_norm, k_norm) before the rotary embedding,
// a local/global pattern (layer_types; sliding_window_pattern 6 by default: five sliding layers, then a
// full one), and two rotary embeddings: sliding layers use the local base (rope_local_base_freq, 10000),
// full layers the global one (1e6) with its rope scaling. transformers 5 writes rope_parameters as
// {sliding_attention: {...}, full_attention: {...}}; transformers 4 wrote rope_theta, rope_scaling and
// rope_local_base_freq. Both are read.
import { noGrad } from '../autograd';
import { empty, tensor } from '../creation';
import { keep, scope } from '../memory';
import { Module } from '../nn';
import { cat } from '../ops';
import { Device, Tensor } from '../tensor';
import { ModelFactoryOptions } from './causal-lm';
import {
  configField,
  HFConfig,
  LlamaConfig,
  parseLlamaConfig,
  registerLlamaFamily,
  RopeParameters,
  ropeParameters,
  ropeToJSON,
  windowLayerTypes,
} from './config';
import { gemmaActivation, gemmaEmbedding, refuseBidirectional, GemmaRMSNorm, GemmaTextScaledWordEmbedding } from './gemma';
import { Gemma2Attention, Gemma2Config, Gemma2DecoderLayer, Gemma2ForCausalLM, GEMMA2_FAMILY } from './gemma2';
import { LlamaMLP, LlamaModel, LlamaParts } from './llama';
import { isSequenceDependent, ropeInverseFrequencies } from './rope';

export interface Gemma3TextConfig extends Gemma2Config {
  /** The rotary embedding of 'sliding_attention' layers; `rope` is the global one ('full_attention'). */
  localRope: RopeParameters;
}

/** A float config value that may be null (none, the default here). */
function optFloat(c: HFConfig, key: string): number | undefined {
  return c[key] === null || c[key] === undefined ? undefined : configField.num(c, key);
}

/** The global and local rope parameters, from transformers 5's nested rope_parameters or 4's keys. */
function gemma3Ropes(c: HFConfig): { global: RopeParameters; local: RopeParameters } {
  const p = c.rope_parameters as Record<string, unknown> | undefined | null;
  if (p && typeof p === 'object' && ('full_attention' in p || 'sliding_attention' in p)) {
    const one = (key: string, theta: number) => {
      const v = p[key] ?? { rope_type: 'default' };
      if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`config: rope_parameters.${key} must be an object, got ${JSON.stringify(v)}`);
      return ropeParameters({ rope_parameters: { rope_theta: theta, ...(v as object) } });
    };
    return { global: one('full_attention', 1_000_000), local: one('sliding_attention', 10_000) };
  }
  return {
    global: ropeParameters({ rope_parameters: c.rope_parameters ?? c.rope_scaling ?? undefined, rope_theta: c.rope_theta ?? 1_000_000 }),
    local: ropeParameters({ rope_theta: configField.num(c, 'rope_local_base_freq', 10_000) }),
  };
}

/** transformers' Gemma3TextConfig: Gemma 2's keys with Gemma 3's defaults, the layer pattern and two ropes. */
export const GEMMA3_TEXT_FAMILY = registerLlamaFamily<Gemma3TextConfig>({
  modelType: 'gemma3_text',
  className: 'Gemma3ForCausalLM',
  defaults: { ...GEMMA2_FAMILY.defaults, vocab_size: 262_208, max_position_embeddings: 131_072 },
  omit: ['mlp_bias', 'hidden_act'],
  keys: ['hidden_activation', 'query_pre_attn_scalar', 'sliding_window', 'layer_types', 'final_logit_softcapping', 'attn_logit_softcapping'],
  parse: (c, base) => {
    refuseBidirectional(c);
    const slidingWindow = c.sliding_window === null ? undefined : configField.int(c, 'sliding_window', 4096);
    const pattern = configField.int(c, c.sliding_window_pattern !== undefined ? 'sliding_window_pattern' : '_sliding_window_pattern', 6);
    if (pattern === 0) throw new Error("config: 'sliding_window_pattern' must be positive");
    const layerTypes =
      c.layer_types !== undefined && c.layer_types !== null
        ? windowLayerTypes(c, base.numHiddenLayers, slidingWindow, 0)
        : Array.from({ length: base.numHiddenLayers }, (_, i) => ((i + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention'));
    const { global, local } = gemma3Ropes(c);
    return {
      hiddenAct: gemmaActivation(configField.str(c, 'hidden_activation', 'gelu_pytorch_tanh')),
      padTokenId: c.pad_token_id === undefined ? 0 : configField.optInt(c, 'pad_token_id'),
      queryPreAttnScalar: configField.num(c, 'query_pre_attn_scalar', 256),
      slidingWindow,
      layerTypes,
      attnLogitSoftcapping: optFloat(c, 'attn_logit_softcapping'),
      finalLogitSoftcapping: optFloat(c, 'final_logit_softcapping'),
      rope: global,
      localRope: local,
    };
  },
  write: (c) => ({
    ...GEMMA2_FAMILY.write!(c),
    rope_parameters: { full_attention: ropeToJSON(c.rope), sliding_attention: ropeToJSON(c.localRope) },
  }),
});

export function parseGemma3TextConfig(c: HFConfig): Gemma3TextConfig {
  return parseLlamaConfig(c, GEMMA3_TEXT_FAMILY);
}

export class Gemma3RMSNorm extends GemmaRMSNorm {}
export class Gemma3MLP extends LlamaMLP {}
export class Gemma3DecoderLayer extends Gemma2DecoderLayer {}
export class Gemma3TextScaledWordEmbedding extends GemmaTextScaledWordEmbedding {}

export class Gemma3Attention extends Gemma2Attention {
  q_norm: Gemma3RMSNorm;
  k_norm: Gemma3RMSNorm;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts?: LlamaParts) {
    super(config, layerIdx, opts, parts);
    this.ropeKey = this.layerType; // the local or the global rotary embedding
    this.q_norm = new Gemma3RMSNorm(config.headDim, { ...opts, eps: config.rmsNormEps });
    this.k_norm = new Gemma3RMSNorm(config.headDim, { ...opts, eps: config.rmsNormEps });
  }

  /** q and k normalized per head (over head_dim) before the rotary embedding. */
  protected projectQKV(hidden: Tensor): [Tensor, Tensor, Tensor] {
    const [b, s] = hidden.shape;
    const q = this.q_norm.forward(this.q_proj.forward(hidden).view(b, s, this.numHeads, this.headDim)).transpose(1, 2);
    const k = this.k_norm.forward(this.k_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim)).transpose(1, 2);
    const v = this.v_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
    return [q, k, v];
  }
}

/**
 * cos and sin per layer type, each from its own rope parameters: buffers sliding_attention_inv_freq and
 * full_attention_inv_freq (non-persistent, float32), as transformers' Gemma3RotaryEmbedding.
 */
export class Gemma3RotaryEmbedding extends Module {
  readonly layerTypes: string[];
  private readonly invFreqHost = new Map<string, Float32Array>();
  private readonly attentionScaling = new Map<string, number>();

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    const c = config as Gemma3TextConfig;
    this.layerTypes = [...new Set(c.layerTypes ?? ['full_attention'])].sort();
    for (const type of this.layerTypes) {
      const rope = type === 'sliding_attention' ? c.localRope : c.rope;
      if (isSequenceDependent(rope.ropeType))
        throw new Error(`gemma3_text: rope_type '${rope.ropeType}' for ${type} layers is not supported (default, linear, yarn and llama3 are)`);
      const [inv, scaling] = ropeInverseFrequencies(rope, c.headDim, { maxPositionEmbeddings: c.maxPositionEmbeddings });
      this.invFreqHost.set(type, inv);
      this.attentionScaling.set(type, scaling);
    }
    this.resetBuffers({ device: opts.device });
  }

  /** (Re)creates the inv_freq buffers on `device`; meta allocates nothing. */
  resetBuffers(opts: { device?: Device } = {}): void {
    for (const type of this.layerTypes) {
      const name = `${type}_inv_freq`;
      const old = (this as unknown as Record<string, Tensor | undefined>)[name];
      const host = this.invFreqHost.get(type)!;
      const device = opts.device ?? old?.device ?? 'cpu';
      const t = keep(device === 'meta' ? empty([host.length], { device: 'meta', dtype: 'float32' }) : tensor(host, { device }));
      this.registerBuffer(name, t, false);
      old?.dispose();
    }
  }

  /** x only gives the dtype; positionIds [B or 1, S]. */
  forward(x: Tensor, positionIds: Tensor, layerType: string): [Tensor, Tensor] {
    const inv = (this as unknown as Record<string, Tensor | undefined>)[`${layerType}_inv_freq`];
    if (inv === undefined) throw new Error(`Gemma3RotaryEmbedding: no rotary embedding for layer type '${layerType}'`);
    const scaling = this.attentionScaling.get(layerType)!;
    return scope(() =>
      noGrad(() => {
        const freqs = positionIds.float().unsqueeze(-1).mul(inv.float()); // [B, S, D/2] in float32
        const emb = cat([freqs, freqs], -1);
        let cos = emb.cos();
        let sin = emb.sin();
        if (scaling !== 1) {
          cos = cos.mul(scaling);
          sin = sin.mul(scaling);
        }
        return [cos.to(x.dtype), sin.to(x.dtype)] as [Tensor, Tensor];
      }),
    );
  }
}

export class Gemma3TextModel extends LlamaModel {
  declare embed_tokens: Gemma3TextScaledWordEmbedding;

  /** Each layer type's cos and sin (the attention layers pick theirs by ropeKey = layer type). */
  protected positionEmbeddings(hidden: Tensor, positionIds: Tensor): Record<string, [Tensor, Tensor]> {
    const out: Record<string, [Tensor, Tensor]> = {};
    const rotary = this.rotary_emb as unknown as Gemma3RotaryEmbedding; // built from GEMMA3_TEXT_PARTS
    for (const type of this.layerTypes) out[type] = rotary.forward(hidden, positionIds, type);
    return out;
  }
}

export const GEMMA3_TEXT_PARTS: LlamaParts = {
  model: Gemma3TextModel,
  decoderLayer: Gemma3DecoderLayer,
  attention: Gemma3Attention,
  mlp: Gemma3MLP,
  rmsNorm: Gemma3RMSNorm,
  // Holds one inv_freq per layer type; the model asks it by type (Gemma3TextModel.positionEmbeddings).
  rotaryEmbedding: Gemma3RotaryEmbedding as unknown as LlamaParts['rotaryEmbedding'],
  embedding: (config, opts) => gemmaEmbedding(config, opts, Gemma3TextScaledWordEmbedding),
};

export class Gemma3ForCausalLM extends Gemma2ForCausalLM {
  declare readonly config: Gemma3TextConfig;
  declare model: Gemma3TextModel;

  constructor(config: Gemma3TextConfig, opts: ModelFactoryOptions = {}, parts: LlamaParts = GEMMA3_TEXT_PARTS) {
    super(config, opts, parts);
  }
}
