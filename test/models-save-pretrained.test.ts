// savePretrained: a causal LM written as transformers' save_pretrained writes it (config.json +
// model.safetensors, or shards + model.safetensors.index.json) loads back with the same tensors and the
// same logits; tied weights are written once; the config round-trips with its unknown keys; an earlier
// save in the same folder is replaced. (test/interop/transformers_interop.py checks that transformers
// itself loads these folders.)
import * as fs from 'fs';
import * as safetensorsIO from '../lib/io/safetensors';
import * as path from 'path';
import { loadSafetensorsSync, manualSeed, memory, noGrad, PeftModel, readSafetensorsHeader, Tensor } from '../lib';
import {
  AutoModelForCausalLM,
  CausalLM,
  configJSONString,
  configToJSON,
  GPT2LMHeadModel,
  LlamaForCausalLM,
  numParameters,
  parseGPT2Config,
  parseLlamaConfig,
  parseShardSize,
  readConfig,
  savePretrained,
} from '../lib/models';
import { compareStateDictKeys, planShards } from '../lib/models/save-pretrained';
import { Parameter } from '../lib/nn';
import { leftovers } from './helpers/atomic-save';
import { settleGarbage } from './helpers/gc';
import { expected, FIXTURES, GPT2_DIR, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

let tmp: string;
beforeAll(() => (tmp = tmpDir('save-pretrained')));
const out = (name: string) => path.join(tmp, name);

const SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;
const FIXTURE_MODELS = [
  ['Llama', LLAMA_DIR],
  ['GPT-2', GPT2_DIR],
] as const;

function logitsOf(model: CausalLM, ids: Tensor): Tensor {
  return noGrad(() => model.forward({ inputIds: ids }).logits);
}

/** Largest |a - b| (0 for equal tensors); shapes must agree. */

/** Both models have the same state-dict names, dtypes and values, and compute the same logits on the fixture's input. */
function expectSameModel(a: CausalLM, b: CausalLM, fixture: string): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sb).sort()).toEqual(Object.keys(sa).sort());
  for (const [k, t] of Object.entries(sa)) {
    expect([k, sb[k].dtype]).toEqual([k, t.dtype]);
    expect([k, maxAbsDiff(t, sb[k])]).toEqual([k, 0]);
  }
  const ex = expected(fixture);
  const la = logitsOf(a, ex.inputIds);
  const lb = logitsOf(b, ex.inputIds);
  expect(maxAbsDiff(la, lb)).toBe(0);
  [la, lb, ex.inputIds, ex.logits].forEach((t) => t.dispose());
}

/** The tensor names of a safetensors file and its metadata. */
function header(file: string): { names: string[]; metadata: Record<string, string>; bytes: number } {
  const h = readSafetensorsHeader(file);
  return { names: [...h.tensors.keys()].sort(), metadata: h.metadata, bytes: [...h.tensors.values()].reduce((n, e) => n + e.nbytes, 0) };
}

const readJSON = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));

