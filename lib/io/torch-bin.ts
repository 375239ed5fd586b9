// The torch.save format (pytorch_model.bin, adapter_model.bin): a zip archive holding data.pkl (a pickle
// whose tensors point at storages by key) and data/<key> (each storage's raw little-endian bytes).
// Reading is native (src/torch_load.cpp: libtorch's zip reader and a restricted unpickler that runs no
// code). Writing is here: the same layout torch.save writes, with a pickle that
// torch.load(weights_only=True) accepts (libtorch's own pickle_save output is refused by it).
import * as fs from 'fs';
import * as nodePath from 'path';
import * as zlib from 'zlib';
import { DType, ITEMSIZE } from '../dtype';
import { writeAtomic, writeAtomicSync } from './fs-atomic';
import { native, NativeHandle } from '../native';
import { Device, Tensor } from '../tensor';

export interface TorchBinLoadOptions {
  /** Where the tensors go (default cpu). */
  device?: Device;
}

function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function toRecord([names, handles]: [string[], NativeHandle[]]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => setOwn(out, n, Tensor.wrap(handles[i])));
  return out;
}

/**
 * Loads the state dict of a torch.save file (a dict or OrderedDict of str -> tensor) on a worker thread,
 * as torch.load(path, weights_only=True) would, without Python. Tensors that shared a storage in the file
 * share it here too. Anything else in the file is a clear error.
 */
export async function loadTorchBin(path: string, opts: TorchBinLoadOptions = {}): Promise<Record<string, Tensor>> {
  return toRecord(await native.loadTorchBinAsync(path, opts.device));
}

/** The same, blocking. */
export function loadTorchBinSync(path: string, opts: TorchBinLoadOptions = {}): Record<string, Tensor> {
  return toRecord(native.loadTorchBin(path, opts.device));
}

// ---------------------------------------------------------------------------------------------------
// Writing: the pickle

/** The storage class torch.save names for each dtype (PyTorch's legacy typed-storage names). */
const STORAGE: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

// Pickle opcodes (protocol 2), by their names in Python's pickle module.
const OP = {
  PROTO: 0x80,
  STOP: 0x2e, // .
  MARK: 0x28, // (
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  LONG1: 0x8a,
  BINUNICODE: 0x58, // X
  GLOBAL: 0x63, // c
  EMPTY_TUPLE: 0x29, // )
  TUPLE: 0x74, // t
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWFALSE: 0x89,
  REDUCE: 0x52, // R
  BINPERSID: 0x51, // Q
  SETITEM: 0x73, // s
  SETITEMS: 0x75, // u
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
} as const;

/** A protocol-2 pickle writer that memoizes as Python's pickler does (each object once, then BINGET). */
class Pickler {
  private readonly out: number[] = [];
  private nextMemo = 0;
  private readonly shared = new Map<string, number>();

