// Phi3ForCausalLM as transformers 5 builds it (Phi-3, 3.5, Phi-4, Phi-4-mini): the Llama graph (by way of
// Mistral) plus: q, k and v come from one fused qkv_proj and gate and up from one gate_up_proj (LoRA
// targets the fused modules, as PEFT does); only the first partial_rotary_factor of each head is rotated;
// rope scaling is usually longrope (old configs say 'su'); with sliding_window every layer attends to a
// window; the residual branches have dropout (resid_pdrop).
import { cat } from '../ops';
import { swiglu } from '../functional';
import { scope } from '../memory';
import { Dropout, getActivation, Linear, Module, SiLU, SiLUActivation } from '../nn';
import { Tensor } from '../tensor';
import { ModelFactoryOptions } from './causal-lm';
import { configField, HFConfig, LlamaConfig, parseLlamaConfig, registerLlamaFamily } from './config';
import {
  applyRotaryPosEmb,
  LlamaAttention,
  LlamaDecoderLayer,
  LlamaForCausalLM,
  LlamaLayerContext,
  LlamaModel,
  LlamaParts,
  LlamaRMSNorm,
  LlamaRotaryEmbedding,
} from './llama';

export interface Phi3Config extends LlamaConfig {
  residPdrop: number;
  embdPdrop: number;
  /** The pretraining context (longrope switches to long_factor past it). */
  originalMaxPositionEmbeddings: number;
}

/** transformers' Phi3Config: Phi-3-mini's defaults, no head_dim, attention_bias or mlp_bias keys. */
export const PHI3_FAMILY = registerLlamaFamily<Phi3Config>({
  modelType: 'phi3',
  className: 'Phi3ForCausalLM',
  defaults: {
    vocab_size: 32064,
    hidden_size: 3072,
    intermediate_size: 8192,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    bos_token_id: 1,
    eos_token_id: 32000,
  },
  omit: ['mlp_bias', 'head_dim', 'attention_bias'],
  keys: ['resid_pdrop', 'embd_pdrop', 'original_max_position_embeddings', 'sliding_window'],
  parse: (c, base) => {
    const slidingWindow = configField.optInt(c, 'sliding_window');
    // Phi-3's first long-context configs named longrope 'su' (or 'yarn'); transformers reads both as longrope.
    const rope = ['su', 'yarn'].includes(base.rope.ropeType) ? { ...base.rope, ropeType: 'longrope' } : base.rope;
    return {
      residPdrop: configField.num(c, 'resid_pdrop', 0),
      embdPdrop: configField.num(c, 'embd_pdrop', 0),
      originalMaxPositionEmbeddings: configField.int(c, 'original_max_position_embeddings', 4096),
      padTokenId: c.pad_token_id === undefined ? 32000 : configField.optInt(c, 'pad_token_id'),
      slidingWindow,
      layerTypes: slidingWindow === undefined ? undefined : Array.from({ length: base.numHiddenLayers }, () => 'sliding_attention'),
      rope,
    };
  },
  write: (c) => ({
    embd_pdrop: c.embdPdrop,
    original_max_position_embeddings: c.originalMaxPositionEmbeddings,
    resid_pdrop: c.residPdrop,
    sliding_window: c.slidingWindow ?? null,
  }),
});

export function parsePhi3Config(c: HFConfig): Phi3Config {
  return parseLlamaConfig(c, PHI3_FAMILY);
}

export class Phi3RMSNorm extends LlamaRMSNorm {}
export class Phi3RotaryEmbedding extends LlamaRotaryEmbedding {}

export class Phi3Attention extends LlamaAttention {
  // `declare`: set by createProjections during the base constructor, not reset after it.
  declare qkv_proj: Linear;

  /** o_proj, then the fused qkv_proj [q heads | k heads | v heads], as transformers orders them. */
  protected createProjections(config: LlamaConfig, opts: ModelFactoryOptions): void {
    const d = config.headDim;
    this.o_proj = new Linear(config.numAttentionHeads * d, config.hiddenSize, { ...opts, bias: false });
    const out = config.numAttentionHeads * d + 2 * config.numKeyValueHeads * d;
    this.qkv_proj = new Linear(config.hiddenSize, out, { ...opts, bias: false });
  }

