// config.json as Hugging Face writes it, read into typed configs. The JSON keeps transformers' snake_case
// names (it is the on-disk format); the parsed configs use camelCase. Both transformers 4 and 5 spellings
// are accepted: rope_theta + rope_scaling (4) or rope_parameters {rope_type, rope_theta, ...} (5), and
// torch_dtype (4) or dtype (5). Keys a parser does not model are kept in the parsed config's `extra`, and
// configToJSON (the inverse of the parsers) writes them back, so a load -> save keeps them.
import * as fs from 'fs';
import * as path from 'path';
import { DType } from '../dtype';
import { readJsonObject } from '../io/json-file';
import { pythonJsonDumps } from '../io/python-json';

/** config.json as parsed JSON: transformers' own key names. */
export type HFConfig = Record<string, unknown>;

/** Rotary position embedding parameters, whichever transformers version wrote them. */
export interface RopeParameters {
  /** 'default' | 'linear' | 'dynamic' | 'yarn' | 'longrope' | 'llama3' (others are refused when a model is built). */
  ropeType: string;
  ropeTheta: number;
  partialRotaryFactor: number;
  /** linear, dynamic, yarn, longrope and llama3: how much the context was stretched. */
  factor?: number;
  /** llama3 only. */
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** llama3, yarn and longrope: the pretraining context (transformers defaults it to max_position_embeddings). */
  originalMaxPositionEmbeddings?: number;
  /** yarn and longrope: the cos/sin multiplier (derived from factor when absent). */
  attentionFactor?: number;
  /** yarn only. */
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  truncate?: boolean;
  /** longrope only: per-frequency divisors beyond / within original_max_position_embeddings. */
  longFactor?: number[];
  shortFactor?: number[];
  /** Keys of rope_parameters not modeled above (another type's parameters, an old `type`), kept as they were. */
  extra?: Record<string, unknown>;
}

/** What every architecture's parsed config has (GPT-2's own key names in its config.json are noted there). */
interface BaseCausalLMConfig {
  architectures: string[];
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  initializerRange: number;
  tieWordEmbeddings: boolean;
  padTokenId?: number;
  bosTokenId?: number | number[];
  eosTokenId?: number | number[];
  /** The dtype the checkpoint was saved in (torch_dtype / dtype), if the config says. */
  dtype?: DType;
  /**
   * The config.json keys the fields do not hold (use_cache, transformers_version, ...), as they were;
   * configToJSON writes them back. transformers 4 spellings of modeled values (torch_dtype, rope_theta,
   * rope_scaling, a top-level partial_rotary_factor) are kept here too and rewritten with the current
   * values, so that a reader of that spelling sees the same model.
   */
  extra?: HFConfig;
}

/**
 * Llama and the families built on it (Mistral, Qwen2, Qwen3, ...): modelType says which; a family's
 * own fields are in its file's config type, which extends this one.
 */
export interface LlamaConfig extends BaseCausalLMConfig {
  modelType: string;
  numKeyValueHeads: number;
  headDim: number;
  hiddenAct: string;
  rmsNormEps: number;
  rope: RopeParameters;
  attentionBias: boolean;
  attentionDropout: number;
  mlpBias: boolean;
  /**
   * Per layer, transformers' layer_types: 'full_attention' or 'sliding_attention' (which attends to the
   * last slidingWindow keys only). Absent: every layer is full attention.
   */
  layerTypes?: string[];
  /** The window of 'sliding_attention' layers (keys q - window < k <= q), as transformers' sliding_window. */
  slidingWindow?: number;
}

/**
 * GPT-2's config.json names: n_positions (maxPositionEmbeddings), n_embd (hiddenSize), n_layer
 * (numHiddenLayers), n_head (numAttentionHeads), n_inner (intermediateSize; 4 × n_embd when null).
 */
export interface GPT2Config extends BaseCausalLMConfig {
  modelType: 'gpt2';
  activationFunction: string;
  residPdrop: number;
  embdPdrop: number;
  attnPdrop: number;
  layerNormEpsilon: number;
  scaleAttnWeights: boolean;
  scaleAttnByInverseLayerIdx: boolean;
  reorderAndUpcastAttn: boolean;
}

