// Exporting to llama.cpp (GGUF), checked as far as this machine allows: llama.cpp is not here, so the
// checks are what its converters read, as their sources (ggml-org/llama.cpp) read it:
//   convert_hf_to_gguf.py MODEL_DIR: config.json (architectures[0] picks the converter class, vocab_size
//     above every token id); the weights as model*.safetensors files, and with model.safetensors.index.json
//     its weight_map naming exactly the tensors of the files it lists; tokenizer.json (or tokenizer.model)
//     and tokenizer_config.json, whose bos/eos tokens are looked up in tokenizer.json's added_tokens and
//     whose chat_template is taken before chat_template.jinja.
//   convert_lora_to_gguf.py --base BASE ADAPTER_DIR: adapter_config.json's lora_alpha (one alpha for all:
//     llama.cpp scales by alpha / the rank of each lora_a), adapter_model.safetensors whose every key is
//     base_model.model.<base tensor name less .weight>.lora_A.weight / .lora_B.weight (anything else stops it).
// `torch-lora merge` output and `torch-lora train` adapters pass; folders that break a rule are caught.
import * as fs from 'fs';
import * as path from 'path';
import { readSafetensorsHeader } from '../lib';
import { AutoTokenizer } from '../lib/data';
import { DEMO_CHAT_TEMPLATE } from '../lib/demo/demo-tokenizer';
import { finetuneSamples } from '../lib/demo/synthetic-language';
import { cli, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

/** Architectures convert_hf_to_gguf.py registers, for the families torch-lora loads. */
const LLAMA_CPP_ARCHITECTURES = [
  'LlamaForCausalLM',
  'MistralForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
  'GemmaForCausalLM',
  'Gemma2ForCausalLM',
  'Gemma3ForCausalLM',
  'Phi3ForCausalLM',
  'GPT2LMHeadModel',
];

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const tensorNames = (f: string) => [...readSafetensorsHeader(f).tensors.keys()];

/** What convert_hf_to_gguf.py would stop on (or silently get wrong) in a model folder; [] if nothing. */
function modelFolderProblems(dir: string): string[] {
  const problems: string[] = [];
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  if (!has('config.json')) return ['no config.json'];
  const config = readJson(path.join(dir, 'config.json'));
  const arch = config.architectures?.[0];
  if (!LLAMA_CPP_ARCHITECTURES.includes(arch)) problems.push(`config.json architectures[0] ${JSON.stringify(arch)} is not one the converter knows`);
  // Weight files: every name starting "model" and ending ".safetensors"; the index, when there is one, decides.
  const parts = fs.readdirSync(dir).filter((f) => f.startsWith('model') && f.endsWith('.safetensors')).sort();
  const fromParts = new Set<string>();
  if (has('model.safetensors.index.json')) {
    const weightMap: Record<string, string> = readJson(path.join(dir, 'model.safetensors.index.json')).weight_map;
    const listed = [...new Set(Object.values(weightMap))].sort();
    if (JSON.stringify(listed) !== JSON.stringify(parts)) problems.push(`the index lists ${listed.join(', ')}; the folder has ${parts.join(', ')}`);
    for (const p of listed) if (has(p)) tensorNames(path.join(dir, p)).forEach((n) => fromParts.add(n));
    const indexed = new Set(Object.keys(weightMap));
    const missing = [...indexed].filter((n) => !fromParts.has(n));
    const extra = [...fromParts].filter((n) => !indexed.has(n));
    if (missing.length || extra.length) problems.push(`weight_map and the files differ: missing ${missing.join(', ')}; extra ${extra.join(', ')}`);
  } else if (parts.length !== 1 || parts[0] !== 'model.safetensors') {
    problems.push(`no index, and the weight files are ${parts.join(', ') || 'none'} (one model.safetensors expected)`);
  } else tensorNames(path.join(dir, parts[0])).forEach((n) => fromParts.add(n));
  // Tokenizer: tokenizer.json's vocabulary under vocab_size; special tokens found among its added tokens.
  if (!has('tokenizer.json') && !has('tokenizer.model')) problems.push('no tokenizer.json or tokenizer.model');
  if (!has('tokenizer_config.json')) problems.push('no tokenizer_config.json (the special tokens and the chat template come from it)');
  if (has('tokenizer.json')) {
    const tok = readJson(path.join(dir, 'tokenizer.json'));
    const ids = [...Object.values(tok.model.vocab as Record<string, number>), ...tok.added_tokens.map((t: { id: number }) => t.id)];
    if (Math.max(...ids) >= config.vocab_size) problems.push(`token id ${Math.max(...ids)} is not below config.json vocab_size ${config.vocab_size}`);
    if (has('tokenizer_config.json')) {
      const tc = readJson(path.join(dir, 'tokenizer_config.json'));
      for (const k of ['bos_token', 'eos_token']) {
        const t = typeof tc[k] === 'string' ? tc[k] : tc[k]?.content;
        if (t !== undefined && t !== null && !tok.added_tokens.some((a: { content: string }) => a.content === t))
          problems.push(`${k} ${JSON.stringify(t)} is not among tokenizer.json's added_tokens`);
      }
    }
  }
  return problems;
}

/** The chat template the converter writes into the GGUF: tokenizer_config.json's first, else chat_template.jinja. */
function ggufChatTemplate(dir: string): unknown {
  const cfg = path.join(dir, 'tokenizer_config.json');
  if (!fs.existsSync(cfg)) return undefined;
  const fromConfig = readJson(cfg).chat_template;
  if (fromConfig !== undefined) return fromConfig;
  const jinja = path.join(dir, 'chat_template.jinja');
  return fs.existsSync(jinja) ? fs.readFileSync(jinja, 'utf8') : undefined;
}

/** What convert_lora_to_gguf.py would stop on, or convert to a different model, in an adapter folder. */
function adapterProblems(dir: string, base: string): string[] {
  const problems: string[] = [];
  const cfgFile = path.join(dir, 'adapter_config.json');
  const weights = path.join(dir, 'adapter_model.safetensors');
  if (!fs.existsSync(cfgFile)) return ['no adapter_config.json'];
  if (!fs.existsSync(weights)) return ['no adapter_model.safetensors'];
  const cfg = readJson(cfgFile);
  if (typeof cfg.lora_alpha !== 'number') problems.push('adapter_config.json has no numeric lora_alpha');
  // One alpha / rank per tensor is all llama.cpp applies.
  if (cfg.use_rslora) problems.push('use_rslora: llama.cpp scales by alpha / r, not alpha / sqrt(r)');
  if (cfg.use_dora) problems.push('use_dora: the magnitude vectors have no GGUF LoRA form');
  if (Object.keys(cfg.alpha_pattern ?? {}).length) problems.push('alpha_pattern: one lora_alpha is written for every module');
  const baseNames = new Set(tensorNames(path.join(base, 'model.safetensors')));
  const pairs = new Map<string, Set<string>>();
  for (const key of tensorNames(weights)) {
    const m = /^base_model\.model\.(.+)\.(lora_[AB])\.weight$/.exec(key);
    if (!m) {
      problems.push(`tensor ${key} is not a lora_A / lora_B weight`);
      continue;
    }
    const target = `${m[1]}.weight`;
    if (!baseNames.has(target)) problems.push(`${key}: the base has no ${target}`);
    if (!pairs.has(target)) pairs.set(target, new Set());
    pairs.get(target)!.add(m[2]);
  }
  for (const [t, s] of pairs) if (s.size !== 2) problems.push(`${t}: only ${[...s].join('')}`);
  return problems;
}

let dir: string;
let model: string;
let data: string;
const TRAINED_TEMPLATE = DEMO_CHAT_TEMPLATE.replace("' ->'", "' =>'");
const COMMON = ['--r', '4', '--lora-alpha', '8', '--batch-size', '4', '--max-steps', '1', '--report', 'none'];

beforeAll(() => {
  dir = tmpDir('gguf');
  model = makeModelDir(dir);
  data = path.join(dir, 'chat.jsonl');
  const rows = finetuneSamples(8, 0).map((s) => ({
    messages: [{ role: 'user', content: s.prompt.slice(0, -' ->'.length) }, { role: 'assistant', content: s.completion.slice(1) }],
  }));
  fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'trained.jinja'), TRAINED_TEMPLATE);
});

