// Tensor handles (binding/tensor_handle.h): BigInt keys into the addon's tensor table, and the
// finalizer safety net (lib/memory.ts) that frees a tensor whose Tensor was dropped without dispose().
import * as torch from '../lib';
import { memory, scope, Tensor } from '../lib';
import { settleGarbage, settleGarbageUntil } from './helpers/gc';

beforeAll(settleGarbage);

/** Makes tensors and drops them without dispose(), outside any scope (in a frame that then ends). */
function dropTensors(n: number): void {
  for (let i = 0; i < n; i++) torch.ones([4]).mul(2);
}

describe('the safety net', () => {
  test('a dropped tensor is freed once the garbage collector has collected its Tensor', async () => {
    const before = memory();
    dropTensors(10);
    expect(memory().tensors).toBe(before.tensors + 20);
    await settleGarbageUntil(() => memory().tensors <= before.tensors);
    // <= rather than ==: garbage that other files left may be collected in the same sweep.
    const after = memory();
    expect(after.tensors).toBeLessThanOrEqual(before.tensors);
    expect(after.bytes).toBeLessThanOrEqual(before.bytes);
  });

  test('more tensors than wait for registration at once (the synchronous sweep) are freed too', async () => {
    const before = memory();
    dropTensors(5000);
    expect(memory().tensors).toBe(before.tensors + 10000);
    await settleGarbageUntil(() => memory().tensors <= before.tensors);
    // <= rather than ==: garbage that other files left may be collected in the same sweep.
    const after = memory();
    expect(after.tensors).toBeLessThanOrEqual(before.tensors);
    expect(after.bytes).toBeLessThanOrEqual(before.bytes);
  });

  test('a tensor that stays reachable is not freed', async () => {
    const kept = torch.full([3], 7);
    await settleGarbage();
    expect(kept.isDisposed).toBe(false);
    expect(kept.tolist()).toEqual([7, 7, 7]);
    kept.dispose();
  });

  test('a late cleanup of a disposed tensor never frees the tensor that reused its slot', async () => {
    const before = memory();
    let old: Tensor | undefined = torch.ones([2]);
    await null; // the sweep registers `old` with the registry
    old.dispose();
    const reused = torch.zeros([5]); // takes the slot `old` had, with a new generation
    old = undefined;
    await settleGarbage(); // runs `old`'s cleanup: its key is stale, so nothing is freed
    expect(reused.isDisposed).toBe(false);
    expect(scope(() => reused.sum().item())).toBe(0);
    expect(memory().tensors).toBe(before.tensors + 1);
    reused.dispose();
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
