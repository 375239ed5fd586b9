// Activations, softmax, dropout, embedding, normalization, cross entropy and attention against
// test/fixtures/torch-reference/nn.safetensors (attention: the defining math in float64, computed
// by the generator, since torch 1.13 has no F.scaled_dot_product_attention).
import * as torch from '../lib';
import { F, scope } from '../lib';
import { errorMessage } from './helpers/errors';
import { expectClose, loadReference, sameTorchAsReference, values } from './helpers/reference';

const { ref, dispose } = loadReference('nn');
afterAll(dispose);

const F32 = { atol: 1e-6, rtol: 1e-5 };

describe('activations and softmax', () => {
  test.each([
    ['relu', () => F.relu(ref('in.x'))],
    ['gelu', () => F.gelu(ref('in.x'))],
    ['gelu.tanh', () => F.gelu(ref('in.x'), { approximate: 'tanh' })],
    ['silu', () => F.silu(ref('in.x'))],
    ['softmax.-1', () => F.softmax(ref('in.x'), -1)],
    ['softmax.1', () => ref('in.x').softmax(1)],
    ['softmax.-1_f64', () => F.softmax(ref('in.x'), -1, 'float64')],
    ['logSoftmax.-1', () => F.logSoftmax(ref('in.x'), -1)],
    ['logSoftmax.0', () => ref('in.x').logSoftmax(0)],
  ])('%s', (key, f) => scope(() => expectClose(f(), ref(key), F32)));

  test('gelu exact and tanh differ (the option is passed through)', () =>
    scope(() => {
      const x = ref('in.x');
      expect(F.gelu(x).sub(F.gelu(x, { approximate: 'tanh' })).abs().max().item()).toBeGreaterThan(1e-5);
    }));
});

describe('embedding', () => {
  test('looks up rows (int64 indices of any shape)', () =>
    scope(() => {
      expectClose(F.embedding(ref('in.emb.idx'), ref('in.emb.weight')), ref('embedding'));
      const i32 = ref('in.emb.idx').to('int32');
      expectClose(F.embedding(i32, ref('in.emb.weight')), ref('embedding'));
    }));
});

describe('normalization', () => {
  test('layerNorm over the last dim with weight and bias, over two dims, custom eps', () =>
    scope(() => {
      const x = ref('in.x');
      expectClose(F.layerNorm(x, [5], ref('in.ln.w'), ref('in.ln.b')), ref('layerNorm.5_wb'), F32);
      expectClose(F.layerNorm(x, [3, 5]), ref('layerNorm.3x5'), F32);
      expectClose(F.layerNorm(x, [3, 5], ref('in.ln.w2'), undefined, 0.1), ref('layerNorm.3x5_w_eps0.1'), F32);
    }));
  test('rmsNorm as Hugging Face LlamaRMSNorm', () =>
    scope(() => {
      const x = ref('in.x');
      expectClose(F.rmsNorm(x, ref('in.ln.w')), ref('rmsNorm.w'), F32);
      expectClose(F.rmsNorm(x, undefined, 0.5), ref('rmsNorm.eps0.5'), F32);
      // half inputs: statistics in float32, result in the input's dtype
      const h = F.rmsNorm(x.to('bfloat16'), ref('in.ln.w').to('bfloat16'));
      expect(h.dtype).toBe('bfloat16');
      expectClose(h.float(), ref('rmsNorm.w'), { atol: 0.05, rtol: 0.02 });
    }));
});

describe('crossEntropy', () => {
  const cases: [string, F.CrossEntropyOptions, 'target' | 'target2'][] = [
    ['mean', {}, 'target'],
    ['sum', { reduction: 'sum' }, 'target'],
    ['none', { reduction: 'none' }, 'target'],
    ['ignore2', { ignoreIndex: 2 }, 'target2'],
    ['ignore2.none', { ignoreIndex: 2, reduction: 'none' }, 'target2'],
    ['smooth0.1', { labelSmoothing: 0.1 }, 'target'],
    ['smooth0.2.sum', { labelSmoothing: 0.2, reduction: 'sum' }, 'target2'],
    ['smooth0.1.none', { labelSmoothing: 0.1, reduction: 'none' }, 'target'],
  ];
  test.each(cases)('%s', (key, opts, target) =>
    scope(() => expectClose(F.crossEntropy(ref('in.ce.logits'), ref(`in.ce.${target}`), opts), ref(`crossEntropy.${key}`), F32)),
  );
  test('class weights and [N, C, d] inputs', () =>
    scope(() => {
      const w = ref('in.ce.cw');
      expectClose(F.crossEntropy(ref('in.ce.logits'), ref('in.ce.target'), { weight: w }), ref('crossEntropy.weight'), F32);
      expectClose(F.crossEntropy(ref('in.ce.lk'), ref('in.ce.tk')), ref('crossEntropy.kdim'), F32);
      expectClose(F.crossEntropy(ref('in.ce.lk'), ref('in.ce.tk'), { reduction: 'none' }), ref('crossEntropy.kdim.none'), F32);
    }));
  test('the default ignoreIndex -100 leaves the ignored row out of the mean', () =>
    scope(() => {
      const none = values(ref('crossEntropy.none'));
      expect(none[3]).toBe(0);
      const mean = none.reduce((a, b) => a + b) / 5;
      expect(values(F.crossEntropy(ref('in.ce.logits'), ref('in.ce.target')))[0]).toBeCloseTo(mean, 5);
    }));
  test('an unknown reduction is an error naming the choices', () =>
    scope(() => {
      const msg = errorMessage(() =>
        F.crossEntropy(ref('in.ce.logits'), ref('in.ce.target'), { reduction: 'avg' as never }),
      );
      expect(msg).toMatch(/'mean', 'sum' or 'none'/);
    }));
});

