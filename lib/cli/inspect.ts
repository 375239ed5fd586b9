// torch-lora inspect: what an adapter folder holds, read from adapter_config.json and the weights'
// header (no tensor data is loaded from a .safetensors file): the config, every adapted module with its
// rank, alpha, scaling and shape, parameter counts, and with --model the share of the base model.
import * as fs from 'fs';
import * as path from 'path';
import { readSafetensorsHeader } from '../io/safetensors';
import { loadTorchBinSync } from '../io/torch-bin';
import { AutoModelForCausalLM, numParameters } from '../models';
import { LoraConfig } from '../peft';
import { rankAndAlpha } from '../peft/target-modules';
import { CliIO, formatBytes, formatCount, requireDir, say } from './io';
import type { Command } from './main';
import { CommandSpec, Parsed, UsageError } from './options';

const spec: CommandSpec = {
  name: 'inspect',
  usage: 'ADAPTER_DIR [--model DIR] [--json]',
  summary: "Shows a PEFT LoRA adapter's config, its adapted modules with their ranks, and parameter counts.",
  positionals: { name: 'ADAPTER_DIR', description: 'adapter folder (adapter_config.json + adapter_model.safetensors or .bin)' },
  options: [
    { name: 'model', type: 'string', placeholder: 'DIR', description: 'base model folder, to count its parameters (read from the header only)' },
    { name: 'json', type: 'boolean', description: 'print JSON instead of text' },
  ],
  details: 'Example:\n  torch-lora inspect ./torch-lora-demo',
};

export interface ModuleReport {
  module: string;
  kind: 'linear' | 'embedding';
  rank: number;
  alpha: number;
  scaling: number;
  inFeatures: number;
  outFeatures: number;
  dora: boolean;
  parameters: number;
}

export interface AdapterReport {
  dir: string;
  file: string;
  fileBytes: number;
  dtypes: string[];
  config: Record<string, unknown>;
  modules: ModuleReport[];
  loraParameters: number;
  /** Saved tensors that are not LoRA factors (modules_to_save, trained embeddings ...). */
  otherTensors: { name: string; shape: number[]; parameters: number }[];
  otherParameters: number;
  totalParameters: number;
  baseParameters?: number;
}

const PREFIX = 'base_model.model.';
const PARTS = /^(.*)\.(lora_A\.weight|lora_B\.weight|lora_B\.bias|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)$/;

/** Names, shapes and dtypes of the adapter's tensors, without loading a .safetensors file's data. */
function adapterTensors(dir: string): { file: string; shapes: Map<string, { shape: number[]; dtype: string }> } {
  const st = path.join(dir, 'adapter_model.safetensors');
  if (fs.existsSync(st)) {
    const h = readSafetensorsHeader(st);
    return { file: st, shapes: new Map([...h.tensors].map(([k, e]) => [k, { shape: e.shape, dtype: e.dtype }])) };
  }
  const bin = path.join(dir, 'adapter_model.bin');
  if (fs.existsSync(bin)) {
    const ts = loadTorchBinSync(bin);
    const shapes = new Map(Object.entries(ts).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype as string }]));
    Object.values(ts).forEach((t) => t.dispose());
    return { file: bin, shapes };
  }
  throw new Error(`adapter folder '${dir}' has neither adapter_model.safetensors nor adapter_model.bin`);
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export async function inspectAdapter(dir: string, opts: { model?: string } = {}): Promise<AdapterReport> {
  requireDir(dir, 'adapter folder', ['adapter_config.json']);
  const configFile = path.join(dir, 'adapter_config.json');
  const config = LoraConfig.fromPretrained(dir); // checks it is a LoRA config PEFT would accept
  const raw = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  const { file, shapes } = adapterTensors(dir);
  const byModule = new Map<string, Map<string, number[]>>();
  const otherTensors: AdapterReport['otherTensors'] = [];
  for (const [name, { shape }] of shapes) {
    const m = PARTS.exec(name);
    if (m === null) {
      otherTensors.push({ name, shape, parameters: numel(shape) });
      continue;
    }
    const mod = m[1].startsWith(PREFIX) ? m[1].slice(PREFIX.length) : m[1];
    if (!byModule.has(mod)) byModule.set(mod, new Map());
    byModule.get(mod)!.set(m[2], shape);
  }
  const modules: ModuleReport[] = [];
  for (const [mod, parts] of byModule) {
    const embedding = parts.has('lora_embedding_A');
    const A = parts.get(embedding ? 'lora_embedding_A' : 'lora_A.weight');
    const B = parts.get(embedding ? 'lora_embedding_B' : 'lora_B.weight');
    if (A === undefined || B === undefined) throw new Error(`'${file}': module ${mod} has ${[...parts.keys()].join(', ')} but not both LoRA factors`);
    const rank = A[0];
    const { loraAlpha } = rankAndAlpha(config, mod);
    modules.push({
      module: mod,
      kind: embedding ? 'embedding' : 'linear',
      rank,
      alpha: loraAlpha,
      scaling: config.useRslora ? loraAlpha / Math.sqrt(rank) : loraAlpha / rank,
      inFeatures: A[1],
      outFeatures: B[0],
      dora: parts.has('lora_magnitude_vector'),
      parameters: [...parts.values()].reduce((n, s) => n + numel(s), 0),
    });
  }
  modules.sort((a, b) => a.module.localeCompare(b.module, 'en', { numeric: true }));
  const loraParameters = modules.reduce((n, m) => n + m.parameters, 0);
  const otherParameters = otherTensors.reduce((n, t) => n + t.parameters, 0);
  const report: AdapterReport = {
    dir,
    file,
    fileBytes: fs.statSync(file).size,
    dtypes: [...new Set([...shapes.values()].map((s) => s.dtype))],
    config: raw,
    modules,
    loraParameters,
    otherTensors,
    otherParameters,
    totalParameters: loraParameters + otherParameters,
  };
  if (opts.model !== undefined) {
    requireDir(opts.model, 'model folder', ['config.json']);
    const base = await AutoModelForCausalLM.fromPretrained(opts.model, { device: 'meta' });
    report.baseParameters = numParameters(base);
    base.dispose();
  }
  return report;
}

