// torch-lora merge: base model + adapter -> one Hugging Face checkpoint (config.json + model.safetensors,
// with the tokenizer and generation config copied), the adapter's ΔW added into the base weights
// (PEFT's merge_and_unload). transformers loads the folder as a plain model.
import * as fs from 'fs';
import * as path from 'path';
import { setNumThreads } from '../autograd';
import { DType } from '../dtype';
import { saveSafetensorsSync } from '../io/safetensors';
import { Module } from '../nn';
import { Tensor } from '../tensor';
import { CliIO, formatBytes, say } from './io';
import { checkDevice, DTYPE_CHOICES, loadAdapter, loadBaseModel } from './load-model';
import type { Command } from './main';
import { CommandSpec, Parsed, requireOptions, UsageError } from './options';

/** Files of a model folder that describe it besides the weights; copied as they are. */
const COPIED = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'chat_template.jinja'];

const spec: CommandSpec = {
  name: 'merge',
  usage: '--model DIR --adapter DIR --output DIR [options]',
  summary: 'Merges a LoRA adapter into its base model and writes a Hugging Face checkpoint (config.json + model.safetensors).',
  options: [
    { name: 'model', type: 'string', placeholder: 'DIR', required: true, description: 'base model folder' },
    { name: 'adapter', type: 'string', placeholder: 'DIR', required: true, description: 'PEFT adapter folder (adapter_config.json + weights)' },
    { name: 'output', short: 'o', type: 'string', placeholder: 'DIR', required: true, description: 'folder for the merged model' },
    { name: 'dtype', type: 'string', placeholder: 'TYPE', default: 'auto', choices: DTYPE_CHOICES, description: "dtype of the merged weights (auto: the base's)" },
    { name: 'device', type: 'string', placeholder: 'DEV', default: 'cpu', description: 'where to merge (cpu, cuda)' },
    { name: 'force', type: 'boolean', description: 'write into --output even if it holds a model already' },
    { name: 'threads', type: 'integer', placeholder: 'N', description: 'CPU threads for libtorch' },
  ],
  details: 'Example:\n  torch-lora merge --model ./my-llama --adapter ./out --output ./my-llama-merged',
};

/** The state dict with each tensor once (tied weights under their first name, as transformers saves them), on the CPU. */
function stateForSaving(model: Module): { tensors: Record<string, Tensor>; copies: Tensor[] } {
  const seen = new Set<Tensor>();
  const tensors: Record<string, Tensor> = {};
  const copies: Tensor[] = [];
  for (const [name, t] of Object.entries(model.stateDict())) {
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.device === 'cpu' && t.isContiguous()) tensors[name] = t;
    else copies.push((tensors[name] = t.to('cpu').contiguous()));
  }
  return { tensors, copies };
}

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  const v = parsed.values;
  requireOptions(spec, v);
  if (v.threads !== undefined) setNumThreads(v.threads as number);
  const modelDir = v.model as string;
  const out = v.output as string;
  if (path.resolve(out) === path.resolve(modelDir)) throw new UsageError('--output must not be the base model folder');
  if (!v.force && fs.existsSync(path.join(out, 'model.safetensors')))
    throw new UsageError(`'${out}' already holds a model.safetensors; pass --force to overwrite it`);
  const dtypeOpt = v.dtype as DType | 'auto';
  const base = await loadBaseModel(modelDir, { device: checkDevice(v.device as string), dtype: dtypeOpt });
  const peft = await loadAdapter(base, v.adapter as string);
  const nModules = peft.targetedModuleNames.length;
  const merged = peft.mergeAndUnload();

  fs.mkdirSync(out, { recursive: true });
  const { tensors, copies } = stateForSaving(merged);
  let bytes = 0;
  try {
    const dtypes = new Set(Object.values(tensors).map((t) => t.dtype));
    for (const t of Object.values(tensors)) bytes += t.numel() * ({ float32: 4, float64: 8, float16: 2, bfloat16: 2 }[t.dtype as string] ?? 8);
    saveSafetensorsSync(tensors, path.join(out, 'model.safetensors'), { metadata: { format: 'pt' } });
    // config.json: the base's, with the dtype of the weights written (both key spellings transformers has used).
    const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    if (dtypes.size === 1) {
      const d = [...dtypes][0];
      if ('torch_dtype' in config || !('dtype' in config)) config.torch_dtype = d;
      if ('dtype' in config) config.dtype = d;
    }
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  } finally {
    for (const t of copies) t.dispose();
  }
  const copied: string[] = [];
  for (const f of COPIED) {
    const src = path.join(modelDir, f);
    if (fs.existsSync(src)) {
      fs.copyFileSync(src, path.join(out, f));
      copied.push(f);
    }
  }
  say(io, `merged ${nModules} LoRA modules of '${v.adapter}' into '${modelDir}'`);
  say(io, `wrote ${out}: config.json, model.safetensors (${formatBytes(bytes)})${copied.length ? ', ' + copied.join(', ') : ''}`);
  merged.dispose();
}

export const command: Command = { spec, run };
