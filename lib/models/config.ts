// config.json as Hugging Face writes it, read into typed configs. The JSON keeps transformers' snake_case
// names (it is the on-disk format); the parsed configs use camelCase. Both transformers 4 and 5 spellings
// are accepted: rope_theta + rope_scaling (4) or rope_parameters {rope_type, rope_theta, ...} (5), and
// torch_dtype (4) or dtype (5).
import * as fs from 'fs';
import * as path from 'path';
import { DType } from '../dtype';

/** config.json as parsed JSON: transformers' own key names. */
export type HFConfig = Record<string, unknown>;

/** Rotary position embedding parameters, whichever transformers version wrote them. */
export interface RopeParameters {
  /** 'default' | 'linear' | 'llama3' (other types are refused with a clear error when a model is built). */
  ropeType: string;
  ropeTheta: number;
  partialRotaryFactor: number;
  /** linear and llama3: how much the context was stretched. */
  factor?: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface LlamaConfig {
  modelType: 'llama';
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  hiddenAct: string;
  maxPositionEmbeddings: number;
  initializerRange: number;
  rmsNormEps: number;
  rope: RopeParameters;
  attentionBias: boolean;
  attentionDropout: number;
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  padTokenId?: number;
  bosTokenId?: number | number[];
  eosTokenId?: number | number[];
  /** The dtype the checkpoint was saved in (torch_dtype / dtype), if the config says. */
  dtype?: DType;
}

export interface GPT2Config {
  modelType: 'gpt2';
  architectures: string[];
  vocabSize: number;
  /** n_positions */
  maxPositionEmbeddings: number;
  /** n_embd */
  hiddenSize: number;
  /** n_layer */
  numHiddenLayers: number;
  /** n_head */
  numAttentionHeads: number;
  /** n_inner (4 × n_embd when null) */
  intermediateSize: number;
  activationFunction: string;
  residPdrop: number;
  embdPdrop: number;
  attnPdrop: number;
  layerNormEpsilon: number;
  initializerRange: number;
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  reorderAndUpcastAttn: boolean;
  tieWordEmbeddings: boolean;
  padTokenId?: number;
  bosTokenId?: number | number[];
  eosTokenId?: number | number[];
  dtype?: DType;
}

export type CausalLMConfig = LlamaConfig | GPT2Config;

/** Reads `dir/config.json` (or a path to a .json file). */
export function readConfig(dirOrFile: string): HFConfig {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`no config.json: '${file}' does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`'${file}' is not valid JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`'${file}' must hold a JSON object`);
  return raw as HFConfig;
}

// ---- field readers: the key in the message is the config.json key ----