describe('dropout', () => {
  // Seed-for-seed parity with the PyTorch that wrote the reference (1.13); skipped on another libtorch.
  const parity = sameTorchAsReference('nn') ? test : test.skip;
  parity('useAtenDropout(true): equals PyTorch for the same manualSeed (mask and 1/(1-p) scaling)', () =>
    scope(() => {
      F.useAtenDropout(true);
      try {
        torch.manualSeed(99);
        expectClose(F.dropout(ref('in.x'), 0.3, true), ref('dropout.seed99_p0.3'), F32);
        torch.manualSeed(100);
        expectClose(F.dropout(torch.ones(64), 0.5), ref('dropout.seed100_p0.5_ones'));
      } finally {
        F.useAtenDropout(false);
      }
      // the default counter-based masks are another stream
      torch.manualSeed(100);
      expect(F.dropout(torch.ones(64), 0.5).equal(ref('dropout.seed100_p0.5_ones'))).toBe(false);
    }));
  test('counter-based masks: the keep rate is 1 - p; the same mask for any thread count; gradients are mask/(1-p)', () =>
    scope(() => {
      const n = 1 << 20;
      for (const p of [0.05, 0.5, 0.9]) {
        torch.manualSeed(7);
        const kept = F.dropout(torch.ones(n), p).ne(0).sum().item() as number;
        // binomial(n, 1 - p): within 6 standard deviations (seeded, so not flaky)
        expect(Math.abs(kept - n * (1 - p))).toBeLessThan(6 * Math.sqrt(n * p * (1 - p)));
      }
      const before = torch.getNumThreads();
      const masks = [1, 2].map((t) => {
        torch.setNumThreads(t);
        torch.manualSeed(3);
        return F.dropout(torch.ones(100003), 0.3);
      });
      torch.setNumThreads(before);
      expect(masks[0].equal(masks[1])).toBe(true);
      // two draws in a row differ; each pair of neighbours is independent (a 2x2 table of keep/drop)
      torch.manualSeed(3);
      const a = F.dropout(torch.ones(100003), 0.3);
      expect(a.equal(masks[0])).toBe(true);
      expect(F.dropout(torch.ones(100003), 0.3).equal(a)).toBe(false);
      const k = values(a.ne(0).float());
      const both = k.slice(0, -1).filter((v, i) => v === 1 && k[i + 1] === 1).length / (k.length - 1);
      expect(Math.abs(both - 0.49)).toBeLessThan(0.01);
      // gradient through the mask: d(sum(dropout(x)))/dx = mask/(1-p); bfloat16 and float64 too
      for (const dtype of ['float64', 'bfloat16'] as const) {
        const x = torch.ones([1000], { dtype }).requiresGrad_();
        torch.manualSeed(5);
        const y = F.dropout(x, 0.25);
        y.sum().backward();
        const g = values(x.grad!.float());
        const kept = values(y.ne(0).float());
        g.forEach((v, i) => expect(v).toBeCloseTo(kept[i] / 0.75, 2));
      }
    }));
  test('training: follows manualSeed; kept elements are scaled by 1/(1-p)', () =>
    scope(() => {
      torch.manualSeed(100);
      const d = F.dropout(torch.ones(256), 0.25);
      torch.manualSeed(100);
      expect(F.dropout(torch.ones(256), 0.25).equal(d)).toBe(true);
      const v = values(d);
      expect(new Set(v)).toEqual(new Set([0, 1 / 0.75].map(Math.fround)));
      const dropped = v.filter((x) => x === 0).length;
      expect(dropped).toBeGreaterThan(256 * 0.1); // 64 expected; seeded, so not flaky
      expect(dropped).toBeLessThan(256 * 0.4);
    }));
  test('eval (training false) and p = 0 are the identity; p = 1 zeroes', () =>
    scope(() => {
      const x = ref('in.x');
      expect(F.dropout(x, 0.5, false).equal(x)).toBe(true);
      expect(F.dropout(x, 0, true).equal(x)).toBe(true);
      expect(F.dropout(x, 1, true).abs().sum().item()).toBe(0);
      expect(errorMessage(() => F.dropout(x, 1.5))).toMatch(/p must be in \[0, 1\]/);
    }));
});

