// The seed article's SimpleMLP with PEFT's LoRA on fc1 (fixture mlp-fc1, made with peft 0.21): the printed
// tree, the parameter counts, the outputs of the saved adapter, and the files we write.
import * as fs from 'fs';
import * as path from 'path';
import { getPeftModel, LoraConfig, loadSafetensorsSync, nn, PeftModel, Tensor, noGrad, memory } from '../lib';
import { loadedSimpleMLP, SimpleMLP } from './helpers/simple-mlp';
import { tmpDir } from './helpers/tmp-dir';
import { maxAbsDiff } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');
const meta = JSON.parse(fs.readFileSync(path.join(FIX, 'meta.json'), 'utf8'));

const seedConfig = () => new LoraConfig({ r: 4, loraAlpha: 16, loraDropout: 0.1, targetModules: ['fc1'] });

let expect_: Record<string, Tensor>;
beforeAll(() => {
  expect_ = loadSafetensorsSync(path.join(FIX, 'mlp-fc1', 'expect.safetensors'));
});
afterAll(() => {
  for (const t of Object.values(expect_)) t.dispose();
});

test("prints PEFT's tree exactly", () => {
  const peft = getPeftModel(loadedSimpleMLP(), seedConfig());
  expect(peft.toString()).toBe(fs.readFileSync(path.join(FIX, 'mlp-fc1', 'repr.txt'), 'utf8'));
  peft.dispose();
});

test("counts trainable parameters as PEFT and prints PEFT's line", () => {
  const peft = getPeftModel(loadedSimpleMLP(), seedConfig());
  expect(peft.getNbTrainableParameters()).toEqual([meta['mlp-fc1'].trainable, meta['mlp-fc1'].all]);
  const names = [...peft.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n);
  expect(names).toEqual(['base_model.model.fc1.lora_A.default.weight', 'base_model.model.fc1.lora_B.default.weight']);
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  peft.printTrainableParameters();
  // PEFT's format: f"trainable params: {trainable:,d} || all params: {all:,d} || trainable%: {100 * trainable / all:.4f}",
  // with the counts PEFT reported for this model (meta.json).
  const { trainable, all } = meta['mlp-fc1'] as { trainable: number; all: number };
  expect(trainable).toBeGreaterThan(0);
  const line = `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${all.toLocaleString('en-US')} || trainable%: ${((100 * trainable) / all).toFixed(4)}`;
  expect(log).toHaveBeenCalledWith(line);
  log.mockRestore();
  peft.dispose();
});

test('a fresh adapter (B = 0) leaves the output unchanged; dropout acts on the LoRA input only', () => {
  const base = loadedSimpleMLP();
  const y0 = noGrad(() => base.forward(expect_.x));
  const peft = getPeftModel(base, seedConfig());
  peft.train();
  const y1 = noGrad(() => peft.forward(expect_.x));
  expect(maxAbsDiff(y0, y1)).toBe(0);
  for (const t of [y0, y1]) t.dispose();
  peft.dispose();
});

for (const sub of ['', 'bin']) {
  test(`loads the adapter from ${sub || 'safetensors'} and gives PEFT's outputs (1e-5)`, async () => {
    const peft = await PeftModel.fromPretrained(loadedSimpleMLP(), path.join(FIX, 'mlp-fc1', sub));
    expect(peft.training).toBe(false);
    const y = noGrad(() => peft.forward(expect_.x));
    expect(maxAbsDiff(y, expect_.y)).toBeLessThan(1e-5);
    // Loaded for inference: nothing trains.
    expect(peft.getNbTrainableParameters()).toEqual([0, meta['mlp-fc1'].all]);
    y.dispose();
    peft.dispose();
  });
}

test('isTrainable loads trainable adapters', async () => {
  const peft = await PeftModel.fromPretrained(loadedSimpleMLP(), path.join(FIX, 'mlp-fc1'), { isTrainable: true });
  expect(peft.getNbTrainableParameters()).toEqual([meta['mlp-fc1'].trainable, meta['mlp-fc1'].all]);
  peft.dispose();
});

test('save -> load round trip is exact and the files are byte for byte what PEFT wrote', async () => {
  const dir = tmpDir('peft-mlp');
  const peft = await PeftModel.fromPretrained(loadedSimpleMLP(), path.join(FIX, 'mlp-fc1'));
  await peft.savePretrained(dir);
  expect(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).toBe(
    fs.readFileSync(path.join(FIX, 'mlp-fc1', 'adapter_config.json'), 'utf8'),
  );
  expect(fs.readFileSync(path.join(dir, 'adapter_model.safetensors')).equals(fs.readFileSync(path.join(FIX, 'mlp-fc1', 'adapter_model.safetensors')))).toBe(true);
  const card = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
  expect(card).toMatch(/^---\n/);
  expect(card).toContain('library_name: peft');
  expect(card).toContain('- PEFT 0.21.0');
  expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);

  const again = await PeftModel.fromPretrained(loadedSimpleMLP(), dir);
  const a = peft.stateDict();
  const b = again.stateDict();
  expect(Object.keys(b)).toEqual(Object.keys(a));
  for (const k of Object.keys(a)) expect(a[k].equal(b[k])).toBe(true);
  peft.dispose();
  again.dispose();
});

test('merge, unmerge and mergeAndUnload keep the outputs (1e-5)', async () => {
  const peft = await PeftModel.fromPretrained(loadedSimpleMLP(), path.join(FIX, 'mlp-fc1'));
  peft.merge();
  const y = noGrad(() => peft.forward(expect_.x));
  expect(maxAbsDiff(y, expect_.y)).toBeLessThan(1e-5);
  peft.unmerge();
  const merged = peft.mergeAndUnload({ safeMerge: true }) as SimpleMLP;
  expect(merged.fc1).toBeInstanceOf(nn.Linear);
  expect(merged.toString()).not.toContain('lora');
  const y2 = noGrad(() => merged.forward(expect_.x));
  expect(maxAbsDiff(y2, expect_.y)).toBeLessThan(1e-5);
  for (const t of [y, y2]) t.dispose();
  merged.dispose();
});

test('disableAdapter runs the base model, then turns the adapter back on', async () => {
  const base = loadedSimpleMLP();
  const y0 = noGrad(() => base.forward(expect_.x));
  const peft = await PeftModel.fromPretrained(base, path.join(FIX, 'mlp-fc1'));
  const yOff = peft.disableAdapter(() => noGrad(() => peft.forward(expect_.x)));
  expect(maxAbsDiff(yOff, y0)).toBe(0);
  const yOn = noGrad(() => peft.forward(expect_.x));
  expect(maxAbsDiff(yOn, expect_.y)).toBeLessThan(1e-5);
  for (const t of [y0, yOff, yOn]) t.dispose();
  peft.dispose();
});

test('no leaked tensors across a forward', async () => {
  const peft = await PeftModel.fromPretrained(loadedSimpleMLP(), path.join(FIX, 'mlp-fc1'));
  const y = noGrad(() => peft.forward(expect_.x));
  y.dispose();
  const before = memory().tensors;
  for (let i = 0; i < 3; i++) noGrad(() => peft.forward(expect_.x)).dispose();
  expect(memory().tensors).toBe(before);
  peft.dispose();
});
