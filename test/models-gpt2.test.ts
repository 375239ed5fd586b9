// GPT2LMHeadModel against transformers 5: logits of the tiny-gpt2 fixture (float32 within 1e-4,
// bfloat16 loosely), the loss, padded batches, tied lm_head, Conv1D names, dropout in train mode.
import * as path from 'path';
import { arange, loadSafetensorsSync, manualSeed, memory, noGrad, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, GPT2LMHeadModel, numParameters, readConfig } from '../lib/models';
import { generationPositionIds } from '../lib/models/attention-mask';
import { settleGarbage } from './helpers/gc';
import { expected, GPT2_DIR, referenceLoss } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

let model: GPT2LMHeadModel;
let ex: { inputIds: Tensor; logits: Tensor };

beforeAll(async () => {
  model = (await AutoModelForCausalLM.fromPretrained(GPT2_DIR)) as GPT2LMHeadModel;
  ex = expected(GPT2_DIR);
});
afterAll(() => {
  model.dispose();
  ex.inputIds.dispose();
  ex.logits.dispose();
});

test('logits equal transformers within 1e-4 (float32, CPU)', () => {
  expect(model).toBeInstanceOf(GPT2LMHeadModel);
  scope(() => {
    const { logits } = noGrad(() => model.forward({ inputIds: ex.inputIds }));
    expect(logits.shape).toEqual([2, 7, 128]);
    expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(1e-4);
  });
});

test('the loss equals transformers’ shifted mean cross-entropy', () => {
  scope(() => {
    const ids = ex.inputIds.tolist() as number[][];
    const labels = tensor(
      ids.map((row) => row.map((v, t) => (t < 2 ? -100 : v))),
      { dtype: 'int64' },
    );
    const { loss } = noGrad(() => model.forward({ inputIds: ex.inputIds, labels }));
    const want = referenceLoss(ex.logits, labels.tolist() as number[][]);
    expect(Math.abs((loss!.item() as number) - want)).toBeLessThan(1e-5);
  });
});

test('a bfloat16 run works and stays close to the float32 logits', async () => {
  const bf = (await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { dtype: 'bfloat16' })) as GPT2LMHeadModel;
  try {
    expect(bf.lm_head.weight).toBe(bf.transformer.wte.weight);
    scope(() => {
      const { logits } = noGrad(() => bf.forward({ inputIds: ex.inputIds }));
      expect(logits.dtype).toBe('bfloat16');
      expect(logits.isfinite().all().item()).toBe(true);
      // bfloat16: 8 mantissa bits; the logits (|x| < 0.8 here) drift by ~6e-3 over 2 blocks.
      expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(0.05);
    });
  } finally {
    bf.dispose();
  }
});

test('left padding: with the positions generate() passes, the padded row gives its unpadded logits', () => {
  scope(() => {
    const ids = ex.inputIds.tolist() as number[][];
    const padded = tensor([[0, 0, 0, ...ids[0].slice(3)], ids[1]], { dtype: 'int64' });
    const mask = tensor([[0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]], { dtype: 'int64' });
    const alone = tensor([ids[0].slice(3)], { dtype: 'int64' });
    noGrad(() => {
      const positionIds = generationPositionIds(mask, 7);
      expect(positionIds.tolist()).toEqual([
        [0, 0, 0, 0, 1, 2, 3],
        [0, 1, 2, 3, 4, 5, 6],
      ]);
      const both = model.forward({ inputIds: padded, attentionMask: mask, positionIds }).logits;
      const single = model.forward({ inputIds: alone }).logits;
      expect(both.isfinite().all().item()).toBe(true);
      expect(maxAbsDiff(both.select(0, 0).narrow(0, 3, 4), single.select(0, 0))).toBeLessThan(1e-4);
      expect(maxAbsDiff(both.select(0, 1), ex.logits.select(0, 1))).toBeLessThan(1e-4);
      // Without positionIds, forward uses 0..S-1 whatever the mask says, as transformers' forward: GPT-2's
      // positions are absolute, so the padded row's real tokens sit at 3..6 and their logits differ.
      const plain = model.forward({ inputIds: padded, attentionMask: mask }).logits;
      const arangeIds = tensor([[0, 1, 2, 3, 4, 5, 6]], { dtype: 'int64' });
      const explicit = model.forward({ inputIds: padded, attentionMask: mask, positionIds: arangeIds }).logits;
      expect(maxAbsDiff(plain, explicit)).toBe(0);
      expect(maxAbsDiff(plain.select(0, 0).narrow(0, 3, 4), single.select(0, 0))).toBeGreaterThan(1e-2);
    });
  });
});