export type CausalLMConfig = LlamaConfig | GPT2Config;

/** Reads `dir/config.json` (or a path to a .json file). */
export function readConfig(dirOrFile: string): HFConfig {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`no config.json: '${file}' does not exist`);
  return readJsonObject(file, 'config');
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
/** A dropout probability, as nn.Dropout takes it: a number in [0, 1]. */
function prob(c: HFConfig, key: string, fallback: number): number {
  const v = num(c, key, fallback);
  if (!(v >= 0 && v <= 1)) throw new Error(`config: '${key}' must be a probability in [0, 1], got ${v}`);
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
  if (typeof theta !== 'number' || !(theta > 0) || !Number.isFinite(theta)) throw new Error(`config: rope_theta must be a positive number, got ${String(theta)}`);
  const n = (k: string): number | undefined => {
    const v = params[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`config: rope parameter '${k}' must be a finite number, got ${String(v)}`);
    return v;
  };
  const list = (k: string): number[] | undefined => {
    const v = params[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number'))
      throw new Error(`config: rope parameter '${k}' must be a list of numbers, got ${JSON.stringify(v)}`);
    return [...(v as number[])];
  };
  const prf = n('partial_rotary_factor') ?? (typeof c.partial_rotary_factor === 'number' ? c.partial_rotary_factor : 1);
  const out: RopeParameters = {
    ropeType: type,
    ropeTheta: theta,
    partialRotaryFactor: prf,
    factor: n('factor'),
    lowFreqFactor: n('low_freq_factor'),
    highFreqFactor: n('high_freq_factor'),
    originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
  };
  // Only the keys present are set, so that a parsed config of another rope type stays as it was.
  const optional: [keyof RopeParameters, string, 'n' | 'l' | 'b'][] = [
    ['attentionFactor', 'attention_factor', 'n'],
    ['betaFast', 'beta_fast', 'n'],
    ['betaSlow', 'beta_slow', 'n'],
    ['mscale', 'mscale', 'n'],
    ['mscaleAllDim', 'mscale_all_dim', 'n'],
    ['truncate', 'truncate', 'b'],
    ['longFactor', 'long_factor', 'l'],
    ['shortFactor', 'short_factor', 'l'],
  ];
  for (const [field, key, kind] of optional) {
    const raw = params[key];
    if (raw === undefined || raw === null) continue;
    if (kind === 'b' && typeof raw !== 'boolean') throw new Error(`config: rope parameter '${key}' must be true or false, got ${JSON.stringify(raw)}`);
    const v = kind === 'n' ? n(key) : kind === 'l' ? list(key) : raw;
    (out as unknown as Record<string, unknown>)[field] = v;
  }
  // Phi-3 keeps original_max_position_embeddings beside rope_scaling; transformers moves it in (and prefers it).
  if (['llama3', 'yarn', 'longrope'].includes(type) && typeof c.original_max_position_embeddings === 'number')
    out.originalMaxPositionEmbeddings = c.original_max_position_embeddings;
  const extra = unmodeled(params, ROPE_KEYS);
  if (Object.keys(extra).length) out.extra = extra;
  return out;
}

/** The rope_parameters keys RopeParameters models. */
const ROPE_KEYS = [
  'rope_type',
  'rope_theta',
  'partial_rotary_factor',
  'factor',
  'low_freq_factor',
  'high_freq_factor',
  'original_max_position_embeddings',
  'attention_factor',
  'beta_fast',
  'beta_slow',
  'mscale',
  'mscale_all_dim',
  'truncate',
  'long_factor',
  'short_factor',
];

/** A deep copy of the keys of `c` not in `keys` (JSON values: structuredClone copies them exactly). */
function unmodeled(c: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!keys.includes(k)) setKey(out, k, structuredClone(v));
  return out;
}

/** Sets a key even when it is '__proto__' (a JSON key; plain assignment would change the prototype). */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function architectures(c: HFConfig, fallback: string): string[] {
  const a = c.architectures;
  if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return a as string[];
  return [fallback];
}

