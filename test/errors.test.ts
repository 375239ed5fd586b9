// Every failure is a JS Error with an actionable message and no C++ backtrace, never an abort.
import * as torch from '../lib';
import { DType, F, scope, Tensor } from '../lib';
import { errorMessage } from './helpers/errors';

describe('shape mismatches name the sizes', () => {
  test('broadcasting', () =>
    scope(() => {
      const msg = errorMessage(() => torch.zeros([2, 3]).add(torch.zeros([4, 3])));
      expect(msg).toMatch(/^add: /);
      expect(msg).toMatch(/size of tensor a \(2\) must match the size of tensor b \(4\) at non-singleton dimension 0/);
    }));
  test('matmul / mm / linear', () =>
    scope(() => {
      expect(errorMessage(() => torch.zeros([2, 3]).matmul(torch.zeros([4, 5])))).toMatch(/2x3 and 4x5/);
      expect(errorMessage(() => F.linear(torch.zeros([2, 3]), torch.zeros([5, 4])))).toMatch(/2x3.*4x5/);
      expect(errorMessage(() => torch.zeros([2, 3, 4]).bmm(torch.zeros([3, 5, 2])))).toMatch(/\[2, 4\].*\[3, 5\]/);
    }));
  test('view, cat, expand', () =>
    scope(() => {
      expect(errorMessage(() => torch.zeros([2, 3]).view(5))).toMatch(/shape '\[5\]' is invalid for input of size 6/);
      expect(errorMessage(() => torch.cat([torch.zeros([2, 3]), torch.zeros([2, 4])]))).toMatch(/Expected size 3 but got size 4/);
      expect(errorMessage(() => torch.zeros([2, 3]).expand(4, 4))).toMatch(/expanded size of the tensor \(4\) must match the existing size \(3\)/);
    }));
  test('dimension and index out of range', () =>
    scope(() => {
      expect(errorMessage(() => torch.zeros([2, 3]).sum(5))).toMatch(/Dimension out of range .*\[-2, 1\].*5/);
      expect(errorMessage(() => F.embedding(torch.tensor([7], { dtype: 'int64' }), torch.zeros([5, 2])))).toMatch(/index out of range/);
      expect(errorMessage(() => torch.zeros([3]).indexSelect(0, torch.tensor([3], { dtype: 'int64' })))).toMatch(/out of range/);
      expect(() => torch.zeros([2, 3]).size(2)).toThrow(/dimension out of range for a 2-d tensor/);
    }));
  test('item() of a tensor with more than one element', () =>
    scope(() => expect(errorMessage(() => torch.zeros([2]).item())).toMatch(/one element, got shape \[2\]/)));
});

