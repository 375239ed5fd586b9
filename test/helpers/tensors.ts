// Small tensor utilities of the tests: a tensor's bytes and freeing a dict of tensors at once (the
// file-format tests, which check what goes to and comes back from disk bit for bit), and the max-abs
// differences every parity test compares with.
import { scope, Tensor } from '../../lib';
import { native } from '../../lib/native';

/** The raw bytes of a tensor (row-major, little-endian), as they go to disk. */
export function bytesOf(t: Tensor): Buffer {
  return Buffer.from(native.toBytes(t.handle));
}

export function disposeAll(ts: Record<string, Tensor>): void {
  for (const t of Object.values(ts)) t.dispose();
}

/**
 * max |a - b| over all elements, computed in float64. The shapes must be equal: a broadcasting
 * subtraction ([3] - [1], [4, 1] - [4]) would otherwise hide a mismatch.
 */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error(`maxAbsDiff: shapes differ: [${a.shape}] vs [${b.shape}]`);
  return scope(() => a.double().sub(b.double()).abs().max().item() as number);
}

/** max |a| over all elements, in float64. */
export function maxAbs(a: Tensor): number {
  return scope(() => a.double().abs().max().item() as number);
}
