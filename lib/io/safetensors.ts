// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the bytes. The header is parsed and checked here; the bytes go
// straight from the file into tensor memory (and back) in native code.
import * as fs from 'fs';
import { DType, dtypeCode, ITEMSIZE } from '../dtype';
import { native } from '../native';
import { Device, Tensor } from '../tensor';

const TO_DTYPE: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const FROM_DTYPE: Record<DType, string> = Object.fromEntries(
  Object.entries(TO_DTYPE).map(([k, v]) => [v, k]),
) as Record<DType, string>;
/**
 * The reference writer orders tensors by its Dtype enum, largest first (U64, I64, F64, F32, U32, I32,
 * BF16, F16, U16, I16, I8, U8, BOOL), then by name; this is each of ours' place in that order.
 */
const WRITE_RANK: Record<DType, number> = {
  int64: 0,
  float64: 1,
  float32: 2,
  int32: 3,
  bfloat16: 4,
  float16: 5,
  int16: 6,
  int8: 7,
  uint8: 8,
  bool: 9,
};

/** The largest header the reference implementation accepts. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  offset: number;
  nbytes: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

function bad(path: string, why: string): Error {
  return new Error(`invalid safetensors file '${path}': ${why}`);
}

/** Sets a key even when it is '__proto__' (plain assignment would change the prototype instead). */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Checks a header against the reference implementation's rules (and a few it leaves to chance). */
function parseHeader(path: string, bytes: Uint8Array, dataStart: number, fileSize: number): SafetensorsHeader {
  let json: string;
  try {
    json = utf8.decode(bytes);
  } catch {
    throw bad(path, 'the header is not valid UTF-8');
  }
  if (!json.startsWith('{')) throw bad(path, `the header must be a JSON object starting with '{', got ${JSON.stringify(json.slice(0, 16))}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw bad(path, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(path, 'the header must be a JSON object');
  const metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry, number, number][] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue; // the reference reads null as "no metadata"
      if (typeof value !== 'object' || Array.isArray(value))
        throw bad(path, `__metadata__ must be an object of strings, got ${JSON.stringify(value)}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(path, `__metadata__["${k}"] must be a string, got ${JSON.stringify(v)}`);
        setOwn(metadata, k, v);
      }
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw bad(path, `entry '${name}' must be an object with dtype, shape and data_offsets, got ${JSON.stringify(value)}`);
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof e.dtype === 'string' && Object.hasOwn(TO_DTYPE, e.dtype) ? TO_DTYPE[e.dtype] : undefined;
    if (dtype === undefined)
      throw bad(path, `tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(TO_DTYPE).join(', ')}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(path, `tensor '${name}' needs a shape of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0])
      throw bad(path, `tensor '${name}' needs data_offsets [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
    const shape = e.shape as number[];
    // In BigInt: a hostile shape's product can pass 2^53 and round to a plausible byte count.
    const want = shape.reduce((a, b) => a * BigInt(b), 1n) * BigInt(ITEMSIZE[dtype]);
    const [begin, end] = off as number[];
    if (BigInt(end - begin) !== want)
      throw bad(path, `tensor '${name}' of shape [${shape.join(', ')}] ${dtype} needs ${want} bytes but data_offsets [${begin}, ${end}] give ${end - begin}`);
    if (dataStart + end > fileSize)
      throw bad(path, `tensor '${name}' lies at bytes ${begin}..${end} of the data but the file holds only ${fileSize - dataStart} bytes of data`);
    entries.push([name, { dtype, shape, offset: dataStart + begin, nbytes: end - begin }, begin, end]);
  }
  // As the reference implementation: the ranges tile the data exactly, no overlap and no gap.
  const sorted = [...entries].sort((a, b) => a[2] - b[2] || a[3] - b[3]);
  let pos = 0;
  let prev = '';
  for (const [name, , begin, end] of sorted) {
    if (begin < pos) throw bad(path, `tensor '${name}' at data bytes ${begin}..${end} overlaps tensor '${prev}' (which ends at ${pos})`);
    if (begin > pos) throw bad(path, `data bytes ${pos}..${begin} belong to no tensor (a gap before '${name}')`);
    pos = end;
    prev = name;
  }
  if (dataStart + pos !== fileSize)
    throw bad(path, `the tensors end at data byte ${pos} but the file has ${fileSize - dataStart} bytes of data`);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, entry] of entries) tensors.set(name, entry);
  return { tensors, metadata };
}

function headerLength(path: string, prefix: Buffer, fileSize: number): number {
  if (fileSize < 8) throw bad(path, `it is ${fileSize} bytes long, shorter than the 8-byte header length`);
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) throw bad(path, `the header length ${n} is larger than the ${MAX_HEADER} bytes allowed`);
  if (n + 8n > BigInt(fileSize)) throw bad(path, `the header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

/** Reads and checks only the header: names, dtypes, shapes, offsets and __metadata__. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    fs.readSync(fd, prefix, 0, Math.min(8, size), 0);
    const n = headerLength(path, prefix, size);
    const json = Buffer.alloc(n);
    fs.readSync(fd, json, 0, n, 8);
    return parseHeader(path, json, 8 + n, size);
  } finally {
    fs.closeSync(fd);
  }
}

async function readSafetensorsHeaderAsync(path: string): Promise<SafetensorsHeader> {
  const f = await fs.promises.open(path, 'r');
  try {
    const size = (await f.stat()).size;
    const prefix = Buffer.alloc(8);
    await f.read(prefix, 0, Math.min(8, size), 0);
    const n = headerLength(path, prefix, size);
    const json = Buffer.alloc(n);
    await f.read(json, 0, n, 8);
    return parseHeader(path, json, 8 + n, size);
  } finally {
    await f.close();
  }
}

export interface LoadOptions {
  /** Where the tensors go (default cpu). */
  device?: Device;
  /** Only these names (all when omitted). */
  keys?: string[];
}