function table(rows: string[][], right: Set<number>): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

function show(r: AdapterReport, io: CliIO): void {
  const c = r.config;
  const list = (v: unknown) => (Array.isArray(v) ? (v as unknown[]).join(', ') : String(v));
  say(io, `adapter: ${r.dir}`);
  say(io, `  ${c.peft_type ?? 'LORA'}${c.task_type ? ` for ${c.task_type}` : ''}; base model: ${c.base_model_name_or_path ?? '(not recorded)'}; PEFT ${c.peft_version ?? '?'}`);
  const flags = [c.use_rslora ? 'rsLoRA' : '', c.use_dora ? 'DoRA' : ''].filter(Boolean);
  say(io, `  r ${c.r}, lora_alpha ${c.lora_alpha}, lora_dropout ${c.lora_dropout}, bias ${c.bias}${flags.length ? ', ' + flags.join(', ') : ''}`);
  say(io, `  target_modules: ${list(c.target_modules)}`);
  if (c.modules_to_save) say(io, `  modules_to_save: ${list(c.modules_to_save)}`);
  for (const k of ['rank_pattern', 'alpha_pattern'])
    if (c[k] && Object.keys(c[k] as object).length) say(io, `  ${k}: ${JSON.stringify(c[k])}`);
  say(io, `  weights: ${path.basename(r.file)}, ${formatBytes(r.fileBytes)}, ${r.dtypes.join('/')}`);
  say(io);
  const rows = [['module', 'kind', 'rank', 'alpha', 'scaling', 'in', 'out', 'params']];
  for (const m of r.modules)
    rows.push([m.module, m.kind + (m.dora ? '+dora' : ''), String(m.rank), String(m.alpha), String(Number(m.scaling.toPrecision(4))), String(m.inFeatures), String(m.outFeatures), formatCount(m.parameters)]);
  for (const line of table(rows, new Set([2, 3, 4, 5, 6, 7]))) say(io, `  ${line}`);
  say(io);
  const ranks = [...new Set(r.modules.map((m) => m.rank))].sort((a, b) => a - b);
  say(io, `  ${r.modules.length} LoRA modules, rank ${ranks.join('/')}: ${formatCount(r.loraParameters)} parameters`);
  if (r.otherTensors.length) say(io, `  other saved tensors: ${r.otherTensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', ')}: ${formatCount(r.otherParameters)} parameters`);
  say(io, `  total: ${formatCount(r.totalParameters)} parameters`);
  if (r.baseParameters !== undefined) {
    const all = r.baseParameters + r.loraParameters;
    say(io, `  base model: ${formatCount(r.baseParameters)} parameters; the adapter is ${((100 * r.loraParameters) / all).toFixed(4)}% of ${formatCount(all)}`);
  }
}

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  const dir = parsed.positionals[0];
  if (dir === undefined) throw new UsageError('missing ADAPTER_DIR (the adapter folder to inspect)');
  const report = await inspectAdapter(dir, { model: parsed.values.model as string | undefined });
  if (parsed.values.json) say(io, JSON.stringify(report, null, 2));
  else show(report, io);
}

export const command: Command = { spec, run };
