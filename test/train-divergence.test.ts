// Divergence never passes silently: a step whose loss or gradients are NaN/Inf is skipped (as a GradScaler
// skips one), a few in a row stop the run with an error, and no save (adapter, trained weights, merged
// model) writes NaN/Inf, not even over a good save. A dataset without a single label token is an error
// up front, not a run of NaN losses.
import * as fs from 'fs';
import * as path from 'path';
import { Dataset, noGrad, scope, Trainer } from '../lib';
import { Example } from '../lib/data';
import { MAX_NON_FINITE_STEPS, TrainingDivergedError } from '../lib/train';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

const ARGS = { perDeviceTrainBatchSize: 4, loggingSteps: 1, report: 'plain' as const, plotLoss: false };

function collect(): { write(s: string): void; text(): string } {
  const lines: string[] = [];
  return { write: (s: string) => void lines.push(s), text: () => lines.join('') };
}

test('a NaN step is skipped (no update), the run goes on, and the log and the adapter stay finite', async () => {
  const model = await tinyLoraModel(0);
  const out = tmpDir('nan-step');
  const base = model.getBaseModel() as unknown as { model: { norm: { weight: import('../lib').Tensor } } };
  const norm = base.model.norm.weight;
  const saved = scope(() => norm.clone());
  const loraA = [...model.namedParameters()].find(([n]) => n.includes('lora_A'))![1];
  const snapshots: number[][] = [];
  const stream = collect();
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(16, 1),
    stream: { isTTY: false, write: stream.write },
    args: { outputDir: out, maxSteps: 4, learningRate: 1e-2, ...ARGS },
    callbacks: {
      onStepEnd: ({ globalStep }) => {
        snapshots.push(Array.from(loraA.data() as Float32Array));
        // Step 2 runs with a NaN in a frozen weight (its loss and gradients are NaN); step 3 without.
        noGrad(() => (globalStep === 1 ? norm.fill_(NaN) : globalStep === 2 ? norm.copy_(saved) : undefined));
      },
    },
  });
  const result = await trainer.train();
  expect(result.globalStep).toBe(4);
  expect(stream.text()).toContain('step 2: the loss or the gradients were NaN/Inf; step skipped');
  // Step 2 left the adapter as step 1 had it; steps 3 and 4 changed it again.
  expect(snapshots[1]).toEqual(snapshots[0]);
  expect(snapshots[2]).not.toEqual(snapshots[1]);
  const logged = result.logHistory.filter((e) => e.loss !== undefined);
  expect(logged.map((e) => e.step)).toEqual([1, 2, 3, 4]);
  // The skipped step's NaN is not in the means: step 2 logs no loss of its own (NaN: nothing to average), the others are finite.
  expect(logged.filter((e) => e.step !== 2).every((e) => Number.isFinite(e.loss))).toBe(true);
  expect(Number.isFinite(result.trainingLoss)).toBe(true);
  expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
  saved.dispose();
  model.dispose();
});

test(`learningRate 1e30: stopped after ${MAX_NON_FINITE_STEPS} NaN steps in a row, with an error; a good adapter in the folder is kept`, async () => {
  const out = tmpDir('diverge');
  const good = await tinyLoraModel(1);
  await good.savePretrained(out);
  good.dispose();
  const before = fs.readFileSync(path.join(out, 'adapter_model.safetensors'));
  const model = await tinyLoraModel(0);
  const trainer = new Trainer({ model, trainDataset: randomExamples(40, 2), args: { outputDir: out, maxSteps: 10, learningRate: 1e30, ...ARGS, report: 'none' } });
  const err = await trainer.train().then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(TrainingDivergedError);
  expect(err!.message).toMatch(new RegExp(`NaN/Inf in ${MAX_NON_FINITE_STEPS} steps in a row .*Lower the learning rate \\(learningRate 1e\\+30\\)`));
  expect(fs.readFileSync(path.join(out, 'adapter_model.safetensors'))).toEqual(before);
  // savePretrained itself refuses such weights (here: made NaN by hand), and leaves the good file as it was.
  noGrad(() => [...model.namedParameters()].find(([n]) => n.includes('lora_B'))![1].fill_(NaN));
  await expect(model.savePretrained(out)).rejects.toThrow(/adapter 'default': .*lora_B.* NaN or Inf values .*nothing was written/);
  expect(fs.readFileSync(path.join(out, 'adapter_model.safetensors'))).toEqual(before);
  // And so does the save of a merged model.
  const merged = model.mergeAndUnload();
  const mergedDir = tmpDir('diverge-merged');
  await expect((merged as unknown as { savePretrained(d: string): Promise<unknown> }).savePretrained(mergedDir)).rejects.toThrow(/savePretrained: .* NaN or Inf values/);
  expect(fs.readdirSync(mergedDir)).toEqual([]);
  merged.dispose();
});

