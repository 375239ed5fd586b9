// Shared by the test/models-*.test.ts files: fixture paths and reference computations done in plain
// JavaScript (float64), independent of the library's own ops.
import * as path from 'path';
import { loadSafetensorsSync, Tensor } from '../../lib';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const LLAMA_DIR = path.join(FIXTURES, 'tiny-llama');
export const GPT2_DIR = path.join(FIXTURES, 'tiny-gpt2');

/** expect.safetensors of a fixture model: input_ids [2, 7] and transformers' logits [2, 7, 128]. */
export function expected(dir: string): { inputIds: Tensor; logits: Tensor } {
  const t = loadSafetensorsSync(path.join(dir, 'expect.safetensors'));
  return { inputIds: t.input_ids, logits: t.logits };
}

/**
 * transformers' causal-LM loss computed from logits by hand: position t is scored against label t+1,
 * -log softmax, mean over the labels that are not -100. In float64.
 */
export function referenceLoss(logits: Tensor, labels: number[][]): number {
  const [b, s, v] = logits.shape;
  const x = logits.data() as Float32Array;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < b; i++)
    for (let t = 0; t + 1 < s; t++) {
      const target = labels[i][t + 1];
      if (target === -100) continue;
      const row = x.subarray((i * s + t) * v, (i * s + t + 1) * v);
      let max = -Infinity;
      for (const z of row) max = Math.max(max, z);
      let lse = 0;
      for (const z of row) lse += Math.exp(z - max);
      sum += Math.log(lse) + max - row[target];
      n++;
    }
  return sum / n;
}
