// Python's spelling of values inside module reprs (extra_repr prints Python objects: 1e-05, True, (48,)).

import { pyFloat } from '../python-float';

export { pyFloat };

/** A boolean as Python writes it. */
export function pyBool(b: boolean): string {
  return b ? 'True' : 'False';
}

/** A tuple of ints as Python writes it: (48,), (4, 5), (). */
export function pyTuple(xs: readonly number[]): string {
  return xs.length === 1 ? `(${xs[0]},)` : `(${xs.join(', ')})`;
}

const TYPENAMES: Record<string, string> = {
  float32: 'FloatTensor',
  float64: 'DoubleTensor',
  float16: 'HalfTensor',
  bfloat16: 'BFloat16Tensor',
  int64: 'LongTensor',
  int32: 'IntTensor',
  int16: 'ShortTensor',
  int8: 'CharTensor',
  uint8: 'ByteTensor',
  bool: 'BoolTensor',
};

/** torch.typename(t): 'torch.FloatTensor', 'torch.cuda.HalfTensor', ... */
export function torchTypename(dtype: string, device: string): string {
  const name = TYPENAMES[dtype] ?? `${dtype}Tensor`;
  return device.startsWith('cuda') ? `torch.cuda.${name}` : `torch.${name}`;
}
