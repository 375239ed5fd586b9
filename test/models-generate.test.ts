// generate(): greedy decoding with the key/value cache equals step-by-step argmax without it; padded
// prompts, end-of-sequence handling, sampling controls, cache growth, and memory.
import { manualSeed, memory, multinomial, noGrad, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM, generate, KVCache, samplingDistribution } from '../lib/models';
import { settleGarbage } from './helpers/gc';
import { expected, GPT2_DIR, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

const models: Record<string, CausalLM> = {};
let prompt: Tensor;

beforeAll(async () => {
  models.llama = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  models.gpt2 = await AutoModelForCausalLM.fromPretrained(GPT2_DIR);
  const ex = expected(LLAMA_DIR);
  prompt = ex.inputIds;
  ex.logits.dispose();
});
afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
  prompt.dispose();
});

/** Greedy decoding written out: the whole sequence through the model each step, argmax of the last logits. */
function manualGreedy(model: CausalLM, ids: number[][], n: number): number[][] {
  const seqs = ids.map((r) => [...r]);
  noGrad(() => {
    for (let i = 0; i < n; i++)
      scope(() => {
        const { logits } = model.forward({ inputIds: tensor(seqs, { dtype: 'int64' }) });
        const next = logits.select(1, seqs[0].length - 1).argmax(-1).tolist() as number[];
        next.forEach((t, b) => seqs[b].push(t));
      });
  });
  return seqs;
}

test.each(['llama', 'gpt2'])('%s: cached greedy = uncached greedy = step-by-step argmax', (name) => {
  const model = models[name];
  const want = manualGreedy(model, prompt.tolist() as number[][], 8);
  scope(() => {
    const cached = generate(model, prompt, { maxNewTokens: 8, eosTokenId: null });
    const uncached = generate(model, prompt, { maxNewTokens: 8, eosTokenId: null, useCache: false });
    expect(cached.shape).toEqual([2, 15]);
    expect(cached.tolist()).toEqual(want);
    expect(uncached.tolist()).toEqual(want);
  });
});

test('the cache gives the logits of the full sequence, preallocated or concatenated, growing past its capacity', () => {
  const model = models.llama;
  scope(() =>
    noGrad(() => {
      const full = model.forward({ inputIds: prompt }).logits;
      for (const cache of [new KVCache(), new KVCache({ capacity: 3 })]) {
        const first = model.forward({ inputIds: prompt.narrow(1, 0, 4), pastKeyValues: cache });
        expect(first.pastKeyValues).toBe(cache);
        expect(cache.length()).toBe(4);
        const second = model.forward({ inputIds: prompt.narrow(1, 4, 2), pastKeyValues: cache });
        const third = model.forward({ inputIds: prompt.narrow(1, 6, 1), pastKeyValues: cache });
        expect(cache.length()).toBe(7);
        expect(cache.numLayers).toBe(3);
        expect(maxAbsDiff(first.logits, full.narrow(1, 0, 4))).toBeLessThan(1e-5);
        expect(maxAbsDiff(second.logits, full.narrow(1, 4, 2))).toBeLessThan(1e-5);
        expect(maxAbsDiff(third.logits, full.narrow(1, 6, 1))).toBeLessThan(1e-5);
        cache.dispose();
        expect(cache.length()).toBe(0);
      }
    }),
  );
});

test('useCache returns a new cache the caller owns', async () => {
  await settleGarbage();
  const before = memory().tensors;
  const out = noGrad(() => models.gpt2.forward({ inputIds: prompt, useCache: true }));
  expect(out.pastKeyValues!.length()).toBe(7);
  out.pastKeyValues!.dispose();
  out.logits.dispose();
  expect(memory().tensors).toBe(before);
});

test('left-padded prompts generate what each prompt generates alone', () => {
  const ids = prompt.tolist() as number[][];
  for (const model of Object.values(models)) {
    scope(() => {
      const padded = tensor([ids[0], [0, 0, 0, ...ids[1].slice(3)]], { dtype: 'int64' });
      const mask = tensor([[1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]], { dtype: 'int64' });
      const out = generate(model, padded, { maxNewTokens: 6, eosTokenId: null, attentionMask: mask }).tolist() as number[][];
      const alone = generate(model, tensor([ids[1].slice(3)], { dtype: 'int64' }), { maxNewTokens: 6, eosTokenId: null }).tolist() as number[][];
      expect(out[1].slice(3)).toEqual(alone[0]);
      expect(out[0]).toEqual(manualGreedy(model, [ids[0]], 6)[0]);
    });
  }
});

test('an end-of-sequence token ends a row (padded afterwards) and the whole run once every row has ended', () => {
  const model = models.llama;
  scope(() => {
    const free = generate(model, prompt, { maxNewTokens: 8, eosTokenId: null }).tolist() as number[][];
    // Row 0's third new token as "eos": row 0 stops there, row 1 goes on (unless it meets it too).
    const eos = free[0][7 + 2];
    const out = generate(model, prompt, { maxNewTokens: 8, eosTokenId: eos, padTokenId: 0 }).tolist() as number[][];
    const row1Ends = free[1].slice(7).indexOf(eos);
    const expectedLength = row1Ends >= 0 ? 7 + Math.max(3, row1Ends + 1) : 15;
    expect(out[0].length).toBe(expectedLength);
    expect(out[0].slice(0, 10)).toEqual(free[0].slice(0, 10));
    expect(out[0].slice(10)).toEqual(new Array(expectedLength - 10).fill(0));
    if (row1Ends < 0) expect(out[1]).toEqual(free[1]);
    // Both rows' eos: stops as soon as both ended.
    const both = generate(model, prompt, { maxNewTokens: 8, eosTokenId: [free[0][7], free[1][7]] });
    expect(both.shape).toEqual([2, 8]);
    // The config's eos_token_id is the default.
    expect(models.llama.config.eosTokenId).toBe(2);
  });
});