/** The config.json keys parseLlamaConfig reads into fields (transformers 5's names). */
const LLAMA_KEYS = [
  'model_type',
  'architectures',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'hidden_act',
  'max_position_embeddings',
  'initializer_range',
  'rms_norm_eps',
  'rope_parameters',
  'attention_bias',
  'attention_dropout',
  'mlp_bias',
  'tie_word_embeddings',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'dtype',
];

/**
 * What a family built on Llama changes in reading and writing config.json: its model_type and class name,
 * the defaults of its transformers config class where they differ from LlamaConfig's, the Llama keys its
 * config class lacks, and its own keys (read by parse into its config type, written back by write).
 */
export interface LlamaFamilySpec<C extends LlamaConfig = LlamaConfig> {
  modelType: string;
  /** The ForCausalLM class name, for a config.json without architectures. */
  className: string;
  /** config.json defaults (transformers' names) that differ from LlamaConfig's; null: absent by default. */
  defaults?: HFConfig;
  /**
   * Llama keys the family's config class does not have (e.g. mlp_bias): not read (the Llama default
   * holds), kept among the unknown keys if a config.json has them, and not written otherwise.
   */
  omit?: string[];
  /** The family's own config.json keys (kept out of `extra`). */
  keys?: string[];
  /** The family's own fields, from config.json and the Llama fields parsed so far. */
  parse?(c: HFConfig, base: LlamaConfig): Omit<C, keyof LlamaConfig> & Partial<LlamaConfig>;
  /** config.json's values of the family's own keys (undefined: a Llama key not to write). */
  write?(c: C): HFConfig;
}

const LLAMA_FAMILY: LlamaFamilySpec = { modelType: 'llama', className: 'LlamaForCausalLM' };
const FAMILIES = new Map<string, LlamaFamilySpec>([['llama', LLAMA_FAMILY]]);

/** Makes configToJSON write configs of a family built on Llama (each family file registers its spec). */
export function registerLlamaFamily<C extends LlamaConfig>(spec: LlamaFamilySpec<C>): LlamaFamilySpec<C> {
  FAMILIES.set(spec.modelType, spec as unknown as LlamaFamilySpec);
  return spec;
}

/** The config.json readers the parsers use, for family files: the key in an error is the config.json key. */
export const configField = { num, int, bool, str, optInt, tokenIds };

/**
 * transformers' layer_types for families with an optional window (Qwen2, Qwen3): config.json's own list,
 * else 'sliding_attention' from layer max_window_layers on when the window is used.
 */
export function windowLayerTypes(c: HFConfig, numLayers: number, slidingWindow: number | undefined, maxWindowLayers: number): string[] {
  if (slidingWindow === 0) throw new Error("config: 'sliding_window' must be a positive integer (or null for full attention), got 0");
  const given = c.layer_types;
  if (given !== undefined && given !== null) {
    if (!Array.isArray(given) || given.length !== numLayers || !given.every((t) => t === 'full_attention' || t === 'sliding_attention'))
      throw new Error(
        `config: 'layer_types' must list 'full_attention' or 'sliding_attention' for each of the ${numLayers} layers, got ${JSON.stringify(given)}`,
      );
    if (slidingWindow === undefined && given.includes('sliding_attention'))
      throw new Error("config: 'layer_types' has 'sliding_attention' layers but there is no sliding_window (or use_sliding_window is false)");
    return [...(given as string[])];
  }
  return Array.from({ length: numLayers }, (_, i) => (slidingWindow !== undefined && i >= maxWindowLayers ? 'sliding_attention' : 'full_attention'));
}

