// Small tensor utilities of the file-format tests (safetensors, torch.save), which check what goes to
// and comes back from disk bit for bit: a tensor's bytes, and freeing a dict of tensors at once.
import { Tensor } from '../../lib';
import { native } from '../../lib/native';

/** The raw bytes of a tensor (row-major, little-endian), as they go to disk. */
export function bytesOf(t: Tensor): Buffer {
  return Buffer.from(native.toBytes(t.handle) as ArrayBuffer);
}

export function disposeAll(ts: Record<string, Tensor>): void {
  for (const t of Object.values(ts)) t.dispose();
}
