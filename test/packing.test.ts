// Packing without cross-contamination: packDataset's best-fit decreasing rows, the position ids collate()
// makes for them (restarting at every example, as TRL's padding-free collator), and the models' reading
// of those restarts as example boundaries (a block-diagonal causal mask, sliding windows inside it, GPT-2's
// learned positions from 0 again): every family gives a packed example the logits and the loss it has
// alone, within 1e-5.
import * as path from 'path';
import { AutoModelForCausalLM, collate, Dataset, keep, memory, noGrad, packDataset, PeftModel, scope, tensor, Tensor, Trainer } from '../lib';
import type { CausalLM } from '../lib';
import { countOverlong, Example, IGNORE_INDEX, MaybeMasked } from '../lib/data';
import { causalAttentionMask, packedSequenceIds } from '../lib/models/attention-mask';
import { FIXTURES } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';
import { gradients, maxFileDiff, randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

const ex = (ids: number[], labels: number[] = ids): Example => ({ inputIds: Int32Array.from(ids), labels: Int32Array.from(labels) });

describe("packDataset 'bfd'", () => {
  test('best fit decreasing: longest first, each into the fullest row with room; every example once', () => {
    // lengths 6 5 4 3 2 2 1 into rows of 8: 6 -> A, 5 -> B, 4 -> C, 3 -> B (full), 2 -> A (full), 2 -> C, 1 -> C
    const lens = [2, 5, 1, 6, 3, 4, 2];
    const ds = new Dataset(lens.map((n, i) => ex(Array.from({ length: n }, (_, j) => 10 * (i + 1) + j))));
    const rows = packDataset(ds, { seqLen: 8, eosTokenId: null }).toArray();
    expect(rows.map((r) => Array.from(r.seqLengths!))).toEqual([
      [6, 2],
      [5, 3],
      [4, 2, 1],
    ]);
    expect(Array.from(rows[0].inputIds)).toEqual([40, 41, 42, 43, 44, 45, 10, 11]);
    expect(Array.from(rows[2].inputIds)).toEqual([60, 61, 62, 63, 70, 71, 30]);
    // the first label of every example is -100: no loss from the previous example's last token
    expect(Array.from(rows[1].labels)).toEqual([IGNORE_INDEX, 21, 22, 23, 24, IGNORE_INDEX, 51, 52]);
    const all = rows.flatMap((r) => Array.from(r.inputIds)).sort((a, b) => a - b);
    expect(all).toEqual(ds.toArray().flatMap((e) => Array.from(e.inputIds)).sort((a, b) => a - b));
  });

  test('EOS after each example that lacks it (labelled after a labelled end); longer examples cut to seqLen', () => {
    const rows = packDataset(new Dataset([ex([5, 6], [IGNORE_INDEX, 6]), ex([7, 8], [7, IGNORE_INDEX]), ex([9, 1]), ex([1, 2, 3, 4, 5, 6])]), {
      seqLen: 4,
      eosTokenId: 1,
    }).toArray();
    expect(rows.map((r) => [Array.from(r.inputIds), Array.from(r.labels), Array.from(r.seqLengths!)])).toEqual([
      [[1, 2, 3, 4], [IGNORE_INDEX, 2, 3, 4], [4]],
      [[5, 6, 1], [IGNORE_INDEX, 6, 1], [3]],
      [[7, 8, 1], [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX], [3]],
      [[9, 1], [IGNORE_INDEX, 1], [2]],
    ]);
    // what the CLI's note counts: the example of 6 tokens (the one of 2 + EOS fits exactly)
    expect(countOverlong([ex([1, 2, 3, 4, 5, 6]), ex([7, 8, 9]), ex([5, 1])], { seqLen: 4, eosTokenId: 1 })).toBe(1);
    expect(countOverlong([ex([1, 2, 3, 4])], { seqLen: 4, eosTokenId: 9 })).toBe(1);
  });

  test('many examples: rows never exceed seqLen and are nearly full', () => {
    let seed = 7;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const ds = new Dataset(Array.from({ length: 2000 }, () => ex(Array.from({ length: 1 + Math.floor(next() * 100) }, () => 3))));
    const rows = packDataset(ds, { seqLen: 256, eosTokenId: null }).toArray();
    const total = ds.toArray().reduce((s, e) => s + e.inputIds.length, 0);
    expect(rows.every((r) => r.inputIds.length <= 256)).toBe(true);
    expect(rows.reduce((s, r) => s + r.seqLengths!.length, 0)).toBe(2000);
    expect(rows.length).toBeLessThanOrEqual(Math.ceil(total / 256) + 1);
  });

  test("'wrapped' keeps blocks of exactly seqLen without boundaries; bad options are named", () => {
    const ds = new Dataset([ex([1, 2, 3]), ex([4, 5, 6, 7])]);
    const w = packDataset(ds, { seqLen: 3, eosTokenId: null, strategy: 'wrapped' }).toArray();
    expect(w.map((r) => Array.from(r.inputIds))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(w[0].seqLengths).toBeUndefined();
    const bad = (o: object) => () => packDataset(ds, { seqLen: 3, eosTokenId: null, ...o } as never);
    expect(bad({ strategy: 'ffd' })).toThrow("packDataset: strategy must be one of 'bfd', 'wrapped', got \"ffd\"");
    expect(bad({ remainder: 'pad', padTokenId: 0 })).toThrow(/remainder is for strategy 'wrapped'/);
    expect(bad({ strategy: 'wrapped', remainder: 'keep' })).toThrow(/remainder must be 'drop' or 'pad', got "keep"/);
    expect(bad({ seqLen: 0 })).toThrow(/seqLen must be a positive integer, got 0/);
  });
});

describe('collate of packed rows', () => {
  test('position ids restart at each example; padding counts from 0 on either side', () => {
    const rows: MaybeMasked[] = [
      { ...ex([1, 2, 3, 4, 5]), seqLengths: Int32Array.from([2, 3]) },
      { ...ex([6, 7, 8]), seqLengths: Int32Array.from([1, 2]) },
    ];
    scope(() => {
      const right = collate(rows, { padTokenId: 0 });
      expect(right.positionIds!.tolist()).toEqual([
        [0, 1, 0, 1, 2],
        [0, 0, 1, 0, 1],
      ]);
      expect(right.attentionMask.tolist()).toEqual([
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
      ]);
      const left = collate(rows, { padTokenId: 0, paddingSide: 'left' });
      expect(left.positionIds!.tolist()).toEqual([
        [0, 1, 0, 1, 2],
        [0, 1, 0, 0, 1],
      ]);
      // rows without seqLengths beside packed ones count from 0; unpacked batches have no position ids
      expect(collate([rows[0], ex([9, 9])], { padTokenId: 0 }).positionIds!.tolist()).toEqual([
        [0, 1, 0, 1, 2],
        [0, 1, 0, 1, 2],
      ]);
      expect(collate([ex([9, 9])]).positionIds).toBeUndefined();
    });
    expect(() => collate([{ ...ex([1, 2, 3]), seqLengths: Int32Array.from([2, 2]) }])).toThrow(
      'collate: example 0 has 3 tokens but seqLengths [2, 2] (positive, summing to its length)',
    );
  });
});

describe('the block-diagonal causal mask', () => {
  test('a query sees the keys of its own example only, up to itself (and within a sliding window)', () => {
    scope(() => {
      const pos = tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]]).long();
      const ids = packedSequenceIds(pos, 0)!;
      const seg = [0, 0, 0, 1, 1, 2, 2, 2, 2];
      for (const window of [undefined, 2]) {
        const m = causalAttentionMask(undefined, 1, 0, 9, 'cpu', { sequenceIds: ids, slidingWindow: window });
        const want = seg.map((sq, q) => seg.map((sk, k) => sk === sq && k <= q && (window === undefined || k > q - window)));
        expect(m.isCausal).toBe(false);
        expect(m.attnMask!.squeeze(0).squeeze(0).tolist()).toEqual(want);
      }
      // no restart, a cache, or no position ids: no sequence ids (the plain causal paths stay)
      expect(packedSequenceIds(tensor([[0, 1, 2, 3]]).long(), 0)).toBeUndefined();
      expect(packedSequenceIds(tensor([[4, 5, 6]]).long(), 0)).toBeUndefined();
      expect(packedSequenceIds(pos, 3)).toBeUndefined();
      expect(packedSequenceIds(undefined, 0)).toBeUndefined();
      // generate()'s left-padded positions (padding 0, real tokens 0..) keep the real tokens together
      const gen = packedSequenceIds(tensor([[0, 0, 0, 1, 2]]).long(), 0)!;
      const keys = tensor([[0, 0, 1, 1, 1]]).long();
      const withPad = causalAttentionMask(keys, 1, 0, 5, 'cpu', { sequenceIds: gen });
      const plain = causalAttentionMask(keys, 1, 0, 5, 'cpu');
      expect(withPad.attnMask!.narrow(2, 2, 3).tolist()).toEqual(plain.attnMask!.narrow(2, 2, 3).tolist());
    });
  });
});

