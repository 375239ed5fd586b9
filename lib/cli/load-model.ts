// Loading what the commands work on: a Hugging Face model folder with its tokenizer, and a PEFT adapter
// folder, with errors that say which folder lacks what.
import * as path from 'path';
import { AutoTokenizer, Tokenizer } from '../data';
import { DType } from '../dtype';
import { AutoModelForCausalLM, CausalLM } from '../models';
import { baseModelPathOf, PeftModel } from '../peft';
import { BitsAndBytesConfig } from '../quant/bnb-config';
import { cuda } from '../cuda';
import { nonFiniteNames } from '../finite';
import { CpuFloat16Error } from '../train/precision';
import { requireDir } from './io';
import { readSafetensorsHeader } from '../io/safetensors';
import * as fs from 'fs';
import { UsageError } from './options';

export interface LoadOptions {
  device?: string;
  /** 'auto' (default): the dtype config.json names. */
  dtype?: DType | 'auto';
  /** bitsandbytes quantization on load (train --load-in-4bit). */
  quantizationConfig?: BitsAndBytesConfig;
}

/**
 * Checks a --model folder (it exists and has config.json). Commands call it first, before they read its
 * tokenizer, so that a wrong --model is named as the model folder.
 */
export function requireModelDir(dir: string): string {
  return requireDir(dir, 'model folder', ['config.json']);
}

/** The causal LM of a model folder (config.json + weights), in eval mode. */
export async function loadBaseModel(dir: string, opts: LoadOptions = {}): Promise<CausalLM> {
  requireModelDir(dir);
  // Absolute: the model's name_or_path goes into adapter_config.json's base_model_name_or_path, which must
  // find the model from wherever the adapter is loaded (AutoPeftModelForCausalLM, PEFT).
  return AutoModelForCausalLM.fromPretrained(path.resolve(dir), { device: opts.device, dtype: opts.dtype ?? 'auto', quantizationConfig: opts.quantizationConfig });
}

/** The tokenizer of a model folder (tokenizer.json, tokenizer_config.json). */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  requireDir(dir, 'tokenizer folder', ['tokenizer.json']);
  return AutoTokenizer.fromPretrained(dir);
}

/** `model` with the adapter saved in `dir` (adapter_config.json + adapter_model.safetensors or .bin). */
export async function loadAdapter(model: CausalLM, dir: string, opts: { isTrainable?: boolean } = {}): Promise<PeftModel> {
  requireDir(dir, 'adapter folder', ['adapter_config.json']);
  // An adapter trained on a resized vocabulary (new tokens) holds the resized embedding tables: give the
  // base as many rows first (as a transformers user calls resize_token_embeddings before loading it); the
  // file's tables then replace every row.
  const rows = adapterEmbeddingRows(dir);
  if (rows !== undefined && rows !== model.config.vocabSize) model.resizeTokenEmbeddings(rows, { meanResizing: false });
  const peft = await PeftModel.fromPretrained(model, dir, { isTrainable: opts.isTrainable ?? false });
  // A diverged adapter (NaN/Inf) would make generate print nothing and merge write NaNs: refuse it by name.
  const bad = nonFiniteNames([...peft.namedParameters()].filter(([name]) => /(^|\.)(lora_[A-Za-z_]+|modules_to_save|trainable_tokens_delta)\./.test(name)));
  if (bad.length) {
    peft.dispose();
    throw new Error(`adapter folder '${dir}' holds NaN or Inf weights (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', ...' : ''}): its training diverged; train it again with a lower learning rate`);
  }
  return peft;
}

/** Rows of the token embedding table an adapter_model.safetensors holds (saved when the vocabulary was resized), if any. */
export function adapterEmbeddingRows(dir: string): number | undefined {
  const file = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(file)) return undefined;
  for (const [key, entry] of readSafetensorsHeader(file).tensors)
    if (/(^|\.)(embed_tokens|wte|word_embeddings)(\.token_adapter\.base_layer|\.base_layer)?\.weight$/.test(key)) return entry.shape[0];
  return undefined;
}

/** The dtype option of a command: 'auto' or a floating-point dtype. */
export const DTYPE_CHOICES = ['auto', 'float32', 'bfloat16', 'float16'] as const;

/** Checks a --device value before anything is loaded: 'cpu', 'cuda' or 'cuda:N', and a GPU for cuda. */
export function checkDevice(device: string): string {
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${device}'`);
  if (device !== 'cpu' && !cuda.isAvailable())
    throw new Error(`--device ${device}: this libtorch was built without CUDA or sees no GPU; use --device cpu, or install torch-lora against a CUDA libtorch`);
  return device;
}

/**
 * The base model folder of a command: --model, else the one --adapter's adapter_config.json names
 * (base_model_name_or_path), as PEFT's AutoPeftModelForCausalLM finds it.
 */
export function modelDirOf(model: string | undefined, adapter: string | undefined): string {
  if (model !== undefined) return model;
  if (adapter === undefined) throw new UsageError('missing --model DIR (or --adapter DIR, whose adapter_config.json names its base model)');
  requireDir(adapter, 'adapter folder', ['adapter_config.json']);
  return baseModelPathOf(adapter);
}

/** A CpuFloat16Error in the words of the command line: --dtype float16 refused, and the flags that work instead. */
export function float16FlagError(e: CpuFloat16Error): UsageError {
  const what =
    e.purpose === 'inference'
      ? `libtorch ${e.torchVersion} cannot multiply float16 matrices on the CPU (${e.reason})`
      : `float16 weights cannot be trained on the CPU with libtorch ${e.torchVersion} (${e.reason})`;
  return new UsageError(`--dtype float16: ${what}; use --dtype bfloat16 or float32, or --device cuda`);
}
