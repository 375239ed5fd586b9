// savePretrained writes what PEFT 0.21 writes (adapter_config.json text and adapter_model.safetensors
// bytes equal to the fixtures PEFT saved), non-default adapters go to subfolders, .bin round-trips (and
// loads in Python's torch.load(weights_only=True) where that Python exists), and load errors are clear.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, LoraConfig, getPeftModel, noGrad, PeftModel, Tensor } from '../lib';
import { PEFT_FIXTURES } from './helpers/peft-fixtures';
import { loadedSimpleMLP } from './helpers/simple-mlp';
import { pythonWithTorch, skipNote } from './helpers/python';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures');
const tmp = () => tmpDir('peft-save');

/** A fixture's base model, unnamed as PEFT's generator had it (its files say base_model_name_or_path null). */
const base = async (name: string) => {
  const m = await AutoModelForCausalLM.fromPretrained(path.join(FIX, name));
  m.nameOrPath = undefined;
  return m;
};
const read = (...p: string[]) => fs.readFileSync(path.join(...p));

function sameStateDict(a: PeftModel, b: PeftModel): void {
  const sa = a.stateDict();
  const sb = b.stateDict();
  expect(Object.keys(sb)).toEqual(Object.keys(sa));
  for (const k of Object.keys(sa)) if (!sa[k].equal(sb[k])) throw new Error(`${k} differs after the round trip`);
}

for (const { name, base: baseName } of PEFT_FIXTURES) {
  test(`${name}: saved files equal PEFT's byte for byte, and load back exactly`, async () => {
    const peft = await PeftModel.fromPretrained(await base(baseName), path.join(FIX, name));
    const dir = tmp();
    await peft.savePretrained(dir);
    expect(read(dir, 'adapter_config.json').toString()).toBe(read(FIX, name, 'adapter_config.json').toString());
    expect(read(dir, 'adapter_model.safetensors').equals(read(FIX, name, 'adapter_model.safetensors'))).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
    const again = await PeftModel.fromPretrained(await base(baseName), dir);
    sameStateDict(peft, again);
    peft.dispose();
    again.dispose();
  });
}

test('llama-multi: the second adapter goes to its subfolder, both as PEFT wrote them', async () => {
  const src = path.join(FIX, 'llama-multi');
  const peft = await PeftModel.fromPretrained(await base('tiny-llama'), src);
  await peft.loadAdapter(path.join(src, 'style'), 'style');
  const dir = tmp();
  await peft.savePretrained(dir);
  for (const sub of ['', 'style']) {
    expect(read(dir, sub, 'adapter_config.json').toString()).toBe(read(src, sub, 'adapter_config.json').toString());
    expect(read(dir, sub, 'adapter_model.safetensors').equals(read(src, sub, 'adapter_model.safetensors'))).toBe(true);
  }
  // selectedAdapters saves only those.
  const only = tmp();
  await peft.savePretrained(only, { selectedAdapters: ['style'] });
  expect(fs.existsSync(path.join(only, 'adapter_model.safetensors'))).toBe(false);
  expect(fs.existsSync(path.join(only, 'style', 'adapter_model.safetensors'))).toBe(true);
  await expect(peft.savePretrained(only, { selectedAdapters: ['nope'] })).rejects.toThrow(/invalid `selectedAdapters`.*"default","style"/);
  peft.dispose();
});

test('.bin (safeSerialization: false) round-trips exactly, with the same keys as the safetensors file', async () => {
  const peft = await PeftModel.fromPretrained(await base('tiny-llama'), path.join(FIX, 'llama-embed-save'));
  const dir = tmp();
  await peft.savePretrained(dir, { safeSerialization: false });
  expect(fs.existsSync(path.join(dir, 'adapter_model.bin'))).toBe(true);
  expect(fs.existsSync(path.join(dir, 'adapter_model.safetensors'))).toBe(false);
  const again = await PeftModel.fromPretrained(await base('tiny-llama'), dir);
  sameStateDict(peft, again);
  peft.dispose();
  again.dispose();
});