  protected projectQKV(hidden: Tensor): [Tensor, Tensor, Tensor] {
    const [b, s] = hidden.shape;
    const qkv = this.qkv_proj.forward(hidden);
    const qn = this.numHeads * this.headDim;
    const kn = this.numKeyValueHeads * this.headDim;
    const part = (start: number, n: number, heads: number) => qkv.narrow(-1, start, n).reshape(b, s, heads, this.headDim).transpose(1, 2);
    return [part(0, qn, this.numHeads), part(qn, kn, this.numKeyValueHeads), part(qn + kn, kn, this.numKeyValueHeads)];
  }

  /** Rotates the first cos.size(-1) features of each head and passes the rest through. */
  protected rotate(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor] {
    const rd = cos.shape[cos.shape.length - 1];
    if (rd === this.headDim) return applyRotaryPosEmb(q, k, cos, sin);
    const rest = this.headDim - rd;
    const [qr, kr] = applyRotaryPosEmb(q.narrow(-1, 0, rd), k.narrow(-1, 0, rd), cos, sin);
    return [cat([qr, q.narrow(-1, rd, rest)], -1), cat([kr, k.narrow(-1, rd, rest)], -1)];
  }
}

/** down_proj(up · act(gate)) with [gate | up] = gate_up_proj(x). */
export class Phi3MLP extends Module {
  gate_up_proj: Linear;
  down_proj: Linear;
  activation_fn: Module;

  constructor(config: LlamaConfig, opts: ModelFactoryOptions = {}) {
    super();
    this.gate_up_proj = new Linear(config.hiddenSize, 2 * config.intermediateSize, { ...opts, bias: false });
    this.down_proj = new Linear(config.intermediateSize, config.hiddenSize, { ...opts, bias: false });
    this.activation_fn = getActivation(config.hiddenAct);
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const [gate, up] = this.gate_up_proj.forward(x).chunk(2, -1);
      // silu(gate)·up as one native node, as Llama's MLP (the product is commutative: the same floats)
      if (this.activation_fn instanceof SiLUActivation || this.activation_fn instanceof SiLU) return this.down_proj.forward(swiglu(gate, up));
      return this.down_proj.forward(up.mul(this.activation_fn.forward(gate) as Tensor));
    });
  }
}

export class Phi3DecoderLayer extends LlamaDecoderLayer {
  resid_attn_dropout: Dropout;
  resid_mlp_dropout: Dropout;

  constructor(config: LlamaConfig, layerIdx: number, opts: ModelFactoryOptions = {}, parts?: LlamaParts) {
    super(config, layerIdx, opts, parts);
    const p = (config as Phi3Config).residPdrop;
    this.resid_attn_dropout = new Dropout(p);
    this.resid_mlp_dropout = new Dropout(p);
  }

  /** Llama's pre-norm residual blocks with dropout on each branch. */
  forward(hidden: Tensor, ctx: LlamaLayerContext): Tensor {
    return scope(() => {
      const attn = this.self_attn.forward(this.input_layernorm.forward(hidden), ctx);
      const h = hidden.add(this.resid_attn_dropout.forward(attn) as Tensor);
      const mlp = this.mlp.forward(this.post_attention_layernorm.forward(h));
      return h.add(this.resid_mlp_dropout.forward(mlp) as Tensor);
    });
  }
}

export class Phi3Model extends LlamaModel {}

export const PHI3_PARTS: LlamaParts = {
  model: Phi3Model,
  decoderLayer: Phi3DecoderLayer,
  attention: Phi3Attention,
  // The decoder layer only calls mlp.forward(x): Phi-3's fused MLP shares nothing else with Llama's.
  mlp: Phi3MLP as unknown as LlamaParts['mlp'],
  rmsNorm: Phi3RMSNorm,
  rotaryEmbedding: Phi3RotaryEmbedding,
};

export class Phi3ForCausalLM extends LlamaForCausalLM {
  declare readonly config: Phi3Config;

  constructor(config: Phi3Config, opts: ModelFactoryOptions = {}, parts: LlamaParts = PHI3_PARTS) {
    super(config, opts, parts);
  }

  /**
   * When the sequence grows past original_max_position_embeddings, the cached keys were rotated with
   * longrope's short factors and the rest would use the long ones: Phi-3 (its
   * prepare_inputs_for_generation) drops the cache once and recomputes the whole sequence, so the result
   * is what a generate() without cache gives. (transformers 5.18 then runs only the last token, a
   * different, context-less result; we follow the intent and the uncached numbers, which agree.)
   */
  dropCacheBeforeStep(totalLength: number, pastLength: number): boolean {
    const original = this.config.originalMaxPositionEmbeddings;
    return totalLength >= original + 1 && pastLength <= original;
  }
}
