// Elementwise math and comparisons (broadcasting, scalars, PyTorch's type promotion), matrix
// products, reductions and in-place ops, against test/fixtures/torch-reference/math.safetensors.
import * as torch from '../lib';
import { F, scope, Tensor } from '../lib';
import { expectClose, loadReference } from './helpers/reference';

const { ref, dispose } = loadReference('math');
afterAll(dispose);

// float32 math: libtorch here and in Python is the same library, but vectorized and scalar paths
// may round differently in the last bit.
const F32 = { atol: 1e-6, rtol: 1e-5 };

describe('elementwise', () => {
  const cases: [string, (x: Record<string, Tensor>) => Tensor][] = [
    ['add.ab', ({ a, b }) => a.add(b)],
    ['add.ab_alpha', ({ a, b }) => a.add(b, 2.5)],
    ['sub.ac', ({ a, c }) => a.sub(c)],
    ['sub.ac_alpha', ({ a, c }) => a.sub(c, 0.5)],
    ['mul.ab', ({ a, b }) => a.mul(b)],
    ['div.ac', ({ a, c }) => a.div(c)],
    ['pow.apos_b', ({ apos, b }) => apos.pow(b)],
    ['maximum.ac', ({ a, c }) => a.maximum(c)],
    ['minimum.ab', ({ a, b }) => a.minimum(b)],
    ['atan2.ab', ({ a, b }) => a.atan2(b)],
    ['remainder.ac', ({ a, c }) => a.remainder(c)],
    ['fmod.ac', ({ a, c }) => a.fmod(c)],
    ['add.s2.5', ({ a }) => a.add(2.5)],
    ['mul.s3', ({ a }) => a.mul(3)],
    ['div.s4', ({ a }) => a.div(4)],
    ['pow.s2', ({ a }) => a.pow(2)],
    ['pow.apos_s0.5', ({ apos }) => apos.pow(0.5)],
    ['rsub.s2.5', ({ a }) => a.rsub(2.5)],
    // int tensors stay int with integral JS numbers, as with Python ints
    ['int.add_s2', ({ ia }) => ia.add(2)],
    ['int.mul_s3', ({ ia }) => ia.mul(3)],
    ['int.add_s2.5', ({ ia }) => ia.add(2.5)],
    ['int.div_s2', ({ ia }) => ia.div(2)],
    ['int.div_s2_floor', ({ ia }) => ia.div(2, 'floor')],
    ['int.div_s2_trunc', ({ ia }) => ia.div(2, 'trunc')],
    ['int.remainder_s3', ({ ia }) => ia.remainder(3)],
    ['int.pow_s2', ({ ia }) => ia.pow(2)],
    ['int.add_ib', ({ ia, ib }) => ia.add(ib)],
    ['int.mul_ib', ({ ia, ib }) => ia.mul(ib)],
    ['int32.add_s2', ({ i32 }) => i32.add(2)],
    ['int32.add_ia', ({ i32, ia }) => i32.add(ia)],
    ['float.add_ia', ({ a, ia }) => a.add(ia)],
    ['uint8.add_s1', ({ u8 }) => u8.add(1)],
    // comparisons give bool
    ['gt.ab', ({ a, b }) => a.gt(b)],
    ['lt.s0.5', ({ a }) => a.lt(0.5)],
    ['ge.ac', ({ a, c }) => a.ge(c)],
    ['le.ac', ({ a, c }) => a.le(c)],
    ['eq.int_s2', ({ ia }) => ia.eq(2)],
    ['ne.int_ib', ({ ia, ib }) => ia.ne(ib)],
    ['eq.float_int', ({ a, ia }) => a.round().eq(ia)],
    ['logicalAnd', ({ bm, bn }) => bm.logicalAnd(bn)],
    ['logicalOr', ({ bm, bn }) => bm.logicalOr(bn)],
    ['logicalXor', ({ bm, bn }) => bm.logicalXor(bn)],
    ['logicalNot', ({ bm }) => bm.logicalNot()],
    // unary
    ['neg', ({ a }) => a.neg()],
    ['abs', ({ a }) => a.abs()],
    ['exp', ({ a }) => a.exp()],
    ['expm1', ({ a }) => a.expm1()],
    ['sin', ({ a }) => a.sin()],
    ['cos', ({ a }) => a.cos()],
    ['tan', ({ a }) => a.tan()],
    ['tanh', ({ a }) => a.tanh()],
    ['sigmoid', ({ a }) => a.sigmoid()],
    ['erf', ({ a }) => a.erf()],
    ['sign', ({ a }) => a.sign()],
    ['floor', ({ a }) => a.mul(3).floor()],
    ['ceil', ({ a }) => a.mul(3).ceil()],
    ['round', ({ a }) => a.mul(3).round()],
    ['trunc', ({ a }) => a.mul(3).trunc()],
    ['square', ({ a }) => a.square()],
    ['log', ({ apos }) => apos.log()],
    ['log2', ({ apos }) => apos.log2()],
    ['log1p', ({ apos }) => apos.log1p()],
    ['sqrt', ({ apos }) => apos.sqrt()],
    ['rsqrt', ({ apos }) => apos.rsqrt()],
    ['reciprocal', ({ apos }) => apos.reciprocal()],
    ['clamp.-0.5_0.5', ({ a }) => a.clamp(-0.5, 0.5)],
    ['clamp.min0', ({ a }) => a.clamp(0)],
    ['clamp.max0.2', ({ a }) => a.clamp(null, 0.2)],
    ['lerp.ab_0.3', ({ a, b }) => a.lerp(b.expand(3, 4), 0.3)],
    ['where.ac', ({ a, c }) => torch.where(a.gt(0), a, c)],
    ['where.s', ({ a }) => a.where(a.gt(0), 0.0)],
    ['addcmul.abc', ({ a, b, c }) => a.addcmul(b, c, 0.5)],
    ['addcdiv.ab_apos', ({ a, b, apos }) => a.addcdiv(b, apos, -0.3)],
  ];
  const names = ['a', 'b', 'c', 'apos', 'ia', 'ib', 'i32', 'u8', 'bm', 'bn'];
  test.each(cases)('%s', (key, f) =>
    scope(() => {
      const x = Object.fromEntries(names.map((n) => [n, ref(`in.${n}`)]));
      expectClose(f(x), ref(key), F32);
    }),
  );

  test('scalar operands: integral numbers keep int dtypes, fractional ones promote to float32', () =>
    scope(() => {
      const i = torch.tensor([1, 2, 3], { dtype: 'int64' });
      expect(i.add(1).dtype).toBe('int64');
      expect(i.mul(2).tolist()).toEqual([2, 4, 6]);
      expect(i.add(0.5).dtype).toBe('float32');
      expect(i.div(2).dtype).toBe('float32');
      expect(i.gt(1).dtype).toBe('bool');
      expect(torch.tensor([1, 2], { dtype: 'int8' }).add(1).dtype).toBe('int8');
      expect(torch.tensor([1, 2], { dtype: 'float16' }).mul(2).dtype).toBe('float16');
      expect(torch.tensor([true, false]).add(1).dtype).toBe('int64');
    }));
});

