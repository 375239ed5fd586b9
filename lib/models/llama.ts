// LlamaForCausalLM as transformers builds it: the field names are the state-dict keys
// (model.layers.0.self_attn.q_proj.weight) and the fields come in the order of transformers' __init__,
// so the printed tree and named parameters match. Reads top-down: rotary embedding, attention, MLP,
// decoder layer, model, LM head.
// A family that is "Llama plus X" (mistral.ts, qwen2.ts) says only X: a LlamaFamilySpec for its config
// (config.ts), empty subclasses for transformers' class names, overrides of the hooks it changes
// (LlamaAttention.projectionBias / projectQKV / attend, LlamaModel.inputEmbeddings / positionEmbeddings /
// attentionMasks, a decoder layer's forward), and its LlamaParts passed to LlamaForCausalLM. A subclass
// that re-declares a field of its base uses `declare` (ES2022 class fields would reset it after super()).
import { noGrad } from '../autograd';
import { empty, tensor } from '../creation';
import { applyRotaryPosEmb as fusedRotary, scaledDotProductAttention, swiglu } from '../functional';
import { keep, scope } from '../memory';
import { cat } from '../ops';
import { Embedding, getActivation, Linear, Module, ModuleList, RMSNorm, SiLU, SiLUActivation } from '../nn';
import { Device, Tensor } from '../tensor';
import { AttentionMaskArgs, causalAttentionMask, defaultPositionIds, packedSequenceIds } from './attention-mask';
import { KVCache } from './cache';
import { BaseModelInput, checkInputIds, ModelFactoryOptions } from './causal-lm';
import { DecoderOnlyLM, DecoderParts, runDecoderLayers } from './decoder-only-lm';
import { initDecoderWeights } from './init-weights';
import { LlamaConfig, RopeParameters } from './config';
import { isSequenceDependent, ropeInverseFrequencies } from './rope';

/** Printed as transformers prints it: `LlamaRMSNorm((48,), eps=1e-06)`. */
export class LlamaRMSNorm extends RMSNorm {}

export { ropeInverseFrequencies } from './rope';

/** cos and sin [B, S, D] of the positions, in the dtype of the hidden states. */
export class LlamaRotaryEmbedding extends Module {
  readonly ropeType: string;
  attentionScaling: number;
  declare inv_freq: Tensor;
  private readonly rope: RopeParameters;
  private readonly headDim: number;
  private readonly maxPositionEmbeddings: number;
  /** The frequencies at construction (transformers' original_inv_freq), and those in the buffer now. */
  private readonly originalInvFreq: Float32Array;
  private invFreqHost: Float32Array;
  /** dynamic: the sequence length the buffer was computed for (transformers' max_seq_len_cached). */
  private maxSeqLenCached: number;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}, rope: RopeParameters = config.rope) {
    super();
    this.ropeType = rope.ropeType;
    this.rope = rope;
    this.headDim = config.headDim;
    this.maxPositionEmbeddings = config.maxPositionEmbeddings;
    this.maxSeqLenCached = config.maxPositionEmbeddings;
    const [inv, scaling] = ropeInverseFrequencies(rope, config.headDim, { maxPositionEmbeddings: config.maxPositionEmbeddings });
    this.originalInvFreq = inv;
    this.invFreqHost = inv;
    this.attentionScaling = scaling;
    this.resetBuffers({ device: opts.device });
  }

  /** (Re)creates the non-persistent inv_freq buffer (float32) on `device`; meta allocates nothing. */
  resetBuffers(opts: { device?: Device } = {}): void {
    const old = this.inv_freq as Tensor | undefined;
    const device = opts.device ?? old?.device ?? 'cpu';
    // kept out of the caller's scope: a forward (dynamic, longrope) may replace the buffer inside one
    const t = keep(
      device === 'meta'
        ? empty([this.invFreqHost.length], { device: 'meta', dtype: 'float32' })
        : tensor(this.invFreqHost, { device }),
    );
    this.registerBuffer('inv_freq', t, false);
    old?.dispose();
  }

  /**
   * dynamic and longrope: the frequencies for a sequence of seqLen positions, as transformers'
   * dynamic_rope_update (dynamic grows the base past max_position_embeddings and keeps the largest until
   * a sequence within it comes; longrope switches to long_factor past original_max_position_embeddings).
   */
  private updateFrequencies(seqLen: number): void {
    let next: Float32Array | undefined;
    if (this.ropeType === 'dynamic') {
      if (seqLen > this.maxSeqLenCached) {
        next = ropeInverseFrequencies(this.rope, this.headDim, { maxPositionEmbeddings: this.maxPositionEmbeddings, seqLen })[0];
        this.maxSeqLenCached = seqLen;
      } else if (seqLen < this.maxPositionEmbeddings && this.maxSeqLenCached > this.maxPositionEmbeddings) {
        next = this.originalInvFreq;
        this.maxSeqLenCached = this.maxPositionEmbeddings;
      }
    } else {
      const ctx = { maxPositionEmbeddings: this.maxPositionEmbeddings, seqLen };
      const want = ropeInverseFrequencies(this.rope, this.headDim, ctx)[0];
      if (want.some((x, i) => x !== this.invFreqHost[i])) next = want;
    }
    if (next === undefined || next === this.invFreqHost) return;
    this.invFreqHost = next;
    if (this.inv_freq.device !== 'meta') this.resetBuffers({ device: this.inv_freq.device });
  }

  /** x only gives the dtype; positionIds [B or 1, S]. */
  forward(x: Tensor, positionIds: Tensor): [Tensor, Tensor] {
    if (isSequenceDependent(this.ropeType) && positionIds.device !== 'meta') {
      const max = positionIds.max();
      const seqLen = Number(max.item()) + 1;
      max.dispose();
      this.updateFrequencies(seqLen);
    }
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
  /** cos and sin per rotary embedding: 'default', or the key of a layer kind with its own (see LlamaAttention.ropeKey). */
  positionEmbeddings: Record<string, [Tensor, Tensor]>;
  /** The attention mask per layer type ('full_attention', 'sliding_attention'). */
  masks: Record<string, AttentionMaskArgs>;
  pastKeyValues?: KVCache;
}

