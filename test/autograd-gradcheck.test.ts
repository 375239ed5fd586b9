// Gradients checked against float64 central finite differences (test/helpers/gradcheck.ts:
// eps 1e-6, |autograd - numeric| <= 1e-6 + 1e-5·|numeric| unless a case states otherwise).
import * as torch from '../lib';
import { F, scope, Tensor } from '../lib';
import { gradcheck } from './helpers/gradcheck';

function rnd(...shape: number[]): Tensor {
  return torch.randn(shape, { dtype: 'float64' });
}
function ints(data: number[][] | number[]): Tensor {
  return torch.tensor(data, { dtype: 'int64' });
}

beforeEach(() => torch.manualSeed(2024));

describe('matrix products', () => {
  test('matmul (batched, broadcast) and mm', () =>
    scope(() => {
      gradcheck((a, b) => a.matmul(b), [rnd(2, 3, 4), rnd(4, 5)]);
      gradcheck((a, b) => a.mm(b), [rnd(3, 4), rnd(4, 2)]);
      gradcheck((a, b) => a.matmul(b), [rnd(4), rnd(2, 4, 3)]);
    }));
  test('linear with and without bias', () =>
    scope(() => {
      gradcheck((x, w, b) => F.linear(x, w, b), [rnd(2, 3, 4), rnd(5, 4), rnd(5)]);
      gradcheck((x, w) => F.linear(x, w), [rnd(3, 4), rnd(2, 4)]);
    }));
});

describe('activations and softmax', () => {
  test('gelu exact and tanh, silu', () =>
    scope(() => {
      gradcheck((x) => F.gelu(x), [rnd(3, 4)]);
      gradcheck((x) => F.gelu(x, { approximate: 'tanh' }), [rnd(3, 4)]);
      gradcheck((x) => F.silu(x), [rnd(3, 4)]);
    }));
  test('softmax and logSoftmax over different dims', () =>
    scope(() => {
      gradcheck((x) => F.softmax(x, -1), [rnd(2, 3, 4)]);
      gradcheck((x) => F.softmax(x, 1), [rnd(2, 3, 4)]);
      gradcheck((x) => F.logSoftmax(x, -1), [rnd(2, 3, 4)]);
      gradcheck((x) => F.logSoftmax(x, 0), [rnd(2, 3, 4)]);
    }));
  test('a composite of elementwise ops and reductions', () =>
    scope(() => {
      gradcheck((a, b) => a.mul(b).exp().div(b.square().add(1)).sum(1).tanh(), [rnd(3, 4), rnd(4)]);
      gradcheck((a) => a.mean(-1, true).sub(a).pow(2).logsumexp(0), [rnd(3, 4)]);
    }));
});

describe('normalization', () => {
  test('layerNorm: input, weight and bias; two normalized dims', () =>
    scope(() => {
      gradcheck((x, w, b) => F.layerNorm(x, [5], w, b), [rnd(2, 3, 5), rnd(5), rnd(5)]);
      gradcheck((x) => F.layerNorm(x, [3, 5]), [rnd(2, 3, 5)]);
    }));
  test('rmsNorm: input and weight', () =>
    scope(() => {
      gradcheck((x, w) => F.rmsNorm(x, w), [rnd(2, 3, 5), rnd(5)]);
      gradcheck((x) => F.rmsNorm(x, undefined, 0.1), [rnd(4, 6)]);
    }));
});

describe('crossEntropy', () => {
  const target = () => ints([1, 0, 4, -100, 2, 2]);
  test('mean, sum and none reductions with the default ignoreIndex', () =>
    scope(() => {
      for (const reduction of ['mean', 'sum', 'none'] as const)
        gradcheck((x, t) => F.crossEntropy(x, t, { reduction }), [rnd(6, 5), target()]);
    }));
  test('ignoreIndex, labelSmoothing, class weights, [N, C, d] inputs', () =>
    scope(() => {
      const t2 = ints([1, 0, 4, 3, 2, 2]);
      gradcheck((x, t) => F.crossEntropy(x, t, { ignoreIndex: 2 }), [rnd(6, 5), t2]);
      gradcheck((x, t) => F.crossEntropy(x, t, { labelSmoothing: 0.1 }), [rnd(6, 5), target()]);
      gradcheck((x, t) => F.crossEntropy(x, t, { labelSmoothing: 0.2, ignoreIndex: 2, reduction: 'sum' }), [rnd(6, 5), t2]);
      const w = torch.rand(5, { dtype: 'float64' }).add(0.5);
      gradcheck((x, t) => F.crossEntropy(x, t, { weight: w }), [rnd(6, 5), target()]);
      gradcheck((x, t) => F.crossEntropy(x, t), [rnd(2, 5, 3), ints([[0, 4, 2], [1, 1, 3]])]);
    }));
});

describe('scaledDotProductAttention', () => {
  test('plain, scaled, causal', () =>
    scope(() => {
      gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v), [rnd(1, 2, 3, 4), rnd(1, 2, 5, 4), rnd(1, 2, 5, 4)]);
      gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { scale: 0.3 }), [rnd(2, 3, 4), rnd(2, 5, 4), rnd(2, 5, 4)]);
      gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }), [rnd(1, 2, 4, 3), rnd(1, 2, 4, 3), rnd(1, 2, 4, 3)]);
    }));
  test('float mask (also its gradient) and bool mask', () =>
    scope(() => {
      gradcheck((q, k, v, m) => F.scaledDotProductAttention(q, k, v, { attnMask: m }), [
        rnd(1, 2, 3, 4), rnd(1, 2, 5, 4), rnd(1, 2, 5, 4), rnd(3, 5),
      ]);
      const bm = torch.tensor([[true, false, true, true, false], [true, true, false, false, false], [false, true, true, true, true]]);
      gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: bm }), [rnd(1, 2, 3, 4), rnd(1, 2, 5, 4), rnd(1, 2, 5, 4)]);
    }));
  test('grouped-query heads (gradients of the shared key/value heads sum over their groups)', () =>
    scope(() => {
      gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { enableGqa: true }), [
        rnd(1, 4, 3, 4), rnd(1, 2, 5, 4), rnd(1, 2, 5, 4),
      ]);
    }));
});

describe('embedding', () => {
  test('weight gradient accumulates over repeated indices', () =>
    scope(() => {
      gradcheck((idx, w) => F.embedding(idx, w), [ints([[1, 3, 1], [0, 3, 3]]), rnd(5, 4)], { wrt: [1] });
    }));
  test('the paddingIdx row gets no gradient (as PyTorch; not the finite difference)', () =>
    scope(() => {
      const w = rnd(5, 3).requiresGrad_(true);
      F.embedding(ints([[0, 2, 2]]), w, 2).sum().backward();
      expect(w.grad!.tolist()).toEqual([[1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]);
      const w2 = rnd(5, 3).requiresGrad_(true);
      // a negative paddingIdx counts from the end, as in PyTorch
      F.embedding(ints([4, 1]), w2, -1).sum().backward();
      expect(w2.grad!.tolist()).toEqual([[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]]);
    }));
});

describe('the checker itself', () => {
  test('catches a wrong gradient (detach hides part of the function from autograd)', () =>
    scope(() => {
      expect(() => gradcheck((x) => x.mul(x.detach()), [rnd(3)])).toThrow(/finite difference/);
    }));
});
