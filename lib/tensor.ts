// The Tensor: a JavaScript owner of one libtorch tensor. Each method is one call into the addon
// (lib/native.ts -> binding/op_bridge.h -> ATen), with PyTorch's names and semantics in camelCase.
import { DType, DTYPE_NAMES, dtypeCode, dtypeName, isDType, typedArrayFromBytes, TypedArray } from './dtype';
import { track, watch } from './memory';
import { native, NativeHandle } from './native';

export type Device = 'cpu' | 'cuda' | 'meta' | `cuda:${number}` | string;
export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
type Shape = number[];

/** Nested JavaScript arrays, as tolist() returns them. */
export type NestedArray = number | boolean | NestedArray[];

/** Accepts view(2, 3), view([2, 3]). */
function shapeArgs(args: (number | Shape)[]): Shape {
  return args.length === 1 && Array.isArray(args[0]) ? (args[0] as Shape) : (args as Shape);
}

function h(x: TensorOrScalar): NativeHandle | Scalar {
  return x instanceof Tensor ? x.handle : x;
}

export class Tensor implements Disposable {
  /** @internal */ readonly handle: NativeHandle;
  // Shape, dtype and device change only through setData_ (which clears these), so they are read from
  // the addon once: layers check dtype and device on every forward, and each read is a native call.
  private shapeCache?: Shape;
  private dtypeCache?: DType;
  private deviceCache?: string;
  /** Lets scope() tell tensors apart from other disposables. */
  readonly isTensor = true;
  /** @internal Set by dispose(): lets the safety net skip this tensor without a native call. */
  released = false;

  /**
   * @internal Tensors are made by factories and ops, never by `new Tensor` in user code. `untracked`
   * keeps it out of scopes (a Parameter belongs to its Module, not to the scope that made it).
   */
  constructor(handle: NativeHandle, untracked = false) {
    this.handle = handle;
    if (!untracked) track(this);
    watch(this);
  }

  /** @internal */
  static wrap(handle: NativeHandle): Tensor {
    return new Tensor(handle);
  }
  /** @internal */
  static wrapMaybe(handle: NativeHandle | undefined): Tensor | undefined {
    return handle === undefined ? undefined : new Tensor(handle);
  }
  /** @internal */
  static wrapList(handles: NativeHandle[]): Tensor[] {
    return handles.map((x) => new Tensor(x));
  }

  // ---- what it is ----
  get shape(): Shape {
    return this.dims.slice();
  }
  /** The cached shape itself, for reads inside this class (callers get a copy they may change). */
  private get dims(): Shape {
    if (this.shapeCache === undefined) this.shapeCache = native.shape(this.handle);
    return this.shapeCache;
  }
  /** size() is the shape, size(d) one dimension (negative counts from the end). */
  size(dim?: number): number | Shape {
    if (dim === undefined) return this.shape;
    const s = this.dims;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): dimension out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get ndim(): number {
    return this.dims.length;
  }
  dim(): number {
    return this.ndim;
  }
  get dtype(): DType {
    if (this.dtypeCache === undefined) this.dtypeCache = dtypeName(native.dtype(this.handle));
    return this.dtypeCache;
  }
  get device(): string {
    if (this.deviceCache === undefined) this.deviceCache = native.device(this.handle);
    return this.deviceCache;
  }
  numel(): number {
    return native.numel(this.handle);
  }
  stride(): Shape {
    return native.stride(this.handle);
  }
  isContiguous(): boolean {
    return native.isContiguous(this.handle);
  }
  get isDisposed(): boolean {
    return native.isDisposed(this.handle);
  }

