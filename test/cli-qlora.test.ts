// QLoRA from the CLI: train --load-in-4bit quantizes the base on load (NF4 + double quantization) and
// trains an adapter that learns (the loss falls) and that applies to the float base as PEFT would
// apply it; merge of a run on a bitsandbytes 4-bit folder writes a plain float model.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, BitsAndBytesConfig, Linear4bit, noGrad, PeftModel, scope, tensor } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
beforeAll(() => {
  dir = tmpDir('cli-qlora');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 24);
});

const ids = () => tensor([[1, 5, 9, 33, 17, 64, 101, 7]], { dtype: 'int64' });
const losses = (out: string) => [...out.matchAll(/\| loss ([\d.]+)/g)].map((m) => Number(m[1]));

test('train --load-in-4bit: Linear4bit base, the loss falls, the adapter applies to the float base as it did to the 4-bit one (up to the 4-bit rounding)', async () => {
  const out = path.join(dir, 'run4');
  const r = await cli('train', '--model', model, '--data', data, '--output', out, '--load-in-4bit', '--r', '4', '--lora-alpha', '8',
    '--target-modules', 'all-linear', '--lr', '0.01', '--batch-size', '4', '--max-steps', '12', '--logging-steps', '1', '--report', 'plain', '--seed', '1');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const l = losses(r.out);
  expect(l.length).toBeGreaterThanOrEqual(12);
  expect(Math.min(...l.slice(-3))).toBeLessThan(l[0] - 0.1);
  expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);

  const x = ids();
  const q = await PeftModel.fromPretrained(
    await AutoModelForCausalLM.fromPretrained(model, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) }),
    out,
  );
  expect([...q.modules()].filter((m) => m instanceof Linear4bit).length).toBeGreaterThan(0);
  const f = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
  const [diff, scale] = noGrad(() =>
    scope(() => {
      const a = (q.forward({ inputIds: x }) as { logits: ReturnType<typeof ids> }).logits;
      const b = (f.forward({ inputIds: x }) as { logits: ReturnType<typeof ids> }).logits;
      return [a.sub(b).abs().max().item() as number, b.abs().max().item() as number];
    }),
  );
  // NF4 rounds each weight by up to half a code step (≤ ~0.16·absmax of its block): the logits of the two
  // bases differ by a few percent of their scale, no more
  expect(diff).toBeLessThan(0.1 * scale);
  [q, f, x].forEach((m) => m.dispose());
});

test('merge of a run on a bitsandbytes 4-bit folder: a plain float model (no 4-bit layers, no quantization_config) computing base + adapter', async () => {
  // the 4-bit base as bitsandbytes saves it, with the tokenizer beside it
  const qdir = path.join(dir, 'base-4bit');
  const qm = await AutoModelForCausalLM.fromPretrained(model, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) });
  await qm.savePretrained(qdir);
  qm.dispose();
  for (const f of fs.readdirSync(model)) if (f.startsWith('tokenizer')) fs.copyFileSync(path.join(model, f), path.join(qdir, f));
  const out = path.join(dir, 'run-q');
  const t = await cli('train', '--model', qdir, '--data', data, '--output', out, '--r', '4', '--lora-alpha', '8', '--target-modules', 'q_proj,v_proj',
    '--lr', '0.01', '--batch-size', '4', '--max-steps', '3', '--report', 'none', '--seed', '1');
  expect(t.err).toBe('');
  expect(t.code).toBe(0);
  const merged = path.join(dir, 'merged');
  const r = await cli('merge', '--model', qdir, '--adapter', out, '--output', merged);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/dequantized \d+ 4-bit layers of the base/);
  const config = JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8'));
  expect(config.quantization_config).toBeUndefined();
  const plain = await AutoModelForCausalLM.fromPretrained(merged);
  expect([...plain.modules()].some((m) => m instanceof Linear4bit)).toBe(false);
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(qdir), out);
  const x = ids();
  const diff = noGrad(() =>
    scope(() => {
      const a = plain.forward({ inputIds: x }).logits;
      const b = (peft.forward({ inputIds: x }) as { logits: typeof a }).logits;
      return a.sub(b).abs().max().item() as number;
    }),
  );
  // the merged weights are the dequantized ones plus ΔW: float32 rounding only
  expect(diff).toBeLessThan(1e-4);
  [plain, peft, x].forEach((m) => m.dispose());
});

test('train --load-in-8bit trains on an 8-bit base; both flags together are a usage error', async () => {
  const out = path.join(dir, 'run8');
  const r = await cli('train', '--model', model, '--data', data, '--output', out, '--load-in-8bit', '--r', '4', '--lora-alpha', '8',
    '--target-modules', 'q_proj,v_proj', '--lr', '0.01', '--batch-size', '4', '--max-steps', '6', '--logging-steps', '1', '--report', 'plain', '--seed', '1');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const l = losses(r.out);
  expect(l[l.length - 1]).toBeLessThan(l[0]);
  const both = await cli('train', '--model', model, '--data', data, '--output', out, '--load-in-8bit', '--load-in-4bit');
  expect(both.code).toBe(2);
  expect(both.err).toContain('--load-in-4bit and --load-in-8bit exclude each other');
});

test('train --load-in-4bit --dtype bfloat16: the 4-bit base computes in bfloat16, the float32 adapters learn', async () => {
  const out = path.join(dir, 'run4bf');
  const r = await cli('train', '--model', model, '--data', data, '--output', out, '--load-in-4bit', '--dtype', 'bfloat16', '--r', '4', '--lora-alpha', '8',
    '--target-modules', 'q_proj,v_proj', '--lr', '0.01', '--batch-size', '4', '--max-steps', '6', '--logging-steps', '1', '--report', 'plain', '--seed', '1');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const l = losses(r.out);
  expect(l.every(Number.isFinite)).toBe(true);
  expect(l[l.length - 1]).toBeLessThan(l[0]);
});