test('sampling: seeded runs repeat; top-k 1 and a tiny top-p are greedy; temperature changes the draw', () => {
  const model = models.gpt2;
  scope(() => {
    const greedy = generate(model, prompt, { maxNewTokens: 6, eosTokenId: null }).tolist();
    const run = (opts: object) => {
      manualSeed(42);
      return generate(model, prompt, { maxNewTokens: 6, eosTokenId: null, doSample: true, ...opts }).tolist();
    };
    expect(run({})).toEqual(run({}));
    expect(run({ topK: 1 })).toEqual(greedy);
    expect(run({ topK: 0, topP: 1e-6 })).toEqual(greedy);
    // A random tiny model is nearly uniform: sampling at temperature 1 leaves the greedy path.
    expect(run({ topK: 0 })).not.toEqual(greedy);
    // A very low temperature sharpens the distribution to the greedy choice.
    expect(run({ temperature: 1e-4 })).toEqual(greedy);
  });
});

describe('samplingDistribution: transformers\' warpers (temperature, then top-k, then top-p), exactly', () => {
  // Probabilities 0.15, 0.5, 0.05, 0.3 in a shuffled vocabulary order, so that a sort/scatter mix-up shows.
  const p = [0.15, 0.5, 0.05, 0.3];
  const dist = (opts: object) =>
    scope(() => (samplingDistribution(tensor([p.map(Math.log)], { dtype: 'float64' }), opts).tolist() as number[][])[0]);
  const close = (got: number[], want: number[]) => {
    expect(got).toHaveLength(want.length);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 12));
  };

  test('no warper: the softmax of the logits', () => close(dist({}), p));
  test('top-k keeps the k most likely (ties with the k-th kept), renormalized', () => {
    close(dist({ topK: 2 }), [0, 0.5 / 0.8, 0, 0.3 / 0.8]);
    close(dist({ topK: 3 }), [0.15 / 0.95, 0.5 / 0.95, 0, 0.3 / 0.95]);
    close(dist({ topK: 4 }), p);
    const tie = scope(() => (samplingDistribution(tensor([[1, 2, 2, 0]], { dtype: 'float64' }), { topK: 2 }).tolist() as number[][])[0]);
    expect(tie[1]).toBeCloseTo(tie[2], 12);
    expect(tie[0]).toBe(0);
    expect(tie[3]).toBe(0);
  });
  test('top-p drops the least likely tokens whose cumulative probability is <= 1 - p', () => {
    // Ascending: 0.05, 0.15, 0.3, 0.5 with cumulative sums 0.05, 0.2, 0.5, 1.
    close(dist({ topP: 0.75 }), [0, 0.5 / 0.8, 0, 0.3 / 0.8]); // 0.05 and 0.2 <= 0.25: both dropped
    close(dist({ topP: 0.85 }), [0.15 / 0.95, 0.5 / 0.95, 0, 0.3 / 0.95]); // only 0.05 <= 0.15
    close(dist({ topP: 0.99 }), p); // 0.05 > 0.01: nothing dropped
    close(dist({ topP: 1e-9 }), [0, 1, 0, 0]); // the most likely token always stays
  });
  test('temperature divides the logits first: T=2 gives sqrt(p) renormalized, then top-k applies', () => {
    const r = p.map(Math.sqrt);
    const z = r.reduce((a, b) => a + b);
    close(dist({ temperature: 2 }), r.map((x) => x / z));
    const z2 = r[1] + r[3];
    close(dist({ temperature: 2, topK: 2 }), [0, r[1] / z2, 0, r[3] / z2]);
    // top-p sees the tempered distribution: at T=2 the cumulative sums change, so p=0.8 keeps three tokens.
    const kept = dist({ temperature: 2, topP: 0.8 });
    expect(kept.filter((x) => x > 0).length).toBe(3);
  });
  test('seeded draws stay inside what top-p keeps and follow its probabilities', () => {
    manualSeed(7);
    const counts = scope(() => {
      const logits = tensor([p.map(Math.log)], { dtype: 'float32' }).expand(4000, 4);
      const draws = multinomial(samplingDistribution(logits, { topP: 0.75 }), 1).reshape(-1).tolist() as number[];
      const c = [0, 0, 0, 0];
      for (const d of draws) c[d]++;
      return c;
    });
    expect(counts[0] + counts[2]).toBe(0);
    // 4000 draws of a 0.625 / 0.375 coin: the standard deviation of the share is 0.0077; allow 5 of them.
    expect(Math.abs(counts[1] / 4000 - 0.625)).toBeLessThan(0.04);
  });
});

test('model.generate(inputIds, opts) is generate(model, inputIds, opts)', () => {
  for (const model of Object.values(models))
    scope(() => {
      const a = model.generate(prompt, { maxNewTokens: 4, eosTokenId: null }).tolist();
      const b = generate(model, prompt, { maxNewTokens: 4, eosTokenId: null }).tolist();
      expect(a).toEqual(b);
    });
});

test('generate leaves only its result behind', async () => {
  await settleGarbage();
  const before = memory().tensors;
  const out = generate(models.llama, prompt, { maxNewTokens: 5, eosTokenId: null });
  manualSeed(0);
  const sampled = generate(models.llama, prompt, { maxNewTokens: 5, doSample: true, topP: 0.9, eosTokenId: 3 });
  expect(memory().tensors).toBe(before + 2);
  out.dispose();
  sampled.dispose();
  expect(() => generate(models.llama, prompt, { maxNewTokens: -1 })).toThrow(/maxNewTokens must be a non-negative integer/);
  expect(memory().tensors).toBe(before);
});