describe('wrong dtypes', () => {
  test('float indices, mixed float types in matmul, float into an int tensor in place', () =>
    scope(() => {
      expect(errorMessage(() => F.embedding(torch.tensor([1]), torch.zeros([5, 2])))).toMatch(/Long|Int/);
      expect(errorMessage(() => torch.zeros([2, 2]).matmul(torch.zeros([2, 2], { dtype: 'float64' })))).toMatch(
        /(Float|float).*(Double|double)|(Double|double).*(Float|float)/,
      );
      expect(errorMessage(() => torch.zeros([2], { dtype: 'int64' }).add_(torch.zeros([2])))).toMatch(
        /result type Float can't be cast to the desired output type Long/,
      );
      expect(errorMessage(() => torch.zeros([3]).indexSelect(0, torch.tensor([0])))).toMatch(/index/);
      expect(errorMessage(() => F.crossEntropy(torch.zeros([2, 3]), torch.tensor([0, 1], { dtype: 'int32' })))).toMatch(
        /Long|Int|int/,
      );
    }));
  test('unknown dtype strings list the known ones', () =>
    scope(() => {
      for (const f of [
        () => torch.zeros([2], { dtype: 'float8' as DType }),
        () => torch.tensor([1, 2], { dtype: 'complex64' as DType }),
        () => torch.ones([2]).to({ dtype: 'float128' as DType }),
        () => torch.ones([2]).sum(undefined, false, { dtype: 'half' as DType }),
      ]) {
        const msg = errorMessage(f);
        expect(msg).toMatch(/unknown dtype '(float8|complex64|float128|half)'/);
        expect(msg).toMatch(/expected one of .*float32.*bool/);
      }
      // to(string) may name a device too, and says so (below)
      expect(errorMessage(() => torch.ones([2]).to('float128' as DType))).toMatch(/^to\('float128'\): expected a device .* or a dtype \(.*float32.*bool/);
    }));
});

describe('use after dispose', () => {
  test('as the receiver, as an argument, in a list, and for shape/data/item', () =>
    scope(() => {
      const t = torch.ones([2, 3]);
      expect(t.shape).toEqual([2, 3]); // cache the shape first: it must not outlive dispose()
      t.dispose();
      expect(t.isDisposed).toBe(true);
      const ok = torch.ones([2, 3]);
      const uses: (() => unknown)[] = [
        () => t.add(1),
        () => ok.add(t),
        () => torch.cat([ok, t]),
        () => t.data(),
        () => t.item(),
        () => t.shape,
        () => t.dtype,
        () => t.backward(),
        () => F.linear(ok, t),
      ];
      for (const f of uses) expect(errorMessage(f)).toMatch(/used after dispose\(\)/);
      expect(String(t)).toBe('tensor(<disposed>)');
    }));
});

describe('autograd misuse', () => {
  test('backward() of a non-scalar without a gradient says to pass one', () =>
    scope(() => {
      const x = torch.ones([2, 3], { requiresGrad: true });
      const msg = errorMessage(() => x.mul(2).backward());
      expect(msg).toMatch(/scalar .*got shape \[2, 3\].*pass a gradient/);
    }));
  test('backward() of a tensor that does not require grad', () =>
    scope(() => expect(errorMessage(() => torch.ones([1]).sum().backward())).toMatch(/does not require grad/)));
  test('assigning a .grad of the wrong shape or dtype', () =>
    scope(() => {
      const x = torch.ones([2, 3], { requiresGrad: true });
      expect(errorMessage(() => (x.grad = torch.ones([3, 2])))).toMatch(/grad has shape \[3, 2\] but the tensor has shape \[2, 3\]/);
      expect(errorMessage(() => (x.grad = torch.ones([2, 3], { dtype: 'float64' })))).toMatch(/dtype Double .*Float/);
      expect(x.grad).toBeUndefined();
    }));
  test('a gradient of the wrong shape', () =>
    scope(() => {
      const x = torch.ones([2, 3], { requiresGrad: true });
      expect(errorMessage(() => x.mul(2).backward(torch.ones([3, 2])))).toMatch(/\[3, 2\].*\[2, 3\]|shape/);
    }));
});

describe('tensor() data', () => {
  test('ragged nested arrays say where', () =>
    scope(() => {
      expect(errorMessage(() => torch.tensor([[1, 2], [3]]))).toMatch(/ragged data at data\[1\]: expected 2 elements, got 1/);
      expect(errorMessage(() => torch.tensor([[1, 2], 3] as never))).toMatch(/ragged data at data\[1\].*got a scalar/);
      expect(errorMessage(() => torch.tensor([1, [2]] as never))).toMatch(/ragged data at data\[1\]: expected a scalar, got an array/);
      expect(errorMessage(() => torch.tensor([[[1], [2]], [[3], [4, 5]]]))).toMatch(/data\[1\]\[1\]/);
    }));
  test('non-numbers', () =>
    scope(() => {
      expect(errorMessage(() => torch.tensor(['a'] as never))).toMatch(/expected numbers.*got string/);
      expect(errorMessage(() => torch.tensor([1, 'b'] as never))).toMatch(/data\[1\].*got string/);
    }));
  test('a typed array that does not fill the shape', () =>
    scope(() => expect(errorMessage(() => torch.tensor(new Float32Array(5), { shape: [2, 3] }))).toMatch(/20 bytes.*\[2, 3\].*24/)));
});

describe('arguments of the wrong kind', () => {
  test('a non-Tensor object or a string where a Tensor or number goes', () =>
    scope(() => {
      const t: Tensor = torch.ones([2]);
      expect(errorMessage(() => t.add({} as never))).toMatch(/argument 1 must be a Tensor/);
      expect(errorMessage(() => t.add('x' as never))).toMatch(/argument 1 must be a number/);
      expect(errorMessage(() => torch.cat([t, 3 as never]))).toMatch(/array of Tensors/);
    }));
});

describe('out of memory', () => {
  test('a 400 TB CPU allocation is an Error naming the failed allocation; the next allocation works', () =>
    scope(() => {
      const before = torch.memory().tensors;
      const msg = errorMessage(() => torch.empty([1e7, 1e7])); // float32: 4e14 bytes
      expect(msg).toMatch(/^empty: /);
      expect(msg).toMatch(/can't allocate memory.*400000000000000 bytes/);
      expect(errorMessage(() => torch.zeros([1e7, 1e7]))).toMatch(/can't allocate memory/);
      expect(torch.memory().tensors).toBe(before);
      expect(torch.ones([1000]).sum().item()).toBe(1000);
    }));

  const hasCuda = torch.cuda.isAvailable();
  (hasCuda ? test : test.skip)(
    `CUDA: empty([2**40]) on cuda is an "out of memory" Error and the next CUDA allocation works${
      hasCuda ? '' : ' (skipped: cuda.isAvailable() is false here)'
    }`,
    () =>
      scope(() => {
        const msg = errorMessage(() => torch.empty([2 ** 40], { device: 'cuda' })); // float32: 4 TiB
        expect(msg).toMatch(/^empty: /);
        expect(msg).toMatch(/out of memory/);
        const t = torch.ones([1024], { device: 'cuda' });
        expect(t.device).toBe('cuda:0');
        expect(t.sum().item()).toBe(1024);
      }),
  );
});

describe('mixing devices', () => {
  const meta = (shape: number[], dtype: DType = 'float32') => torch.ones(shape, { device: 'meta', dtype });
  const mixMessage = /expected all tensors on the same device, but argument \d+(\[\d+\])? is on (cpu|meta) and argument \d+(\[\d+\])? is on (cpu|meta): a meta tensor has shapes but no data/;

  test("ones([2]).add(ones([2], { device: 'meta' })) names both devices", () =>
    scope(() => {
      const msg = errorMessage(() => torch.ones([2]).add(meta([2])));
      expect(msg).toMatch(/^add: /);
      expect(msg).toMatch(/argument 0 is on cpu and argument 1 is on meta/);
    }));

  // libtorch lets these through: 1.13 returns a meta tensor, 2.x (2.13, 2.14) a CPU tensor of
  // uninitialized memory for matmul/mm/linear/addmm/baddbmm with the CPU operand first, and leaves
  // cpu.add_(meta) unchanged without a word. Refused before the op runs, on both.
  test('matmul, mm, bmm, linear, addmm, baddbmm, einsum, embedding, cat and in-place ops refuse a meta tensor next to a CPU one', () =>
    scope(() => {
      const cases: [string, () => unknown][] = [
        ['matmul', () => torch.ones([2, 3]).matmul(meta([3, 4]))],
        ['matmul', () => meta([2, 3]).matmul(torch.ones([3, 4]))],
        ['mm', () => torch.ones([2, 3]).mm(meta([3, 4]))],
        ['bmm', () => torch.ones([1, 2, 3]).bmm(meta([1, 3, 4]))],
        ['linear', () => F.linear(torch.ones([2, 3]), meta([4, 3]))],
        ['linear', () => F.linear(torch.ones([2, 3]), torch.ones([4, 3]), meta([4]))],
        ['addmm', () => torch.addmm(torch.ones([2, 4]), torch.ones([2, 3]), meta([3, 4]))],
        ['baddbmm', () => torch.baddbmm(torch.ones([1, 2, 4]), torch.ones([1, 2, 3]), meta([1, 3, 4]))],
        ['einsum', () => torch.einsum('ij,jk->ik', meta([2, 3]), torch.ones([3, 4]))],
        ['embedding', () => F.embedding(torch.tensor([0, 1], { dtype: 'int64' }), meta([4, 3]))],
        ['indexSelect', () => torch.ones([4, 2]).indexSelect(0, meta([2], 'int64'))],
        ['cat', () => torch.cat([torch.ones([2]), meta([2])])],
        ['index', () => torch.ones([4, 2]).index([meta([2], 'int64')])],
        ['scaledDotProductAttention', () => F.scaledDotProductAttention(torch.ones([1, 1, 2, 4]), meta([1, 1, 2, 4]), torch.ones([1, 1, 2, 4]))],
      ];
      for (const [op, f] of cases) {
        const msg = errorMessage(f);
        expect(msg.startsWith(`${op}: `)).toBe(true);
        expect(msg).toMatch(mixMessage);
      }
      const x = torch.ones([2]);
      expect(errorMessage(() => x.add_(meta([2])))).toMatch(mixMessage);
      expect(errorMessage(() => x.mul_(meta([2])))).toMatch(mixMessage);
      expect(x.tolist()).toEqual([1, 1]);
    }));

  test('meta with meta still works (shapes only), and copy_ into a meta tensor is allowed, as in PyTorch', () =>
    scope(() => {
      const y = F.linear(meta([2, 3]), meta([4, 3]), meta([4]));
      expect(y.device).toBe('meta');
      expect(y.shape).toEqual([2, 4]);
      expect(meta([5, 2, 3]).matmul(meta([3, 4])).shape).toEqual([5, 2, 4]);
      const m = meta([2]);
      m.copy_(torch.ones([2]));
      expect(m.device).toBe('meta');
      // the other way has no data to copy: libtorch's own error
      expect(errorMessage(() => torch.ones([2]).copy_(meta([2])))).toMatch(/meta/);
    }));
});

describe('messages name the op once', () => {
  // The core's checks (src/) start with the op's name; the bridge adds it only when missing.
  const once = (msg: string, op: string) => {
    expect(msg.startsWith(`${op}: `)).toBe(true);
    expect(msg.split(op).length - 1).toBe(1);
  };
  test('scaledDotProductAttention and the fused ops', () =>
    scope(() => {
      const x = torch.ones([1, 1, 2, 4]);
      const sdpa = errorMessage(() =>
        F.scaledDotProductAttention(x, x, x, { isCausal: true, attnMask: torch.ones([2, 2], { dtype: 'bool' }) }),
      );
      once(sdpa, 'scaledDotProductAttention');
      expect(sdpa).toMatch(/give either isCausal or attnMask, not both/);
      once(errorMessage(() => F.scaledDotProductAttention(x, torch.ones([1, 1, 2, 3]), x)), 'scaledDotProductAttention');
      once(errorMessage(() => F.swiglu(torch.ones([2, 3]), torch.ones([2, 4]))), 'swiglu');
      once(errorMessage(() => F.rmsNorm(torch.ones([2, 3]), torch.ones([4]))), 'rmsNorm');
      const c = torch.ones([1, 2, 4]);
      once(errorMessage(() => F.applyRotaryPosEmb(torch.ones([2, 2, 4]), torch.ones([2, 2, 4]), c, c)), 'applyRotaryPosEmb');
      once(errorMessage(() => F.causalLmLoss(torch.ones([2, 3]), torch.ones([5, 3]), torch.zeros([2, 3], { dtype: 'int64' }))), 'causalLmLoss');
      once(
        errorMessage(() => F.loraLinear(torch.ones([2, 3]), torch.ones([4, 3, 1]), undefined, torch.ones([2, 3]), torch.ones([4, 2]), 1)),
        'loraLinear',
      );
      // a libtorch message gets the op's name in front
      expect(errorMessage(() => torch.zeros([2, 3]).add(torch.zeros([4, 3])))).toMatch(/^add: The size of tensor a/);
    }));
});

describe("to(x) with a string that is neither a device nor a dtype", () => {
  test("to('gpu') says what it expected", () =>
    scope(() => {
      for (const bad of ['gpu', 'cuda0', 'float', 'CPU']) {
        const msg = errorMessage(() => torch.ones([2]).to(bad));
        expect(msg.startsWith(`to('${bad}'): expected a device ('cpu', 'cuda', 'cuda:N', 'meta') or a dtype (`)).toBe(true);
        expect(msg).toMatch(/\(.*float32.*bfloat16.*\)$/);
        expect(msg).not.toMatch(/unknown dtype/);
      }
      // the good spellings still work
      expect(torch.ones([2]).to('float64').dtype).toBe('float64');
      expect(torch.ones([2]).to('meta').device).toBe('meta');
      expect(torch.ones([2]).to('cpu').device).toBe('cpu');
    }));
});
