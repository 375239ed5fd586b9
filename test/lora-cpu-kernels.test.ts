// F.loraLinear's CPU kernels (src/lora_cpu_kernels.cpp: float32 adapters on a float32 or bfloat16 base,
// rank 1-64) against a float64 truth and against ATen's BLAS path (F.useLoraCpuKernels(false)).
// Bounds: a float32 sum of K products is within γ_K·Σ|products| of the exact sum, γ_K = K·u/(1 - K·u),
// u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, 3.1); a chain of two such sums (x·Aᵀ
// then ·Bᵀ) within γ of the two lengths together, applied to the products of absolute values. A bfloat16
// result is rounded once more (half an ulp, 2^-9 relative), twice for x's gradient, which PEFT forms as
// the base's gradient plus the LoRA path's cast back to bfloat16.
import * as torch from '../lib';
import { F, memory, noGrad, scope, Tensor } from '../lib';

const U = 2 ** -24;
const gamma = (k: number): number => (k * U) / (1 - k * U);

/** max over elements of |got - want| - bound (<= 0 when every element is within its bound). */
function excess(got: Tensor, want: Tensor, bound: Tensor): number {
  expect(got.shape).toEqual(want.shape);
  return scope(() => got.double().sub(want).abs().sub(bound).max().item() as number);
}

afterEach(() => F.useLoraCpuKernels(true));

interface Case {
  n: number; // rows (tokens)
  inF: number;
  outF: number;
  r: number;
  bias: boolean;
  fanInFanOut: boolean;
}
const CASES: Case[] = [
  { n: 37, inF: 70, outF: 130, r: 16, bias: false, fanInFanOut: false }, // rows not a multiple of 4, columns not of 64
  { n: 8, inF: 64, outF: 64, r: 8, bias: true, fanInFanOut: false },
  { n: 5, inF: 33, outF: 200, r: 17, bias: false, fanInFanOut: true }, // rank padded to 32
  { n: 1, inF: 129, outF: 3, r: 64, bias: true, fanInFanOut: false },
  { n: 12, inF: 40, outF: 66, r: 1, bias: false, fanInFanOut: false },
  { n: 6, inF: 20, outF: 30, r: 65, bias: false, fanInFanOut: false }, // above 64: ATen's path
];
const s = 0.75;

function inputs(c: Case, dtype: 'float32' | 'bfloat16') {
  const x = torch.randn([c.n, c.inF]).to(dtype);
  const w = (c.fanInFanOut ? torch.randn([c.inF, c.outF]) : torch.randn([c.outF, c.inF])).mul(0.3).to(dtype);
  const b = c.bias ? torch.randn([c.outF]).to(dtype) : undefined;
  const a = torch.randn([c.r, c.inF]).mul(0.3);
  const bb = torch.randn([c.outF, c.r]).mul(0.3);
  const g = torch.randn([c.n, c.outF]).to(dtype);
  return { x, w, b, a, bb, g };
}

/** Output and gradients of x, A and B of one fused call (kernels on or off). */
function run(c: Case, t: ReturnType<typeof inputs>, kernels: boolean) {
  F.useLoraCpuKernels(kernels);
  const x = t.x.detach().clone().requiresGrad_(true);
  const a = t.a.detach().clone().requiresGrad_(true);
  const bb = t.bb.detach().clone().requiresGrad_(true);
  const y = F.loraLinear(x, t.w, t.b, a, bb, s, { fanInFanOut: c.fanInFanOut });
  y.backward(t.g);
  return { y: y.detach(), gx: x.grad!, ga: a.grad!, gb: bb.grad! };
}

