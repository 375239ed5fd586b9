// LlamaForCausalLM as transformers builds it: the field names are the state-dict keys
// (model.layers.0.self_attn.q_proj.weight) and the fields come in the order of transformers' __init__,
// so the printed tree and named parameters match. Reads top-down: rotary embedding, attention, MLP,
// decoder layer, model, LM head.
import { noGrad } from '../autograd';
import { empty, tensor } from '../creation';
import { applyRotaryPosEmb as fusedRotary, scaledDotProductAttention, swiglu } from '../functional';
import { scope } from '../memory';
import { cat } from '../ops';
import { Embedding, getActivation, init, Linear, Module, ModuleList, RMSNorm, SiLU, SiLUActivation } from '../nn';
import { Device, Tensor } from '../tensor';
import { causalAttentionMask, defaultPositionIds } from './attention-mask';
import { KVCache } from './cache';
import { BaseModelInput, checkInputIds, ModelFactoryOptions } from './causal-lm';
import { DecoderOnlyLM, DecoderParts, runDecoderLayers } from './decoder-only-lm';
import { LlamaConfig, RopeParameters } from './config';

/** Printed as transformers prints it: `LlamaRMSNorm((48,), eps=1e-06)`. */
export class LlamaRMSNorm extends RMSNorm {}

/**
 * Inverse frequencies 1/θ^(2i/d) of rotary embeddings, computed in float32 as transformers does, with
 * the 'linear' and 'llama3' (Llama 3.1) rescalings. Returns [invFreq, attentionScaling].
 */
export function ropeInverseFrequencies(rope: RopeParameters, headDim: number): [Float32Array, number] {
  const dim = Math.floor(headDim * rope.partialRotaryFactor);
  const f = Math.fround;
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim; i += 2) inv[i / 2] = f(1 / f(Math.pow(f(rope.ropeTheta), f(i / dim))));
  const need = (name: string, v: number | undefined): number => {
    if (v === undefined) throw new Error(`rope_type '${rope.ropeType}' needs rope parameter '${name}' in the config`);
    return v;
  };
  switch (rope.ropeType) {
    case 'default':
      break;
    case 'linear': {
      const factor = need('factor', rope.factor);
      for (let i = 0; i < inv.length; i++) inv[i] = inv[i] / factor;
      break;
    }
    case 'llama3': {
      const factor = need('factor', rope.factor);
      const low = need('low_freq_factor', rope.lowFreqFactor);
      const high = need('high_freq_factor', rope.highFreqFactor);
      const oldContext = need('original_max_position_embeddings', rope.originalMaxPositionEmbeddings);
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
      break;
    }
    default:
      throw new Error(`rope_type '${rope.ropeType}' is not supported; supported: default, linear, llama3`);
  }
  return [inv, 1.0];
}

/** cos and sin [B, S, D] of the positions, in the dtype of the hidden states. */
export class LlamaRotaryEmbedding extends Module {
  readonly ropeType: string;
  readonly attentionScaling: number;
  declare inv_freq: Tensor;
  private readonly invFreqHost: Float32Array;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.ropeType = config.rope.ropeType;
    const [inv, scaling] = ropeInverseFrequencies(config.rope, config.headDim);
    this.invFreqHost = inv;
    this.attentionScaling = scaling;
    this.resetBuffers({ device: opts.device });
  }

  /** (Re)creates the non-persistent inv_freq buffer (float32) on `device`; meta allocates nothing. */
  resetBuffers(opts: { device?: Device } = {}): void {
    const old = this.inv_freq as Tensor | undefined;
    const device = opts.device ?? 'cpu';
    const t =
      device === 'meta'
        ? empty([this.invFreqHost.length], { device: 'meta', dtype: 'float32' })
        : tensor(this.invFreqHost, { device });
    this.registerBuffer('inv_freq', t, false);
    old?.dispose();
  }

  /** x only gives the dtype; positionIds [B or 1, S]. */
  forward(x: Tensor, positionIds: Tensor): [Tensor, Tensor] {
    return scope(() =>
      noGrad(() => {
        const invFreq = this.inv_freq.float();
        const pos = positionIds.float().unsqueeze(-1); // [B, S, 1]
        const freqs = pos.mul(invFreq); // [B, S, D/2], float32 as transformers computes it
        const emb = cat([freqs, freqs], -1);
        let cos = emb.cos();
        let sin = emb.sin();
        if (this.attentionScaling !== 1) {
          cos = cos.mul(this.attentionScaling);
          sin = sin.mul(this.attentionScaling);
        }
        return [cos.to(x.dtype), sin.to(x.dtype)] as [Tensor, Tensor];
      }),
    );
  }
}

/**
 * q·cos + rotate_half(q)·sin (rotate_half(x) = [-x2, x1]) for q, k [B, H, S, D]; cos, sin [B, S, D]:
 * one native call and one autograd node (src/rotary.cpp), rounding as transformers' composite does.
 */
export function applyRotaryPosEmb(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor] {
  return fusedRotary(q, k, cos, sin);
}

/** What a decoder layer's attention needs besides the hidden states, computed once per forward. */
export interface LlamaLayerContext {
  positionEmbeddings: [Tensor, Tensor];
  attnMask?: Tensor;
  isCausal: boolean;
  pastKeyValues?: KVCache;
}