describe('matrix products', () => {
  test.each([
    ['matmul.m1_m2', 'm1', 'm2'],
    ['matmul.x3_m2', 'x3', 'm2'],
    ['matmul.m1_v4', 'm1', 'v4'],
    ['matmul.v4_v4', 'v4', 'v4'],
    ['matmul.v4_m2', 'v4', 'm2'],
  ])('%s', (key, x, y) => scope(() => expectClose(ref(`in.${x}`).matmul(ref(`in.${y}`)), ref(key), F32)));

  test('bmm, mm, linear with and without bias', () =>
    scope(() => {
      expectClose(ref('in.x3').bmm(ref('in.b3')), ref('bmm.x3_b3'), F32);
      expectClose(ref('in.m1').mm(ref('in.m2')), ref('matmul.m1_m2'), F32);
      expectClose(F.linear(ref('in.x3'), ref('in.w'), ref('in.bias')), ref('linear.x3_w_bias'), F32);
      expectClose(F.linear(ref('in.x3'), ref('in.w')), ref('linear.x3_w'), F32);
      expectClose(torch.matmul(ref('in.m1'), ref('in.m2')), ref('matmul.m1_m2'), F32);
    }));
});

describe('reductions', () => {
  const cases: [string, (t: Tensor, it: Tensor, i32t: Tensor) => Tensor][] = [
    ['sum', (t) => t.sum()],
    ['sum.1', (t) => t.sum(1)],
    ['sum.0_2_keep', (t) => t.sum([0, 2], true)],
    ['sum.int', (_, it) => it.sum()],
    ['sum.int32_dim1', (_, __, i32t) => i32t.sum(1)],
    ['sum.f64', (t) => t.sum(undefined, false, { dtype: 'float64' })],
    ['mean', (t) => t.mean()],
    ['mean.-1', (t) => t.mean(-1)],
    ['mean.0_1_keep', (t) => t.mean([0, 1], true)],
    ['prod.1', (t) => t.prod(1)],
    ['prod.int_2_keep', (_, it) => it.prod(2, true)],
    ['std', (t) => t.std()],
    ['std.1_biased_keep', (t) => t.std(1, { unbiased: false, keepdim: true })],
    ['var.2', (t) => t.var(2)],
    ['max', (t) => t.max()],
    ['max.1.values', (t) => t.max(1)[0]],
    ['max.1.indices', (t) => t.max(1)[1]],
    ['min.2_keep.values', (t) => t.min(2, true)[0]],
    ['min.2_keep.indices', (t) => t.min(2, true)[1]],
    ['amax.0_2', (t) => t.amax([0, 2])],
    ['amin.1_keep', (t) => t.amin(1, true)],
    ['argmax.1', (t) => t.argmax(1)],
    ['argmax', (t) => t.argmax()],
    ['argmin.2_keep', (t) => t.argmin(2, true)],
    ['logsumexp.2', (t) => t.logsumexp(2)],
    ['norm', (t) => t.norm()],
    ['norm.1_dim-1', (t) => t.norm(1, -1)],
    ['cumsum.1', (t) => t.cumsum(1)],
    ['all.1', (t) => t.gt(-1).all(1)],
    ['any', (t) => t.gt(2).any()],
  ];
  test.each(cases)('%s', (key, f) =>
    scope(() => expectClose(f(ref('in.t'), ref('in.it'), ref('in.i32t')), ref(`red.${key}`), F32)),
  );
});

