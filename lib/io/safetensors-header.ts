// The safetensors header: its length prefix and the JSON that names each tensor's dtype, shape and byte
// range, checked against the reference implementation's rules. Imports nothing native, so that a worker
// thread can parse a large header (lib/io/safetensors-header-worker.ts) while the event loop runs on.
import { DType, ITEMSIZE } from '../dtype';

const INT64_MAX = 2n ** 63n - 1n;

export const TO_DTYPE: Record<string, DType> = {
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

/** The largest header the reference implementation accepts. */
export const MAX_HEADER = 100_000_000;

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

export function bad(path: string, why: string): Error {
  return new Error(`invalid safetensors file '${path}': ${why}`);
}

/** Sets a key even when it is '__proto__' (plain assignment would change the prototype instead). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Checks a header against the reference implementation's rules (and a few it leaves to chance). */
export function parseHeader(path: string, bytes: Uint8Array, dataStart: number, fileSize: number): SafetensorsHeader {
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
    // libtorch holds sizes, strides and byte counts in int64: the byte size must fit, and so must the
    // contiguous strides (products of the later sizes, zeros counted as ones: [0, 2^53-1, 2^53-1] holds
    // nothing but its first stride is (2^53-1)^2).
    const bytes = shape.reduce((a, d) => a * BigInt(d), 1n) * BigInt(ITEMSIZE[dtype]);
    const stride0 = shape.slice(1).reduce((a, d) => a * BigInt(Math.max(d, 1)), 1n);
    if (bytes > INT64_MAX || stride0 > INT64_MAX)
      throw bad(path, `tensor '${name}' has shape [${shape.join(', ')}], whose ${bytes > INT64_MAX ? 'element count or byte size' : 'strides'} overflow int64`);
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

export function headerLength(path: string, prefix: Buffer, fileSize: number): number {
  if (fileSize < 8) throw bad(path, `it is ${fileSize} bytes long, shorter than the 8-byte header length`);
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) throw bad(path, `the header length ${n} is larger than the ${MAX_HEADER} bytes allowed`);
  if (n + 8n > BigInt(fileSize)) throw bad(path, `the header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