describe.each(FIXTURE_MODELS)('%s', (_name, fixture) => {
  test('one model.safetensors: the same tensors as the checkpoint it was loaded from, the same logits', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(fixture);
    const dir = out(`${path.basename(fixture)}-single`);
    const saved = await model.savePretrained(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(saved.files).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    // generation_config.json as it was read, in transformers' text (the fixture's was written by transformers).
    expect(fs.readFileSync(path.join(dir, 'generation_config.json'), 'utf8')).toBe(fs.readFileSync(path.join(fixture, 'generation_config.json'), 'utf8'));
    const h = header(path.join(dir, 'model.safetensors'));
    // transformers' file has these names (lm_head.weight of tied GPT-2 not among them) and this metadata.
    expect(h.names).toEqual(header(path.join(fixture, 'model.safetensors')).names);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(saved.totalSize).toBe(h.bytes);
    expect(saved.totalParameters).toBe(numParameters(model));
    // The fixture's weights were written by transformers' save_pretrained: ours are the same bytes.
    expect(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(fs.readFileSync(path.join(fixture, 'model.safetensors')))).toBe(true);
    const back = await AutoModelForCausalLM.fromPretrained(dir);
    expectSameModel(model, back, fixture);
    [model, back].forEach((m) => m.dispose());
  });

  test('sharded (small maxShardSize): the index names every tensor once, in the file that holds it', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(fixture);
    const dir = out(`${path.basename(fixture)}-sharded`);
    const saved = await model.savePretrained(dir, { maxShardSize: '60KB' });
    const shards = fs.readdirSync(dir).filter((f) => SHARD.test(f)).sort();
    expect(shards.length).toBeGreaterThan(2);
    expect(shards).toEqual(shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', ...shards, 'model.safetensors.index.json'].sort());
    const index = readJSON(path.join(dir, 'model.safetensors.index.json'));
    expect(Object.keys(index).sort()).toEqual(['metadata', 'weight_map']);
    const map = index.weight_map as Record<string, string>;
    let total = 0;
    const everyName: string[] = [];
    for (const s of shards) {
      const h = header(path.join(dir, s));
      expect(h.metadata).toEqual({ format: 'pt' });
      // At most 60 kB, unless one tensor alone is larger.
      expect(h.bytes <= 60000 || h.names.length === 1).toBe(true);
      expect(h.names).toEqual(Object.keys(map).filter((k) => map[k] === s).sort());
      total += h.bytes;
      everyName.push(...h.names);
    }
    expect(everyName.sort()).toEqual(header(path.join(fixture, 'model.safetensors')).names);
    expect(index.metadata).toEqual({ total_parameters: numParameters(model), total_size: total });
    expect(saved.totalSize).toBe(total);
    // The index as transformers writes it: keys sorted, 2-space indent, a final newline.
    expect(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')).toBe(JSON.stringify(index, Object.keys(map).concat(['metadata', 'total_parameters', 'total_size', 'weight_map']).sort(), 2) + '\n');
    const back = await AutoModelForCausalLM.fromPretrained(dir);
    expectSameModel(model, back, fixture);
    [model, back].forEach((m) => m.dispose());
  });

  test('config.json: parse(save(parse(raw))) equals parse(raw), unknown keys kept, the same text transformers wrote', () => {
    const raw = readConfig(fixture);
    const parse = fixture === LLAMA_DIR ? parseLlamaConfig : parseGPT2Config;
    const parsed = parse(raw);
    const json = configToJSON(parsed);
    expect(parse(json)).toEqual(parsed);
    expect(json).toEqual(raw); // the fixture's config.json has transformers 5's spelling: nothing moved
    // The fixture's config.json was written by transformers (5.17) and keeps its transformers_version.
    expect(configJSONString(json)).toBe(fs.readFileSync(path.join(fixture, 'config.json'), 'utf8'));
    const withUnknown = { ...raw, my_key: { nested: [1, 2.5, 'x'] }, use_cache: false, __proto__x: 1 };
    const again = configToJSON(parse(withUnknown));
    expect(again).toEqual(withUnknown);
    expect(parse(again)).toEqual(parse(withUnknown));
  });
});

test('transformers 4 spellings (rope_theta, rope_scaling, torch_dtype, GPT-2 aliases) round-trip; the written config has 5 spellings too', () => {
  const v4 = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 64,
    num_attention_heads: 4,
    num_hidden_layers: 1,
    vocab_size: 50,
    rope_theta: 500000.0,
    rope_scaling: { type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 },
    torch_dtype: 'bfloat16',
    transformers_version: '4.44.0',
    pretraining_tp: 1,
  };
  const parsed = parseLlamaConfig(v4);
  const json = configToJSON(parsed);
  expect(parseLlamaConfig(json)).toEqual(parsed);
  expect(json).toMatchObject({
    dtype: 'bfloat16',
    torch_dtype: 'bfloat16',
    rope_theta: 500000,
    rope_parameters: { rope_type: 'llama3', type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    rope_scaling: v4.rope_scaling, // the old spelling kept as it was (transformers 5 prefers it when present)
    transformers_version: '4.44.0',
    pretraining_tp: 1,
  });
  // A changed value reaches both spellings.
  const changed = configToJSON({ ...parsed, rope: { ...parsed.rope, ropeTheta: 1e6 } }, { dtype: 'float32' });
  expect([changed.rope_theta, (changed.rope_parameters as { rope_theta: number }).rope_theta, changed.dtype, changed.torch_dtype]).toEqual([1e6, 1e6, 'float32', 'float32']);
  expect(parseLlamaConfig(changed).rope.ropeTheta).toBe(1e6);
  // A default-rope v4 config keeps rope_scaling null.
  const plain = configToJSON(parseLlamaConfig({ ...v4, rope_scaling: null }));
  expect(plain.rope_scaling).toBeNull();
  expect(plain.rope_parameters).toEqual({ rope_type: 'default', rope_theta: 500000 });
  // GPT-2's attribute-map names are written as GPT-2's own (as transformers does); values unchanged.
  const g = { model_type: 'gpt2', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 16, vocab_size: 50, n_inner: 64, summary_type: 'cls_index' };
  const gj = configToJSON(parseGPT2Config(g));
  expect(gj).toMatchObject({ n_embd: 32, n_layer: 2, n_head: 4, n_positions: 16, n_inner: 64, summary_type: 'cls_index' });
  expect(gj).not.toHaveProperty('hidden_size');
  expect(parseGPT2Config(gj)).toEqual(parseGPT2Config(g));
  // Floats are spelled as Python writes them.
  expect(configJSONString(configToJSON(parsed))).toMatch(/"rms_norm_eps": 1e-06,\n[^]*"rope_theta": 500000\.0,\n/);
});

test('tied embeddings: the weight is written once (as the input embedding) and the reloaded model ties it again', async () => {
  manualSeed(1);
  const raw = { ...readConfig(LLAMA_DIR), tie_word_embeddings: true };
  const model = AutoModelForCausalLM.fromConfig(raw) as LlamaForCausalLM;
  model.eval();
  expect(model.lm_head.weight).toBe(model.model.embed_tokens.weight);
  const dir = out('llama-tied');
  await model.savePretrained(dir);
  const names = header(path.join(dir, 'model.safetensors')).names;
  expect(names).toContain('model.embed_tokens.weight');
  expect(names).not.toContain('lm_head.weight');
  expect(readJSON(path.join(dir, 'config.json')).tie_word_embeddings).toBe(true);
  const back = (await AutoModelForCausalLM.fromPretrained(dir)) as LlamaForCausalLM;
  expect(back.lm_head.weight).toBe(back.model.embed_tokens.weight);
  expectSameModel(model, back, LLAMA_DIR);
  // Sharded too: once, in one shard.
  await model.savePretrained(dir, { maxShardSize: 30000 });
  const map = readJSON(path.join(dir, 'model.safetensors.index.json')).weight_map;
  expect(Object.keys(map)).toContain('model.embed_tokens.weight');
  expect(Object.keys(map)).not.toContain('lm_head.weight');
  const sharded = (await AutoModelForCausalLM.fromPretrained(dir)) as LlamaForCausalLM;
  expect(sharded.lm_head.weight).toBe(sharded.model.embed_tokens.weight);
  expectSameModel(model, sharded, LLAMA_DIR);
  [model, back, sharded].forEach((m) => m.dispose());
});

test('a model built by fromConfig (no config.json behind it) saves and loads', async () => {
  manualSeed(2);
  const config = parseGPT2Config({ n_embd: 32, n_head: 4, n_layer: 2, n_positions: 32, vocab_size: 128 });
  const model = AutoModelForCausalLM.fromConfig(config) as GPT2LMHeadModel;
  model.eval();
  const dir = out('from-config');
  await savePretrained(model, dir, { maxShardSize: 20000 });
  const written = readJSON(path.join(dir, 'config.json'));
  expect(written).toMatchObject({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', dtype: 'float32', n_embd: 32, n_inner: null, tie_word_embeddings: true });
  expect(written).not.toHaveProperty('transformers_version'); // not invented: no transformers wrote it
  const back = await AutoModelForCausalLM.fromPretrained(dir);
  expect(back.config).toEqual({ ...config, dtype: 'float32' });
  expectSameModel(model, back, GPT2_DIR);
  [model, back].forEach((m) => m.dispose());
});

test('bfloat16 weights: dtype bfloat16 in config.json (torch_dtype too where the source had it), BF16 in the files', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { dtype: 'bfloat16' });
  const dir = out('bf16');
  const saved = await model.savePretrained(dir);
  expect(saved.dtype).toBe('bfloat16');
  const cfg = readJSON(path.join(dir, 'config.json'));
  expect(cfg.dtype).toBe('bfloat16');
  expect(cfg).not.toHaveProperty('torch_dtype');
  expect([...readSafetensorsHeader(path.join(dir, 'model.safetensors')).tensors.values()].every((e) => e.dtype === 'bfloat16')).toBe(true);
  const back = await AutoModelForCausalLM.fromPretrained(dir);
  expect(back.config.dtype).toBe('bfloat16');
  expectSameModel(model, back, LLAMA_DIR);
  back.dispose();
  // A transformers 4 config (torch_dtype float32) gets both spellings with the new dtype.
  const { dtype: _d, ...v5 } = readConfig(LLAMA_DIR);
  const src = out('v4-src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'config.json'), JSON.stringify({ ...v5, torch_dtype: 'float32' }));
  fs.copyFileSync(path.join(LLAMA_DIR, 'model.safetensors'), path.join(src, 'model.safetensors'));
  const v4 = await AutoModelForCausalLM.fromPretrained(src, { dtype: 'bfloat16' });
  await v4.savePretrained(dir);
  expect(readJSON(path.join(dir, 'config.json'))).toMatchObject({ dtype: 'bfloat16', torch_dtype: 'bfloat16' });
  [model, v4].forEach((m) => m.dispose());
});

test('maxShardSize: numbers of bytes and transformers size strings; anything else is a clear error, before anything is written', async () => {
  expect(parseShardSize('50GB')).toBe(50e9);
  expect(parseShardSize('5MB')).toBe(5e6);
  expect(parseShardSize(' 1.5 gb ')).toBe(1.5e9);
  expect(parseShardSize('10KB')).toBe(10000);
  expect(parseShardSize('2TB')).toBe(2e12);
  expect(parseShardSize(12345)).toBe(12345);
  for (const bad of ['5GiB', '5G', '', 'GB', 'abcMB', '-1MB', '0KB', '1e400GB', '5 bytes'])
    expect(() => parseShardSize(bad)).toThrow(/expected a number and a unit KB, MB, GB or TB|at least 1 byte/);
  for (const bad of [0, -5, 1.5, NaN, Infinity]) expect(() => parseShardSize(bad)).toThrow(/positive whole number of bytes/);
  const model = await AutoModelForCausalLM.fromPretrained(GPT2_DIR);
  const dir = out('bad-size');
  await expect(model.savePretrained(dir, { maxShardSize: '5GiB' })).rejects.toThrow("maxShardSize '5GiB' is not a size: expected a number and a unit KB, MB, GB or TB");
  expect(fs.existsSync(dir)).toBe(false);
  model.dispose();
});

test('shards as transformers 5 makes them: names in dot-natural order, a tensor above the limit in a shard of its own', () => {
  const names = ['model.layers.10.mlp.w', 'lm_head.weight', 'model.layers.2.mlp.w', 'model.norm.weight', 'model.embed_tokens.weight', 'model.layers.2.attn.w', 'h1.x', 'h.x', 'h10.x', 'h2.x'];
  expect([...names].sort(compareStateDictKeys)).toEqual([
    'h.x',
    'h1.x',
    'h2.x',
    'h10.x',
    'lm_head.weight',
    'model.embed_tokens.weight',
    'model.layers.2.attn.w',
    'model.layers.2.mlp.w',
    'model.layers.10.mlp.w',
    'model.norm.weight',
  ]);
  // huggingface_hub's example: limit 10, sizes [6, 6, 2, 6, 2, 2] -> [6], [6 2], [6 2 2]; a 12 alone, before the shard being filled.
  const sizes: [string, number][] = [6, 6, 2, 6, 2, 2].map((b, i) => [`t${i}`, b]);
  expect(planShards(sizes, 10)).toEqual([['t0'], ['t1', 't2'], ['t3', 't4', 't5']]);
  expect(planShards([['a', 3], ['big', 12], ['b', 3]], 10)).toEqual([['big'], ['a', 'b']]);
});

test('an earlier save in the folder is replaced cleanly: stale shards, index or model.safetensors removed, other files kept', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  const dir = out('resave');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  const weights = () => fs.readdirSync(dir).filter((f) => f.startsWith('model')).sort();
  await model.savePretrained(dir, { maxShardSize: 30000 });
  const many = weights().filter((f) => SHARD.test(f)).length;
  expect(many).toBeGreaterThan(4);
  await model.savePretrained(dir, { maxShardSize: 100000 });
  const fewer = weights().filter((f) => SHARD.test(f));
  expect(fewer.length).toBeLessThan(many);
  expect(fewer.every((f) => f.endsWith(`-of-${String(fewer.length).padStart(5, '0')}.safetensors`))).toBe(true);
  expect(weights()).toEqual([...fewer, 'model.safetensors.index.json']);
  const mid = await AutoModelForCausalLM.fromPretrained(dir);
  expectSameModel(model, mid, LLAMA_DIR);
  mid.dispose();
  // Sharded -> one file: the index and the shards go.
  await model.savePretrained(dir);
  expect(weights()).toEqual(['model.safetensors']);
  // One file -> sharded: model.safetensors goes (it would be read before the index).
  await model.savePretrained(dir, { maxShardSize: 50000 });
  expect(weights()).not.toContain('model.safetensors');
  expect(weights()).toContain('model.safetensors.index.json');
  expect(fs.readdirSync(dir)).toContain('tokenizer.json');
  expect(leftovers(dir)).toEqual([]);
  const back = await AutoModelForCausalLM.fromPretrained(dir);
  expectSameModel(model, back, LLAMA_DIR);
  [model, back].forEach((m) => m.dispose());
});

test('a save that fails leaves the earlier checkpoint loadable and no temporary files', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(GPT2_DIR);
  const dir = out('failed-save');
  await model.savePretrained(dir, { maxShardSize: 100000 });
  const before = fs.readdirSync(dir).sort();
  const index = fs.readFileSync(path.join(dir, 'model.safetensors.index.json'));
  // The same shard names with other weights (all doubled), failing at the fourth shard: the save writes
  // into a staging copy of the folder, so nothing of it may reach the folder.
  const changed = await AutoModelForCausalLM.fromPretrained(GPT2_DIR);
  noGrad(() => [...changed.parameters()].forEach((p) => p.mul_(2)));
  const save = safetensorsIO.saveSafetensors;
  let shardRenames = 0; // shards written
  const spy = jest.spyOn(safetensorsIO, 'saveSafetensors').mockImplementation(async (tensors, file, o) => {
    if (/model-\d{5}-of-\d{5}\.safetensors$/.test(String(file)) && ++shardRenames === 4) throw new Error('injected: disk full');
    return save(tensors, file, o);
  });
  try {
    await expect(changed.savePretrained(dir, { maxShardSize: 100000 })).rejects.toThrow('injected: disk full');
  } finally {
    spy.mockRestore();
  }
  // No staging folder left beside it either.
  expect(fs.readdirSync(path.dirname(dir)).filter((n) => n.startsWith(`.${path.basename(dir)}.`))).toEqual([]);
  expect(shardRenames).toBe(4);
  expect(fs.readdirSync(dir).sort()).toEqual(before); // nor the new shards put in place before the failure
  expect(leftovers(dir)).toEqual([]);
  expect(fs.readFileSync(path.join(dir, 'model.safetensors.index.json')).equals(index)).toBe(true);
  // The earlier weights, every shard of them (the three replaced ones were put back): not a mix.
  const back = await AutoModelForCausalLM.fromPretrained(dir);
  expectSameModel(model, back, GPT2_DIR);
  [model, back, changed].forEach((m) => m.dispose());
});