test('a dataset without any label token is an error when the Trainer is made, not a NaN run', async () => {
  const model = await tinyLoraModel(0);
  const masked: Example[] = [
    { inputIds: Int32Array.from([1, 2, 3]), labels: Int32Array.from([-100, -100, -100]) },
    { inputIds: Int32Array.from([4]), labels: Int32Array.from([4]) }, // one token: nothing after the shift
    { inputIds: new Int32Array(0), labels: new Int32Array(0) },
  ];
  expect(() => new Trainer({ model, trainDataset: new Dataset(masked), args: { outputDir: tmpDir('nolabel'), ...ARGS } })).toThrow(
    /none of the 3 training examples has a token to learn/,
  );
  model.dispose();
});

describe('the CLI', () => {
  let dir: string;
  let modelDir: string;
  let data: string;
  beforeAll(() => {
    dir = tmpDir('diverge-cli');
    modelDir = makeModelDir(dir);
    data = makeDataFile(dir, 16);
  });
  const common = () => ['--model', modelDir, '--data', data, '--batch-size', '4', '--report', 'plain'];

  test('train --lr 1e30 exits 1 with the divergence error and writes no adapter (the reported case)', async () => {
    const out = path.join(dir, 'lr');
    const r = await cli('train', ...common(), '--output', out, '--max-steps', '8', '--lr', '1e30');
    expect(r.code).toBe(1);
    // Here the weights saturate the RMSNorms (x² overflows, so the norm gives 0): finite, but dead.
    expect(r.err).toMatch(/the gradients collapsed to exactly zero in 3 steps in a row .*Lower the learning rate \(learningRate 1e\+30\)/);
    expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(false);
  });

  test('train --max-length 0 or 1 is a usage error; a max length that cuts every completion is the Trainer error', async () => {
    for (const n of ['0', '1']) {
      const r = await cli('train', ...common(), '--output', path.join(dir, `ml${n}`), '--max-steps', '1', '--max-length', n);
      expect([n, r.code, r.err]).toEqual([n, 2, expect.stringContaining(`--max-length must be at least 2 (a token and the next one to learn), got ${n}`)]);
    }
    // The prompts are longer than 3 tokens: no completion token is left.
    const r = await cli('train', ...common(), '--output', path.join(dir, 'ml3'), '--max-steps', '1', '--max-length', '3');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/none of the 16 training examples has a token to learn/);
  });

  test('generate and merge refuse an adapter of NaN weights, by name, and merge writes nothing', async () => {
    const out = path.join(dir, 'ok');
    expect((await cli('train', ...common(), '--output', out, '--max-steps', '1', '--report', 'none')).code).toBe(0);
    // Make the saved lora_B tensors NaN in the file itself (float32 bytes of NaN).
    const file = path.join(out, 'adapter_model.safetensors');
    const buf = fs.readFileSync(file);
    const headerLen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
    for (const [k, e] of Object.entries(header) as [string, { data_offsets: [number, number] }][])
      if (k.includes('lora_B')) for (let o = e.data_offsets[0]; o < e.data_offsets[1]; o += 4) buf.writeFloatLE(NaN, 8 + headerLen + o);
    fs.writeFileSync(file, buf);
    const g = await cli('generate', '--model', modelDir, '--adapter', out, '--prompt', 'ab');
    expect(g.code).toBe(1);
    expect(g.err).toMatch(/adapter folder '.*' holds NaN or Inf weights \(.*lora_B.*\): its training diverged/);
    const mergedDir = path.join(dir, 'merged');
    const m = await cli('merge', '--model', modelDir, '--adapter', out, '--output', mergedDir);
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/holds NaN or Inf weights/);
    expect(fs.existsSync(path.join(mergedDir, 'model.safetensors'))).toBe(false);
  });
});
