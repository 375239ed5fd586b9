// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range, then the bytes. The header is parsed and checked here; the bytes go
// straight from the file into tensor memory (and back) in native code.
import * as fs from 'fs';
import * as nodePath from 'path';
import { Worker } from 'worker_threads';
import { DType, dtypeCode, ITEMSIZE } from '../dtype';
import { native } from '../native';
import { Device, Tensor } from '../tensor';
import { bad, headerLength, parseHeader, SafetensorsHeader, setOwn, TO_DTYPE } from './safetensors-header';

export type { SafetensorsEntry, SafetensorsHeader } from './safetensors-header';

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
    return n < OFF_THREAD_HEADER ? parseHeader(path, json, 8 + n, size) : parseHeaderOffThread(path, json, 8 + n, size);
  } finally {
    await f.close();
  }
}

/**
 * Headers from this size up are parsed on a worker thread by the async loader: a hostile 100 MB header
 * blocked the event loop for over a minute. Real headers are a few hundred bytes a tensor (a 7B model's
 * shard: ~30 KB), parsed in well under a millisecond, where starting a worker costs tens.
 */
const OFF_THREAD_HEADER = 1 << 20;

function parseHeaderOffThread(path: string, json: Buffer, dataStart: number, fileSize: number): Promise<SafetensorsHeader> {
  const bytes = new Uint8Array(json.buffer, json.byteOffset, json.byteLength);
  const workerData = { path, bytes, dataStart, fileSize };
  const compiled = __filename.endsWith('.js');
  const script = nodePath.join(__dirname, `safetensors-header-worker${compiled ? '.js' : '.ts'}`);
  // From the TypeScript sources (jest, ts-node) the worker compiles them as it requires them; the
  // published package runs the compiled file.
  const worker = compiled
    ? new Worker(script, { workerData })
    : new Worker(
        `const ts = require(${JSON.stringify(require.resolve('typescript'))}), fs = require('fs');` +
          "require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'), " +
          '{ fileName: f, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText, f);' +
          `require(${JSON.stringify(script)});`,
        { eval: true, workerData },
      );
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (m: { header?: SafetensorsHeader; error?: string }) => {
      settled = true;
      if (m.header) resolve(m.header);
      else reject(new Error(m.error));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(bad(path, `the header could not be parsed (${e.message})`));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(bad(path, `the worker parsing the header exited with code ${code}`));
    });
  });
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