  bytes(): Buffer {
    return Buffer.from(this.out);
  }
  op(...codes: number[]): void {
    for (const c of codes) this.out.push(c);
  }
  private raw(b: Uint8Array): void {
    for (const x of b) this.out.push(x);
  }
  private u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.raw(b);
  }
  /** Stores the value on top of the stack in the memo. */
  put(): number {
    const id = this.nextMemo++;
    if (id < 256) this.op(OP.BINPUT, id);
    else {
      this.op(OP.LONG_BINPUT);
      this.u32(id);
    }
    return id;
  }
  get(id: number): void {
    if (id < 256) this.op(OP.BINGET, id);
    else {
      this.op(OP.LONG_BINGET);
      this.u32(id);
    }
  }
  /** Writes `emit` once and memoizes it; later uses of the same `key` read the memo. */
  once(key: string, emit: () => void): void {
    const id = this.shared.get(key);
    if (id !== undefined) return this.get(id);
    emit();
    this.shared.set(key, this.put());
  }
  int(n: number): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`pickle: ${n} is not a safe integer`);
    if (n >= 0 && n <= 0xff) this.op(OP.BININT1, n);
    else if (n >= 0 && n <= 0xffff) this.op(OP.BININT2, n & 0xff, n >> 8);
    else if (n >= -0x80000000 && n <= 0x7fffffff) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      this.op(OP.BININT);
      this.raw(b);
    } else {
      // LONG1: the shortest little-endian two's complement, as Python's encode_long.
      let v = BigInt(n);
      const bytes: number[] = [];
      for (;;) {
        bytes.push(Number(v & 0xffn));
        v >>= 8n;
        const sign = bytes[bytes.length - 1] & 0x80;
        if ((v === 0n && !sign) || (v === -1n && sign)) break;
      }
      this.op(OP.LONG1, bytes.length, ...bytes);
    }
  }
  /** A str, memoized (a new object each time, as names and keys are). */
  str(s: string): void {
    this.unicode(s);
    this.put();
  }
  /** A str written once and then read from the memo (one shared object, like 'storage' and 'cpu'). */
  sharedStr(s: string): void {
    this.once(`str:${s}`, () => this.unicode(s));
  }
  private unicode(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.op(OP.BINUNICODE);
    this.u32(b.length);
    this.raw(b);
  }
  global(module: string, name: string): void {
    this.once(`global:${module}.${name}`, () => {
      this.op(OP.GLOBAL);
      this.raw(Buffer.from(`${module}\n${name}\n`, 'utf8'));
    });
  }
  intTuple(xs: number[]): void {
    if (xs.length === 0) return this.op(OP.EMPTY_TUPLE);
    if (xs.length > 3) this.op(OP.MARK);
    for (const x of xs) this.int(x);
    this.op(xs.length === 1 ? OP.TUPLE1 : xs.length === 2 ? OP.TUPLE2 : xs.length === 3 ? OP.TUPLE3 : OP.TUPLE);
    this.put();
  }
  /** collections.OrderedDict() */
  orderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.op(OP.EMPTY_TUPLE, OP.REDUCE);
    this.put();
  }
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  handle: NativeHandle;
}

/**
 * data.pkl: OrderedDict([(name, _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()))]),
 * where storage is the persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel) of data/<key>.
 */
function pickleStateDict(entries: Entry[]): Buffer {
  const p = new Pickler();
  p.op(OP.PROTO, 2);
  p.orderedDict();
  // Python's pickler adds dict items in batches of 1000 (MARK ... SETITEMS; one item: SETITEM).
  for (let start = 0; start < entries.length; start += 1000) {
    const batch = entries.slice(start, start + 1000);
    if (batch.length > 1) p.op(OP.MARK);
    batch.forEach((e, k) => {
      const key = String(start + k);
      const stride = e.shape.map((_, d) => e.shape.slice(d + 1).reduce((a, b) => a * b, 1));
      p.str(e.name);
      p.global('torch._utils', '_rebuild_tensor_v2');
      p.op(OP.MARK);
      p.op(OP.MARK);
      p.sharedStr('storage');
      p.global('torch', STORAGE[e.dtype]);
      p.str(key);
      p.sharedStr('cpu');
      p.int(e.numel);
      p.op(OP.TUPLE);
      p.put();
      p.op(OP.BINPERSID);
      p.int(0); // storage offset
      p.intTuple(e.shape);
      p.intTuple(stride);
      p.op(OP.NEWFALSE); // requires_grad
      p.orderedDict(); // backward hooks
      p.op(OP.TUPLE);
      p.put();
      p.op(OP.REDUCE);
      p.put();
    });
    p.op(batch.length > 1 ? OP.SETITEMS : OP.SETITEM);
  }
  p.op(OP.STOP);
  return p.bytes();
}