test('a merged PEFT model saves as a plain checkpoint computing what PEFT computed after merge_and_unload (1e-5)', async () => {
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(LLAMA_DIR), path.join(FIXTURES, 'llama-qv'));
  await expect(savePretrained(peft, out('peft-unmerged'))).rejects.toThrow(/got PeftModelForCausalLM: call mergeAndUnload\(\) first/);
  await expect(savePretrained(peft.base_model.model, out('peft-unmerged'))).rejects.toThrow(/still holds LoRA layers \(model\.layers\.0\.self_attn\.q_proj\.base_layer\.weight/);
  expect(fs.existsSync(out('peft-unmerged'))).toBe(false);
  const merged = peft.mergeAndUnload(); // typed as the base model (PeftModel<CausalLM>): savePretrained is there
  const dir = out('peft-merged');
  await merged.savePretrained(dir, { maxShardSize: '100KB' });
  const plain = await AutoModelForCausalLM.fromPretrained(dir);
  const exp = loadSafetensorsSync(path.join(FIXTURES, 'llama-qv', 'expect.safetensors'));
  const logits = logitsOf(plain, exp.input_ids);
  expect(maxAbsDiff(logits, exp.merged_logits)).toBeLessThan(1e-5);
  [logits, ...Object.values(exp), plain, merged].forEach((t) => t.dispose());
});

