// A causal LM written as a Hugging Face model folder, as transformers' save_pretrained writes it:
// config.json and model.safetensors, or, when the weights exceed maxShardSize, shards
// model-00001-of-0000N.safetensors with model.safetensors.index.json. Tied weights are written once (under
// the input embedding's name), every file carries {"format": "pt"} and every file is written atomically.
// The native writer copies each tensor that is on a GPU or not contiguous to the CPU as it is written,
// one at a time, so a save never holds a second copy of the model.
import * as fs from 'fs';
import type { BitsAndBytesConfig } from '../quant/bnb-config';
import { Linear4bit } from '../quant/linear-4bit';
import { Linear8bit } from '../quant/linear-8bit';
import * as path from 'path';
import { DType, isFloatingPoint, ITEMSIZE } from '../dtype';
import { assertAllFinite } from '../finite';
import { saveSafetensors } from '../io/safetensors';
import { Module } from '../nn';
import { writeFileAtomic } from '../io/fs-atomic';
import { replaceFolder } from '../io/folder-swap';
import { Tensor } from '../tensor';
import { CausalLMConfig, configJSONString, configToJSON, hasConfigWriter } from './config';
import { GENERATION_CONFIG_NAME, GenerationConfig, generationConfigJSONString } from './generation-config';

export const CONFIG_NAME = 'config.json';
export const SAFE_WEIGHTS_NAME = 'model.safetensors';
export const SAFE_WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';
/** transformers' save_pretrained default (huggingface_hub's own default is 5GB). */
export const DEFAULT_MAX_SHARD_SIZE = '50GB';

/** transformers' safetensors metadata: it marks the file as PyTorch's. */
const METADATA = { format: 'pt' };
/** A shard of an earlier save: model-00002-of-00005.safetensors. */
const SHARD_FILE = /^model-\d{5}-of-\d{5}\.safetensors$/;

export interface SavePretrainedOptions {
  /**
   * The largest weight file: bytes, or a string of a number and a unit, 'KB', 'MB', 'GB' or 'TB' (powers
   * of 1000, as transformers: '5GB' is 5·10⁹ bytes). Default '50GB'. A tensor larger than this gets a shard
   * of its own. Above it the weights are split into shards with an index.
   */
  maxShardSize?: number | string;
}

export interface SavedCheckpoint {
  /** The files written, relative to the folder: config.json and the weight files (and the index). */
  files: string[];
  /** Bytes of tensor data (the index's metadata.total_size). */
  totalSize: number;
  /** Parameters, tied ones once (the index's metadata.total_parameters). */
  totalParameters: number;
  /** The dtype config.json names: the weights'. */
  dtype?: DType;
}

const UNITS: Record<string, number> = { KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/**
 * maxShardSize in bytes: a positive integer, or digits and a unit as huggingface_hub parses them
 * ('5GB', '1.5 GB', '500mb').
 */
export function parseShardSize(size: number | string): number {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`maxShardSize must be a positive whole number of bytes, got ${size}`);
    return size;
  }
  if (typeof size !== 'string') throw new TypeError(`maxShardSize must be a number of bytes or a string such as '5GB', got ${typeof size}`);
  const s = size.trim();
  const unit = UNITS[s.slice(-2).toUpperCase()];
  const value = s.slice(0, -2).trim();
  if (unit === undefined || !/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value))
    throw new Error(`maxShardSize '${size}' is not a size: expected a number and a unit KB, MB, GB or TB (powers of 1000), e.g. '5GB' or '500MB', or a number of bytes`);
  const bytes = Math.floor(Number(value) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`maxShardSize '${size}' must be at least 1 byte and at most 2^53`);
  return bytes;
}

/**
 * Orders state-dict names as transformers 5 does before it shards (its dot_natural_key): dot-separated
 * parts, numbers by value and before words, a word's trailing digits by value (layers.2 before layers.10).
 */
