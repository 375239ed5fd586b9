// safetensors: round trips of every dtype, the fixtures' files against what PyTorch reads from them,
// byte-for-byte equality with files the reference writer made, PyTorch reading our files, hostile
// files, and atomic saves.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import {
  DType,
  fromTypedArray,
  loadSafetensors,
  loadSafetensorsSync,
  memory,
  randn,
  readSafetensorsHeader,
  saveSafetensors,
  saveSafetensorsSync,
  scope,
  tensor,
  Tensor,
  zeros,
} from '../lib';
import { ITEMSIZE } from '../lib/dtype';
import { native } from '../lib/native';
import { leftovers, previousFile } from './helpers/atomic-save';
import { failure } from './helpers/errors';
import { settleGarbage } from './helpers/gc';
import { pythonWithTorch, runPythonJson, skipNote } from './helpers/python';
import { bytesOf, disposeAll } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures');
const REFERENCE = JSON.parse(fs.readFileSync(path.join(FIX, 'safetensors-reference.json'), 'utf8')) as Record<
  string,
  {
    metadata: Record<string, string> | null;
    tensors: Record<
      string,
      { dtype: string; shape: number[]; sum: number; absSum: number; first: number | null; last: number | null; sha256: string }
    >;
  }
>;
const ST_DTYPE: Record<string, DType> = {
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

let dir: string;
beforeAll(() => (dir = tmpDir('safetensors')));

/** One tensor of every dtype, with awkward cases: 0-d, empty, non-contiguous, extreme values. */
function everyDtype(): Record<string, Tensor> {
  return scope(() => ({
    f32: tensor([[1.5, -0, Number.POSITIVE_INFINITY], [Number.NaN, 3.4028234663852886e38, -1e-45]], { dtype: 'float32' }),
    f64: tensor([Math.PI, -Number.MAX_VALUE, Number.MIN_VALUE, -0], { dtype: 'float64' }),
    f16: tensor([0.5, -2, 65504, 6.103515625e-5], { dtype: 'float32' }).to('float16'),
    bf16: tensor([1, -3.140625, 3.3895313892515355e38, 1e-3], { dtype: 'float32' }).to('bfloat16'),
    i64: fromTypedArray(new BigInt64Array([-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n]), [5]),
    i32: tensor([-2147483648, 0, 2147483647], { dtype: 'int32' }),
    i16: tensor([[-32768, 1], [2, 32767]], { dtype: 'int16' }),
    i8: tensor([-128, -1, 0, 127], { dtype: 'int8' }),
    u8: tensor([0, 1, 128, 255], { dtype: 'uint8' }),
    bool: tensor([[true, false], [false, true]], { dtype: 'bool' }),
    scalar: tensor(7.25, { dtype: 'float64' }),
    empty: zeros([0, 3], { dtype: 'int32' }),
    transposed: randn([3, 4]).t(), // not contiguous: written in its logical (row-major) order
    '0': tensor([1, 2], { dtype: 'int8' }), // an integer-like name: must not jump to the front of the header
  }));
}

const METADATA = { format: 'pt', note: 'ünïcode "quoted" \\ text' };

describe.each([
  ['sync', (t: Record<string, Tensor>, p: string, m?: Record<string, string>) => saveSafetensorsSync(t, p, { metadata: m }), (p: string) => loadSafetensorsSync(p)],
  ['async', (t: Record<string, Tensor>, p: string, m?: Record<string, string>) => saveSafetensors(t, p, { metadata: m }), (p: string) => loadSafetensors(p)],
] as const)('round trip (%s)', (_mode, save, load) => {
  test('every dtype with __metadata__ comes back bit for bit', async () => {
    await settleGarbage();
    const before = memory().tensors;
    const src = everyDtype();
    const file = path.join(dir, `every-${_mode}.safetensors`);
    await save(src, file, METADATA);
    const back = await load(file);
    expect(Object.keys(back).sort()).toEqual(Object.keys(src).sort());
    for (const [name, t] of Object.entries(src)) {
      const u = back[name];
      expect([name, u.dtype, u.shape]).toEqual([name, t.dtype, t.shape]);
      expect(u.isContiguous()).toBe(true);
      expect(bytesOf(u).equals(bytesOf(t))).toBe(true);
    }
    const header = readSafetensorsHeader(file);
    expect(header.metadata).toEqual(METADATA);
    // The data starts 8-byte aligned, and every tensor at a multiple of its item size.
    const n = Number(fs.readFileSync(file).readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    for (const e of header.tensors.values()) expect((e.offset - 8 - n) % ITEMSIZE[e.dtype]).toBe(0);
    disposeAll(src);
    disposeAll(back);
    expect(memory().tensors).toBe(before);
  });

  test('a Map, the keys option, and an empty file', async () => {
    const a = tensor([1, 2, 3], { dtype: 'float32' });
    const b = tensor([[4]], { dtype: 'int64' });
    const file = path.join(dir, `map-${_mode}.safetensors`);
    await save(Object.fromEntries(new Map([['b', b], ['a', a]])), file);
    const only = loadSafetensorsSync(file, { keys: ['b'] });
    expect(Object.keys(only)).toEqual(['b']);
    expect(only.b.tolist()).toEqual([[4]]);
    expect(() => loadSafetensorsSync(file, { keys: ['nope'] })).toThrow(/has no tensor named 'nope'/);
    const none = path.join(dir, `none-${_mode}.safetensors`);
    await save({}, none);
    expect(fs.readFileSync(none)).toEqual(Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}      ')]));
    expect(await load(none)).toEqual({});
    [a, b, only.b].forEach((t) => t.dispose());
  });
});

describe("the fixtures' files, against what PyTorch reads from them (make_safetensors_reference.py)", () => {
  const files = Object.keys(REFERENCE);
  test.each(files)('%s', async (rel) => {
    const ref = REFERENCE[rel];
    const file = path.join(FIX, rel);
    for (const loaded of [loadSafetensorsSync(file), await loadSafetensors(file)]) {
      expect(Object.keys(loaded).sort()).toEqual(Object.keys(ref.tensors).sort());
      for (const [name, r] of Object.entries(ref.tensors)) {
        const t = loaded[name];
        expect([name, t.dtype, t.shape]).toEqual([name, ST_DTYPE[r.dtype], r.shape]);
        expect(createHash('sha256').update(bytesOf(t)).digest('hex')).toBe(r.sha256);
        const flat = Array.from(t.to('float64').data() as Float64Array);
        // float64 sums of the same values in another order: rounding differences only.
        const sum = flat.reduce((a, b) => a + b, 0);
        const absSum = flat.reduce((a, b) => a + Math.abs(b), 0);
        expect(Math.abs(sum - r.sum)).toBeLessThanOrEqual(1e-9 * (1 + r.absSum));
        expect(Math.abs(absSum - r.absSum)).toBeLessThanOrEqual(1e-9 * (1 + r.absSum));
        expect(flat[0]).toBe(r.first);
        expect(flat[flat.length - 1]).toBe(r.last);
      }
      expect(readSafetensorsHeader(file).metadata).toEqual(ref.metadata ?? {});
      disposeAll(loaded);
    }
  });

  // These files were written by the reference writer (Python safetensors, through transformers/peft):
  // ours must lay the same tensors out identically (tensor order by dtype then name, header JSON, padding).
  test.each(files)('re-saving %s gives the same bytes', async (rel) => {
    const file = path.join(FIX, rel);
    const meta = REFERENCE[rel].metadata ?? undefined;
    const loaded = loadSafetensorsSync(file);
    const out = path.join(dir, rel.replace(/\//g, '_'));
    saveSafetensorsSync(loaded, out, { metadata: meta });
    expect(fs.readFileSync(out).equals(fs.readFileSync(file))).toBe(true);
    await saveSafetensors(loaded, out, { metadata: meta });
    expect(fs.readFileSync(out).equals(fs.readFileSync(file))).toBe(true);
    disposeAll(loaded);
  });
});

describe('PyTorch reads the files we write (test/interop/read_safetensors.py)', () => {
  const python = pythonWithTorch();
  if (python === null) {
    test.skip(skipNote('reading our safetensors files back in PyTorch'), () => undefined);
    return;
  }
  test('every dtype, values as PyTorch sees them, layout as the reference writer makes it', () => {
    const src = everyDtype();
    delete src.f32; // NaN and Inf do not survive JSON; the bit-exact round trip above covers them
    src.f32 = tensor([[1.5, -2.25], [3.4028234663852886e38, -1e-45]], { dtype: 'float32' });
    const file = path.join(dir, 'for-python.safetensors');
    saveSafetensorsSync(src, file, { metadata: METADATA });
    const py = runPythonJson<{
      metadata: Record<string, string>;
      headerLength: number;
      startsWithBrace: boolean;
      tiled: boolean;
      fileOrder: string[];
      tensors: Record<string, { dtype: string; shape: number[]; values: (number | boolean)[] }>;
    }>(path.join(__dirname, 'interop', 'read_safetensors.py'), [file]);
    expect(py.metadata).toEqual(METADATA);
    expect(py.headerLength % 8).toBe(0);
    expect(py.startsWithBrace).toBe(true);
    expect(py.tiled).toBe(true);
    // The reference writer's order: dtype (I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then name.
    expect(py.fileOrder).toEqual(['i64', 'f64', 'scalar', 'f32', 'transposed', 'empty', 'i32', 'bf16', 'f16', 'i16', '0', 'i8', 'u8', 'bool']);
    for (const [name, t] of Object.entries(src)) {
      const p = py.tensors[name];
      expect([name, ST_DTYPE[p.dtype], p.shape]).toEqual([name, t.dtype, t.shape]);
      const ours =
        t.dtype === 'bool'
          ? Array.from(t.data() as Uint8Array).map((x) => x !== 0)
          : t.dtype === 'int64'
            ? Array.from(t.data() as BigInt64Array).map((x) => Number(x))
            : Array.from(t.contiguous().data() as ArrayLike<number>);
      const theirs = t.dtype === 'int64' ? p.values.map((x) => Number(x)) : p.values;
      expect([name, ours]).toEqual([name, theirs]);
    }
    disposeAll(src);
  });
});

describe('hostile and corrupt files are clear errors', () => {
  /** A file of an 8-byte length (the header's, unless given), the header text and the data bytes. */
  function craft(name: string, header: string | Buffer | object, data: Buffer | number = 0, length?: bigint): string {
    const text = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(length ?? BigInt(text.length));
    const file = path.join(dir, name);
    fs.writeFileSync(file, Buffer.concat([len, text, typeof data === 'number' ? Buffer.alloc(data) : data]));
    return file;
  }
  const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

  const cases: [string, () => string, RegExp][] = [
    ['shorter than 8 bytes', () => (fs.writeFileSync(path.join(dir, 'short'), Buffer.from([1, 0, 0])), path.join(dir, 'short')), /3 bytes long, shorter than the 8-byte header length/],
    ['header length past the end', () => craft('past', '{}', 0, 1000n), /header length 1000 runs past the end of the 10-byte file/],
    ['header length huge', () => craft('huge', '{}', 0, 2n ** 63n), /header length 9223372036854775808 is larger than the 100000000 bytes allowed/],
    ['invalid JSON', () => craft('json', '{"a": {"dtype": '), /header is not valid JSON/],
    ['header not an object', () => craft('array', '[1, 2]'), /header must be a JSON object/],
    ['header not UTF-8', () => craft('utf8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), /the header is not valid UTF-8/],
    ['unknown dtype', () => craft('dtype', { a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, 1), /tensor 'a' has dtype "F8_E4M3"; supported: F64, F32/],
    ['a dtype from Object.prototype', () => craft('proto', { a: { dtype: 'toString', shape: [1], data_offsets: [0, 1] } }, 1), /tensor 'a' has dtype "toString"/],
    ['negative shape', () => craft('shape1', { a: f32([-1, 2], 0, 8) }, 8), /tensor 'a' needs a shape of non-negative integers, got \[-1,2\]/],
    ['fractional shape', () => craft('shape2', { a: f32([1.5], 0, 8) }, 8), /needs a shape of non-negative integers, got \[1.5\]/],
    ['shape not a list', () => craft('shape3', { a: { dtype: 'F32', shape: 'x', data_offsets: [0, 4] } }, 4), /needs a shape of non-negative integers/],
    ['entry not an object', () => craft('entry', { a: 5 }), /entry 'a' must be an object with dtype, shape and data_offsets/],
    ['data_offsets malformed', () => craft('offs', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /needs data_offsets \[begin, end\] with 0 <= begin <= end, got \[4,0\]/],
    ['data_offsets out of range', () => craft('range', { a: f32([4], 0, 16) }, 8), /tensor 'a' lies at bytes 0..16 of the data but the file holds only 8 bytes of data/],
    ['overlapping', () => craft('overlap', { a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), /tensor 'b' at data bytes 4..12 overlaps tensor 'a'/],
    ['a gap', () => craft('gap', { a: f32([2], 0, 8), b: f32([2], 12, 20) }, 20), /data bytes 8..12 belong to no tensor \(a gap before 'b'\)/],
    ['trailing bytes', () => craft('trail', { a: f32([2], 0, 8) }, 12), /tensors end at data byte 8 but the file has 12 bytes of data/],
    ['size not matching shape x itemsize', () => craft('size', { a: f32([2, 3], 0, 16) }, 16), /tensor 'a' of shape \[2, 3\] float32 needs 24 bytes but data_offsets \[0, 16\] give 16/],
    ['a shape whose product passes 2^53', () => craft('overflow', { a: f32([2 ** 40, 2 ** 40, 0], 0, 0), b: f32([2 ** 26, 2 ** 26, 2 ** 2], 0, 0) }), /tensor 'b' of shape .* needs 72057594037927936 bytes/],
    ['a byte size past int64', () => craft('int64a', { a: f32([2 ** 31, 2 ** 31], 0, 0) }), /tensor 'a' has shape \[2147483648, 2147483648\], whose element count or byte size overflow int64/],
    ['strides past int64 behind a zero size', () => craft('int64b', { a: f32([0, 2 ** 53 - 1, 2 ** 53 - 1], 0, 0) }), /tensor 'a' has shape \[0, 9007199254740991, 9007199254740991\], whose strides overflow int64/],
    ['non-string metadata', () => craft('meta', { __metadata__: { format: 1 } }), /__metadata__\["format"\] must be a string, got 1/],
    ['metadata not an object', () => craft('meta2', { __metadata__: ['pt'] }), /__metadata__ must be an object of strings/],
  ];

  test.each(cases)('%s', async (_what, make, why) => {
    const file = make();
    await settleGarbage();
    const before = memory().tensors;
    for (const err of [
      await failure(() => loadSafetensorsSync(file)),
      await failure(() => loadSafetensors(file)),
      await failure(() => readSafetensorsHeader(file)),
    ]) {
      expect(err.message).toContain(`'${file}'`);
      expect(err.message).toMatch(why);
    }
    expect(memory().tensors).toBe(before);
  });

  test('a missing file names the path', async () => {
    const file = path.join(dir, 'does-not-exist.safetensors');
    expect((await failure(() => loadSafetensors(file))).message).toContain(file);
    expect((await failure(() => loadSafetensorsSync(file))).message).toContain(file);
  });

  test('null __metadata__ reads as none, as the reference does', () => {
    const file = craft('nullmeta', { __metadata__: null, a: { dtype: 'I8', shape: [2], data_offsets: [0, 2] } }, Buffer.from([3, 250]));
    const t = loadSafetensorsSync(file);
    expect(t.a.tolist()).toEqual([3, -6]);
    expect(readSafetensorsHeader(file).metadata).toEqual({});
    t.a.dispose();
  });

  test("a tensor named '__proto__' is an ordinary name", () => {
    const file = path.join(dir, 'proto.safetensors');
    const src: Record<string, Tensor> = {};
    Object.defineProperty(src, '__proto__', { value: tensor([1, 2], { dtype: 'int16' }), enumerable: true });
    saveSafetensorsSync(src, file, { metadata: JSON.parse('{"__proto__": "x"}') });
    const back = loadSafetensorsSync(file);
    expect(Object.keys(back)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')!.value.tolist()).toEqual([1, 2]);
    expect(Object.keys(readSafetensorsHeader(file).metadata)).toEqual(['__proto__']);
    disposeAll(back);
    Object.getOwnPropertyDescriptor(src, '__proto__')!.value.dispose();
  });
});

describe('saves are atomic', () => {
  const previous = (name: string) =>
    previousFile(dir, name, 'model.safetensors', (ts, file) => saveSafetensorsSync(ts, file, { metadata: { format: 'pt' } }));

  test('a disposed tensor in the list: the previous file stays, no temporary file', async () => {
    const { file, bytes } = previous('disposed');
    const good = randn([50, 50]);
    const gone = randn([2]);
    gone.dispose();
    for (const err of [
      await failure(() => saveSafetensorsSync({ good, gone }, file)),
      await failure(() => saveSafetensors({ good, gone }, file)),
    ])
      expect(err.message).toMatch(/'gone' was disposed/);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(leftovers(path.dirname(file))).toEqual([]);
    good.dispose();
  });

  test('a failure after the temporary file is half written: the previous file stays, no temporary file', async () => {
    const { file, bytes } = previous('midway');
    const good = randn([64, 64]);
    const meta = zeros([4], { device: 'meta' }); // has no bytes: copying it out fails in the middle of the write
    const prefix = Buffer.alloc(8);
    expect((await failure(() => native.writeFileAtomic(file, prefix, [good.handle, meta.handle]))).message).toMatch(/meta/);
    expect((await failure(() => native.writeFileAtomicAsync(file, prefix, [good.handle, meta.handle]))).message).toMatch(/meta/);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(leftovers(path.dirname(file))).toEqual([]);
    // The library refuses meta tensors before it starts.
    expect((await failure(() => saveSafetensors({ meta }, file))).message).toMatch(/'meta' is on the meta device/);
    [good, meta].forEach((t) => t.dispose());
  });

  test('an unwritable target: the error names it, nothing is left behind', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'target-'));
    const target = path.join(sub, 'is-a-directory');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    const t = tensor([1], { dtype: 'float32' });
    for (const err of [await failure(() => saveSafetensorsSync({ t }, target)), await failure(() => saveSafetensors({ t }, target))])
      expect(err.message).toContain(`'${target}'`);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).toBe('x');
    expect(leftovers(sub)).toEqual([]);
    const missing = path.join(sub, 'no', 'such', 'dir', 'x.safetensors');
    expect((await failure(() => saveSafetensors({ t }, missing))).message).toContain(`'${missing}'`);
    t.dispose();
  });
});

describe('async IO runs off the JS thread', () => {
  /**
   * Counts turns of the event loop: a setImmediate callback runs only when the loop turns, so a read or
   * write done synchronously inside the awaited call would let none run before the call settles.
   */
  function loopTicks() {
    let ticks = 0;
    let on = true;
    const tick = () => {
      if (!on) return;
      ticks++;
      setImmediate(tick);
    };
    setImmediate(tick);
    return {
      stop: () => {
        on = false;
        return ticks;
      },
    };
  }

  test('the event loop turns during await saveSafetensors and during the tensor read of await loadSafetensors', async () => {
    const file = path.join(dir, 'async-ticks.safetensors');
    const tensors = { w: randn([1024, 1024]), b: randn([256, 1024], { dtype: 'float64' }) }; // 4 MiB + 2 MiB
    const saving = loopTicks();
    await saveSafetensors(tensors, file);
    expect(saving.stop()).toBeGreaterThan(0);
    expect(fs.statSync(file).size).toBeGreaterThan(6 * 2 ** 20);

    // loadSafetensors reads the header with fs.promises (which turns the loop by itself): count only
    // while the native read of the tensors' bytes is pending, through a wrapper that calls it unchanged.
    const read = native.readTensorsAsync;
    let duringRead = -1;
    native.readTensorsAsync = (...args: Parameters<typeof read>) => {
      const reading = loopTicks();
      return read(...args).finally(() => (duringRead = reading.stop()));
    };
    let loaded: Record<string, Tensor>;
    const loading = loopTicks();
    try {
      loaded = await loadSafetensors(file);
    } finally {
      native.readTensorsAsync = read;
    }
    expect(loading.stop()).toBeGreaterThan(0);
    expect(duringRead).toBeGreaterThan(0);
    for (const k of ['w', 'b']) expect(bytesOf(loaded[k]).equals(bytesOf(tensors[k as 'w' | 'b']))).toBe(true);
    disposeAll(loaded);
    disposeAll(tensors);
  });

  test('a large hostile header is parsed on a worker thread by loadSafetensors: the event loop keeps turning', async () => {
    // 400,000 empty tensors (a 26 MB header), valid one by one, and 4 stray data bytes that fail the
    // file only at the end: the whole header is parsed and checked first.
    const file = path.join(dir, 'big-header.safetensors');
    const entries = Array.from({ length: 400_000 }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    const text = Buffer.from(`{${entries.join(',')}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    fs.writeFileSync(file, Buffer.concat([len, text, Buffer.alloc(4)]));
    const why = /tensors end at data byte 0 but the file has 4 bytes of data/;
    const t0 = performance.now();
    expect(() => readSafetensorsHeader(file)).toThrow(why);
    const syncMs = performance.now() - t0;

    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 5);
    const err = await failure(() => loadSafetensors(file));
    clearInterval(timer);
    expect(err.message).toContain(`'${file}'`);
    expect(err.message).toMatch(why);
    // Parsed on this thread, the loop would stall for all of syncMs; what is left here (reading into a
    // buffer, starting the worker) is a small part of it.
    expect(syncMs).toBeGreaterThan(100);
    expect(longest).toBeLessThan(syncMs / 2);
  });
});

describe('an un-awaited async save holds the values of the moment it was called', () => {
  test('saveSafetensors: the tensor filled in place right after the call does not reach the file', async () => {
    const file = path.join(dir, 'snapshot.safetensors');
    const w = zeros([2048, 4096]).add_(1); // 32 MiB: the write takes far longer than the fill
    const saving = saveSafetensors({ w }, file);
    w.fill_(2);
    await saving;
    const back = loadSafetensorsSync(file);
    const [lo, hi] = [back.w.min(), back.w.max()];
    expect([lo.item(), hi.item()]).toEqual([1, 1]);
    disposeAll({ ...back, w, lo, hi });
  });
});
