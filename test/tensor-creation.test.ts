// Creation ops, every dtype, conversions, what a tensor reports, the meta device, CUDA queries and
// the random ops against PyTorch's values for the same seed (test/fixtures/torch-reference/creation).
import * as torch from '../lib';
import { DType, memory, scope, Tensor } from '../lib';
import { errorMessage } from './helpers/errors';
import { tsEval } from './helpers/ts-process';
import { settleGarbage } from './helpers/gc';
import { expectClose, loadReference, sameTorchAsReference, values } from './helpers/reference';

const { ref, dispose } = loadReference('creation');
afterAll(dispose);

const DTYPES: DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int8', 'uint8', 'bool'];
const BYTES: Record<string, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1,
};

describe('tensor() and every dtype', () => {
  test.each(DTYPES)('tensor(list, { dtype: %s }) equals torch.tensor(list, dtype=...)', (dtype) =>
    scope(() => {
      // uint8 from the absolute values (PyTorch refuses negative numbers for uint8).
      const src = dtype === 'uint8' ? ref('in.list').abs() : ref('in.list');
      const t = torch.tensor(src.tolist(), { dtype });
      expectClose(t, ref(`tensor.${dtype}`));
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([2, 3]);
      expect(t.numel()).toBe(6);
      expect(t.device).toBe('cpu');
    }),
  );

  test.each(DTYPES)('.to(%s) converts (rounding, truncation) as PyTorch', (dtype) =>
    scope(() => {
      const src = dtype === 'uint8' ? ref('in.src').abs() : ref('in.src');
      const t = src.to(dtype);
      expectClose(t, ref(`to.${dtype}`));
      // data() is the elements as numbers (float32 holding the rounded values for the half types)
      expect(Array.from(t.data() as ArrayLike<number | bigint>, Number)).toEqual(values(ref(`to.${dtype}`)));
      expectClose(t.to('float32'), ref(`back.${dtype}`));
    }),
  );

  test('data() returns a typed array copy of the matching kind', () =>
    scope(() => {
      const kinds: [DType, unknown][] = [
        ['float32', Float32Array], ['float64', Float64Array], ['float16', Float32Array], ['bfloat16', Float32Array],
        ['int64', BigInt64Array], ['int32', Int32Array], ['int8', Int8Array], ['uint8', Uint8Array], ['bool', Uint8Array],
      ];
      for (const [dtype, ctor] of kinds) {
        const t = torch.ones([3], { dtype });
        const d = t.data();
        expect(d).toBeInstanceOf(ctor as never);
        expect(Array.from(d as ArrayLike<number | bigint>, Number)).toEqual([1, 1, 1]);
        // a copy: writing to it leaves the tensor alone
        (d as Uint8Array)[0] = (typeof d[0] === 'bigint' ? 5n : 5) as never;
        expect(Number(t.data()[0])).toBe(1);
      }
    }));

  test('item() and tolist() give JS numbers and booleans', () =>
    scope(() => {
      expect(torch.tensor(2.5).item()).toBe(2.5);
      expect(torch.tensor([7], { dtype: 'int64' }).item()).toBe(7);
      expect(torch.tensor([true]).item()).toBe(true);
      expect(torch.tensor(0.1, { dtype: 'float64' }).item()).toBe(0.1);
      expect(torch.tensor(-3, { dtype: 'int8' }).item()).toBe(-3);
      expect(torch.tensor(1.5, { dtype: 'bfloat16' }).item()).toBe(1.5);
      expect(torch.tensor([[1, 2], [3, 4]], { dtype: 'int64' }).tolist()).toEqual([[1, 2], [3, 4]]);
      expect(torch.tensor([[true, false]]).tolist()).toEqual([[true, false]]);
      expect(torch.tensor(3).tolist()).toBe(3);
      expect(torch.tensor([1n, -2n]).dtype).toBe('int64');
      expect(torch.tensor([true, false]).dtype).toBe('bool');
      expect(torch.tensor([1, 2]).dtype).toBe('float32');
    }));

  test('tensor() from typed arrays keeps their dtype and takes a shape', () =>
    scope(() => {
      const t = torch.tensor(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
      expect(t.dtype).toBe('int32');
      expect(t.shape).toEqual([2, 3]);
      expect(t.tolist()).toEqual([[1, 2, 3], [4, 5, 6]]);
      const f = torch.tensor(new Float64Array([0.5, 1.5]), { dtype: 'float16' });
      expect(f.dtype).toBe('float16');
      expect(values(f)).toEqual([0.5, 1.5]);
    }));

  test('bool tensors from numbers hold true/false (nonzero is true), as torch.tensor(..., dtype=bool)', () =>
    scope(() => {
      const t = torch.tensor([0, 2, -1, 0.5], { dtype: 'bool' });
      expect(t.tolist()).toEqual([false, true, true, true]);
      // the stored bytes are 0/1, so arithmetic on them is right
      expect(values(t.to('uint8'))).toEqual([0, 1, 1, 1]);
      expect(t.sum().item()).toBe(3);
    }));
});

describe('factories', () => {
  test('zeros, ones, full, empty: shape, dtype, values', () =>
    scope(() => {
      for (const dtype of DTYPES) {
        const z = torch.zeros([2, 3], { dtype });
        const o = torch.ones(4, { dtype });
        expect([z.shape, z.dtype, o.shape, o.dtype]).toEqual([[2, 3], dtype, [4], dtype]);
        expect(values(z)).toEqual([0, 0, 0, 0, 0, 0]);
        expect(values(o)).toEqual([1, 1, 1, 1]);
        expect(torch.empty([3, 2], { dtype }).shape).toEqual([3, 2]);
      }
      expect(torch.zeros([2]).dtype).toBe('float32');
      expectClose(torch.full([2, 3], 2.5), ref('full.2x3_2.5'));
      expectClose(torch.full([2, 2], true), ref('full.bool'));
      expect(torch.full([2], 3, { dtype: 'int32' }).tolist()).toEqual([3, 3]);
      expect(torch.zeros([0, 3]).numel()).toBe(0);
      expect(torch.zeros([]).shape).toEqual([]);
      expect(torch.zeros([]).numel()).toBe(1);
    }));

  test('arange, linspace, eye as PyTorch (int64 for integer bounds, float32 otherwise)', () =>
    scope(() => {
      expectClose(torch.arange(5), ref('arange.5'));
      expectClose(torch.arange(2, 11, 3), ref('arange.2_11_3'));
      expectClose(torch.arange(0, 1, 0.1), ref('arange.0_1_0.1'));
      expectClose(torch.arange(-1.5, 2.5, 0.5), ref('arange.-1.5_2.5_0.5'));
      expectClose(torch.linspace(0, 1, 7), ref('linspace.0_1_7'));
      expectClose(torch.eye(3), ref('eye.3'));
      expectClose(torch.eye(2, 4), ref('eye.2_4'));
      expect(torch.arange(3, { dtype: 'float64' }).dtype).toBe('float64');
    }));

  test('arange(end, options) takes nothing after the options (it was quietly arange(0, end, step))', () => {
    expect(() => torch.arange(5, { dtype: 'float64' }, 2)).toThrow(
      'arange(end, options): the options object must be the last argument, got 2 after it',
    );
    expect(() => torch.arange(5, { dtype: 'float64' }, { device: 'cpu' })).toThrow('the options object must be the last argument');
  });

  test('*Like factories follow their model', () =>
    scope(() => {
      const m = torch.ones([2, 3], { dtype: 'float64' });
      expect([torch.zerosLike(m).shape, torch.zerosLike(m).dtype]).toEqual([[2, 3], 'float64']);
      expect(torch.onesLike(m, { dtype: 'int32' }).dtype).toBe('int32');
      expect(values(torch.fullLike(m, 4))).toEqual([4, 4, 4, 4, 4, 4]);
      expect(torch.randnLike(m).dtype).toBe('float64');
    }));

  test('requiresGrad option', () =>
    scope(() => {
      expect(torch.zeros([2], { requiresGrad: true }).requiresGrad).toBe(true);
      expect(torch.tensor([1, 2], { requiresGrad: true }).requiresGrad).toBe(true);
      expect(torch.ones([2]).requiresGrad).toBe(false);
    }));
});

describe('conversions and what a tensor reports', () => {
  test('.to(dtype), .to({ dtype, device, copy }), shorthand casts', () =>
    scope(() => {
      const t = torch.tensor([1.7, -2.2]);
      expect(t.to('float64').dtype).toBe('float64');
      expect(t.to('cpu').device).toBe('cpu');
      expect(t.to({ dtype: 'int32' }).tolist()).toEqual([1, -2]);
      expect([t.double().dtype, t.half().dtype, t.bfloat16().dtype, t.long().dtype, t.int().dtype, t.bool().dtype,
        t.float().dtype]).toEqual(['float64', 'float16', 'bfloat16', 'int64', 'int32', 'bool', 'float32']);
      // copy: true makes a new tensor even when nothing changes; without it .to() may alias
      const c = t.to({ dtype: 'float32', copy: true });
      c.fill_(0);
      expect(values(t)[0]).toBeCloseTo(1.7, 6);
      const alias = t.to('float32');
      alias.fill_(0);
      expect(values(t)).toEqual([0, 0]);
    }));

  test('shape, size(), ndim, numel, stride, isContiguous', () =>
    scope(() => {
      const t = torch.zeros([2, 3, 4]);
      expect(t.shape).toEqual([2, 3, 4]);
      expect(t.size()).toEqual([2, 3, 4]);
      expect(t.size(-1)).toBe(4);
      expect(t.ndim).toBe(3);
      expect(t.dim()).toBe(3);
      expect(t.numel()).toBe(24);
      expect(t.stride()).toEqual([12, 4, 1]);
      expect(t.isContiguous()).toBe(true);
      expect(t.transpose(0, 2).isContiguous()).toBe(false);
      // the shape array is a copy
      const s = t.shape;
      s[0] = 99;
      expect(t.shape).toEqual([2, 3, 4]);
      expect(torch.tensor([[1, 2]]).toString()).toBe('tensor([[1,2]], shape=[1, 2], dtype=float32, device=cpu)');
    }));
});

describe('meta device', () => {
  beforeAll(settleGarbage); // memory() deltas below must not see other files' garbage being finalized
  test('meta tensors have shapes and no memory', () =>
    scope(() => {
      const before = memory();
      const m = torch.zeros([4096, 4096], { device: 'meta' });
      const e = torch.empty([1000, 1000], { dtype: 'float16', device: 'meta' });
      expect(m.device).toBe('meta');
      expect(m.shape).toEqual([4096, 4096]);
      expect(m.numel()).toBe(4096 * 4096);
      expect(e.dtype).toBe('float16');
      const y = m.matmul(m).add(1).sum(0);
      expect(y.shape).toEqual([4096]);
      expect(y.device).toBe('meta');
      const moved = torch.ones([8, 8]).to('meta');
      expect(moved.device).toBe('meta');
      const after = memory();
      expect(after.tensors - before.tensors).toBe(7); // m, e, matmul, add, sum, ones, moved
      expect(after.bytes - before.bytes).toBe(8 * 8 * 4); // only the cpu ones([8, 8])
      expect(errorMessage(() => m.data())).toMatch(/meta/i);
      expect(String(m)).toContain('device=meta');
    }));
});

describe('cuda', () => {
  test('isAvailable() and deviceCount() answer (false/0 on a CPU-only libtorch)', () => {
    const available = torch.cuda.isAvailable();
    const count = torch.cuda.deviceCount();
    expect(typeof available).toBe('boolean');
    expect(available).toBe(count > 0);
  });

  const hasCuda = torch.cuda.isAvailable();
  // A test that cannot run here is reported as skipped, with the reason, not as a pass.
  (hasCuda ? test : test.skip)(`with a GPU: to cuda and back, and a device index past the last is a clear error${hasCuda ? '' : ' (skipped: cuda.isAvailable() is false here)'}`, () =>
    scope(() => {
      const g = torch.tensor([1, 2], { device: 'cuda' });
      expect(g.device).toBe('cuda:0');
      expect(g.add(1).cpu().tolist()).toEqual([2, 3]);
      const past = `cuda:${torch.cuda.deviceCount()}`;
      expect(errorMessage(() => torch.zeros([1], { device: past }))).toMatch(/does not exist/);
    }));

  // PyTorch's torch.cuda.memory_allocated() & co. answer 0 (and reset_peak_memory_stats, empty_cache do
  // nothing) until CUDA is used: code that logs memory runs unchanged on a CPU.
  (torch.cuda.isAvailable() ? test.skip : test)(
    'without CUDA: memory statistics answer 0 and resetPeakMemoryStats / emptyCache do nothing (skipped with a GPU)',
    () => {
      expect(torch.cuda.memoryAllocated()).toBe(0);
      expect(torch.cuda.maxMemoryAllocated()).toBe(0);
      expect(torch.cuda.memoryReserved('cuda')).toBe(0);
      expect(torch.cuda.maxMemoryReserved(0)).toBe(0);
      expect(() => torch.cuda.resetPeakMemoryStats()).not.toThrow();
      expect(() => torch.cuda.resetPeakMemoryStats('cuda:0')).not.toThrow();
      expect(() => torch.cuda.emptyCache()).not.toThrow();
    },
  );

  (torch.cuda.isAvailable() ? test : test.skip)(
    'with a GPU: memory statistics before CUDA is first used answer 0, in a fresh process (skipped without a GPU)',
    () => {
      const script =
        "const c=require('./lib').cuda;c.resetPeakMemoryStats();c.emptyCache();" +
        'console.log(JSON.stringify([c.memoryAllocated(),c.maxMemoryAllocated(),c.memoryReserved()]));';
      const r = tsEval(script);
      expect(r.err).toBe('');
      expect(JSON.parse(r.out)).toEqual([0, 0, 0]);
    },
  );

  (hasCuda ? test.skip : test)(`device 'cuda' without CUDA is a clear JS error, not an abort${hasCuda ? ' (skipped: this libtorch has CUDA)' : ''}`, () =>
    scope(() => {
      const attempts = [
        () => torch.zeros([2], { device: 'cuda' }),
        () => torch.tensor([1, 2], { device: 'cuda:0' }),
        () => torch.ones([2]).to('cuda'),
        () => torch.ones([2]).cuda(),
        () => torch.randn([2], { device: 'cuda' }),
      ];
      for (const f of attempts) {
        const msg = errorMessage(f);
        expect(msg).toMatch(/cuda/i);
        expect(msg).toMatch(/not available|no CUDA|CPU-only/i);
      }
    }));
});

// Seed-for-seed parity with the PyTorch that wrote the reference (1.13); skipped on another libtorch.
const parity = sameTorchAsReference('creation') ? test : test.skip;

describe('random ops follow manualSeed and equal PyTorch for the same seed', () => {
  parity('randn then rand continue one generator', () =>
    scope(() => {
      torch.manualSeed(1234);
      expectClose(torch.randn([3, 5]), ref('seed1234.randn_3x5'));
      expectClose(torch.rand(20), ref('seed1234.then.rand_20'));
    }));
  parity('randn float64 (vectorized path for 16+ elements)', () =>
    scope(() => {
      torch.manualSeed(11);
      expectClose(torch.randn(20, { dtype: 'float64' }), ref('seed11.randn_20_f64'));
      torch.manualSeed(0);
      expectClose(torch.rand([2, 3], { dtype: 'float64' }), ref('seed0.rand_2x3_f64'));
    }));
  parity('randint (int64 by default, int32 on request)', () =>
    scope(() => {
      torch.manualSeed(7);
      expectClose(torch.randint(0, 10, 20), ref('seed7.randint_0_10_20'));
      torch.manualSeed(7);
      expectClose(torch.randint(-5, 5, [3, 4], { dtype: 'int32' }), ref('seed7.randint_-5_5_3x4_int32'));
    }));
  parity('uniform_ and normal_ in place', () =>
    scope(() => {
      torch.manualSeed(3);
      expectClose(torch.empty(17).uniform_(-2, 3), ref('seed3.uniform_-2_3_17'));
      torch.manualSeed(5);
      expectClose(torch.empty([4, 5]).normal_(1, 2), ref('seed5.normal_1_2_4x5'));
    }));
  parity('randperm', () =>
    scope(() => {
      torch.manualSeed(9);
      expectClose(torch.randperm(10), ref('seed9.randperm_10'));
    }));
  parity('randnLike and randLike (shape and dtype of their argument)', () =>
    scope(() => {
      torch.manualSeed(21);
      expectClose(torch.randnLike(torch.empty([3, 4], { dtype: 'float64' })), ref('seed21.randn_like_3x4_f64'));
      torch.manualSeed(22);
      expectClose(torch.randLike(torch.empty(17)), ref('seed22.rand_like_17'));
    }));
  parity('multinomial with and without replacement, over rows and one row', () =>
    scope(() => {
      const probs = ref('in.multinomial.probs');
      torch.manualSeed(31);
      expectClose(torch.multinomial(probs, 8, true), ref('seed31.multinomial_2x6_8_replacement'));
      torch.manualSeed(32);
      expectClose(torch.multinomial(probs, 4), ref('seed32.multinomial_2x6_4'));
      torch.manualSeed(33);
      expectClose(torch.multinomial(probs.select(0, 0), 1), ref('seed33.multinomial_6_1'));
    }));
  test('the same seed twice gives the same tensor; a different seed does not', () =>
    scope(() => {
      torch.manualSeed(42);
      const a: Tensor = torch.randn([8]);
      torch.manualSeed(42);
      const b = torch.randn([8]);
      torch.manualSeed(43);
      const c = torch.randn([8]);
      expect(a.equal(b)).toBe(true);
      expect(a.equal(c)).toBe(false);
    }));
});
