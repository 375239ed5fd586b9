// Factories: tensor() from JavaScript data, and zeros/ones/full/arange/randn/... as in PyTorch.
import { DType, dtypeCode, dtypeOfTypedArray, TypedArray } from './dtype';
import { native } from './native';
import { Device, NestedArray, Tensor } from './tensor';

export interface TensorOptions {
  dtype?: DType;
  /** 'cpu' (default), 'cuda', 'cuda:N' or 'meta' (shapes only, no memory). */
  device?: Device;
  requiresGrad?: boolean;
}

type Shape = number[];
type ShapeArg = number | Shape;

function shapeOf(size: ShapeArg): Shape {
  return typeof size === 'number' ? [size] : size;
}

function code(dtype: DType | undefined): number | undefined {
  return dtype === undefined ? undefined : dtypeCode(dtype);
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** The values each integer dtype holds (fractions are truncated toward zero first, as torch.tensor does). */
const INT_RANGE: Partial<Record<DType, [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  int8: [-128n, 127n],
  uint8: [0n, 255n],
};

/** Typed array constructors for building tensor() data on the host. */
function hostArray(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float64':
      return new Float64Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    default:
      return new Float32Array(n); // float32, and the half types (converted after upload)
  }
}

function inferShape(data: unknown, path: string): { shape: Shape; leafKind: 'number' | 'boolean' | 'bigint' } {
  const shape: Shape = [];
  let x: unknown = data;
  while (Array.isArray(x)) {
    shape.push(x.length);
    if (x.length === 0) return { shape, leafKind: 'number' };
    x = x[0];
  }
  const kind = typeof x;
  if (kind !== 'number' && kind !== 'boolean' && kind !== 'bigint')
    throw new TypeError(`tensor(): expected numbers, booleans or bigints${path}, got ${kind}`);
  return { shape, leafKind: kind };
}

/**
 * A tensor from JavaScript data: a number, boolean or bigint, nested arrays of them, or a typed array
 * (kept 1-D, or reshaped with opts.shape). The dtype is opts.dtype, else the typed array's, else bool
 * for booleans, int64 for bigints and float32 for numbers (JavaScript has no integer literals: pass
 * dtype: 'int64' for token ids).
 */
export function tensor(
  data: NestedArray | bigint | bigint[] | TypedArray,
  opts: TensorOptions & { shape?: Shape } = {},
): Tensor {
  if (ArrayBuffer.isView(data)) {
    const ta = data as TypedArray;
    const own = dtypeOfTypedArray(ta);
    const shape = opts.shape ?? [ta.length];
    let t = Tensor.wrap(native.fromBytes(ta, dtypeCode(own), shape, opts.device));
    if (opts.dtype !== undefined && opts.dtype !== own) {
      const c = t.to(opts.dtype);
      t.dispose();
      t = c;
    }
    return finish(t, opts);
  }
  const { shape, leafKind } = inferShape(data, '');
  const dtype: DType = opts.dtype ?? (leafKind === 'boolean' ? 'bool' : leafKind === 'bigint' ? 'int64' : 'float32');
  const n = shape.reduce((a, b) => a * b, 1);
  const host = hostArray(dtype, n);
  let i = 0;
  const isBig = host instanceof BigInt64Array;
  const range = INT_RANGE[dtype];
  const fill = (x: unknown, d: number, where: string): void => {
    if (d === shape.length) {
      if (Array.isArray(x)) throw new TypeError(`tensor(): ragged data at ${where}: expected a scalar, got an array`);
      const v = typeof x === 'boolean' ? (x ? 1 : 0) : x;
      if (typeof v !== 'number' && typeof v !== 'bigint')
        throw new TypeError(`tensor(): expected a number at ${where}, got ${typeof x}`);
      if (range !== undefined) {
        // Typed arrays wrap out-of-range integers (2**70 became 0); torch.tensor refuses them.
        // As c10::checked_convert: an integer must fit (uint8 also takes -255..-1, wrapping, as torch does);
        // a fraction must lie within the type's range before it is truncated.
        const integral = typeof v === 'bigint' || Number.isInteger(v);
        const n = typeof v === 'bigint' ? v : Number.isFinite(v) ? BigInt(Math.trunc(v)) : undefined;
        const lo = integral && dtype === 'uint8' ? -255n : range[0];
        if (n === undefined || n < lo || n > range[1] || (!integral && (v < Number(range[0]) || v > Number(range[1]))))
          throw new RangeError(`tensor(): value ${v} at ${where} cannot be converted to type ${dtype} without overflow`);
        if (isBig) (host as BigInt64Array)[i++] = n;
        else (host as Int32Array)[i++] = Number(n); // (a typed array wraps -255..-1 into uint8 as torch does)
      }
      // bool bytes must be 0/1 (nonzero is true, as torch.tensor(..., dtype=torch.bool))
      else if (dtype === 'bool') (host as Uint8Array)[i++] = Number(v) !== 0 ? 1 : 0;
      else (host as Float32Array)[i++] = Number(v);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[d])
      throw new TypeError(
        `tensor(): ragged data at ${where}: expected ${shape[d]} elements, got ${Array.isArray(x) ? x.length : 'a scalar'}`,
      );
    for (let k = 0; k < x.length; k++) fill(x[k], d + 1, `${where}[${k}]`);
  };
  fill(data, 0, 'data');
  const hostDtype: DType = dtype === 'float16' || dtype === 'bfloat16' ? 'float32' : dtype;
  let t = Tensor.wrap(native.fromBytes(host, dtypeCode(hostDtype), shape, opts.device));
  if (hostDtype !== dtype) {
    const c = t.to(dtype);
    t.dispose();
    t = c;
  }
  return finish(t, opts);
}