test('switching format removes the other format\'s weights once the new file is in place (both directions)', async () => {
  const cfg = () => new LoraConfig({ r: 2, targetModules: ['fc1'], initLoraWeights: false });
  const peft = getPeftModel(loadedSimpleMLP(), cfg());
  const B = () => (peft.getBaseModel().getSubmodule('fc1') as unknown as { lora_B: { get(k: string): { weight: Tensor } } }).lora_B.get('default').weight;
  const setB = (v: number) => noGrad(() => B().fill_(v));
  const loadedB = async (dir: string) => {
    const again = await PeftModel.fromPretrained(loadedSimpleMLP(), dir);
    const b = (again.getBaseModel().getSubmodule('fc1') as unknown as { lora_B: { get(k: string): { weight: Tensor } } }).lora_B.get('default').weight;
    const v = [...new Set(Array.from(b.data() as Float32Array))];
    again.dispose();
    return v;
  };
  const dir = tmp();
  const files = () => fs.readdirSync(dir).filter((f) => f.startsWith('adapter_model')).sort();
  setB(7);
  await peft.savePretrained(dir);
  expect(files()).toEqual(['adapter_model.safetensors']);
  setB(0.25);
  await peft.savePretrained(dir, { safeSerialization: false });
  expect(files()).toEqual(['adapter_model.bin']);
  expect(await loadedB(dir)).toEqual([0.25]);
  setB(3);
  await peft.savePretrained(dir, { safeSerialization: true });
  expect(files()).toEqual(['adapter_model.safetensors']);
  expect(await loadedB(dir)).toEqual([3]);
  // A write that fails leaves the previous file: here adapter_model.bin cannot be created (a folder is in the way).
  fs.mkdirSync(path.join(dir, 'adapter_model.bin'));
  const before = read(dir, 'adapter_model.safetensors');
  setB(5);
  await expect(peft.savePretrained(dir, { safeSerialization: false })).rejects.toThrow();
  expect(read(dir, 'adapter_model.safetensors').equals(before)).toBe(true);
  expect(await loadedB(dir)).toEqual([3]);
  peft.dispose();
});

describe('PyTorch loads the adapter .bin we write', () => {
  const py = pythonWithTorch();
  if (py === null) {
    test.skip(skipNote('loading our adapter .bin in PyTorch'), () => undefined);
    return;
  }
  test('a .bin we write loads in Python with torch.load(weights_only=True) to the same tensors', async () => {
    const peft = await PeftModel.fromPretrained(await base('tiny-llama'), path.join(FIX, 'llama-dora'));
    const dir = tmp();
    await peft.savePretrained(dir, { safeSerialization: false });
    const script = [
      'import sys, torch',
      'sd = torch.load(sys.argv[1], weights_only=True)',
      'print(type(sd).__name__)',
      'for k, v in sd.items(): print(k, list(v.shape), repr(float(v.double().sum())))',
    ].join('\n');
    const r = spawnSync(py, ['-c', script, path.join(dir, 'adapter_model.bin')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('OrderedDict');
    const ours = loadSafetensorsSync(path.join(FIX, 'llama-dora', 'adapter_model.safetensors'));
    expect(lines.length - 1).toBe(Object.keys(ours).length);
    for (const line of lines.slice(1)) {
      const [k, shape, sum] = line.split(/ (?=\[)|\] /).map((s) => s.trim());
      const t = ours[k];
      expect(t).toBeDefined();
      expect(`${shape}]`.replace(/\]\]$/, ']')).toBe(JSON.stringify(t.shape).replace(/,/g, ', '));
      expect(Number(sum)).toBeCloseTo(t.double().sum().item() as number, 10);
    }
    Object.values(ours).forEach((t: Tensor) => t.dispose());
    peft.dispose();
  });
});

