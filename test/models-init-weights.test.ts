// fromConfig's random initialization (transformers' _init_weights) for every Llama-built family: Linear
// and Embedding weights N(0, initializer_range²), zero biases and padding row, and the RMSNorm weights at
// the value the family's norm treats as identity: 1 for Llama's weight·x, 0 for Gemma's (1 + weight)·x.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, manualSeed } from '../lib';
import { Embedding, Linear, RMSNorm } from '../lib/nn';

const FIXTURES = path.join(__dirname, 'fixtures');
const configOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(FIXTURES, dir, 'config.json'), 'utf8'));

const cases: [string, string, number][] = [
  ['qwen3', 'qwen3/model', 1],
  ['mistral', 'mistral/model', 1],
  ['phi3', 'phi3/base', 1],
  ['gemma', 'gemma/base', 0],
  ['gemma2', 'gemma2/base', 0],
  ['gemma3_text', 'gemma3_text/base', 0],
];

test.each(cases)('%s (%s): norms start at %d, Linear/Embedding weights N(0, std²), padding row and biases 0', (_name, dir, normValue) => {
  const config = { ...configOf(dir), initializer_range: 0.5 };
  manualSeed(0);
  const model = AutoModelForCausalLM.fromConfig(config);
  let norms = 0;
  const drawn: number[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof RMSNorm) {
      norms++;
      const w = m.weight;
      expect([name, w.min().item(), w.max().item()]).toEqual([name, normValue, normValue]);
    } else if (m instanceof Linear || m instanceof Embedding) {
      const w = m.weight.flatten();
      let values = [...(w.float().data() as Float32Array)];
      if (m instanceof Embedding && m.paddingIdx !== undefined) {
        const row = m.weight.select(0, m.paddingIdx);
        expect(row.abs().max().item()).toBe(0);
        const dim = m.weight.shape[1];
        values = values.filter((_, k) => Math.floor(k / dim) !== m.paddingIdx);
      }
      drawn.push(...values);
      if (m instanceof Linear && m.bias) expect(m.bias.abs().max().item()).toBe(0);
    }
  }
  expect(norms).toBeGreaterThan(0);
  // Pooled over a few thousand draws: mean ~0 and std ~0.5 to well within sampling error (4 sigma).
  const n = drawn.length;
  const mean = drawn.reduce((s, v) => s + v, 0) / n;
  const std = Math.sqrt(drawn.reduce((s, v) => s + (v - mean) ** 2, 0) / n);
  expect(n).toBeGreaterThan(2000);
  expect(Math.abs(mean)).toBeLessThan((4 * 0.5) / Math.sqrt(n));
  expect(Math.abs(std - 0.5)).toBeLessThan((4 * 0.5) / Math.sqrt(2 * n));
  model.dispose();
});
