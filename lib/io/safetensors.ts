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

/** Checks a parsed header against the reference implementation's rules. */
function parseHeader(path: string, json: string, dataStart: number, fileSize: number): SafetensorsHeader {
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
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw bad(path, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(path, `__metadata__["${k}"] must be a string, got ${typeof v}`);
        metadata[k] = v;
      }
      continue;
    }
    const e = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw bad(path, `entry '${name}' must be an object`);
    const dtype = typeof e.dtype === 'string' ? TO_DTYPE[e.dtype] : undefined;
    if (dtype === undefined)
      throw bad(path, `tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(TO_DTYPE).join(', ')}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(path, `tensor '${name}' needs a shape of non-negative integers, got ${JSON.stringify(e.shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0])
      throw bad(path, `tensor '${name}' needs data_offsets [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
    const shape = e.shape as number[];
    const want = shape.reduce((a, b) => a * b, 1) * ITEMSIZE[dtype];
    const [begin, end] = off as number[];
    if (end - begin !== want)
      throw bad(path, `tensor '${name}' of shape [${shape.join(', ')}] ${dtype} needs ${want} bytes but data_offsets [${begin}, ${end}] give ${end - begin}`);
    if (dataStart + end > fileSize)
      throw bad(path, `tensor '${name}' lies at bytes ${begin}..${end} of the data but the file holds only ${fileSize - dataStart} bytes of data`);
    entries.push([name, { dtype, shape, offset: dataStart + begin, nbytes: want }, begin, end]);
  }
  // As the reference implementation: the ranges tile the data exactly, no overlap and no gap.
  const sorted = [...entries].sort((a, b) => a[2] - b[2] || a[3] - b[3]);
  let pos = 0;
  for (const [name, , begin, end] of sorted) {
    if (begin < pos) throw bad(path, `tensor '${name}' at bytes ${begin}..${end} overlaps the tensor before it`);
    if (begin > pos) throw bad(path, `bytes ${pos}..${begin} of the data belong to no tensor (before '${name}')`);
    pos = end;
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
    return parseHeader(path, json.toString('utf8'), 8 + n, size);
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
    return parseHeader(path, json.toString('utf8'), 8 + n, size);
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
  names.forEach((n, i) => (out[n] = Tensor.wrap(handles[i] as never)));
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
    if (t.device === 'meta') throw new Error(`saveSafetensors: '${name}' is on the meta device and has no data`);
    if (name === '__metadata__') throw new Error("saveSafetensors: '__metadata__' is reserved and cannot name a tensor");
  }
  // The order the reference writer uses: larger items first, then by name.
  entries.sort(([na, a], [nb, b]) => ITEMSIZE[b.dtype] - ITEMSIZE[a.dtype] || (na < nb ? -1 : na > nb ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata))
      if (typeof v !== 'string') throw new TypeError(`saveSafetensors: metadata["${k}"] must be a string`);
    header.__metadata__ = opts.metadata;
  }
  let pos = 0;
  for (const [name, t] of entries) {
    const nbytes = t.numel() * ITEMSIZE[t.dtype];
    header[name] = { dtype: FROM_DTYPE[t.dtype], shape: t.shape, data_offsets: [pos, pos + nbytes] };
    pos += nbytes;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
  const len = Buffer.byteLength(json);
  json += ' '.repeat((8 - ((8 + len) % 8)) % 8);
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