/**
 * Multi-head attention with grouped key/value heads and rotary embeddings. Per-layer options come from
 * the config: layerType (config.layerTypes[layerIdx]) picks the mask, slidingWindow is set on
 * 'sliding_attention' layers; a family changes the rest by overriding projectQKV (q/k norms, fused qkv),
 * attend (soft-capping) or the fields its constructor sets (scaling, ropeKey).
 */
export class LlamaAttention extends Module {
  readonly layerIdx: number;
  readonly headDim: number;
  readonly numHeads: number;
  readonly numKeyValueHeads: number;
  scaling: number;
  readonly attentionDropout: number;
  /** 'full_attention' or 'sliding_attention': which of ctx.masks this layer uses. */
  readonly layerType: string;
  /** The window of a sliding-attention layer (undefined: full attention), as transformers' self.sliding_window. */
  readonly slidingWindow?: number;
  /** Which of ctx.positionEmbeddings this layer uses. */
  ropeKey = 'default';
  q_proj!: Linear;
  k_proj!: Linear;
  v_proj!: Linear;
  o_proj!: Linear;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, _parts: LlamaParts = LLAMA_PARTS) {
    super();
    this.layerIdx = layerIdx;
    this.headDim = config.headDim;
    this.numHeads = config.numAttentionHeads;
    this.numKeyValueHeads = config.numKeyValueHeads;
    this.scaling = config.headDim ** -0.5;
    this.attentionDropout = config.attentionDropout;
    this.layerType = config.layerTypes?.[layerIdx] ?? 'full_attention';
    if (this.layerType === 'sliding_attention') {
      if (config.slidingWindow === undefined) throw new Error(`layer ${layerIdx} is a sliding_attention layer but the config has no sliding_window`);
      this.slidingWindow = config.slidingWindow;
    }
    this.createProjections(config, opts);
  }

  /** q_proj, k_proj, v_proj and o_proj, in transformers' order (Phi-3 makes o_proj and a fused qkv_proj instead). */
  protected createProjections(config: LlamaConfig, opts: ModelFactoryOptions): void {
    const [qkvBias, oBias] = this.projectionBias(config);
    const qkv = { ...opts, bias: qkvBias };
    this.q_proj = new Linear(config.hiddenSize, config.numAttentionHeads * config.headDim, qkv);
    this.k_proj = new Linear(config.hiddenSize, config.numKeyValueHeads * config.headDim, qkv);
    this.v_proj = new Linear(config.hiddenSize, config.numKeyValueHeads * config.headDim, qkv);
    this.o_proj = new Linear(config.numAttentionHeads * config.headDim, config.hiddenSize, { ...opts, bias: oBias });
  }

  /** The rotary embedding of q and k (Phi-3 rotates only the first partial_rotary_factor of each head). */
  protected rotate(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor] {
    return applyRotaryPosEmb(q, k, cos, sin);
  }

  /** [bias of q/k/v, bias of o_proj]: attention_bias for both in Llama (Qwen2: q/k/v only). */
  protected projectionBias(config: LlamaConfig): [boolean, boolean] {
    return [config.attentionBias, config.attentionBias];
  }

  /** hidden [B, S, hidden] -> q [B, H, S, D], k and v [B, Hkv, S, D], before the rotary embedding. */
  protected projectQKV(hidden: Tensor): [Tensor, Tensor, Tensor] {
    const [b, s] = hidden.shape;
    const q = this.q_proj.forward(hidden).view(b, s, this.numHeads, this.headDim).transpose(1, 2);
    const k = this.k_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
    const v = this.v_proj.forward(hidden).view(b, s, this.numKeyValueHeads, this.headDim).transpose(1, 2);
    return [q, k, v];
  }

  /** softmax(q·kᵀ·scaling + mask)·v for q [B, H, S, D] over k, v [B, Hkv, T, D]. */
  protected attend(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMaskArgs): Tensor {
    return scaledDotProductAttention(q, k, v, {
      attnMask: mask.attnMask,
      isCausal: mask.isCausal,
      dropoutP: this.training ? this.attentionDropout : 0,
      scale: this.scaling,
      enableGqa: this.numKeyValueHeads !== this.numHeads,
    });
  }

  /** hidden [B, S, hidden] -> [B, S, hidden]. */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const [b, s] = hidden.shape;
      const [q0, k0, v0] = this.projectQKV(hidden);
      const pe = ctx.positionEmbeddings[this.ropeKey];
      if (pe === undefined) throw new Error(`${this.reprName()} ${this.layerIdx}: no rotary embedding '${this.ropeKey}' in the layer context`);
      const mask = ctx.masks[this.layerType];
      if (mask === undefined) throw new Error(`${this.reprName()} ${this.layerIdx}: no attention mask for layer type '${this.layerType}'`);
      let [q, k] = this.rotate(q0, k0, pe[0], pe[1]);
      let v = v0;
      if (ctx.pastKeyValues) [k, v] = ctx.pastKeyValues.update(this.layerIdx, k, v);
      const out = this.attend(q, k, v, mask);
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

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts: LlamaParts = LLAMA_PARTS) {
    super();
    this.hiddenSize = config.hiddenSize;
    this.self_attn = new parts.attention(config, layerIdx, opts, parts);
    this.mlp = new parts.mlp(config, opts);
    this.input_layernorm = new parts.rmsNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.post_attention_layernorm = new parts.rmsNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
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
  /** The layer types present (each gets its mask once per forward), and the window of sliding layers. */
  readonly layerTypes: string[];
  readonly slidingWindow?: number;
  embed_tokens: Embedding;
  layers: ModuleList<LlamaDecoderLayer>;
  norm: LlamaRMSNorm;
  rotary_emb: LlamaRotaryEmbedding;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}, parts: LlamaParts = LLAMA_PARTS) {
    super();
    this.paddingIdx = config.padTokenId;
    this.vocabSize = config.vocabSize;
    const types = config.layerTypes ?? [];
    if (types.length !== 0 && types.length !== config.numHiddenLayers)
      throw new Error(`config: layer_types has ${types.length} entries for ${config.numHiddenLayers} layers`);
    this.layerTypes = [...new Set(types.length ? types : ['full_attention'])];
    this.slidingWindow = config.slidingWindow;
    this.embed_tokens = parts.embedding
      ? parts.embedding(config, opts)
      : new Embedding(config.vocabSize, config.hiddenSize, { ...opts, paddingIdx: config.padTokenId });
    this.layers = new ModuleList<LlamaDecoderLayer>();
    for (let i = 0; i < config.numHiddenLayers; i++) this.layers.push(new parts.decoderLayer(config, i, opts, parts));
    this.norm = new parts.rmsNorm(config.hiddenSize, { ...opts, eps: config.rmsNormEps });
    this.rotary_emb = new parts.rotaryEmbedding(config, opts);
  }

  /** The token embeddings [B, S, hidden] (Gemma scales them). */
  protected inputEmbeddings(inputIds: Tensor): Tensor {
    return this.embed_tokens.forward(inputIds);
  }

  /** cos and sin of each rotary embedding the layers use, by LlamaAttention.ropeKey. */
  protected positionEmbeddings(hidden: Tensor, positionIds: Tensor): Record<string, [Tensor, Tensor]> {
    return { default: this.rotary_emb.forward(hidden, positionIds) };
  }

  /**
   * The attention mask of each layer type present (a window on 'sliding_attention'); position ids that
   * restart at 0 (packed examples) keep each example's attention to itself.
   */
  protected attentionMasks(input: BaseModelInput, batch: number, past: number, seq: number): Record<string, AttentionMaskArgs> {
    const device = input.inputIds.device;
    const sequenceIds = packedSequenceIds(input.positionIds, past);
    const masks: Record<string, AttentionMaskArgs> = {};
    for (const type of this.layerTypes) {
      const window = type === 'sliding_attention' ? this.slidingWindow : undefined;
      masks[type] = causalAttentionMask(input.attentionMask, batch, past, seq, device, { slidingWindow: window, sequenceIds });
    }
    sequenceIds?.dispose();
    return masks;
  }

  /**
   * The token embeddings [B, S, hidden] and what every decoder layer needs besides them (rotary cos/sin,
   * the attention masks), in the caller's scope: the part of forward() before the layers.
   */
  embed(input: BaseModelInput): { hidden: Tensor; ctx: LlamaLayerContext } {
    const [b, s] = checkInputIds(input.inputIds);
    const past = input.pastKeyValues?.length() ?? 0;
    const device = input.inputIds.device;
    const positionIds = input.positionIds ?? defaultPositionIds(past, s, device);
    const hidden = this.inputEmbeddings(input.inputIds);
    const ctx: LlamaLayerContext = {
      positionEmbeddings: this.positionEmbeddings(hidden, positionIds),
      masks: this.attentionMasks(input, b, past, s),
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

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}, parts: LlamaParts = LLAMA_PARTS) {
    super();
    this.config = config;
    this.vocabSize = config.vocabSize;
    this.model = new parts.model(config, opts, parts);
    this.lm_head = new Linear(config.hiddenSize, config.vocabSize, { ...opts, bias: false });
    this.tieWeightsIfConfigured();
  }

  /** transformers' _init_weights: N(0, initializer_range²) for Linear and Embedding weights, zero biases and padding row, norms ones. */
  initWeights(): this {
    initDecoderWeights(this, this.config.initializerRange, LlamaRMSNorm, 1);
    return this;
  }

  protected decoder(): DecoderParts<LlamaLayerContext> {
    const m = this.model;
    return { model: m, embed: (x) => m.embed(x), layers: m.layers, finalNorm: m.norm, embedTokens: m.embed_tokens };
  }
}