  // ---- data out ----
  /** A copy of the elements as a typed array (float16/bfloat16 come back as Float32Array, bool as Uint8Array). */
  data(): TypedArray {
    const d = this.dtype;
    if (d === 'float16' || d === 'bfloat16') {
      const f = new Tensor(native.to(this.handle, dtypeCode('float32')));
      try {
        return f.data();
      } finally {
        f.dispose();
      }
    }
    return typedArrayFromBytes(native.toBytes(this.handle), d);
  }
  /** The value of a one-element tensor as a JS number (boolean for bool). */
  item(): number | boolean {
    return native.item(this.handle);
  }
  /** The elements as nested arrays (int64 as numbers). */
  tolist(): NestedArray {
    const flat = this.data();
    const isBool = this.dtype === 'bool';
    const shape = this.shape;
    let i = 0;
    const read = (): number | boolean => {
      const v = flat[i++];
      return isBool ? v !== 0 : Number(v);
    };
    const build = (d: number): NestedArray => {
      if (d === shape.length) return read();
      const out: NestedArray[] = [];
      for (let k = 0; k < shape[d]; k++) out.push(build(d + 1));
      return out;
    };
    return build(0);
  }
  toString(): string {
    if (this.isDisposed) return 'tensor(<disposed>)';
    const extra = `shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}`;
    if (this.device === 'meta' || this.numel() > 1000) return `tensor(..., ${extra})`;
    return `tensor(${JSON.stringify(this.tolist())}, ${extra})`;
  }