/** The same as tensor(), named as torch.as_tensor is for typed arrays: one copy into native memory. */
export function fromTypedArray(data: TypedArray, shape: Shape, opts: TensorOptions = {}): Tensor {
  return tensor(data, { ...opts, shape });
}

export function empty(size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.empty(shapeOf(size), code(opts.dtype), opts.device)), opts);
}
export function zeros(size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.zeros(shapeOf(size), code(opts.dtype), opts.device)), opts);
}
export function ones(size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.ones(shapeOf(size), code(opts.dtype), opts.device)), opts);
}
/** full(size, value): dtype defaults to float32 for numbers and bool for booleans, as in PyTorch. */
export function full(size: ShapeArg, value: number | boolean, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof value === 'boolean' ? 'bool' : 'float32');
  return finish(Tensor.wrap(native.full(shapeOf(size), value, dtypeCode(dtype), opts.device)), opts);
}
/** Standard normal samples from the global generator (follows manualSeed). */
export function randn(size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.randn(shapeOf(size), code(opts.dtype), opts.device)), opts);
}
/** U[0, 1) samples from the global generator (follows manualSeed). */
export function rand(size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.rand(shapeOf(size), code(opts.dtype), opts.device)), opts);
}
/** Integers in [low, high), int64 unless opts.dtype says otherwise. */
export function randint(low: number, high: number, size: ShapeArg, opts: TensorOptions = {}): Tensor {
  return finish(
    Tensor.wrap(native.randint(low, high, shapeOf(size), dtypeCode(opts.dtype ?? 'int64'), opts.device)),
    opts,
  );
}
export function randperm(n: number, opts: TensorOptions = {}): Tensor {
  return Tensor.wrap(native.randperm(n, dtypeCode(opts.dtype ?? 'int64'), opts.device));
}
/**
 * arange(end, opts?) or arange(start, end, step?, opts?). As in PyTorch the dtype is int64 when every
 * bound is an integer, float32 otherwise, unless opts.dtype says.
 */
export function arange(
  start: number,
  end?: number | TensorOptions,
  step?: number | TensorOptions,
  opts: TensorOptions = {},
): Tensor {
  if (typeof end === 'object') {
    // arange(end, opts): the options come last (arange(5, opts, 2) would otherwise quietly be arange(0, 5, 2))
    if (step !== undefined) throw new TypeError(`arange(end, options): the options object must be the last argument, got ${JSON.stringify(step)} after it`);
    opts = end;
    end = undefined;
  } else if (typeof step === 'object') {
    opts = step;
    step = undefined;
  }
  if (end === undefined) {
    end = start;
    start = 0;
  }
  const s = step ?? 1;
  const allInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(s);
  const dtype = opts.dtype ?? (allInt ? 'int64' : 'float32');
  return finish(Tensor.wrap(native.arange(start, end, s, dtypeCode(dtype), opts.device)), opts);
}
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.linspace(start, end, steps, code(opts.dtype), opts.device)), opts);
}
export function eye(n: number, m: number = n, opts: TensorOptions = {}): Tensor {
  return finish(Tensor.wrap(native.eye(n, m, code(opts.dtype), opts.device)), opts);
}
export function zerosLike(t: Tensor, opts: { dtype?: DType; device?: Device } = {}): Tensor {
  return Tensor.wrap(native.zerosLike(t.handle, code(opts.dtype), opts.device));
}
export function onesLike(t: Tensor, opts: { dtype?: DType } = {}): Tensor {
  return Tensor.wrap(native.onesLike(t.handle, code(opts.dtype)));
}
export function fullLike(t: Tensor, value: number | boolean): Tensor {
  return Tensor.wrap(native.fullLike(t.handle, value));
}
export function randnLike(t: Tensor): Tensor {
  return Tensor.wrap(native.randnLike(t.handle));
}
export function randLike(t: Tensor): Tensor {
  return Tensor.wrap(native.randLike(t.handle));
}