/**
 * The module classes a Llama-like model is built from. A family ("Llama plus X") subclasses the ones it
 * changes, and renames the others by empty subclasses, so that its tree prints transformers' class names.
 */
export interface LlamaParts {
  model: new (config: LlamaConfig, opts: ModelFactoryOptions, parts: LlamaParts) => LlamaModel;
  decoderLayer: new (config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions, parts: LlamaParts) => LlamaDecoderLayer;
  attention: new (config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions, parts: LlamaParts) => LlamaAttention;
  mlp: new (config: LlamaConfig, opts: ModelFactoryOptions) => LlamaMLP;
  rmsNorm: new (size: number, opts: ModelFactoryOptions & { eps?: number }) => LlamaRMSNorm;
  rotaryEmbedding: new (config: LlamaConfig, opts: ModelFactoryOptions) => LlamaRotaryEmbedding;
  /** The token embedding (default nn.Embedding with the pad token's row as padding_idx; Gemma scales it). */
  embedding?: (config: LlamaConfig, opts: ModelFactoryOptions) => Embedding;
}

export const LLAMA_PARTS: LlamaParts = {
  model: LlamaModel,
  decoderLayer: LlamaDecoderLayer,
  attention: LlamaAttention,
  mlp: LlamaMLP,
  rmsNorm: LlamaRMSNorm,
  rotaryEmbedding: LlamaRotaryEmbedding,
};