describe('in place (each returns the same Tensor object)', () => {
  const cases: [string, (x: Tensor, r: Record<string, Tensor>) => Tensor][] = [
    ['add_.b', (x, { b }) => x.add_(b)],
    ['add_.b_alpha', (x, { b }) => x.add_(b, 2)],
    ['add_.s', (x) => x.add_(1.5)],
    ['sub_.c', (x, { c }) => x.sub_(c)],
    ['mul_.c', (x, { c }) => x.mul_(c)],
    ['mul_.s', (x) => x.mul_(2)],
    ['div_.apos', (x, { apos }) => x.div_(apos)],
    ['addcmul_.bc', (x, { b, c }) => x.addcmul_(b, c, 0.5)],
    ['addcdiv_.b_apos', (x, { b, apos }) => x.addcdiv_(b, apos, -0.3)],
    ['copy_.b', (x, { b }) => x.copy_(b)],
    ['clamp_.-0.3_0.4', (x) => x.clamp_(-0.3, 0.4)],
    ['clamp_.min', (x) => x.clamp_(0.1)],
    ['lerp_.b', (x, { b }) => x.lerp_(b.expand(3, 4), 0.25)],
    ['fill_', (x) => x.fill_(-1.25)],
    ['zero_', (x) => x.zero_()],
    ['maskedFill_', (x, { bm }) => x.maskedFill_(bm, 7.5)],
    ['pow_.s2', (x) => x.pow_(2)],
    ['neg_', (x) => x.neg_()],
    ['relu_', (x) => x.relu_()],
  ];
  test.each(cases)('%s', (key, f) =>
    scope(() => {
      const r = Object.fromEntries(['a', 'b', 'c', 'apos', 'bm'].map((n) => [n, ref(`in.${n}`)]));
      const x = r.a.clone();
      const y = f(x, r);
      expect(y).toBe(x);
      expectClose(x, ref(`ip.${key}`), F32);
      // the input it was cloned from is untouched
      expect(r.a.equal(ref('in.a'))).toBe(true);
    }),
  );

  test('int tensors stay int under add_/mul_ with integral numbers', () =>
    scope(() => {
      const x = ref('in.ia').clone();
      x.add_(3).mul_(2);
      expectClose(x, ref('ip.int.add_mul'));
    }));

  test('in-place ops write through views into their base', () =>
    scope(() => {
      const base = torch.zeros([2, 3]);
      base.select(0, 1).add_(5);
      base.narrow(1, 0, 1).fill_(-1);
      expect(base.tolist()).toEqual([[-1, 0, 0], [-1, 5, 5]]);
    }));
});
