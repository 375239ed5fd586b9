// Python's spelling of values inside module reprs (extra_repr prints Python objects: 1e-05, True, (48,)).

/** A number as Python's repr(float) writes it: 0.1, 1e-05, 1.0, 1e+16, inf, nan. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() with no argument gives the shortest digits that round-trip, as Python's repr does.
  const [mant, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const sign = mant.startsWith('-') ? '-' : '';
  const digits = mant.replace('-', '').replace('.', '');
  const decpt = exp + 1; // value = 0.<digits> × 10^decpt
  // Python switches to scientific notation when decpt <= -4 or decpt > 16.
  if (decpt <= -4 || decpt > 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

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