// ---------------------------------------------------------------------------------------------------
// Writing: the zip container, as PyTorch's PyTorchStreamWriter lays it out: stored (uncompressed)
// entries, each one's data 64-byte aligned by an "FB" padding extra field, CRC and sizes in a data
// descriptor after the data, a central directory and end record at the end. No zip64: sizes and offsets
// must stay below 4 GiB (adapters are far smaller; save larger state dicts as safetensors).

const ALIGN = 64;
const LIMIT = 0xffffffff;

const crcTable = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 as zip uses it (node's zlib.crc32 where this Node has it). */
function crc32(data: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  let c = -1;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

interface ZipRecord {
  name: string;
  /** The bytes, or the tensor whose bytes they are (fetched when the record is written). */
  data: Buffer | NativeHandle;
}

interface CentralEntry {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
}

/** Yields the archive's bytes in order, one tensor's bytes at a time. */
function* zipChunks(records: ZipRecord[], bin: string): Generator<Buffer> {
  const central: CentralEntry[] = [];
  let pos = 0;
  const tooBig = () =>
    new Error(`saveTorchBin: '${bin}' would pass 4 GiB, which needs zip64 (not written); save it as safetensors instead`);
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const data = Buffer.isBuffer(r.data) ? r.data : Buffer.from(native.toBytes(r.data));
    const start = pos + 30 + name.length + 4; // where the data would start with an empty padding field
    const pad = (ALIGN - (start % ALIGN)) % ALIGN;
    if (pos + 30 + name.length + 4 + pad + data.length + 16 > LIMIT) throw tooBig();
    const local = Buffer.alloc(30 + name.length + 4 + pad, 'Z'.charCodeAt(0));
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(0, 4); // version needed (as PyTorch writes it)
    local.writeUInt16LE(0x0808, 6); // UTF-8 names, sizes in the data descriptor
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time and date
    local.writeUInt32LE(0, 14); // crc, sizes: in the descriptor
    local.writeUInt32LE(0, 18);
    local.writeUInt32LE(0, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, 30);
    local.write('FB', 30 + name.length, 'latin1');
    local.writeUInt16LE(pad, 30 + name.length + 2);
    const crc = crc32(data);
    const descriptor = Buffer.alloc(16);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(crc, 4);
    descriptor.writeUInt32LE(data.length, 8);
    descriptor.writeUInt32LE(data.length, 12);
    central.push({ name, crc, size: data.length, offset: pos });
    yield local;
    yield data;
    yield descriptor;
    pos += local.length + data.length + descriptor.length;
  }
  const cdStart = pos;
  for (const e of central) {
    const h = Buffer.alloc(46 + e.name.length);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE(0, 4); // made by
    h.writeUInt16LE(0, 6); // needed
    h.writeUInt16LE(0x0808, 8);
    h.writeUInt16LE(0, 10); // stored
    h.writeUInt32LE(0, 12); // time and date
    h.writeUInt32LE(e.crc, 16);
    h.writeUInt32LE(e.size, 20);
    h.writeUInt32LE(e.size, 24);
    h.writeUInt16LE(e.name.length, 28);
    // extra, comment, disk, internal and external attributes: 0
    h.writeUInt32LE(e.offset, 42);
    e.name.copy(h, 46);
    pos += h.length;
    yield h;
  }
  if (pos > LIMIT || central.length > 0xffff) throw tooBig();
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(central.length, 8);
  end.writeUInt16LE(central.length, 10);
  end.writeUInt32LE(pos - cdStart, 12);
  end.writeUInt32LE(cdStart, 16);
  yield end;
}

/** @internal A zip archive of the given records in PyTorch's layout (tests build odd archives with it). */
export function zipBytes(records: { name: string; data: Buffer }[]): Buffer {
  return Buffer.concat([...zipChunks(records, '<memory>')]);
}

type TensorDict = Record<string, Tensor> | Map<string, Tensor>;

/** The archive's folder: the file's name up to its first dot, as torch.save names it. */
function archiveName(path: string): string {
  const base = nodePath.basename(path).split('.')[0];
  return base.length > 0 ? base : 'archive';
}

/**
 * Checks the tensors and holds our own reference to each (so that disposing a caller's tensor during an
 * async save cannot break it); the caller frees them with `release`. With `snapshot` (the async save) each
 * is a copy taken now: the caller may update its tensors in place before the save settles, and the file
 * must hold the values of one moment (a copy of the tensors for the length of the save).
 */
function prepare(tensors: TensorDict, path: string, snapshot: boolean): { records: ZipRecord[]; release: () => void } {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of list) {
    if (!(t instanceof Tensor)) throw new TypeError(`saveTorchBin: '${name}' is not a Tensor`);
    if (t.isDisposed) throw new Error(`saveTorchBin: tensor '${name}' was disposed`);
    if (t.device === 'meta') throw new Error(`saveTorchBin: '${name}' is on the meta device and has no data`);
    if (!Object.hasOwn(STORAGE, t.dtype)) throw new TypeError(`saveTorchBin: '${name}' has dtype ${t.dtype}, which torch.save files here do not hold`);
  }
  const handles: NativeHandle[] = [];
  const release = () => handles.forEach((h) => native.dispose(h));
  try {
    const entries: Entry[] = list.map(([name, t]) => {
      const handle = snapshot ? native.clone(t.handle) : native.detach(t.handle);
      handles.push(handle);
      const shape = t.shape;
      const numel = shape.reduce((a, b) => a * b, 1);
      if (numel * ITEMSIZE[t.dtype] > LIMIT)
        throw new Error(`saveTorchBin: '${name}' alone passes 4 GiB, which needs zip64 (not written); save it as safetensors`);
      return { name, dtype: t.dtype, shape, numel, handle };
    });
    const dir = archiveName(path);
    const text = (s: string) => Buffer.from(s, 'utf8');
    // The records in torch.save's order; storages by key in string order, as it sorts them.
    const keys = entries.map((_, i) => String(i)).sort();
    const records: ZipRecord[] = [
      { name: `${dir}/data.pkl`, data: pickleStateDict(entries) },
      { name: `${dir}/.format_version`, data: text('1') },
      { name: `${dir}/.storage_alignment`, data: text(String(ALIGN)) },
      { name: `${dir}/byteorder`, data: text('little') },
      ...keys.map((k) => ({ name: `${dir}/data/${k}`, data: entries[Number(k)].handle })),
      { name: `${dir}/version`, data: text('3\n') },
    ];
    return { records, release };
  } catch (e) {
    release();
    throw e;
  }
}