/** LlamaConfig (or a family's, given its spec) with transformers' defaults for absent keys. */
export function parseLlamaConfig<C extends LlamaConfig = LlamaConfig>(c: HFConfig, spec?: LlamaFamilySpec<C>): C {
  const family = (spec ?? LLAMA_FAMILY) as LlamaFamilySpec<C>;
  const omit = family.omit ?? [];
  const all = c;
  if (omit.length) {
    c = { ...c };
    for (const k of omit) delete c[k];
  }
  const d = <T>(key: string, fallback: T): T => (family.defaults && key in family.defaults ? (family.defaults[key] as T) : fallback);
  const hiddenSize = int(c, 'hidden_size', d('hidden_size', 4096));
  const numAttentionHeads = int(c, 'num_attention_heads', d('num_attention_heads', 32));
  if (numAttentionHeads === 0) throw new Error('config: num_attention_heads must be positive');
  const numKeyValueHeads = int(c, 'num_key_value_heads', d<number | null>('num_key_value_heads', null) ?? numAttentionHeads);
  if (numKeyValueHeads === 0 || numAttentionHeads % numKeyValueHeads !== 0)
    throw new Error(
      `config: num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`,
    );
  const headDim = optInt(c, 'head_dim') ?? d<number | null>('head_dim', null) ?? Math.floor(hiddenSize / numAttentionHeads);
  if (headDim === 0) throw new Error('config: head_dim must be positive');
  const orUndefined = <T>(v: T | null): T | undefined => (v === null ? undefined : v);
  const base: LlamaConfig = {
    modelType: family.modelType,
    architectures: architectures(c, family.className),
    vocabSize: int(c, 'vocab_size', d('vocab_size', 32000)),
    hiddenSize,
    intermediateSize: int(c, 'intermediate_size', d('intermediate_size', 11008)),
    numHiddenLayers: int(c, 'num_hidden_layers', d('num_hidden_layers', 32)),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: str(c, 'hidden_act', d('hidden_act', 'silu')),
    maxPositionEmbeddings: int(c, 'max_position_embeddings', d('max_position_embeddings', 2048)),
    initializerRange: num(c, 'initializer_range', d('initializer_range', 0.02)),
    rmsNormEps: num(c, 'rms_norm_eps', d('rms_norm_eps', 1e-6)),
    rope: ropeParameters({ rope_theta: d('rope_theta', 10000), ...c }),
    attentionBias: bool(c, 'attention_bias', d('attention_bias', false)),
    attentionDropout: prob(c, 'attention_dropout', d('attention_dropout', 0)),
    mlpBias: bool(c, 'mlp_bias', d('mlp_bias', false)),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', d('tie_word_embeddings', false)),
    padTokenId: optInt(c, 'pad_token_id'),
    bosTokenId: tokenIds(c, 'bos_token_id', orUndefined(d<number | null>('bos_token_id', 1))),
    eosTokenId: tokenIds(c, 'eos_token_id', orUndefined(d<number | null>('eos_token_id', 2))),
    dtype: configDType(c),
    extra: unmodeled(all, [...LLAMA_KEYS.filter((k) => !omit.includes(k)), ...(family.keys ?? [])]),
  };
  return { ...base, ...(family.parse?.(c, base) ?? {}) } as C;
}

/** The config.json keys parseGPT2Config reads into fields; the attribute-map names are read when the own ones are absent and dropped on save (as transformers does). */
const GPT2_KEYS = [
  'model_type',
  'architectures',
  'vocab_size',
  'n_positions',
  'n_embd',
  'n_layer',
  'n_head',
  'n_inner',
  'activation_function',
  'resid_pdrop',
  'embd_pdrop',
  'attn_pdrop',
  'layer_norm_epsilon',
  'initializer_range',
  'scale_attn_weights',
  'scale_attn_by_inverse_layer_idx',
  'reorder_and_upcast_attn',
  'tie_word_embeddings',
  'pad_token_id',
  'bos_token_id',
  'eos_token_id',
  'dtype',
  'hidden_size',
  'max_position_embeddings',
  'num_hidden_layers',
  'num_attention_heads',
];

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
    residPdrop: prob(c, 'resid_pdrop', 0.1),
    embdPdrop: prob(c, 'embd_pdrop', 0.1),
    attnPdrop: prob(c, 'attn_pdrop', 0.1),
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
    extra: unmodeled(c, GPT2_KEYS),
  };
}

// ---- the inverse: a parsed config -> config.json ----

export interface ConfigToJSONOptions {
  /** The dtype to write (default: the config's); savePretrained passes the weights' dtype. */
  dtype?: DType;
  /** Default: the config's architectures; savePretrained passes the model's class name, as transformers. */
  architectures?: string[];
}

/** Optional values are written as null when absent, as transformers writes an unset pad_token_id. */
const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/**
 * The extra keys first (so that a modeled key always wins over a stale copy), then `fields`, then the
 * transformers 4 spellings the source config had, rewritten with the values being written.
 */
