// Review findings kept fixed: each layer keeps to what it owns (io does not import nn, the Trainer's
// precision module writes no CLI text, the Trainer does not duck-type models), types are told apart by
// instanceof rather than by repr names, and the fused LoRA path's fallbacks are counted and can be logged.
import * as fs from 'fs';
import * as path from 'path';
import { LoraConfig, getPeftModel, tensor } from '../lib';
import { fusedLoraStats, resetFusedLoraStats } from '../lib/peft';
import { AutoModelForCausalLM } from '../lib/models';
import { ROOT } from './helpers/ts-process';
import { TINY_LLAMA } from './helpers/train';

const source = (file: string) => fs.readFileSync(path.join(ROOT, 'lib', file), 'utf8');
const files = (dir: string) => fs.readdirSync(path.join(ROOT, 'lib', dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));

test('lib/io imports nothing from lib/nn', () => {
  for (const f of files('io')) expect([f, /from '\.\.\/nn(\/|')/.test(source(f))]).toEqual([f, false]);
});

test("lib/train/precision.ts writes no command-line text (flags are the CLI's words)", () => {
  expect(source('train/precision.ts')).not.toMatch(/--[a-z]/);
});

test('the Trainer does not duck-type forwardLoss; nothing in lib tells types apart by repr name', () => {
  expect(source('train/trainer.ts')).not.toMatch(/forwardLoss\?:|typeof [\w.]+\.forwardLoss/);
  for (const dir of ['peft', 'peft/layers', 'train', 'models', 'nn']) for (const f of files(dir)) expect([f, /reprName\(\) [!=]==/.test(source(f))]).toEqual([f, false]);
});

test('fusedLoraStats counts fused forwards and each reason for the composite path; TORCH_LORA_DEBUG logs a reason once', async () => {
  const base = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA);
  const model = getPeftModel(base, new LoraConfig({ r: 2, targetModules: ['q_proj', 'v_proj'], rankPattern: {}, loraDropout: 0 }));
  model.addAdapter('dora', new LoraConfig({ r: 2, targetModules: ['q_proj'], useDora: true }));
  const ids = tensor([[1, 2, 3]], { dtype: 'int64' });
  resetFusedLoraStats();
  model.forward({ inputIds: ids });
  // 3 layers × (q_proj, v_proj): every one fused.
  expect(fusedLoraStats()).toEqual({ fused: 6, fallbacks: {} });
  const writes: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (writes.push(String(s)), true));
  process.env.TORCH_LORA_DEBUG = '1';
  try {
    model.setAdapter('dora');
    model.forward({ inputIds: ids });
    model.forward({ inputIds: ids });
  } finally {
    delete process.env.TORCH_LORA_DEBUG;
    spy.mockRestore();
  }
  expect(fusedLoraStats()).toEqual({ fused: 6, fallbacks: { DoRA: 6 } });
  expect(writes).toEqual(['torch-lora: LoRA Linear runs the composite (unfused) path: DoRA\n']);
  ids.dispose();
  model.dispose();
});
