// Full-size published configs (test/fixtures/full-size/*.config.json, as on the Hub) built on 'meta':
// parameter counts equal transformers' num_parameters(), and LoRA r=16 on all linear layers gives peft's
// trainable and total counts (counts.json, made by make_counts.py with transformers 5 and peft 0.21).
import * as fs from 'fs';
import * as path from 'path';
import { getPeftModel, LoraConfig, memory } from '../lib';
import { AutoModelForCausalLM, numParameters, readConfig } from '../lib/models';

const DIR = path.join(__dirname, 'fixtures', 'full-size');
const counts = JSON.parse(fs.readFileSync(path.join(DIR, 'counts.json'), 'utf8')) as Record<string, { num_parameters: number; all_linear_r16: [number, number] }>;

test.each(Object.keys(counts))('%s: parameters as transformers counts them, and peft r=16 all-linear', (name) => {
  const before = memory().bytes;
  const model = AutoModelForCausalLM.fromConfig(readConfig(path.join(DIR, `${name}.config.json`)), { device: 'meta' });
  expect(numParameters(model)).toBe(counts[name].num_parameters);
  const peft = getPeftModel(model, new LoraConfig({ r: 16, targetModules: 'all-linear' }));
  expect(peft.getNbTrainableParameters()).toEqual(counts[name].all_linear_r16);
  expect(memory().bytes).toBe(before); // meta: nothing allocated
  peft.dispose();
});

test('the published figures', () => {
  expect(counts['llama-3.2-1b'].num_parameters).toBe(1_235_814_400);
  expect(counts['qwen2.5-0.5b'].num_parameters).toBe(494_032_768);
  expect(counts['mistral-7b-v0.3'].num_parameters).toBe(7_248_023_552);
});
