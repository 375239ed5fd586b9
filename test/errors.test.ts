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
        () => torch.ones([2]).to('float128' as DType),
        () => torch.ones([2]).sum(undefined, false, { dtype: 'half' as DType }),
      ]) {
        const msg = errorMessage(f);
        expect(msg).toMatch(/unknown dtype '(float8|complex64|float128|half)'/);
        expect(msg).toMatch(/expected one of .*float32.*bool/);
      }
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