export class LlamaAttention extends Module {
  readonly layerIdx: number;
  readonly headDim: number;
  readonly numHeads: number;
  readonly numKeyValueHeads: number;
  readonly scaling: number;
  readonly attentionDropout: number;
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}) {
    super();
    this.layerIdx = layerIdx;
    this.headDim = config.headDim;
    this.numHeads = config.numAttentionHeads;
    this.numKeyValueHeads = config.numKeyValueHeads;
    this.scaling = config.headDim ** -0.5;
    this.attentionDropout = config.attentionDropout;
    const o = { ...opts, bias: config.attentionBias };
    this.q_proj = new Linear(config.hiddenSize, config.numAttentionHeads * config.headDim, o);
    this.k_proj = new Linear(config.hiddenSize, config.numKeyValueHeads * config.headDim, o);
    this.v_proj = new Linear(config.hiddenSize, config.numKeyValueHeads * config.headDim, o);
    this.o_proj = new Linear(config.numAttentionHeads * config.headDim, config.hiddenSize, o);
  }

  /** hidden [B, S, hidden] -> [B, S, hidden]. */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const [b, s] = hidden.shape;
      const q0 = this.q_proj.forward(hidden).view(b, s, this.numHeads, this.headDim).transpose(1, 2);
      const k0 = this.k_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
      let v = this.v_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
      const [cos, sin] = ctx.positionEmbeddings;
      let [q, k] = applyRotaryPosEmb(q0, k0, cos, sin);
      if (ctx.pastKeyValues) [k, v] = ctx.pastKeyValues.update(this.layerIdx, k, v);
      const out = scaledDotProductAttention(q, k, v, {
        attnMask: ctx.attnMask,
        isCausal: ctx.isCausal,
        dropoutP: this.training ? this.attentionDropout : 0,
        scale: this.scaling,
        enableGqa: this.numKeyValueHeads !== this.numHeads,
      });
      const merged = out.transpose(1, 2).reshape(b, s, this.numHeads * this.headDim);
      return this.o_proj.forward(merged);
    });
  }
}

/** down_proj(act_fn(gate_proj(x)) · up_proj(x)) */
export class LlamaMLP extends Module {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  act_fn: Module;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.hiddenSize = config.hiddenSize;
    this.intermediateSize = config.intermediateSize;
    const o = { ...opts, bias: config.mlpBias };
    this.gate_proj = new Linear(config.hiddenSize, config.intermediateSize, o);
    this.up_proj = new Linear(config.hiddenSize, config.intermediateSize, o);
    this.down_proj = new Linear(config.intermediateSize, config.hiddenSize, o);
    this.act_fn = getActivation(config.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      // silu(gate)·up as one native node (F.swiglu): no [.., intermediate] activation kept for backward.
      if (this.act_fn instanceof SiLUActivation || this.act_fn instanceof SiLU)
        return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
      const gated = this.act_fn.forward(this.gate_proj.forward(x)) as Tensor;
      return this.down_proj.forward(gated.mul(this.up_proj.forward(x)));
    });
  }
}

export class LlamaDecoderLayer extends Module {
  readonly hiddenSize: number;
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: LlamaRMSNorm;
  post_attention_layernorm: LlamaRMSNorm;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}) {
    super();
    this.hiddenSize = config.hiddenSize;
    this.self_attn = new LlamaAttention(config, layerIdx, opts);
    this.mlp = new LlamaMLP(config, opts);
    this.input_layernorm = new LlamaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.post_attention_layernorm = new LlamaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
  }

  /** Pre-norm residual blocks: h + attn(norm(h)), then h + mlp(norm(h)). */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const h = hidden.add(this.self_attn.forward(this.input_layernorm.forward(hidden), ctx));
      return h.add(this.mlp.forward(this.post_attention_layernorm.forward(h)));
    });
  }
}

export class LlamaModel extends Module {
  readonly paddingIdx?: number;
  readonly vocabSize: number;
  embed_tokens: Embedding;
  layers: ModuleList<LlamaDecoderLayer>;
  norm: LlamaRMSNorm;
  rotary_emb: LlamaRotaryEmbedding;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.paddingIdx = config.padTokenId;
    this.vocabSize = config.vocabSize;
    this.embed_tokens = new Embedding(config.vocabSize, config.hiddenSize, { ...opts, paddingIdx: config.padTokenId });
    this.layers = new ModuleList<LlamaDecoderLayer>();
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new LlamaDecoderLayer(config, i, opts));
    this.norm = new LlamaRMSNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.rotary_emb = new LlamaRotaryEmbedding(config, opts);
  }

  /**
   * The token embeddings [B, S, hidden] and what every decoder layer needs besides them (rotary cos/sin,
   * the attention mask), in the caller's scope: the part of forward() before the layers.
   */
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

  /** The final hidden states [B, S, hidden]. */
  forward(input: BaseModelInput): Tensor {
    return scope(() => runDecoderLayers(this.embed(input), this.layers, this.norm));
  }
}

export class LlamaForCausalLM extends DecoderOnlyLM<LlamaLayerContext> {
  readonly config: LlamaConfig;
  readonly vocabSize: number;
  model: LlamaModel;
  lm_head: Linear;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.config = config;
    this.vocabSize = config.vocabSize;
    this.model = new LlamaModel(config, opts);
    this.lm_head = new Linear(config.hiddenSize, config.vocabSize, { ...opts, bias: false });
    this.tieWeightsIfConfigured();
  }

  /** transformers' _init_weights: N(0, initializer_range²) for Linear and Embedding weights, zero biases and padding row, norms ones. */
  initWeights(): this {
    const std = this.config.initializerRange;
    noGrad(() => {
      for (const m of this.modules()) {
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
        } else if (m instanceof LlamaRMSNorm) {
          if (m.weight.device !== 'meta') init.ones_(m.weight);
        }
      }
    });
    return this;
  }

  protected decoder(): DecoderParts<LlamaLayerContext> {
    const m = this.model;
    return { model: m, embed: (x) => m.embed(x), layers: m.layers, finalNorm: m.norm, embedTokens: m.embed_tokens };
  }
}