function assemble(extra: HFConfig | undefined, fields: HFConfig, dtype: DType | undefined): HFConfig {
  const out: HFConfig = {};
  for (const [k, v] of Object.entries(extra ?? {})) setKey(out, k, structuredClone(v));
  for (const [k, v] of Object.entries(fields)) setKey(out, k, v);
  if (dtype !== undefined) {
    out.dtype = dtype;
    if ('torch_dtype' in out) out.torch_dtype = dtype;
  }
  return out;
}

/** rope_parameters as transformers 5 writes it: the modeled values over the kept unknown ones. */
export function ropeToJSON(r: RopeParameters): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.extra ?? {})) setKey(out, k, structuredClone(v));
  out.rope_type = r.ropeType;
  if ('type' in out) out.type = r.ropeType; // the old name of rope_type, kept in step
  out.rope_theta = r.ropeTheta;
  if (r.partialRotaryFactor !== 1) out.partial_rotary_factor = r.partialRotaryFactor;
  if (r.factor !== undefined) out.factor = r.factor;
  if (r.lowFreqFactor !== undefined) out.low_freq_factor = r.lowFreqFactor;
  if (r.highFreqFactor !== undefined) out.high_freq_factor = r.highFreqFactor;
  if (r.originalMaxPositionEmbeddings !== undefined) out.original_max_position_embeddings = r.originalMaxPositionEmbeddings;
  if (r.attentionFactor !== undefined) out.attention_factor = r.attentionFactor;
  if (r.betaFast !== undefined) out.beta_fast = r.betaFast;
  if (r.betaSlow !== undefined) out.beta_slow = r.betaSlow;
  if (r.mscale !== undefined) out.mscale = r.mscale;
  if (r.mscaleAllDim !== undefined) out.mscale_all_dim = r.mscaleAllDim;
  if (r.truncate !== undefined) out.truncate = r.truncate;
  if (r.longFactor !== undefined) out.long_factor = [...r.longFactor];
  if (r.shortFactor !== undefined) out.short_factor = [...r.shortFactor];
  return out;
}

/**
 * config.json's object for a LlamaConfig (or a registered family's), with transformers 5's key names
 * (parseLlamaConfig's inverse).
 */
export function llamaConfigToJSON(c: LlamaConfig, opts: ConfigToJSONOptions = {}): HFConfig {
  const family = FAMILIES.get(c.modelType);
  if (family === undefined)
    throw new Error(`configToJSON: model_type '${c.modelType}' is not a registered family; known: ${[...FAMILIES.keys(), 'gpt2'].join(', ')}`);
  const rope = ropeToJSON(c.rope);
  const fields: HFConfig = {
      architectures: [...(opts.architectures ?? c.architectures)],
      attention_bias: c.attentionBias,
      attention_dropout: c.attentionDropout,
      bos_token_id: orNull(c.bosTokenId),
      eos_token_id: orNull(c.eosTokenId),
      head_dim: c.headDim,
      hidden_act: c.hiddenAct,
      hidden_size: c.hiddenSize,
      initializer_range: c.initializerRange,
      intermediate_size: c.intermediateSize,
      max_position_embeddings: c.maxPositionEmbeddings,
      mlp_bias: c.mlpBias,
      model_type: c.modelType,
      num_attention_heads: c.numAttentionHeads,
      num_hidden_layers: c.numHiddenLayers,
      num_key_value_heads: c.numKeyValueHeads,
      pad_token_id: orNull(c.padTokenId),
      rms_norm_eps: c.rmsNormEps,
      rope_parameters: rope,
      tie_word_embeddings: c.tieWordEmbeddings,
      vocab_size: c.vocabSize,
    };
  for (const k of family.omit ?? []) delete fields[k];
  // a family's write() may drop a Llama key by giving it undefined
  for (const [k, v] of Object.entries(family.write?.(c) ?? {})) {
    if (v === undefined) delete fields[k];
    else setKey(fields, k, v);
  }
  const out = assemble(c.extra, fields, opts.dtype ?? c.dtype);
  // transformers 4 spellings of the rope values, where the source config used them.
  if ('rope_theta' in out) out.rope_theta = c.rope.ropeTheta;
  if ('partial_rotary_factor' in out) out.partial_rotary_factor = c.rope.partialRotaryFactor;
  if ('rope_scaling' in out) {
    // transformers 5 prefers a non-null rope_scaling over rope_parameters, so it must say the same.
    const { rope_theta: _theta, ...scaling } = rope;
    const old = out.rope_scaling as Record<string, unknown> | null;
    // An old rope_scaling that named its type `type` only keeps that spelling.
    if (old !== null && typeof old === 'object' && 'type' in old && !('rope_type' in old)) delete scaling.rope_type;
    const onlyType = Object.keys(scaling).every((k) => k === 'rope_type' || k === 'type');
    out.rope_scaling = c.rope.ropeType === 'default' && onlyType ? null : scaling;
  }
  return out;
}

