// clipGradNorm against torch.nn.utils.clip_grad_norm_ (1.13): the returned total norm and the
// clipped gradients, for p = 2 (clipping and not), 1, 3 and inf. Tolerance 1e-6 relative.
import { clipGradNorm, memory, nn, scope, Tensor, zeros } from '../lib';
import { expectClose } from './helpers/reference';
import { loadOptimReference } from './helpers/optim-reference';

const R = loadOptimReference();
afterAll(() => R.dispose());
const TOL = { rtol: 1e-6, atol: 1e-7 };

function paramsWithGrads(): nn.Parameter[] {
  return [0, 1, 2].map((i) => {
    const g = R.ref(`clip.grad.c${i}`);
    const z = zeros(g.shape);
    const p = new nn.Parameter(z);
    z.dispose();
    const c = g.clone();
    p.grad = c;
    c.dispose();
    return p;
  });
}

describe.each(Object.keys(R.config.clip))('%s', (name) => {
  test('total norm and clipped gradients equal clip_grad_norm_', () => {
    const { max_norm, norm_type } = R.config.clip[name];
    const params = paramsWithGrads();
    const total = clipGradNorm(params, max_norm, norm_type);
    expect(total.shape).toEqual([]);
    expectClose(total, R.ref(`clip.${name}.total`), TOL);
    params.forEach((p, i) => expectClose(p.grad!, R.ref(`clip.${name}.c${i}`), TOL));
    total.dispose();
    params.forEach((p) => p.dispose());
  });
});

test('parameters without a gradient are skipped; none at all gives tensor(0.)', () => {
  const params = paramsWithGrads();
  const extra = new nn.Parameter(zeros([3]));
  const withExtra = clipGradNorm([...params, extra], 1000);
  const fresh = paramsWithGrads();
  const without = clipGradNorm(fresh, 1000);
  expect(withExtra.item()).toBe(without.item());
  expect(extra.grad).toBeUndefined();
  const none = clipGradNorm([extra], 1);
  expect(none.item()).toBe(0);
  expect(none.dtype).toBe('float32');
  [withExtra, without, none].forEach((t) => t.dispose());
  [...params, ...fresh, extra].forEach((p) => p.dispose());
});

test('a single Tensor, the returned norm scoped like any result, and errorIfNonfinite', () => {
  const p = new nn.Parameter(zeros([2]));
  const before = memory().tensors;
  scope(() => {
    p.grad = zeros([2]).add(3);
    clipGradNorm(p, 1);
  });
  expect(memory().tensors).toBe(before);
  expect(Array.from(p.grad!.data() as Float32Array).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([0.7071, 0.7071]);
  scope(() => {
    p.grad = zeros([2]).add(Infinity);
    expect(() => clipGradNorm(p, 1, 2, { errorIfNonfinite: true })).toThrow(/non-finite/);
    const t: Tensor = clipGradNorm(p, 1, 2);
    expect(t.item()).toBe(Infinity);
  });
  p.dispose();
});