// Each fixture model of every family; the windows of Mistral (4), Qwen2/3 (4, 5), Gemma 2/3 (4) and
// Phi-3 (5) are shorter than the examples, so they apply inside the examples.
const FAMILIES: [string, string][] = [
  ['llama', 'tiny-llama'],
  ['gpt2', 'tiny-gpt2'],
  ['mistral', 'mistral/model'],
  ['qwen2', 'qwen2/model'],
  ['qwen3', 'qwen3/model'],
  ['gemma', 'gemma/base'],
  ['gemma2', 'gemma2/base'],
  ['gemma3_text', 'gemma3_text/base'],
  ['phi3', 'phi3/base'],
];

/** Three examples of 8, 3 and 6 tokens (Mistral's fixture has 8 positions) with prompts masked. */
const EXAMPLES: Example[] = [
  ex([11, 12, 13, 14, 15, 16, 17, 18], [IGNORE_INDEX, IGNORE_INDEX, 13, 14, 15, 16, 17, 18]),
  ex([21, 22, 23]),
  ex([31, 32, 33, 34, 35, 36], [IGNORE_INDEX, 32, 33, 34, 35, 36]),
];

/** Per-token cross-entropy sums and counts of one example alone (labels shifted as transformers'). */
function lossSumAndCount(logits: Tensor, labels: Int32Array): [number, number] {
  const ls = noGrad(() => logits.float().logSoftmax(-1));
  const x = ls.data() as Float32Array;
  ls.dispose();
  const v = logits.shape[2];
  let sum = 0;
  let n = 0;
  for (let t = 0; t + 1 < labels.length; t++) {
    if (labels[t + 1] === IGNORE_INDEX) continue;
    sum -= x[t * v + labels[t + 1]];
    n++;
  }
  return [sum, n];
}