export function compareStateDictKeys(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = comparePart(pa[i], pb[i]);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

function comparePart(x: string, y: string): number {
  const dx = /^\d+$/.test(x);
  const dy = /^\d+$/.test(y);
  if (dx !== dy) return dx ? -1 : 1; // numbers before words
  if (dx) return compareBig(BigInt(x), BigInt(y));
  const [tx, nx] = splitTrailingDigits(x);
  const [ty, ny] = splitTrailingDigits(y);
  if (tx !== ty) return tx < ty ? -1 : 1;
  // 'h' before 'h1': the shorter key tuple first
  if (nx === undefined || ny === undefined) return (nx === undefined ? 0 : 1) - (ny === undefined ? 0 : 1);
  return compareBig(nx, ny);
}

function splitTrailingDigits(s: string): [string, bigint | undefined] {
  const m = /^(.*?)(\d+)$/.exec(s);
  return m === null ? [s, undefined] : [m[1], BigInt(m[2])];
}

const compareBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Splits tensors (name, bytes), in order, into shards of at most maxShardSize bytes as huggingface_hub's
 * split_state_dict_into_shards: a tensor that does not fit closes the current shard; one larger than the
 * limit gets a shard of its own (placed before the shard being filled).
 */
export function planShards(sizes: [string, number][], maxShardSize: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentSize = 0;
  for (const [name, bytes] of sizes) {
    if (bytes > maxShardSize) {
      shards.push([name]);
      continue;
    }
    if (currentSize + bytes > maxShardSize) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(name);
    currentSize += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

/** The shard file names transformers gives: model-00001-of-00003.safetensors. */
export function shardFileName(index: number, count: number): string {
  const five = (n: number) => String(n).padStart(5, '0');
  return `model-${five(index + 1)}-of-${five(count)}.safetensors`;
}

type SavableModel = Module & { config: CausalLMConfig; generationConfig?: GenerationConfig; quantizationConfig?: BitsAndBytesConfig };

function checkModel(model: unknown): asserts model is SavableModel {
  const config = (model as { config?: { modelType?: unknown } } | null)?.config;
  if (!(model instanceof Module) || config === undefined || !hasConfigWriter(config.modelType)) {
    const what = model instanceof Module ? model.reprName() : typeof model;
    const hint = /^(PeftModel|LoraModel)/.test(what) ? ': call mergeAndUnload() first and save the model it returns' : '';
    throw new Error(`savePretrained: expected a causal LM with a config (LlamaForCausalLM, GPT2LMHeadModel, GemmaForCausalLM ...), got ${what}${hint}`);
  }
}

/**
 * The tensors to write, each once: tied weights (one Tensor under two names) under their first name when
 * the config ties them, as transformers keeps the input embedding and drops lm_head.weight (the loader
 * ties them again); a tie the config does not declare is written under every name, or it would not load.
 */
function tensorsToWrite(model: SavableModel): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const seen = new Set<Tensor>();
  const lora: string[] = [];
  for (const [name, t] of Object.entries(model.stateDict())) {
    if (/(^|\.)(base_layer|lora_[A-Za-z_]+|modules_to_save|original_module)(\.|$)/.test(name)) lora.push(name);
    if (t.isDisposed) throw new Error(`savePretrained: tensor '${name}' was disposed`);
    if (t.device === 'meta') throw new Error(`savePretrained: '${name}' is on the meta device and has no data (load the weights first)`);
    if (seen.has(t) && model.config.tieWordEmbeddings) continue;
    seen.add(t);
    out.set(name, t);
  }
  if (lora.length === 0) assertAllFinite(out, 'savePretrained');
  if (lora.length)
    throw new Error(
      `savePretrained: the model still holds LoRA layers (${lora.slice(0, 3).join(', ')}${lora.length > 3 ? ', ...' : ''}); ` +
        'merge them with mergeAndUnload() (or remove them with unload()) and save the model that returns',
    );
  return out;
}

/** transformers' model.dtype: the first floating-point parameter's. */
function modelDType(model: Module): DType | undefined {
  for (const p of model.parameters()) if (isFloatingPoint(p.dtype)) return p.dtype;
  return undefined;
}

async function removeIfPresent(file: string): Promise<void> {
  await fs.promises.rm(file, { force: true });
}

/**
 * Writes `model` to `dir` as transformers' save_pretrained does (config.json + model.safetensors, or shards
 * + model.safetensors.index.json above maxShardSize) and returns what it wrote. transformers and
 * AutoModelForCausalLM.fromPretrained load the folder. Weights of an earlier save there are replaced, the
 * folder as one unit (lib/io/folder-swap): a failed or killed save leaves the earlier checkpoint whole, and
 * other files in the folder (a tokenizer) are kept.
 */
export async function savePretrained(model: Module, dir: string, opts: SavePretrainedOptions = {}): Promise<SavedCheckpoint> {
  checkModel(model);
  const maxShardSize = parseShardSize(opts.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new Error(`savePretrained: '${dir}' is a file; expected a folder to write the model into`);
  const tensors = tensorsToWrite(model);
  const names = [...tensors.keys()].sort(compareStateDictKeys);
  const sizes: [string, number][] = names.map((n) => {
    const t = tensors.get(n)!;
    return [n, t.numel() * ITEMSIZE[t.dtype]];
  });
  const totalSize = sizes.reduce((a, [, b]) => a + b, 0);
  let totalParameters = 0;
  for (const p of model.parameters()) totalParameters += p.numel();
  const shards = planShards(sizes, maxShardSize);
  const sharded = shards.length > 1;
  const files = sharded ? shards.map((_, i) => shardFileName(i, shards.length)) : [SAFE_WEIGHTS_NAME];
  const dtype = modelDType(model) ?? model.config.dtype;
  const configJson = configToJSON(model.config, { dtype, architectures: [model.reprName()] });
  // A bitsandbytes-quantized model says so, as transformers writes it, so that it loads quantized again.
  // (Only while 4-bit layers remain: a merged or dequantized model is a float model, whatever its config said.)
  const quantized = [...model.modules()].some((m) => m instanceof Linear4bit || m instanceof Linear8bit);
  if (quantized && model.quantizationConfig !== undefined) configJson.quantization_config = model.quantizationConfig.toDict();
  else delete configJson.quantization_config;
  const config = configJSONString(configJson);

  const part = (names: string[]) => new Map(names.map((n) => [n, tensors.get(n)!]));
  // The folder is replaced as one unit (written into a staging copy, then swapped in): a failed or killed
  // save leaves the earlier checkpoint whole, a reader never sees a mix of the two or no weights, and two
  // saves to one folder run one after the other.
  await replaceFolder(dir, async (staging) => {
    for (let i = 0; i < shards.length; i++) await saveSafetensors(part(shards[i]), path.join(staging, files[i]), { metadata: METADATA });
    if (sharded) {
      const weightMap: Record<string, string> = {};
      shards.forEach((s, i) => s.forEach((n) => (weightMap[n] = files[i])));
      const index = { metadata: { total_parameters: totalParameters, total_size: totalSize }, weight_map: weightMap };
      await writeFileAtomic(path.join(staging, SAFE_WEIGHTS_INDEX_NAME), configJSONString(index));
    }
    await writeFileAtomic(path.join(staging, CONFIG_NAME), config);
    // As transformers: a model that generates writes its generation defaults beside its config.
    if (model.generationConfig !== undefined)
      await writeFileAtomic(path.join(staging, GENERATION_CONFIG_NAME), generationConfigJSONString(model.generationConfig));
    // What an earlier save left that would now be read instead of, or besides, the new weights: transformers
    // and fromPretrained take model.safetensors before an index.
    const written = new Set(files);
    for (const f of await fs.promises.readdir(staging)) {
      const stale = (SHARD_FILE.test(f) && !written.has(f)) || (sharded && f === SAFE_WEIGHTS_NAME) || (!sharded && f === SAFE_WEIGHTS_INDEX_NAME);
      if (stale) await removeIfPresent(path.join(staging, f));
    }
  });
  const generation = model.generationConfig !== undefined ? [GENERATION_CONFIG_NAME] : [];
  return { files: [CONFIG_NAME, ...generation, ...files, ...(sharded ? [SAFE_WEIGHTS_INDEX_NAME] : [])], totalSize, totalParameters, dtype };
}