function specsOf(path: string, header: SafetensorsHeader, keys?: string[]) {
  const names = keys ?? [...header.tensors.keys()];
  const specs = names.map((name) => {
    const e = header.tensors.get(name);
    if (e === undefined) throw new Error(`'${path}' has no tensor named '${name}'`);
    return { dtype: dtypeCode(e.dtype), shape: e.shape, offset: e.offset, nbytes: e.nbytes };
  });
  return { names, specs };
}

function toRecord(names: string[], handles: unknown[]): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => setOwn(out, n, Tensor.wrap(handles[i] as never)));
  return out;
}

/** Loads the tensors of a .safetensors file on a worker thread (safetensors.torch.load_file). */
export async function loadSafetensors(path: string, opts: LoadOptions = {}): Promise<Record<string, Tensor>> {
  const header = await readSafetensorsHeaderAsync(path);
  const { names, specs } = specsOf(path, header, opts.keys);
  const handles = await native.readTensorsAsync(path, specs, opts.device);
  return toRecord(names, handles);
}

/** The same, blocking. */
export function loadSafetensorsSync(path: string, opts: LoadOptions = {}): Record<string, Tensor> {
  const header = readSafetensorsHeader(path);
  const { names, specs } = specsOf(path, header, opts.keys);
  return toRecord(names, native.readTensors(path, specs, opts.device));
}

export interface SaveOptions {
  /** String key/value pairs stored under __metadata__ (PEFT writes {"format": "pt"}). */
  metadata?: Record<string, string>;
}

type TensorDict = Record<string, Tensor> | Map<string, Tensor>;

function encode(tensors: TensorDict, opts: SaveOptions): { prefix: Uint8Array; ordered: Tensor[] } {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) throw new TypeError(`saveSafetensors: '${name}' is not a Tensor`);
    if (t.isDisposed) throw new Error(`saveSafetensors: tensor '${name}' was disposed`);
    if (t.device === 'meta') throw new Error(`saveSafetensors: '${name}' is on the meta device and has no data`);
    if (name === '__metadata__') throw new Error("saveSafetensors: '__metadata__' is reserved and cannot name a tensor");
  }
  const dtypes = new Map(entries.map(([name, t]) => [name, t.dtype]));
  // The reference writer's order: dtype rank, then name compared as UTF-8 bytes (as Rust compares strings).
  entries.sort(([na], [nb]) => {
    const r = WRITE_RANK[dtypes.get(na)!] - WRITE_RANK[dtypes.get(nb)!];
    if (r !== 0) return r;
    return Buffer.compare(Buffer.from(na), Buffer.from(nb));
  });
  // The JSON is assembled by hand: a JS object would move integer-like names ("0", "1") to the front.
  const parts: string[] = [];
  if (opts.metadata) {
    const meta: string[] = [];
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') throw new TypeError(`saveSafetensors: metadata["${k}"] must be a string`);
      meta.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let pos = 0;
  for (const [name, t] of entries) {
    const dtype = dtypes.get(name)!;
    const shape = t.shape;
    const nbytes = shape.reduce((a, b) => a * b, 1) * ITEMSIZE[dtype];
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${FROM_DTYPE[dtype]}","shape":[${shape.join(',')}],"data_offsets":[${pos},${pos + nbytes}]}`,
    );
    pos += nbytes;
  }
  let json = `{${parts.join(',')}}`;
  // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
  const len = Buffer.byteLength(json);
  json += ' '.repeat((8 - (len % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8 + body.length);
  prefix.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(prefix, 8);
  return { prefix, ordered: entries.map(([, t]) => t) };
}

/** Writes tensors to `path` atomically (temp file, fsync, rename) on a worker thread. */
export async function saveSafetensors(tensors: TensorDict, path: string, opts: SaveOptions = {}): Promise<void> {
  const { prefix, ordered } = encode(tensors, opts);
  await native.writeFileAtomicAsync(path, prefix, ordered.map((t) => t.handle));
}

/** The same, blocking. */
export function saveSafetensorsSync(tensors: TensorDict, path: string, opts: SaveOptions = {}): void {
  const { prefix, ordered } = encode(tensors, opts);
  native.writeFileAtomic(path, prefix, ordered.map((t) => t.handle));
}