// In float64, so that 1e-5 measures the masking and positions rather than float32 rounding (the packed
// rows take the explicit-mask SDPA path, an example alone the isCausal one: ~1e-5 apart in float32); in
// float32 the family fixtures' 1e-4 bar.
describe.each(FAMILIES)('%s: a packed example has the logits and loss it has alone', (_family, dir) => {
  test.each([
    ['float64', 1e-5],
    ['float32', 1e-4],
  ] as const)('%s: one row of three examples, and two padded rows (batch of bfd rows), within %f', async (dtype, tol) => {
    const model = (await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, dir))) as CausalLM;
    model.to(dtype);
    model.eval();
    const alone = EXAMPLES.map((e) =>
      scope(() => {
        const out = model.forward({ inputIds: tensor([Array.from(e.inputIds)]).long(), labels: tensor([Array.from(e.labels)]).long() });
        return { logits: keep(out.logits), loss: out.loss!.item() as number, sc: lossSumAndCount(out.logits, e.labels) };
      }),
    );
    const before = memory().tensors;
    for (const seqLen of [17, 11]) {
      const rows = packDataset(new Dataset(EXAMPLES), { seqLen, eosTokenId: null }).toArray();
      expect(rows.length).toBe(seqLen === 17 ? 1 : 2);
      scope(() => {
        const b = collate(rows, { padTokenId: 0 });
        const out = noGrad(() => model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels, positionIds: b.positionIds }));
        const member = rows.flatMap((r, row) => {
          let at = 0;
          return Array.from(r.seqLengths!, (n) => [row, (at += n) - n, n]);
        });
        const lens = EXAMPLES.map((e) => e.inputIds.length);
        let worst = 0;
        for (const [row, at, n] of member) {
          const i = lens.indexOf(n);
          worst = Math.max(worst, maxAbsDiff(out.logits.select(0, row).narrow(0, at, n).unsqueeze(0), alone[i].logits));
        }
        expect(worst).toBeLessThan(tol);
        // the batch loss is the token-weighted mean of the examples' own losses
        const sum = alone.reduce((s, a) => s + a.sc[0], 0);
        const count = alone.reduce((s, a) => s + a.sc[1], 0);
        expect(Math.abs((out.loss!.item() as number) - sum / count)).toBeLessThan(tol);
        alone.forEach((a) => expect(Math.abs(a.loss - a.sc[0] / a.sc[1])).toBeLessThan(tol));
        // without the position ids the examples see each other: the check above can fail. (Last: Mistral's
        // dynamic rope keeps the base it grows for the 11 default positions, past its 8, as transformers'.)
        if (seqLen !== 11) return;
        const mixed = noGrad(() => model.forward({ inputIds: b.inputIds, attentionMask: b.attentionMask }));
        const [row, at, n] = member.find(([, a]) => a > 0)!;
        expect(maxAbsDiff(mixed.logits.select(0, row).narrow(0, at, n).unsqueeze(0), alone[lens.indexOf(n)].logits)).toBeGreaterThan(1e-3);
      });
    }
    expect(memory().tensors).toBe(before);
    for (const a of alone) a.logits.dispose();
    model.dispose();
  });
});