/**
 * Writes tensors as torch.save(OrderedDict(tensors), path) would (each tensor as its own contiguous
 * storage), atomically (lib/io/fs-atomic.ts): a failure leaves the previous file as it was and no
 * temporary file.
 */
export async function saveTorchBin(tensors: TensorDict, path: string): Promise<void> {
  const { records, release } = prepare(tensors, path, true);
  try {
    await writeAtomic(path, async (f) => {
      for (const chunk of zipChunks(records, path)) {
        for (let off = 0; off < chunk.length; ) off += (await f.write(chunk, off, chunk.length - off)).bytesWritten;
      }
    });
  } catch (e) {
    throw writeError(path, e);
  } finally {
    release();
  }
}

/** The same, blocking. */
export function saveTorchBinSync(tensors: TensorDict, path: string): void {
  const { records, release } = prepare(tensors, path, false);
  try {
    writeAtomicSync(path, (fd) => {
      for (const chunk of zipChunks(records, path)) {
        for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off);
      }
    });
  } catch (e) {
    throw writeError(path, e);
  } finally {
    release();
  }
}

/** File-system errors name the temporary file; say which file the save was for. */
function writeError(path: string, e: unknown): Error {
  const err = e as Error & { code?: string };
  if (typeof err?.code === 'string') return new Error(`saveTorchBin: cannot write '${path}': ${err.message}`);
  return err;
}
