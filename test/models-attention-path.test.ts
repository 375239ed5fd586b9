// Which way attention runs for a batch: without padding no mask at all (isCausal, the fused kernels'
// fast path); with padding a mask, and grouped-query k/v heads expanded (a mask with enable_gqa sends
// CUDA to the math kernel). The tiny-llama fixture has 4 query heads over 2 key/value heads.
import { F, noGrad, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM } from '../lib/models';
import { expected, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

let model: CausalLM;
let ex: { inputIds: Tensor; logits: Tensor };

beforeAll(async () => {
  model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  ex = expected(LLAMA_DIR);
});
afterAll(() => {
  model.dispose();
  ex.inputIds.dispose();
  ex.logits.dispose();
});

const LAYERS = 3;
const ATTENTION_CALLS = LAYERS; // one scaledDotProductAttention per layer and forward

test('a batch without padding passes no mask (isCausal) and keeps transformers’ logits', () =>
  scope(() => {
    const ones = tensor([Array(7).fill(1), Array(7).fill(1)], { dtype: 'int64' });
    F.resetAttentionCounts();
    const { logits } = noGrad(() => model.forward({ inputIds: ex.inputIds, attentionMask: ones }));
    const c = F.attentionCounts();
    expect(c.isCausal).toBe(ATTENTION_CALLS);
    expect(c.masked).toBe(0);
    expect(c.gqaExpanded + c.gqaKernel).toBe(ATTENTION_CALLS);
    // Every call ran exactly one kernel.
    expect(c.composite + c.math + c.flash + c.efficient + c.cudnn + c.other).toBe(ATTENTION_CALLS);
    // float32 over 3 layers, as models-llama.test.ts: transformers' own logits within 1e-4.
    expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(1e-4);
  }));

test('a padded batch passes the mask with k/v heads expanded, never enable_gqa with a mask', () =>
  scope(() => {
    const ids = ex.inputIds.tolist() as number[][];
    const padded = tensor([ids[0], [0, 0, ...ids[1].slice(2)]], { dtype: 'int64' });
    const mask = tensor([Array(7).fill(1), [0, 0, 1, 1, 1, 1, 1]], { dtype: 'int64' });
    const alone = tensor([ids[1].slice(2)], { dtype: 'int64' });
    F.resetAttentionCounts();
    noGrad(() => {
      const both = model.forward({ inputIds: padded, attentionMask: mask }).logits;
      const c = F.attentionCounts();
      expect(c.masked).toBe(ATTENTION_CALLS);
      expect(c.isCausal).toBe(0);
      expect(c.gqaExpanded).toBe(ATTENTION_CALLS);
      expect(c.gqaKernel).toBe(0);
      // Same numbers as before the change (models-llama.test.ts' left-padding test): the whole row is
      // transformers' row, the padded one the unpadded sequence's, within float32's 1e-4.
      const single = model.forward({ inputIds: alone }).logits;
      expect(maxAbsDiff(both.select(0, 0), ex.logits.select(0, 0))).toBeLessThan(1e-4);
      expect(maxAbsDiff(both.select(0, 1).narrow(0, 2, 5), single.select(0, 0))).toBeLessThan(1e-4);
    });
  }));

test('resetAttentionCounts() zeroes every count', () => {
  scope(() => noGrad(() => model.forward({ inputIds: ex.inputIds })));
  F.resetAttentionCounts();
  expect(Object.values(F.attentionCounts()).every((n) => n === 0)).toBe(true);
});
