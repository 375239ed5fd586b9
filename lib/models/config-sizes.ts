// Sizes in config.json checked before a model is built: building even on 'meta' costs time and memory in
// proportion to them (a module per layer, rotary frequencies per head dimension), so an absurd value
// (head_dim 2^31) must fail at once, naming the key and the file, instead of after a minute and gigabytes.
// Two checks, both generic over the architectures' parsed configs: bounds far above any released model,
// and, when the checkpoint's names are known (safetensors headers), the layer count they hold. Within
// those, building on 'meta' is cheap, and the loader's shape check (key, file, both shapes) does the rest
// before any tensor data is read.
import { CausalLMConfig } from './config';

/** A parsed size field, the config.json keys that spell it (in the order architectures use them), and its bound. */
interface SizeField {
  field: string;
  keys: string[];
  /** Far above released models (Llama 3.1 405B: hidden 16384, intermediate 53248, 126 layers; vocabularies ≤ 262144; head_dim ≤ 512). */
  max: number;
}

const SIZE_FIELDS: SizeField[] = [
  { field: 'hiddenSize', keys: ['hidden_size', 'n_embd', 'd_model'], max: 2 ** 20 },
  { field: 'intermediateSize', keys: ['intermediate_size', 'n_inner', 'ffn_dim'], max: 2 ** 22 },
  { field: 'numHiddenLayers', keys: ['num_hidden_layers', 'n_layer'], max: 4096 },
  { field: 'numAttentionHeads', keys: ['num_attention_heads', 'n_head'], max: 2 ** 16 },
  { field: 'numKeyValueHeads', keys: ['num_key_value_heads'], max: 2 ** 16 },
  { field: 'headDim', keys: ['head_dim'], max: 2 ** 16 },
  { field: 'vocabSize', keys: ['vocab_size'], max: 2 ** 24 },
];

/** The config.json key a field came from: the first of its spellings the raw config has. */
function keyOf(f: SizeField, raw: Record<string, unknown> | undefined): string {
  return f.keys.find((k) => raw !== undefined && Object.hasOwn(raw, k)) ?? f.keys[0];
}

function sizeOf(config: CausalLMConfig, field: string): number | undefined {
  const v = (config as unknown as Record<string, unknown>)[field];
  return typeof v === 'number' ? v : undefined;
}

/** The largest N of a '.N.' part in the checkpoint's keys, +1: how many layers (blocks) it holds; 0 if none. */
function layersHeld(names: Iterable<string>): number {
  let n = 0;
  for (const name of names) for (const m of name.matchAll(/(?:^|\.)(\d+)(?=\.)/g)) n = Math.max(n, Number(m[1]) + 1);
  return n;
}

/**
 * Refuses sizes above the bounds (always) and more layers than the checkpoint holds (when its tensors'
 * names are given): the error names the config.json key, the value and `where` (the config file).
 */
export function checkConfigSizes(
  config: CausalLMConfig,
  where: string,
  opts: { raw?: Record<string, unknown>; shapes?: Map<string, number[]> } = {},
): void {
  const problems: string[] = [];
  for (const f of SIZE_FIELDS) {
    const v = sizeOf(config, f.field);
    if (v !== undefined && v > f.max) problems.push(`'${keyOf(f, opts.raw)}' is ${v}, above the largest supported ${f.max}`);
  }
  // The rotary dimension is head_dim × partial_rotary_factor: a factor above 1 would size it past head_dim.
  const prf = (config as { rope?: { partialRotaryFactor?: unknown } }).rope?.partialRotaryFactor;
  if (typeof prf === 'number' && !(prf > 0 && prf <= 1)) problems.push(`'partial_rotary_factor' is ${prf}; it must be in (0, 1]`);
  const shapes = opts.shapes;
  if (shapes !== undefined && shapes.size > 0 && problems.length === 0) {
    const field = (name: string) => SIZE_FIELDS.find((f) => f.field === name)!;
    const layers = sizeOf(config, 'numHiddenLayers');
    const have = layersHeld(shapes.keys());
    if (layers !== undefined && layers > have)
      problems.push(`'${keyOf(field('numHiddenLayers'), opts.raw)}' is ${layers}, but the checkpoint holds ${have} layer${have === 1 ? '' : 's'}`);
  }
  if (problems.length) throw new Error(`config '${where}' does not describe a model that can be built:\n  ${problems.join('\n  ')}`);
}