  // ---- conversion ----
  /** to('cuda'), to('float16'), to({ device, dtype, copy }). */
  to(target: Device | DType | { device?: Device; dtype?: DType; copy?: boolean }): Tensor {
    let device: string | undefined;
    let dtype: DType | undefined;
    let copy = false;
    if (typeof target === 'string') {
      if (/^(cpu|cuda|meta)(:\d+)?$/.test(target)) device = target;
      else if (isDType(target)) dtype = target;
      else
        throw new TypeError(
          `to('${target}'): expected a device ('cpu', 'cuda', 'cuda:N', 'meta') or a dtype (${DTYPE_NAMES.join(', ')})`,
        );
    } else {
      ({ device, dtype } = target);
      copy = target.copy ?? false;
    }
    return new Tensor(native.to(this.handle, dtype === undefined ? undefined : dtypeCode(dtype), device, copy));
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  half(): Tensor {
    return this.to('float16');
  }
  bfloat16(): Tensor {
    return this.to('bfloat16');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.handle));
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(v: boolean) {
    native.setRequiresGrad(this.handle, v);
  }
  requiresGrad_(v = true): this {
    native.setRequiresGrad(this.handle, v);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The name of the autograd node that made this tensor (e.g. 'AddBackward0'), or null for a leaf. */
  get gradFn(): string | null {
    return native.gradFnName(this.handle);
  }
  /** The accumulated gradient (a new Tensor handle sharing its memory), or undefined. */
  get grad(): Tensor | undefined {
    return Tensor.wrapMaybe(native.grad(this.handle));
  }
  set grad(g: Tensor | undefined) {
    native.setGrad(this.handle, g?.handle);
  }
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient?.handle, opts.retainGraph, opts.createGraph ?? false);
  }

  // ---- elementwise ----
  add(other: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.add(this.handle, h(other), alpha));
  }
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.sub(this.handle, h(other), alpha));
  }
  /** other - this (PyTorch's rsub). */
  rsub(other: number): Tensor {
    return new Tensor(native.rsub(this.handle, other));
  }
  mul(other: TensorOrScalar): Tensor {
    return new Tensor(native.mul(this.handle, h(other)));
  }
  div(other: TensorOrScalar, roundingMode?: 'trunc' | 'floor'): Tensor {
    return new Tensor(native.div(this.handle, h(other), roundingMode));
  }
  pow(exponent: TensorOrScalar): Tensor {
    return new Tensor(native.pow(this.handle, h(exponent)));
  }
  remainder(other: TensorOrScalar): Tensor {
    return new Tensor(native.remainder(this.handle, h(other)));
  }
  fmod(other: TensorOrScalar): Tensor {
    return new Tensor(native.fmod(this.handle, h(other)));
  }
  maximum(other: TensorOrScalar): Tensor {
    return new Tensor(native.maximum(this.handle, h(other)));
  }
  minimum(other: TensorOrScalar): Tensor {
    return new Tensor(native.minimum(this.handle, h(other)));
  }
  atan2(other: TensorOrScalar): Tensor {
    return new Tensor(native.atan2(this.handle, h(other)));
  }
  eq(other: TensorOrScalar): Tensor {
    return new Tensor(native.eq(this.handle, h(other)));
  }
  ne(other: TensorOrScalar): Tensor {
    return new Tensor(native.ne(this.handle, h(other)));
  }
  lt(other: TensorOrScalar): Tensor {
    return new Tensor(native.lt(this.handle, h(other)));
  }
  le(other: TensorOrScalar): Tensor {
    return new Tensor(native.le(this.handle, h(other)));
  }
  gt(other: TensorOrScalar): Tensor {
    return new Tensor(native.gt(this.handle, h(other)));
  }
  ge(other: TensorOrScalar): Tensor {
    return new Tensor(native.ge(this.handle, h(other)));
  }
  logicalAnd(other: TensorOrScalar): Tensor {
    return new Tensor(native.logicalAnd(this.handle, h(other)));
  }
  logicalOr(other: TensorOrScalar): Tensor {
    return new Tensor(native.logicalOr(this.handle, h(other)));
  }
  logicalXor(other: TensorOrScalar): Tensor {
    return new Tensor(native.logicalXor(this.handle, h(other)));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.handle));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.handle));
  }
  log2(): Tensor {
    return new Tensor(native.log2(this.handle));
  }
  log1p(): Tensor {
    return new Tensor(native.log1p(this.handle));
  }
  expm1(): Tensor {
    return new Tensor(native.expm1(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.handle));
  }
  square(): Tensor {
    return new Tensor(native.square(this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.handle));
  }
  tan(): Tensor {
    return new Tensor(native.tan(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.handle));
  }
  erf(): Tensor {
    return new Tensor(native.erf(this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.handle));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.handle));
  }
  trunc(): Tensor {
    return new Tensor(native.trunc(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.handle));
  }
  isinf(): Tensor {
    return new Tensor(native.isinf(this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.isfinite(this.handle));
  }
  nanToNum(): Tensor {
    return new Tensor(native.nanToNum(this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.handle));
  }
  /** approximate: 'none' (exact erf) or 'tanh'. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return new Tensor(native.gelu(this.handle, approximate));
  }
  silu(): Tensor {
    return new Tensor(native.silu(this.handle));
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return new Tensor(native.softmax(this.handle, dim, dtype === undefined ? undefined : dtypeCode(dtype)));
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return new Tensor(native.logSoftmax(this.handle, dim, dtype === undefined ? undefined : dtypeCode(dtype)));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(native.clamp(this.handle, min, max));
  }
  lerp(end: Tensor, weight: TensorOrScalar): Tensor {
    return new Tensor(native.lerp(this.handle, end.handle, h(weight)));
  }
  /** PyTorch's x.where(condition, y): x where condition holds, else y. */
  where(condition: Tensor, other: TensorOrScalar): Tensor {
    return new Tensor(native.where(condition.handle, this.handle, h(other)));
  }
  addcmul(t1: Tensor, t2: Tensor, value = 1): Tensor {
    return new Tensor(native.addcmul(this.handle, t1.handle, t2.handle, value));
  }
  addcdiv(t1: Tensor, t2: Tensor, value = 1): Tensor {
    return new Tensor(native.addcdiv(this.handle, t1.handle, t2.handle, value));
  }

  // ---- matrix products ----
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, other.handle));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(native.mm(this.handle, other.handle));
  }
  bmm(other: Tensor): Tensor {
    return new Tensor(native.bmm(this.handle, other.handle));
  }
  outer(other: Tensor): Tensor {
    return new Tensor(native.outer(this.handle, other.handle));
  }

  // ---- reductions (dim: a dimension or a list; omitted: all elements) ----
  sum(dim?: number | number[], keepdim = false, opts: { dtype?: DType } = {}): Tensor {
    return new Tensor(native.sum(this.handle, dim, keepdim, opts.dtype && dtypeCode(opts.dtype)));
  }
  mean(dim?: number | number[], keepdim = false, opts: { dtype?: DType } = {}): Tensor {
    return new Tensor(native.mean(this.handle, dim, keepdim, opts.dtype && dtypeCode(opts.dtype)));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.prod(this.handle, dim, keepdim));
  }
  std(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.std(this.handle, dim, opts.unbiased ?? true, opts.keepdim ?? false));
  }
  var(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.var(this.handle, dim, opts.unbiased ?? true, opts.keepdim ?? false));
  }
  /** The vector p-norm over dim (all elements when omitted), as torch.linalg.vector_norm. */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(native.norm(this.handle, p, dim, keepdim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.handle, dim, keepdim));
  }
  /** max() over all elements; max(dim) -> [values, indices]. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.maxAll(this.handle));
    const [v, i] = native.maxDim(this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return new Tensor(native.minAll(this.handle));
    const [v, i] = native.minDim(this.handle, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  amax(dim: number | number[] = [], keepdim = false): Tensor {
    return new Tensor(native.amax(this.handle, dim, keepdim));
  }
  amin(dim: number | number[] = [], keepdim = false): Tensor {
    return new Tensor(native.amin(this.handle, dim, keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmin(this.handle, dim, keepdim));
  }
  cumsum(dim: number, opts: { dtype?: DType } = {}): Tensor {
    return new Tensor(native.cumsum(this.handle, dim, opts.dtype && dtypeCode(opts.dtype)));
  }
  all(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.all(this.handle, dim, keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.any(this.handle, dim, keepdim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [v, i] = native.topk(this.handle, k, dim, largest, sorted);
    return [new Tensor(v), new Tensor(i)];
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = native.sort(this.handle, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  argsort(dim = -1, descending = false): Tensor {
    return new Tensor(native.argsort(this.handle, dim, descending));
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8, equalNan = false): boolean {
    return native.allclose(this.handle, other.handle, rtol, atol, equalNan);
  }
  equal(other: Tensor): boolean {
    return native.equal(this.handle, other.handle);
  }

  // ---- shape ----
  view(...shape: (number | Shape)[]): Tensor {
    return new Tensor(native.view(this.handle, shapeArgs(shape)));
  }
  reshape(...shape: (number | Shape)[]): Tensor {
    return new Tensor(native.reshape(this.handle, shapeArgs(shape)));
  }
  viewAs(other: Tensor): Tensor {
    return this.view(other.shape);
  }
  permute(...dims: (number | Shape)[]): Tensor {
    return new Tensor(native.permute(this.handle, shapeArgs(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.handle, dim0, dim1));
  }
  t(): Tensor {
    return new Tensor(native.t(this.handle));
  }
  get T(): Tensor {
    return this.ndim < 2 ? this.view(this.shape) : this.permute([...Array(this.ndim).keys()].reverse());
  }
  /** -1 keeps a dimension's size. */
  expand(...sizes: (number | Shape)[]): Tensor {
    return new Tensor(native.expand(this.handle, shapeArgs(sizes)));
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(other.shape);
  }
  repeat(...sizes: (number | Shape)[]): Tensor {
    return new Tensor(native.repeat(this.handle, shapeArgs(sizes)));
  }
  repeatInterleave(repeats: number, dim?: number): Tensor {
    return new Tensor(native.repeatInterleave(this.handle, repeats, dim));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, startDim, endDim));
  }
  unflatten(dim: number, sizes: Shape): Tensor {
    return new Tensor(native.unflatten(this.handle, dim, sizes));
  }
  movedim(source: number, destination: number): Tensor {
    return new Tensor(native.movedim(this.handle, source, destination));
  }
  /** split(size, dim) into equal pieces (the last may be smaller) or split([sizes], dim). */
  split(splitSize: number | Shape, dim = 0): Tensor[] {
    return Tensor.wrapList(native.split(this.handle, splitSize, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return Tensor.wrapList(native.chunk(this.handle, chunks, dim));
  }
  unbind(dim = 0): Tensor[] {
    return Tensor.wrapList(native.unbind(this.handle, dim));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  /** Python's t[..., start:end:step] along one dim; start/end may be negative or omitted. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  /** This tensor with the slices `index` along `dim` replaced by `source`'s (torch.index_copy, out of place; differentiable in both). */
  indexCopy(dim: number, index: Tensor, source: Tensor): Tensor {
    return new Tensor(native.indexCopy(this.handle, dim, index.handle, source.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return new Tensor(native.scatter(this.handle, dim, index.handle, h(src)));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatterAdd(this.handle, dim, index.handle, src.handle));
  }
  /** Advanced indexing t[i0, i1, ...] with index tensors; null keeps a dimension whole. */
  index(indices: (Tensor | null)[]): Tensor {
    return new Tensor(native.index(this.handle, indices.map((i) => (i === null ? null : i.handle))));
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, h(value)));
  }
  maskedSelect(mask: Tensor): Tensor {
    return new Tensor(native.maskedSelect(this.handle, mask.handle));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.tril(this.handle, diagonal));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triu(this.handle, diagonal));
  }
  flip(...dims: (number | Shape)[]): Tensor {
    return new Tensor(native.flip(this.handle, shapeArgs(dims)));
  }
  roll(shifts: number | Shape, dims: number | Shape): Tensor {
    return new Tensor(native.roll(this.handle, shifts, dims));
  }
  diagonal(offset = 0, dim1 = 0, dim2 = 1): Tensor {
    return new Tensor(native.diagonal(this.handle, offset, dim1, dim2));
  }

  // ---- in place (return this) ----
  add_(other: TensorOrScalar, alpha?: number): this {
    native.add_(this.handle, h(other), alpha);
    return this;
  }
  sub_(other: TensorOrScalar, alpha?: number): this {
    native.sub_(this.handle, h(other), alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    native.mul_(this.handle, h(other));
    return this;
  }
  div_(other: TensorOrScalar): this {
    native.div_(this.handle, h(other));
    return this;
  }
  pow_(exponent: TensorOrScalar): this {
    native.pow_(this.handle, h(exponent));
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    native.addcmul_(this.handle, t1.handle, t2.handle, value);
    return this;
  }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    native.addcdiv_(this.handle, t1.handle, t2.handle, value);
    return this;
  }
  lerp_(end: Tensor, weight: TensorOrScalar): this {
    native.lerp_(this.handle, end.handle, h(weight));
    return this;
  }
  copy_(src: Tensor): this {
    native.copy_(this.handle, src.handle);
    return this;
  }
  fill_(value: Scalar): this {
    native.fill_(this.handle, value);
    return this;
  }
  zero_(): this {
    native.zero_(this.handle);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    native.clamp_(this.handle, min, max);
    return this;
  }
  maskedFill_(mask: Tensor, value: Scalar): this {
    native.maskedFill_(this.handle, mask.handle, value);
    return this;
  }
  sqrt_(): this {
    native.sqrt_(this.handle);
    return this;
  }
  exp_(): this {
    native.exp_(this.handle);
    return this;
  }
  neg_(): this {
    native.neg_(this.handle);
    return this;
  }
  relu_(): this {
    native.relu_(this.handle);
    return this;
  }
  /** Fills from U(from, to) with the global generator (follows manualSeed). */
  uniform_(from = 0, to = 1): this {
    native.uniform_(this.handle, from, to);
    return this;
  }
  /** Fills from N(mean, std²) with the global generator (follows manualSeed). */
  normal_(mean = 0, std = 1): this {
    native.normal_(this.handle, mean, std);
    return this;
  }

  /**
   * Makes this tensor's data `src` (same storage, its shape, dtype and device), keeping this object:
   * what PyTorch's `param.data = src` does. Used to move or load parameters in place.
   */
  setData_(src: Tensor): this {
    native.setData(this.handle, src.handle);
    this.clearMetadataCache();
    return this;
  }

  private clearMetadataCache(): void {
    this.shapeCache = undefined;
    this.dtypeCache = undefined;
    this.deviceCache = undefined;
  }

  // ---- memory ----
  /** Frees the native memory now (idempotent). Using the tensor afterwards is an error. */
  dispose(): void {
    if (this.released) return; // (a scope disposes what it tracked, often already disposed by hand)
    native.dispose(this.handle);
    this.released = true;
    this.clearMetadataCache(); // so that .shape/.dtype after dispose() is the use-after-dispose error
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
