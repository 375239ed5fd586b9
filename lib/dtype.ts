// Data types: PyTorch's names, libtorch's ScalarType codes, and the typed arrays that hold them.

export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/** c10::ScalarType values (stable across libtorch 1.x and 2.x). */
const CODES: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};
const NAMES: DType[] = [];
for (const [name, code] of Object.entries(CODES)) NAMES[code] = name as DType;

export const ITEMSIZE: Record<DType, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  float16: 2,
  float32: 4,
  float64: 8,
  bool: 1,
  bfloat16: 2,
};

/** Whether `s` names a dtype this package supports. */
export function isDType(s: string): s is DType {
  return Object.hasOwn(CODES, s);
}
/** The supported dtype names, for error messages. */
export const DTYPE_NAMES: readonly DType[] = Object.keys(CODES) as DType[];

export function dtypeCode(d: DType): number {
  const c = CODES[d];
  if (c === undefined) throw new TypeError(`unknown dtype '${String(d)}'; expected one of ${Object.keys(CODES).join(', ')}`);
  return c;
}

export function dtypeName(code: number): DType {
  const n = NAMES[code];
  if (n === undefined) throw new TypeError(`libtorch returned a dtype this package does not support (ScalarType ${code})`);
  return n;
}

export function isFloatingPoint(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/** The dtype a typed array's elements are. */
export function dtypeOfTypedArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  return 'uint8';
}

/** A typed array view over raw bytes of dtype `d` (half types are not viewable; callers upcast first). */
export function typedArrayFromBytes(buf: ArrayBuffer, d: DType): TypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    default:
      throw new TypeError(`no typed array holds ${d}`);
  }
}