test('a model built with getPeftModel saves the config PEFT would (all-linear expanded, sorted keys)', async () => {
  const cfg = new LoraConfig({
    r: 4,
    loraAlpha: 8,
    targetModules: 'all-linear',
    useRslora: true,
    rankPattern: { gate_proj: 3, 'model.layers.2.self_attn.k_proj': 5 },
    alphaPattern: { v_proj: 7 },
    taskType: 'CAUSAL_LM',
    initLoraWeights: false,
  });
  const peft = getPeftModel(await base('tiny-llama'), cfg);
  const dir = tmp();
  await peft.savePretrained(dir);
  const ours = JSON.parse(read(dir, 'adapter_config.json').toString());
  const theirs = JSON.parse(read(FIX, 'llama-all-patterns', 'adapter_config.json').toString());
  // PEFT writes the expanded set in Python's set order; ours is sorted.
  expect([...ours.target_modules].sort()).toEqual([...theirs.target_modules].sort());
  ours.target_modules = theirs.target_modules;
  expect(ours).toEqual(theirs);
  // The saved tensors have the names and shapes of PEFT's file.
  const a = loadSafetensorsSync(path.join(dir, 'adapter_model.safetensors'));
  const b = loadSafetensorsSync(path.join(FIX, 'llama-all-patterns', 'adapter_model.safetensors'));
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) expect(a[k].shape).toEqual(b[k].shape);
  [...Object.values(a), ...Object.values(b)].forEach((t) => t.dispose());
  peft.dispose();
});

test('loading into a model of another shape names the key and both shapes', async () => {
  const peft = getPeftModel(await base('tiny-llama'), new LoraConfig({ r: 3, targetModules: ['q_proj', 'v_proj'] }));
  await expect(peft.loadAdapter(path.join(FIX, 'llama-qv'), 'default')).rejects.toThrow(
    /base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.default\.weight: found shape \[8, 48\] in the checkpoint and \[3, 48\] in the model/,
  );
  peft.dispose();
});

test('a folder without weights is a clear error', async () => {
  const dir = tmp();
  fs.copyFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
  await expect(PeftModel.fromPretrained(await base('tiny-llama'), dir)).rejects.toThrow(/Can't find weights for .*adapter_model\.safetensors nor adapter_model\.bin/);
  await expect(PeftModel.fromPretrained(await base('tiny-llama'), tmp())).rejects.toThrow(/Can't find 'adapter_config.json'/);
});

test('keys without the base_model.model. prefix load the same', async () => {
  const src = loadSafetensorsSync(path.join(FIX, 'llama-qv', 'adapter_model.safetensors'));
  const stripped: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(src)) stripped[k.replace(/^base_model\.model\./, '')] = t;
  const dir = tmp();
  const { saveSafetensors } = await import('../lib');
  await saveSafetensors(stripped, path.join(dir, 'adapter_model.safetensors'));
  fs.copyFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
  const a = await PeftModel.fromPretrained(await base('tiny-llama'), dir);
  const b = await PeftModel.fromPretrained(await base('tiny-llama'), path.join(FIX, 'llama-qv'));
  sameStateDict(a, b);
  Object.values(src).forEach((t) => t.dispose());
  a.dispose();
  b.dispose();
});

test("a base loaded from a folder: adapter_config.json records that folder (PEFT fills base_model_name_or_path from name_or_path)", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(path.join(FIX, 'tiny-llama'));
  const peft = getPeftModel(model, new LoraConfig({ r: 2, targetModules: ['q_proj'] }));
  const dir = tmp();
  await peft.savePretrained(dir);
  const cfg = JSON.parse(read(dir, 'adapter_config.json').toString());
  expect(cfg.base_model_name_or_path).toBe(path.join(FIX, 'tiny-llama'));
  // The model card names it too.
  expect(read(dir, 'README.md').toString()).toContain(`base_model: ${path.join(FIX, 'tiny-llama')}`);
  peft.dispose();
});
