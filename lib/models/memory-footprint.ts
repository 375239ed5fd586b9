// transformers' PreTrainedModel.get_memory_footprint: the bytes of the parameters, and of the buffers
// unless told otherwise. Works on 'meta' models (shapes only), so a 7B model's size is known without
// allocating it. A 4-bit Linear counts its packed uint8 weight and its quant state (absmax, code books),
// which this library holds as buffers.
import { ITEMSIZE } from '../dtype';
import { Module } from '../nn/module';

export function getMemoryFootprint(model: Module, opts: { returnBuffers?: boolean } = {}): number {
  let bytes = 0;
  for (const p of model.parameters()) bytes += p.numel() * ITEMSIZE[p.dtype];
  if (opts.returnBuffers ?? true) for (const b of model.buffers()) bytes += b.numel() * ITEMSIZE[b.dtype];
  return bytes;
}
