// GPT2LMHeadModel as transformers builds it: learned positions, Conv1D projections (weights stored
// [in, out]), the fused c_attn, gelu_new, and lm_head tied to wte. Field names are the state-dict keys
// (transformer.h.0.attn.c_attn.weight), in the order of transformers' __init__.
import { noGrad } from '../autograd';
import { scaledDotProductAttention } from '../functional';
import { scope } from '../memory';
import { Conv1D, Dropout, Embedding, getActivation, init, LayerNorm, Linear, Module, ModuleList } from '../nn';
import { Tensor } from '../tensor';
import { causalAttentionMask, defaultPositionIds, packedSequenceIds } from './attention-mask';
import { KVCache } from './cache';
import { BaseModelInput, checkInputIds, ModelFactoryOptions } from './causal-lm';
import { DecoderOnlyLM, DecoderParts, runDecoderLayers } from './decoder-only-lm';
import { GPT2Config } from './config';

interface GPT2LayerContext {
  attnMask?: Tensor;
  isCausal: boolean;
  pastKeyValues?: KVCache;
}

export class GPT2Attention extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly splitSize: number;
  readonly scaleAttnWeights: boolean;
  readonly layerIdx: number;
  readonly scaleAttnByInverseLayerIdx: boolean;
  c_attn: Conv1D;
  c_proj: Conv1D;
  attn_dropout: Dropout;
  resid_dropout: Dropout;

  constructor(config: GPT2Config, layerIdx: number, opts: ModelFactoryOptions = {}) {
    super();
    this.embedDim = config.hiddenSize;
    this.numHeads = config.numAttentionHeads;
    this.headDim = config.hiddenSize / config.numAttentionHeads;
    this.splitSize = config.hiddenSize;
    this.scaleAttnWeights = config.scaleAttnWeights;
    this.layerIdx = layerIdx;
    this.scaleAttnByInverseLayerIdx = config.scaleAttnByInverseLayerIdx;
    this.c_attn = new Conv1D(3 * this.embedDim, this.embedDim, opts);
    this.c_proj = new Conv1D(this.embedDim, this.embedDim, opts);
    this.attn_dropout = new Dropout(config.attnPdrop);
    this.resid_dropout = new Dropout(config.residPdrop);
  }

  forward(hidden: Tensor, ctx: GPT2LayerContext): Tensor {
    return scope(() => {
      const [b, s] = hidden.shape;
      const heads = (t: Tensor) => t.view(b, s, this.numHeads, this.headDim).transpose(1, 2);
      const [q0, k0, v0] = this.c_attn.forward(hidden).split(this.splitSize, 2);
      const q = heads(q0);
      let k = heads(k0);
      let v = heads(v0);
      if (ctx.pastKeyValues) [k, v] = ctx.pastKeyValues.update(this.layerIdx, k, v);
      let scale = this.scaleAttnWeights ? this.headDim ** -0.5 : 1;
      if (this.scaleAttnByInverseLayerIdx) scale /= this.layerIdx + 1;
      const out = scaledDotProductAttention(q, k, v, {
        attnMask: ctx.attnMask,
        isCausal: ctx.isCausal,
        dropoutP: this.training ? this.attn_dropout.p : 0,
        scale,
      });
      const merged = out.transpose(1, 2).reshape(b, s, this.embedDim);
      return this.resid_dropout.forward(this.c_proj.forward(merged));
    });
  }
}

/** dropout(c_proj(act(c_fc(x)))) */
export class GPT2MLP extends Module {
  c_fc: Conv1D;
  c_proj: Conv1D;
  act: Module;
  dropout: Dropout;

  constructor(intermediateSize: number, config: GPT2Config, opts: ModelFactoryOptions = {}) {
    super();
    this.c_fc = new Conv1D(intermediateSize, config.hiddenSize, opts);
    this.c_proj = new Conv1D(config.hiddenSize, intermediateSize, opts);
    this.act = getActivation(config.activationFunction);
    this.dropout = new Dropout(config.residPdrop);
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.dropout.forward(this.c_proj.forward(this.act.forward(this.c_fc.forward(x)) as Tensor)));
  }
}

export class GPT2Block extends Module {
  ln_1: LayerNorm;
  attn: GPT2Attention;
  ln_2: LayerNorm;
  mlp: GPT2MLP;

  constructor(config: GPT2Config, layerIdx: number, opts: ModelFactoryOptions = {}) {
    super();
    this.ln_1 = new LayerNorm(config.hiddenSize, { ...opts, eps: config.layerNormEpsilon });
    this.attn = new GPT2Attention(config, layerIdx, opts);
    this.ln_2 = new LayerNorm(config.hiddenSize, { ...opts, eps: config.layerNormEpsilon });
    this.mlp = new GPT2MLP(config.intermediateSize, config, opts);
  }

