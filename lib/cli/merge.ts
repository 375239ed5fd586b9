// torch-lora merge: base model + adapter -> one Hugging Face checkpoint (config.json + model.safetensors,
// or shards with an index above --max-shard-size; the tokenizer and generation config copied), the
// adapter's ΔW added into the base weights (PEFT's merge_and_unload). transformers loads the folder as a
// plain model.
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io/fs-atomic';
import { DType } from '../dtype';
import { CausalLM } from '../models/causal-lm';
import { DEFAULT_MAX_SHARD_SIZE, parseShardSize, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, SavedCheckpoint } from '../models/save-pretrained';
import { CliIO, formatBytes, say } from './io';
import { checkDevice, DTYPE_CHOICES, loadAdapter, loadBaseModel, modelDirOf } from './load-model';
import type { Command } from './main';
import { dequantizeModel } from '../quant/dequantize';
import { CommandSpec, Parsed, requireOptions, UsageError } from './options';
import { applyThreads, threadsOption } from './threads';

/** Files of a model folder that describe it besides the weights; copied as they are. */
// (generation_config.json is written by savePretrained, from the base model's own.)
const COPIED = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'chat_template.jinja'];

const spec: CommandSpec = {
  name: 'merge',
  usage: '[--model DIR] --adapter DIR --output DIR [options]',
  summary:
    'Merges a LoRA adapter into its base model and writes a Hugging Face checkpoint (config.json + model.safetensors, or model-0000N-of-0000M.safetensors shards with model.safetensors.index.json).',
  options: [
    { name: 'model', type: 'string', placeholder: 'DIR', description: "base model folder [default: the adapter's base_model_name_or_path]" },
    { name: 'adapter', type: 'string', placeholder: 'DIR', required: true, description: 'PEFT adapter folder (adapter_config.json + weights)' },
    { name: 'output', short: 'o', type: 'string', placeholder: 'DIR', required: true, description: 'folder for the merged model' },
    { name: 'dtype', type: 'string', placeholder: 'TYPE', default: 'auto', choices: DTYPE_CHOICES, description: "dtype of the merged weights (auto: the base's)" },
    { name: 'device', type: 'string', placeholder: 'DEV', default: 'cpu', description: 'where to merge (cpu, cuda)' },
    {
      name: 'max-shard-size',
      type: 'string',
      placeholder: 'SIZE',
      default: DEFAULT_MAX_SHARD_SIZE,
      description: 'largest weight file, e.g. 5GB or 500MB (KB/MB/GB/TB are powers of 1000, as transformers) or bytes; larger models are sharded',
    },
    { name: 'force', type: 'boolean', description: 'write into --output even if it holds a model already (its old weight files are replaced)' },
    threadsOption(),
  ],
  details:
    'Examples:\n  torch-lora merge --model ./my-llama --adapter ./out --output ./my-llama-merged\n' +
    '  torch-lora merge --adapter ./out --output ./my-llama-merged   (the base model the adapter names)\n' +
    '  torch-lora merge --model ./my-llama --adapter ./out --output ./my-llama-merged --max-shard-size 2GB',
};

/**
 * tokenizer_config.json agreeing with chat_template.jinja: transformers reads the .jinja first, llama.cpp's
 * converter the config's chat_template first. A single template in the config is dropped (as
 * transformers' save_pretrained writes them); in a list of named ones, 'default' becomes the .jinja's.
 */
function withTemplate(text: string, file: string, jinja: string): string {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const t = config.chat_template;
  if (t === undefined) return text;
  if (Array.isArray(t))
    config.chat_template = [{ name: 'default', template: jinja }, ...t.filter((e) => !(e && typeof e === 'object' && (e as { name?: unknown }).name === 'default'))];
  else delete config.chat_template;
  return JSON.stringify(config, null, 2) + '\n';
}

/** --max-shard-size as bytes (a UsageError names the flag). */
function maxShardSize(value: string): number {
  try {
    return parseShardSize(/^\s*\d+\s*$/.test(value) ? Number(value) : value);
  } catch (e) {
    throw new UsageError(`--max-shard-size: ${(e as Error).message.replace(/^maxShardSize /, '')}`);
  }
}

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  const v = parsed.values;
  requireOptions(spec, v);
  applyThreads(v.threads);
  const modelDir = modelDirOf(v.model as string | undefined, v.adapter as string);
  const out = v.output as string;
  if (path.resolve(out) === path.resolve(modelDir)) throw new UsageError('--output must not be the base model folder');
  const shardSize = maxShardSize(v.maxShardSize as string);
  for (const f of [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME])
    if (!v.force && fs.existsSync(path.join(out, f))) throw new UsageError(`'${out}' already holds a ${f}; pass --force to overwrite it`);
  const dtypeOpt = v.dtype as DType | 'auto';
  const base = await loadBaseModel(modelDir, { device: checkDevice(v.device as string), dtype: dtypeOpt });
  const peft = await loadAdapter(base, v.adapter as string);
  const nModules = peft.targetedModuleNames.length;
  // safeMerge: a diverged adapter (NaN/Inf, or so large that W + ΔW overflows) is refused before any file is written.
  let merged: CausalLM;
  try {
    merged = peft.mergeAndUnload({ safeMerge: true }) as CausalLM;
  } catch (e) {
    peft.dispose();
    throw new Error(`'${v.adapter}' cannot be merged: ${(e as Error).message}; nothing was written to '${out}'`);
  }
  // A 4-bit base (a bitsandbytes folder): the layers the adapter did not touch are dequantized too, so
  // that the merged model is a plain float model, as transformers' dequantize() after merge_and_unload.
  const dequantized = dequantizeModel(merged);
  if (dequantized > 0) say(io, `dequantized ${dequantized} 4-bit layers of the base`);

  // config.json: the base's keys (unknown ones too), with the merged weights' dtype.
  let saved: SavedCheckpoint;
  try {
    saved = await merged.savePretrained(out, { maxShardSize: shardSize });
  } finally {
    merged.dispose();
  }
  const copied: string[] = [];
  // A chat template saved with the adapter (train --chat-template) is the one it was trained with.
  const adapterTemplate = path.join(v.adapter as string, 'chat_template.jinja');
  const template = fs.existsSync(adapterTemplate) ? adapterTemplate : path.join(modelDir, 'chat_template.jinja');
  for (const f of COPIED) {
    const src = f === 'chat_template.jinja' ? template : path.join(modelDir, f);
    if (!fs.existsSync(src)) continue;
    let data: Buffer | string = await fs.promises.readFile(src);
    if (f === 'tokenizer_config.json' && fs.existsSync(template)) data = withTemplate(data.toString('utf8'), src, fs.readFileSync(template, 'utf8'));
    await writeFileAtomic(path.join(out, f), data);
    copied.push(f);
  }
  say(io, `merged ${nModules} LoRA modules of '${v.adapter}' into '${modelDir}'`);
  const shards = saved.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  const weights = shards.length ? `${SAFE_WEIGHTS_INDEX_NAME} + ${shards.length} shards` : SAFE_WEIGHTS_NAME;
  say(io, `wrote ${out}: config.json, ${weights} (${formatBytes(saved.totalSize)})${copied.length ? ', ' + copied.join(', ') : ''}`);
}

export const command: Command = { spec, run };