test('non-contiguous weights are written by value; saving leaves no tensor behind', async () => {
  const model = (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR)) as LlamaForCausalLM;
  const w = model.lm_head.weight;
  const strided = noGrad(() => w.t().contiguous().t());
  expect(strided.isContiguous()).toBe(false);
  model.lm_head.weight = new Parameter(strided, false);
  expect(model.lm_head.weight.isContiguous()).toBe(false);
  w.dispose();
  strided.dispose();
  await settleGarbage();
  const before = memory().tensors;
  const dir = out('strided');
  await model.savePretrained(dir, { maxShardSize: 40000 });
  await settleGarbage();
  expect(memory().tensors).toBe(before);
  const back = await AutoModelForCausalLM.fromPretrained(dir);
  const reference = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  expectSameModel(reference, back, LLAMA_DIR);
  [model, back, reference].forEach((m) => m.dispose());
});

test('errors: a file where the folder should be, a meta model', async () => {
  const file = out('a-file');
  fs.writeFileSync(file, 'x');
  const model = await AutoModelForCausalLM.fromPretrained(GPT2_DIR);
  await expect(model.savePretrained(file)).rejects.toThrow(`savePretrained: '${file}' is a file; expected a folder`);
  model.dispose();
  const meta = AutoModelForCausalLM.fromConfig(readConfig(GPT2_DIR), { device: 'meta' });
  await expect(meta.savePretrained(out('meta'))).rejects.toThrow(/'transformer\.wte\.weight' is on the meta device and has no data/);
  meta.dispose();
});