describe('loraLinear CPU kernels', () => {
  beforeEach(() => torch.manualSeed(7));

  test.each(CASES)('float32 base: forward and gradients within the float32 bound of the float64 truth (%o)', (c) =>
    scope(() => {
      const t = inputs(c, 'float32');
      const k = run(c, t, true);
      // the truth, from the same float32 values, in float64; |.| versions for the bounds
      const [x, w, a, bb, g] = [t.x, c.fanInFanOut ? t.w.t() : t.w, t.a, t.bb, t.g].map((v) => v.double());
      const [xa, wa, aa, ba, gAbs] = [x, w, a, bb, g].map((v) => v.abs());
      const bias = t.b?.double();
      const xA = x.matmul(a.t());
      let y = x.matmul(w.t()).add(xA.matmul(bb.t()).mul(s));
      if (bias) y = y.add(bias);
      const yBound = xa.matmul(wa.t()).mul(gamma(c.inF + 1)).add(xa.matmul(aa.t()).matmul(ba.t()).mul(s * gamma(c.inF + c.r + 1)));
      expect(excess(k.y, y, bias ? yBound.add(bias.abs().mul(gamma(c.inF + 1))) : yBound)).toBeLessThanOrEqual(0);
      const gB = g.matmul(bb).mul(s);
      const gBAbs = gAbs.matmul(ba).mul(s);
      const gx = g.matmul(w).add(gB.matmul(a));
      const gxBound = gAbs.matmul(wa).mul(gamma(c.outF + 1)).add(gBAbs.matmul(aa).mul(gamma(c.outF + c.r + 1)));
      expect(excess(k.gx, gx, gxBound)).toBeLessThanOrEqual(0);
      expect(excess(k.ga, gB.t().matmul(x), gBAbs.t().matmul(xa).mul(gamma(c.outF + c.n)))).toBeLessThanOrEqual(0);
      expect(excess(k.gb, g.t().matmul(xA).mul(s), gAbs.t().matmul(xa.matmul(aa.t())).mul(s * gamma(c.inF + c.n)))).toBeLessThanOrEqual(0);
    }));

  test.each(CASES)('bfloat16 base: the output and x.grad within an ulp or two of ATen\'s path, A and B grads within float32 (%o)', (c) =>
    scope(() => {
      const t = inputs(c, 'bfloat16');
      const k = run(c, t, true);
      const ref = run(c, t, false);
      expect(k.y.dtype).toBe('bfloat16');
      expect(k.gx.dtype).toBe('bfloat16');
      // both paths round a float32 value to bfloat16 (once for y, twice for x.grad); the float32 values
      // differ in summation order, so the two roundings land at most 1 (y) or 2 (x.grad) ulps apart
      const ulp = (v: Tensor) => v.double().abs().clamp(2 ** -126).log2().floor().sub(7).mul(Math.LN2).exp(); // 2^(exponent - 7): bfloat16 keeps 8 significant bits
      expect(excess(k.y, ref.y.double(), ulp(ref.y))).toBeLessThanOrEqual(0);
      expect(excess(k.gx, ref.gx.double(), ulp(ref.gx).mul(2))).toBeLessThanOrEqual(0);
      // A's and B's gradients are float32 sums over the same bfloat16 values: each within γ of the truth
      const [x, g, a, bb] = [t.x, t.g, t.a, t.bb].map((v) => v.double());
      const gB = g.matmul(bb).mul(s);
      const gBAbs = g.abs().matmul(bb.abs()).mul(s);
      const xA = x.matmul(a.t());
      for (const res of [k, ref]) {
        expect(excess(res.ga, gB.t().matmul(x), gBAbs.t().matmul(x.abs()).mul(gamma(c.outF + c.n)))).toBeLessThanOrEqual(0);
        expect(excess(res.gb, g.t().matmul(xA).mul(s), g.abs().t().matmul(x.abs().matmul(a.abs().t())).mul(s * gamma(c.inF + c.n)))).toBeLessThanOrEqual(0);
      }
    }));

  test('dropout: the same seed gives the same mask on both paths; gradients agree within float32', () =>
    scope(() => {
      const c = CASES[0];
      for (const dtype of ['float32', 'bfloat16'] as const) {
        const t = inputs(c, dtype);
        const outs = [true, false].map((on) => {
          F.useLoraCpuKernels(on);
          torch.manualSeed(99);
          const x = t.x.detach().clone().requiresGrad_(true);
          const a = t.a.detach().clone().requiresGrad_(true);
          const y = F.loraLinear(x, t.w, undefined, a, t.bb, s, { dropoutP: 0.3 });
          y.backward(t.g);
          return { y: y.detach().double(), ga: a.grad!.double() };
        });
        const tol = dtype === 'float32' ? 1e-4 : 0.1; // (values ~10-60 in magnitude; bfloat16: 1 ulp at 32-64 is 0.25)
        expect(scope(() => outs[0].y.sub(outs[1].y).abs().max().item() as number)).toBeLessThan(dtype === 'float32' ? tol : 0.5);
        expect(scope(() => outs[0].ga.sub(outs[1].ga).abs().div(outs[1].ga.abs().max()).max().item() as number)).toBeLessThan(1e-5);
      }
    }));

  test('a NaN in x reaches the output and the gradients (not rounded away)', () =>
    scope(() => {
      const c = CASES[1];
      for (const dtype of ['float32', 'bfloat16'] as const) {
        const t = inputs(c, dtype);
        const xs = t.x.float();
        xs.view(-1).narrow(0, 3, 1).fill_(NaN);
        t.x = xs.to(dtype);
        const k = run(c, t, true);
        expect(k.y.narrow(0, 0, 1).isnan().all().item()).toBe(true);
        expect(k.ga.isnan().any().item()).toBe(true);
        expect(k.y.narrow(0, 1, c.n - 1).isnan().any().item()).toBe(false);
      }
    }));

  test('no tensors left over a loop of forward and backward on the kernels', () => {
    const c = CASES[0];
    const t = inputs(c, 'bfloat16');
    const step = () => scope(() => void run(c, t, true));
    step();
    noGrad(() => undefined);
    const before = memory();
    for (let i = 0; i < 20; i++) step();
    expect(memory()).toEqual(before);
  });
});
