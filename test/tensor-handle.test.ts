// Tensor handles (binding/tensor_handle.h): BigInt keys into the addon's tensor table, and the
// finalizer safety net (lib/memory.ts) that frees a tensor whose Tensor was dropped without dispose().
import * as path from 'path';
import * as torch from '../lib';
import { scope } from '../lib';
import { tsProcess } from './helpers/ts-process';

/** The safety-net checks, each in a process of its own (see helpers/safety-net-child.ts). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function child(...args: string[]): Record<string, any> {
  const r = tsProcess(path.join(__dirname, 'helpers', 'safety-net-child.ts'), args, ['--expose-gc']);
  if (r.code !== 0) throw new Error(`safety-net child ${args.join(' ')} failed: ${r.err}`);
  return JSON.parse(r.out);
}

describe('the safety net (in a fresh process: no garbage or finalizers of other test files)', () => {
  test('dropped tensors are freed once the garbage collector has collected their Tensors; a reachable one is not', () => {
    const r = child('drop', '10');
    expect(r.dropped.tensors).toBe(r.before.tensors + 20);
    expect(r.after.tensors).toBe(r.before.tensors);
    expect(r.after.bytes).toBe(r.before.bytes);
    expect(r.keptAlive).toBe(true);
    expect(r.afterKept.tensors).toBe(r.before.tensors - 1);
  });

  test('more tensors than wait for registration at once (the synchronous sweep) are freed too', () => {
    const r = child('drop', '5000');
    expect(r.dropped.tensors).toBe(r.before.tensors + 10000);
    expect(r.after.tensors).toBe(r.before.tensors);
    expect(r.after.bytes).toBe(r.before.bytes);
  });

  test('a late cleanup of a disposed tensor never frees the tensor that reused its slot', () => {
    const r = child('stale');
    expect(r.reusedAlive).toBe(true);
    expect(r.reusedSum).toBe(0);
    expect(r.after.tensors).toBe(r.before.tensors + 1);
  });
});

describe('handles', () => {
  test('a handle used after its slot was reused still reads as disposed, not as the new tensor', () => {
    const a = torch.ones([3]);
    a.dispose();
    const b = torch.full([3], 5);
    expect(a.isDisposed).toBe(true);
    expect(b.isDisposed).toBe(false);
    expect(() => a.add(1)).toThrow('add: a Tensor was used after dispose() (argument 0)');
    expect(() => b.add(a)).toThrow('add: a Tensor was used after dispose() (argument 1)');
    expect(b.add(1).tolist()).toEqual([6, 6, 6]);
    b.dispose();
  });

  test('a handle is not a number: int64-range BigInt scalars still work, a handle is no scalar', () => {
    scope(() => {
      const t = torch.tensor([1n, 2n]);
      expect(t.add(3n as never).tolist()).toEqual([4, 5]);
      expect(() => torch.full([2], t.handle as never)).toThrow(/must be an integer in the int64 range/);
    });
  });

  test('shape, dtype and device are read once, follow setData_, and are errors after dispose()', () => {
    const t = torch.zeros([2, 3]);
    expect([t.shape, t.dtype, t.device]).toEqual([[2, 3], 'float32', 'cpu']);
    const src = torch.ones([4], { dtype: 'float64' });
    t.setData_(src);
    expect([t.shape, t.dtype, t.device]).toEqual([[4], 'float64', 'cpu']);
    src.dispose();
    t.dispose();
    expect(() => t.shape).toThrow(/after dispose/);
    expect(() => t.dtype).toThrow(/after dispose/);
    expect(() => t.device).toThrow(/after dispose/);
  });
});