async function run(...argv: string[]): Promise<void> {
  const r = await cli(...argv);
  expect([argv.slice(0, 1), r.code, r.err]).toEqual([argv.slice(0, 1), 0, '']);
}

test('an adapter from train holds what convert_lora_to_gguf.py reads, named as it expects; DoRA / rsLoRA ones are caught (merge those first)', async () => {
  const plain = path.join(dir, 'lora');
  await run('train', '--model', model, '--data', data, '--output', plain, ...COMMON);
  expect(adapterProblems(plain, model)).toEqual([]);
  expect(readJson(path.join(plain, 'adapter_config.json')).base_model_name_or_path).toBe(path.resolve(model));
  const dora = path.join(dir, 'dora');
  await run('train', '--model', model, '--data', data, '--output', dora, ...COMMON, '--use-dora', '--use-rslora');
  const problems = adapterProblems(dora, model);
  expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^use_rslora/), expect.stringMatching(/^use_dora/), expect.stringMatching(/lora_magnitude_vector.* is not a lora_A \/ lora_B weight/)]));
});

test('merge output holds what convert_hf_to_gguf.py reads (one file, and shards with their index); the trained chat template goes with it', async () => {
  const adapter = path.join(dir, 'chat-adapter');
  await run('train', '--model', model, '--data', data, '--output', adapter, ...COMMON, '--chat-template', path.join(dir, 'trained.jinja'));
  expect(fs.readFileSync(path.join(adapter, 'chat_template.jinja'), 'utf8')).toBe(TRAINED_TEMPLATE);
  expect(adapterProblems(adapter, model)).toEqual([]); // the .jinja beside it is not read by the converter

  const merged = path.join(dir, 'merged');
  await run('merge', '--adapter', adapter, '--output', merged);
  expect(modelFolderProblems(merged)).toEqual([]);
  // The converter and transformers (and our tokenizer) take the same template: the one trained with.
  expect(ggufChatTemplate(merged)).toBe(TRAINED_TEMPLATE);
  expect(readJson(path.join(merged, 'tokenizer_config.json')).chat_template).toBeUndefined();
  // The tokenizer itself is the base's, byte for byte (the converter recognizes pre-tokenizers by a hash).
  expect(fs.readFileSync(path.join(merged, 'tokenizer.json'))).toEqual(fs.readFileSync(path.join(model, 'tokenizer.json')));

  const sharded = path.join(dir, 'merged-sharded');
  await run('merge', '--adapter', adapter, '--output', sharded, '--max-shard-size', '20000');
  expect(fs.readdirSync(sharded).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
  expect(modelFolderProblems(sharded)).toEqual([]);

  // Without --chat-template the base's own template stays where it was.
  const plainMerged = path.join(dir, 'merged-plain');
  await run('merge', '--adapter', path.join(dir, 'lora'), '--output', plainMerged);
  expect(ggufChatTemplate(plainMerged)).toBe(DEMO_CHAT_TEMPLATE);
  expect(fs.existsSync(path.join(plainMerged, 'chat_template.jinja'))).toBe(false);
});

test('a base with named templates (a list in tokenizer_config.json): the merged "default" is the trained one, the others kept', async () => {
  const named = path.join(dir, 'named');
  fs.cpSync(model, named, { recursive: true });
  const cfgFile = path.join(named, 'tokenizer_config.json');
  const toolUse = '{{ messages[0].content }}';
  fs.writeFileSync(cfgFile, JSON.stringify({ ...readJson(cfgFile), chat_template: [{ name: 'default', template: DEMO_CHAT_TEMPLATE }, { name: 'tool_use', template: toolUse }] }));
  const adapter = path.join(dir, 'named-adapter');
  await run('train', '--model', named, '--data', data, '--output', adapter, ...COMMON, '--chat-template', path.join(dir, 'trained.jinja'));
  const merged = path.join(dir, 'named-merged');
  await run('merge', '--adapter', adapter, '--output', merged);
  expect(ggufChatTemplate(merged)).toEqual([{ name: 'default', template: TRAINED_TEMPLATE }, { name: 'tool_use', template: toolUse }]);
  const tok = await AutoTokenizer.fromPretrained(merged);
  expect(tok.chatTemplate().source).toBe(TRAINED_TEMPLATE);
  expect(tok.chatTemplate('tool_use').source).toBe(toolUse);
});

test('the checks fail on folders the converters would stop on', () => {
  const broken = path.join(dir, 'broken');
  fs.cpSync(path.join(dir, 'merged-sharded'), broken, { recursive: true });
  const shard = fs.readdirSync(broken).find((f) => f.startsWith('model-00002'))!;
  fs.rmSync(path.join(broken, shard));
  fs.rmSync(path.join(broken, 'tokenizer.json'));
  fs.copyFileSync(path.join(dir, 'merged', 'model.safetensors'), path.join(broken, 'model.safetensors'));
  const problems = modelFolderProblems(broken);
  expect(problems).toEqual([
    expect.stringMatching(/^the index lists .*; the folder has .*model\.safetensors/),
    expect.stringMatching(/^weight_map and the files differ: missing /),
    'no tokenizer.json or tokenizer.model',
  ]);
  const cfg = readJson(path.join(broken, 'config.json'));
  fs.writeFileSync(path.join(broken, 'config.json'), JSON.stringify({ ...cfg, architectures: ['MyLlama'] }));
  expect(modelFolderProblems(broken)[0]).toBe('config.json architectures[0] "MyLlama" is not one the converter knows');
});