describe('scaledDotProductAttention', () => {
  const r = (n: string) => ref(`in.sdpa.${n}`);
  // float64 inputs against the float64 definition: only summation order differs.
  const F64 = { atol: 1e-12, rtol: 1e-10 };
  test.each([
    ['plain', () => F.scaledDotProductAttention(r('q'), r('k'), r('v'))],
    ['scale0.5', () => F.scaledDotProductAttention(r('q'), r('k'), r('v'), { scale: 0.5 })],
    ['causal', () => F.scaledDotProductAttention(r('qs'), r('ks'), r('vs'), { isCausal: true })],
    ['fmask', () => F.scaledDotProductAttention(r('q'), r('k'), r('v'), { attnMask: r('fmask') })],
    ['bmask', () => F.scaledDotProductAttention(r('q'), r('k'), r('v'), { attnMask: r('bmask') })],
    ['gqa', () => F.scaledDotProductAttention(r('q'), r('kg'), r('vg'), { enableGqa: true })],
    ['gqa_bmask', () => F.scaledDotProductAttention(r('q'), r('kg'), r('vg'), { enableGqa: true, attnMask: r('bmask') })],
  ])('%s (float64)', (key, f) => scope(() => expectClose(f(), ref(`sdpa.${key}`), F64)));

  test('float32 inputs within float32 rounding', () =>
    scope(() => {
      const [q, k, v] = ['q', 'kg', 'vg'].map((n) => r(n).float());
      const out = F.scaledDotProductAttention(q, k, v, { enableGqa: true, attnMask: r('bmask') });
      expect(out.dtype).toBe('float32');
      expectClose(out, ref('sdpa.gqa_bmask'), { atol: 1e-5, rtol: 1e-4, dtype: false });
      const c = F.scaledDotProductAttention(r('qs').float(), r('ks').float(), r('vs').float(), { isCausal: true });
      expectClose(c, ref('sdpa.causal'), { atol: 1e-5, rtol: 1e-4, dtype: false });
    }));

  // libtorch >= 2.5 runs its own kernel and gives zeros for such a query; older ones run our composite,
  // which must give the same (not softmax's NaN, whose backward would reach every key's gradient).
  test('a query that may attend to no key gives zeros, the others are unchanged, gradients stay finite', () =>
    scope(() => {
      const q = r('q').clone().requiresGrad_(true);
      const k = r('k').clone().requiresGrad_(true);
      const v = r('v').clone().requiresGrad_(true);
      const keepRow = torch.arange(5).ne(2).view(1, 1, 5, 1); // query 2 may attend to nothing
      for (const mask of [r('bmask').logicalAnd(keepRow), torch.zeros([5, 7], { dtype: 'float64' }).maskedFill(keepRow.logicalNot(), -Infinity)]) {
        const out = F.scaledDotProductAttention(q, k, v, { attnMask: mask });
        expect(values(out.narrow(2, 2, 1).abs().max())).toEqual([0]);
        const rows = torch.tensor([0, 1, 3, 4], { dtype: 'int64' });
        const alone = F.scaledDotProductAttention(q.indexSelect(2, rows), k, v, { attnMask: mask.indexSelect(-2, rows) });
        expectClose(out.indexSelect(2, rows), alone, F64);
        out.sum().backward();
        expect(values(q.grad!.narrow(2, 2, 1).abs().max())).toEqual([0]);
        for (const t of [q, k, v]) {
          expect(values(t.grad!.isfinite().all())).toEqual([1]);
          t.grad = undefined;
        }
      }
    }));

  test('causal: the first query attends only to the first key', () =>
    scope(() => {
      const out = F.scaledDotProductAttention(r('qs'), r('ks'), r('vs'), { isCausal: true });
      const first = out.narrow(2, 0, 1);
      expectClose(first, r('vs').narrow(2, 0, 1), F64);
    }));

  test('grouped heads without enableGqa, or heads that do not divide, are errors naming the heads', () =>
    scope(() => {
      expect(errorMessage(() => F.scaledDotProductAttention(r('q'), r('kg'), r('vg')))).toMatch(/4 heads.*2.*enableGqa/);
      const k3 = torch.zeros([2, 3, 7, 8], { dtype: 'float64' });
      expect(errorMessage(() => F.scaledDotProductAttention(r('q'), k3, k3, { enableGqa: true }))).toMatch(/multiple/);
    }));
});