test('explicit positionIds: 0..S-1 gives the fixture logits, shifted positions change them', () => {
  scope(() =>
    noGrad(() => {
      const s = ex.inputIds.shape[1];
      const same = model.forward({ inputIds: ex.inputIds, positionIds: arange(s, { dtype: 'int64' }).unsqueeze(0) }).logits;
      expect(maxAbsDiff(same, ex.logits)).toBeLessThan(1e-4);
      const shifted = model.forward({ inputIds: ex.inputIds, positionIds: arange(5, 5 + s, { dtype: 'int64' }).unsqueeze(0) }).logits;
      expect(maxAbsDiff(shifted, ex.logits)).toBeGreaterThan(1e-2);
    }),
  );
});

test('structure: tied lm_head, Conv1D [in, out] weights, HF names and count', () => {
  expect(model.lm_head.weight).toBe(model.transformer.wte.weight);
  const names = [...model.namedParameters()].map(([k]) => k);
  const file = loadSafetensorsSync(path.join(GPT2_DIR, 'model.safetensors'));
  // The checkpoint leaves out the tied lm_head.weight, as named_parameters() does.
  expect([...names].sort()).toEqual(Object.keys(file).sort());
  expect(numParameters(model)).toBe(Object.values(file).reduce((n, t) => n + t.numel(), 0));
  for (const t of Object.values(file)) t.dispose();
  expect(Object.keys(model.stateDict())).toContain('lm_head.weight');
  expect(names.slice(0, 4)).toEqual(['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias']);
  expect(model.transformer.h.at(0).attn.c_attn.weight.shape).toEqual([48, 144]);
  const text = model.toString();
  expect(text).toContain('(c_attn): Conv1D(nf=144, nx=48)');
  expect(text).toContain('(act): NewGELUActivation()');
  expect(text).toContain('(drop): Dropout(p=0.1, inplace=False)');
});

test('train mode applies dropout; eval mode is deterministic; no leak over forward/backward', async () => {
  manualSeed(1);
  const m = AutoModelForCausalLM.fromConfig(readConfig(GPT2_DIR)) as GPT2LMHeadModel;
  expect(m.lm_head.weight).toBe(m.transformer.wte.weight);
  await settleGarbage();
  const before = memory().tensors;
  const a = scope(() => m.forward({ inputIds: ex.inputIds }).logits.detach());
  const b = scope(() => m.forward({ inputIds: ex.inputIds }).logits.detach());
  expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3); // different dropout masks
  m.eval();
  const c = scope(() => m.forward({ inputIds: ex.inputIds }).logits.detach());
  const d = scope(() => m.forward({ inputIds: ex.inputIds }).logits.detach());
  expect(maxAbsDiff(c, d)).toBe(0);
  for (const t of [a, b, c, d]) t.dispose();
  m.train();
  const counts: number[] = [];
  for (let i = 0; i < 3; i++) {
    scope(() => m.forward({ inputIds: ex.inputIds, labels: ex.inputIds }).loss!.backward());
    // the tied weight gathers gradient from both the embedding and the head
    expect(scope(() => m.transformer.wte.weight.grad!.abs().sum().item() as number)).toBeGreaterThan(0);
    m.zeroGrad();
    counts.push(memory().tensors);
  }
  expect(counts).toEqual([before, before, before]);
  m.dispose();
});