describe('Trainer: packed and padded training of the same examples', () => {
  // 12 examples (5..14 tokens, some prompts masked) in one step: padded, one row each; packed by 'bfd'
  // into rows of 32 with the Trainer's packing option. The step has the same label tokens, each predicted
  // from its own example only: the same loss and gradients (float32 sums in another order: 1e-6), and
  // after AdamW (which divides by |gradient|, magnifying rounding in near-zero entries) adapters 1e-5
  // apart, a hundredth of the step's lr of 1e-3. Also with gradient checkpointing and without the
  // chunked loss (the other two forward paths).
  test.each([
    ['the chunked loss', {}],
    ['gradient checkpointing', { gradientCheckpointing: true }],
    ['forward().loss', { chunkedLoss: false }],
  ])('one step, %s: the same loss, gradients and adapter', async (_what, extra) => {
    const data = randomExamples(12, 3);
    const outs = [tmpDir('pack-padded'), tmpDir('pack-packed')];
    const losses: number[] = [];
    const grads: Map<string, Float32Array>[] = [];
    for (const [i, packing] of [undefined, { seqLen: 32, eosTokenId: null }].entries()) {
      const model = await tinyLoraModel(0);
      const trainer = new Trainer({
        model,
        trainDataset: data,
        packing,
        padTokenId: 0,
        args: { outputDir: outs[i], maxSteps: 1, perDeviceTrainBatchSize: 12, learningRate: 1e-3, loggingSteps: 1, report: 'none', ...extra },
        callbacks: { onPreOptimizerStep: ({ model: m }) => void grads.push(gradients(m as PeftModel)) },
      });
      if (packing) expect(trainer.trainDataset.length).toBeLessThan(8);
      const r = await trainer.train();
      losses.push(r.logHistory.find((e) => e.loss !== undefined)!.loss!);
      model.dispose();
    }
    expect(Math.abs(losses[0] - losses[1])).toBeLessThan(1e-6);
    let worst = 0;
    for (const [name, g] of grads[0]) {
      const h = grads[1].get(name)!;
      for (let j = 0; j < g.length; j++) worst = Math.max(worst, Math.abs(g[j] - h[j]));
    }
    expect(worst).toBeLessThan(1e-6);
    expect(maxFileDiff(path.join(outs[0], 'adapter_model.safetensors'), path.join(outs[1], 'adapter_model.safetensors'))).toBeLessThan(1e-5);
  });

  test('packing errors name the dataset and the option', async () => {
    const model = await tinyLoraModel(0);
    const data = randomExamples(4, 1);
    const args = { outputDir: tmpDir('pack-errors'), report: 'none' as const };
    const packed = packDataset(data, { seqLen: 32, eosTokenId: null });
    expect(() => new Trainer({ model, trainDataset: packed, packing: { seqLen: 32 }, args })).toThrow(
      'Trainer: the training dataset is packed already (packDataset); give it without the packing option, or give the unpacked examples',
    );
    expect(() => new Trainer({ model, trainDataset: data, packing: { seqLen: 32, strategy: 'ffd' as never }, args })).toThrow(
      "Trainer: packing the training dataset: strategy must be one of 'bfd', 'wrapped', got \"ffd\"",
    );
    expect(() => new Trainer({ model, trainDataset: data, packing: { seqLen: 32, seq_len: 3 } as never, args })).toThrow("Trainer: packing: unknown option 'seq_len'");
    model.dispose();
  });
});