function num(c: HFConfig, key: string, fallback?: number): number {
  const v = c[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new Error(`config: '${key}' is required`);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`config: '${key}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}
function int(c: HFConfig, key: string, fallback?: number): number {
  const v = num(c, key, fallback);
  if (!Number.isInteger(v) || v < 0) throw new Error(`config: '${key}' must be a non-negative integer, got ${v}`);
  return v;
}
function bool(c: HFConfig, key: string, fallback: boolean): boolean {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new Error(`config: '${key}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
function str(c: HFConfig, key: string, fallback: string): string {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new Error(`config: '${key}' must be a string, got ${JSON.stringify(v)}`);
  return v;
}
function tokenIds(c: HFConfig, key: string, fallback?: number): number | number[] | undefined {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return v as number[];
  throw new Error(`config: '${key}' must be a token id or a list of them, got ${JSON.stringify(v)}`);
}
function optInt(c: HFConfig, key: string): number | undefined {
  const v = c[key];
  if (v === undefined || v === null) return undefined;
  return int(c, key);
}

const DTYPES: Record<string, DType> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  float64: 'float64',
  double: 'float64',
};

/** torch_dtype (transformers 4) or dtype (transformers 5): 'bfloat16', 'torch.float16', ... ('auto' -> undefined). */
export function configDType(c: HFConfig): DType | undefined {
  const v = c.dtype ?? c.torch_dtype;
  if (v === undefined || v === null || v === 'auto') return undefined;
  if (typeof v !== 'string') throw new Error(`config: 'dtype' must be a string, got ${JSON.stringify(v)}`);
  const d = DTYPES[v.replace(/^torch\./, '')];
  if (d === undefined) throw new Error(`config: dtype '${v}' is not one of ${Object.keys(DTYPES).join(', ')}`);
  return d;
}

/**
 * The rope parameters from rope_parameters (transformers 5) or rope_theta + rope_scaling (4); an old
 * rope_scaling may say `type` instead of `rope_type`.
 */
export function ropeParameters(c: HFConfig): RopeParameters {
  const params = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  if (typeof params !== 'object' || Array.isArray(params))
    throw new Error(`config: 'rope_parameters' / 'rope_scaling' must be an object, got ${JSON.stringify(params)}`);
  const type = params.rope_type ?? params.type ?? 'default';
  if (typeof type !== 'string') throw new Error(`config: rope_type must be a string, got ${JSON.stringify(type)}`);
  const theta = params.rope_theta ?? c.rope_theta ?? 10000;
  if (typeof theta !== 'number') throw new Error(`config: rope_theta must be a number, got ${JSON.stringify(theta)}`);
  const n = (k: string): number | undefined => {
    const v = params[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new Error(`config: rope parameter '${k}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const prf = n('partial_rotary_factor') ?? (typeof c.partial_rotary_factor === 'number' ? c.partial_rotary_factor : 1);
  return {
    ropeType: type,
    ropeTheta: theta,
    partialRotaryFactor: prf,
    factor: n('factor'),
    lowFreqFactor: n('low_freq_factor'),
    highFreqFactor: n('high_freq_factor'),
    originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
  };
}

function architectures(c: HFConfig, fallback: string): string[] {
  const a = c.architectures;
  if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return a as string[];
  return [fallback];
}

/** LlamaConfig with transformers' defaults for absent keys. */
export function parseLlamaConfig(c: HFConfig): LlamaConfig {
  const hiddenSize = int(c, 'hidden_size', 4096);
  const numAttentionHeads = int(c, 'num_attention_heads', 32);
  if (numAttentionHeads === 0) throw new Error('config: num_attention_heads must be positive');
  const numKeyValueHeads = int(c, 'num_key_value_heads', numAttentionHeads);
  if (numKeyValueHeads === 0 || numAttentionHeads % numKeyValueHeads !== 0)
    throw new Error(
      `config: num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`,
    );
  const headDim = optInt(c, 'head_dim') ?? Math.floor(hiddenSize / numAttentionHeads);
  return {
    modelType: 'llama',
    architectures: architectures(c, 'LlamaForCausalLM'),
    vocabSize: int(c, 'vocab_size', 32000),
    hiddenSize,
    intermediateSize: int(c, 'intermediate_size', 11008),
    numHiddenLayers: int(c, 'num_hidden_layers', 32),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: str(c, 'hidden_act', 'silu'),
    maxPositionEmbeddings: int(c, 'max_position_embeddings', 2048),
    initializerRange: num(c, 'initializer_range', 0.02),
    rmsNormEps: num(c, 'rms_norm_eps', 1e-6),
    rope: ropeParameters(c),
    attentionBias: bool(c, 'attention_bias', false),
    attentionDropout: num(c, 'attention_dropout', 0),
    mlpBias: bool(c, 'mlp_bias', false),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
    padTokenId: optInt(c, 'pad_token_id'),
    bosTokenId: tokenIds(c, 'bos_token_id', 1),
    eosTokenId: tokenIds(c, 'eos_token_id', 2),
    dtype: configDType(c),
  };
}

/** GPT2Config with transformers' defaults; accepts the attribute-map names (hidden_size ...) too. */
export function parseGPT2Config(c: HFConfig): GPT2Config {
  const alias = (key: string, other: string) => (c[key] !== undefined ? key : c[other] !== undefined ? other : key);
  const hiddenSize = int(c, alias('n_embd', 'hidden_size'), 768);
  const numAttentionHeads = int(c, alias('n_head', 'num_attention_heads'), 12);
  if (numAttentionHeads === 0 || hiddenSize % numAttentionHeads !== 0)
    throw new Error(`config: n_embd (${hiddenSize}) must be divisible by n_head (${numAttentionHeads})`);
  return {
    modelType: 'gpt2',
    architectures: architectures(c, 'GPT2LMHeadModel'),
    vocabSize: int(c, 'vocab_size', 50257),
    maxPositionEmbeddings: int(c, alias('n_positions', 'max_position_embeddings'), 1024),
    hiddenSize,
    numHiddenLayers: int(c, alias('n_layer', 'num_hidden_layers'), 12),
    numAttentionHeads,
    intermediateSize: optInt(c, 'n_inner') ?? 4 * hiddenSize,
    activationFunction: str(c, 'activation_function', 'gelu_new'),
    residPdrop: num(c, 'resid_pdrop', 0.1),
    embdPdrop: num(c, 'embd_pdrop', 0.1),
    attnPdrop: num(c, 'attn_pdrop', 0.1),
    layerNormEpsilon: num(c, 'layer_norm_epsilon', 1e-5),
    initializerRange: num(c, 'initializer_range', 0.02),
    scaleAttnWeights: bool(c, 'scale_attn_weights', true),
    scaleAttnByInverseLayerIdx: bool(c, 'scale_attn_by_inverse_layer_idx', false),
    reorderAndUpcastAttn: bool(c, 'reorder_and_upcast_attn', false),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', true),
    padTokenId: optInt(c, 'pad_token_id'),
    bosTokenId: tokenIds(c, 'bos_token_id', 50256),
    eosTokenId: tokenIds(c, 'eos_token_id', 50256),
    dtype: configDType(c),
  };
}