/** config.json's object for a GPT2Config (parseGPT2Config's inverse): GPT-2's own names (n_embd, n_layer ...). */
export function gpt2ConfigToJSON(c: GPT2Config, opts: ConfigToJSONOptions = {}): HFConfig {
  return assemble(
    c.extra,
    {
      activation_function: c.activationFunction,
      architectures: [...(opts.architectures ?? c.architectures)],
      attn_pdrop: c.attnPdrop,
      bos_token_id: orNull(c.bosTokenId),
      embd_pdrop: c.embdPdrop,
      eos_token_id: orNull(c.eosTokenId),
      initializer_range: c.initializerRange,
      layer_norm_epsilon: c.layerNormEpsilon,
      model_type: 'gpt2',
      n_embd: c.hiddenSize,
      n_head: c.numAttentionHeads,
      // null means 4 × n_embd, as transformers writes its default
      n_inner: c.intermediateSize === 4 * c.hiddenSize ? null : c.intermediateSize,
      n_layer: c.numHiddenLayers,
      n_positions: c.maxPositionEmbeddings,
      pad_token_id: orNull(c.padTokenId),
      reorder_and_upcast_attn: c.reorderAndUpcastAttn,
      resid_pdrop: c.residPdrop,
      scale_attn_by_inverse_layer_idx: c.scaleAttnByInverseLayerIdx,
      scale_attn_weights: c.scaleAttnWeights,
      tie_word_embeddings: c.tieWordEmbeddings,
      vocab_size: c.vocabSize,
    },
    opts.dtype ?? c.dtype,
  );
}

/** Whether configToJSON can write configs of this model_type. */
export function hasConfigWriter(modelType: unknown): boolean {
  return modelType === 'gpt2' || (typeof modelType === 'string' && FAMILIES.has(modelType));
}

/** config.json's object for a parsed config of any architecture. */
export function configToJSON(c: CausalLMConfig, opts: ConfigToJSONOptions = {}): HFConfig {
  if (c.modelType === 'gpt2') return gpt2ConfigToJSON(c as GPT2Config, opts);
  if (hasConfigWriter(c.modelType)) return llamaConfigToJSON(c as LlamaConfig, opts);
  throw new Error(
    `configToJSON: unknown modelType '${(c as { modelType?: unknown }).modelType}'; known: ${[...FAMILIES.keys(), 'gpt2'].join(', ')}`,
  );
}

/**
 * Keys whose numbers transformers' configs hold as floats (written 0.0, 10000.0, 1e-06, as Python writes
 * them); JavaScript numbers do not say, and other whole numbers are written as ints.
 */
const FLOAT_KEYS = [
  'attention_dropout',
  'initializer_range',
  'rms_norm_eps',
  'layer_norm_epsilon',
  'attn_pdrop',
  'embd_pdrop',
  'resid_pdrop',
  'summary_first_dropout',
  'rope_theta',
  'partial_rotary_factor',
  'factor',
  'low_freq_factor',
  'high_freq_factor',
  'attention_factor',
  'beta_fast',
  'beta_slow',
  'mscale',
  'mscale_all_dim',
  'attn_logit_softcapping',
  'final_logit_softcapping',
  'long_factor',
  'short_factor',
];

/** The text of config.json as transformers writes it: json.dumps(indent=2, sort_keys=True) and a newline. */
export function configJSONString(config: HFConfig): string {
  return pythonJsonDumps(config, FLOAT_KEYS) + '\n';
}