  forward(hidden: Tensor, ctx: GPT2LayerContext): Tensor {
    return scope(() => {
      const h = hidden.add(this.attn.forward(this.ln_1.forward(hidden), ctx));
      return h.add(this.mlp.forward(this.ln_2.forward(h)));
    });
  }
}

export class GPT2Model extends Module {
  readonly embedDim: number;
  readonly maxPositions: number;
  wte: Embedding;
  wpe: Embedding;
  drop: Dropout;
  h: ModuleList<GPT2Block>;
  ln_f: LayerNorm;

  constructor(config: GPT2Config, opts: ModelFactoryOptions = {}) {
    super();
    this.embedDim = config.hiddenSize;
    this.maxPositions = config.maxPositionEmbeddings;
    this.wte = new Embedding(config.vocabSize, this.embedDim, opts);
    this.wpe = new Embedding(config.maxPositionEmbeddings, this.embedDim, opts);
    this.drop = new Dropout(config.embdPdrop);
    this.h = new ModuleList<GPT2Block>();
    for (let i = 0; i < config.numHiddenLayers; i++) this.h.push(new GPT2Block(config, i, opts));
    this.ln_f = new LayerNorm(this.embedDim, { ...opts, eps: config.layerNormEpsilon });
  }

  /**
   * Token + position embeddings after dropout [B, S, hidden] and what every block needs besides them
   * (the attention mask), in the caller's scope: the part of forward() before the blocks.
   */
  embed(input: BaseModelInput): { hidden: Tensor; ctx: GPT2LayerContext } {
    const [b, s] = checkInputIds(input.inputIds);
    const past = input.pastKeyValues?.length() ?? 0;
    if (input.positionIds === undefined && past + s > this.maxPositions)
      throw new Error(`GPT-2 has ${this.maxPositions} positions (n_positions) but got ${past} cached + ${s} new tokens`);
    const device = input.inputIds.device;
    const positionIds = input.positionIds ?? defaultPositionIds(past, s, device);
    const embeds = this.wte.forward(input.inputIds).add(this.wpe.forward(positionIds));
    const hidden = this.drop.forward(embeds) as Tensor;
    const sequenceIds = packedSequenceIds(input.positionIds, past); // packed examples: each attends to itself
    const mask = causalAttentionMask(input.attentionMask, b, past, s, device, { sequenceIds });
    sequenceIds?.dispose();
    const ctx: GPT2LayerContext = { attnMask: mask.attnMask, isCausal: mask.isCausal, pastKeyValues: input.pastKeyValues };
    return { hidden, ctx };
  }

  forward(input: BaseModelInput): Tensor {
    return scope(() => runDecoderLayers(this.embed(input), this.h, this.ln_f));
  }
}

export class GPT2LMHeadModel extends DecoderOnlyLM<GPT2LayerContext> {
  readonly config: GPT2Config;
  transformer: GPT2Model;
  lm_head: Linear;

  constructor(config: GPT2Config, opts: ModelFactoryOptions = {}) {
    super();
    this.config = config;
    this.transformer = new GPT2Model(config, opts);
    this.lm_head = new Linear(config.hiddenSize, config.vocabSize, { ...opts, bias: false });
    this.tieWeightsIfConfigured();
  }

  /**
   * transformers' GPT-2 init: N(0, initializer_range²) weights (Linear, Conv1D, Embedding), zero biases,
   * LayerNorm ones/zeros, and c_proj weights scaled by 1/√(2·n_layer) (GPT-2 paper's residual scaling).
   */
  initWeights(): this {
    const std = this.config.initializerRange;
    noGrad(() => {
      for (const [name, m] of this.namedModules()) {
        if (m instanceof Linear || m instanceof Conv1D || m instanceof Embedding) {
          if (m.weight.device === 'meta') continue;
          const scaled = m instanceof Conv1D && name.endsWith('c_proj');
          init.normal_(m.weight, 0, scaled ? std / Math.sqrt(2 * this.config.numHiddenLayers) : std);
          if (!(m instanceof Embedding) && m.bias) init.zeros_(m.bias);
        } else if (m instanceof LayerNorm) {
          if (m.weight && m.weight.device !== 'meta') init.ones_(m.weight);
          if (m.bias && m.bias.device !== 'meta') init.zeros_(m.bias);
        }
      }
    });
    return this;
  }

  protected decoder(): DecoderParts<GPT2LayerContext> {
    const t = this.transformer;
    return { model: t, embed: (x) => t.embed(x), layers: t.h, finalNorm: t.ln_f, embedTokens: t.wte };
  }
}
