// The torch.save format: PEFT's adapter_model.bin fixtures and files PyTorch wrote load to the right
// tensors; what we write has torch.save's layout, round-trips, and loads in PyTorch's
// torch.load(weights_only=True); hostile files are clear errors; saves are atomic.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  fromTypedArray,
  loadSafetensorsSync,
  loadTorchBin,
  loadTorchBinSync,
  memory,
  randn,
  saveTorchBin,
  saveTorchBinSync,
  scope,
  tensor,
  Tensor,
  zeros,
} from '../lib';
import { zipBytes } from '../lib/io/torch-bin';
import { leftovers, previousFile } from './helpers/atomic-save';
import { catchError, failure } from './helpers/errors';
import { settleGarbage } from './helpers/gc';
import { pythonWithTorch, runPythonJson, skipNote } from './helpers/python';
import { bytesOf, disposeAll } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures');
const ADAPTERS = fs
  .readdirSync(FIX)
  .filter((d) => fs.existsSync(path.join(FIX, d, 'bin', 'adapter_model.bin')))
  .sort();

let dir: string;
beforeAll(() => (dir = tmpDir('torch-bin')));

/** Same names, dtypes, shapes and bytes. */
function expectSameTensors(a: Record<string, Tensor>, b: Record<string, Tensor>): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const [name, t] of Object.entries(b)) {
    expect([name, a[name].dtype, a[name].shape]).toEqual([name, t.dtype, t.shape]);
    expect([name, bytesOf(a[name]).equals(bytesOf(t))]).toEqual([name, true]);
  }
}

describe("PEFT's adapter_model.bin fixtures (torch.save of torch 2.11)", () => {
  expect(ADAPTERS.length).toBeGreaterThanOrEqual(7);
  test.each(ADAPTERS)('%s: bin/adapter_model.bin holds exactly the tensors of adapter_model.safetensors', async (d) => {
    const expected = loadSafetensorsSync(path.join(FIX, d, 'adapter_model.safetensors'));
    const bin = path.join(FIX, d, 'bin', 'adapter_model.bin');
    for (const got of [await loadTorchBin(bin), loadTorchBinSync(bin)]) {
      expectSameTensors(got, expected);
      disposeAll(got);
    }
    disposeAll(expected);
  });
});

describe('torch.save files PyTorch 1.13 wrote (make_torch_bin_reference.py)', () => {
  const TB = path.join(FIX, 'torch-bin');
  let ref: Record<string, Tensor>;
  beforeAll(() => {
    ref = loadSafetensorsSync(path.join(TB, 'reference.safetensors'));
  });
  afterAll(() => disposeAll(ref));

  test.each([
    ['state-dict.bin', "model.state_dict(): an OrderedDict with _metadata (libtorch's own unpickler makes it None)"],
    ['views.bin', 'views of one storage: offsets, strides, a transpose'],
    ['dtypes.bin', 'every dtype, 0-d, empty and 4-d tensors'],
    ['parameter.bin', 'an nn.Parameter'],
    ['protocol4.bin', 'pickle protocol 4'],
    ['ordered.bin', 'an OrderedDict of every dtype'],
  ])('%s: %s', async (file) => {
    const expected: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(ref)) if (k.startsWith(`${file}/`)) expected[k.slice(file.length + 1)] = t;
    const got = await loadTorchBin(path.join(TB, file));
    // The file's order is the state dict's order.
    expect(Object.keys(got)).toEqual(Object.keys(expected));
    for (const [name, t] of Object.entries(expected)) {
      expect([name, got[name].dtype, got[name].shape]).toEqual([name, t.dtype, t.shape]);
      const c = got[name].contiguous();
      expect([name, bytesOf(c).equals(bytesOf(t))]).toEqual([name, true]);
      c.dispose();
    }
    disposeAll(got);
  });

  test("saveTorchBin writes torch.save's own data.pkl and data records for the same tensors, byte for byte", () => {
    const src = loadTorchBinSync(path.join(TB, 'ordered.bin'));
    const out = path.join(dir, 'ordered.bin'); // the same file name: the same archive folder, 'ordered/'
    saveTorchBinSync(src, out);
    const theirs = fs.readFileSync(path.join(TB, 'ordered.bin'));
    const ours = fs.readFileSync(out);
    const record = (file: Buffer, e: { dataAt: number; size: number }) => file.subarray(e.dataAt, e.dataAt + e.size);
    const ourEntries = new Map(zipEntries(ours).map((e) => [e.name, e]));
    const theirEntries = zipEntries(theirs);
    expect(theirEntries.length).toBe(Object.keys(src).length + 2); // data.pkl, data/<key>..., version
    for (const e of theirEntries) {
      const o = ourEntries.get(e.name);
      expect([e.name, o !== undefined && record(ours, o).equals(record(theirs, e))]).toEqual([e.name, true]);
    }
    disposeAll(src);
  });

  test('views keep their strides and share their storage, as torch.load gives them', () => {
    const got = loadTorchBinSync(path.join(TB, 'views.bin'));
    expect(got.t.isContiguous()).toBe(false);
    expect(got.t.stride()).toEqual([1, 6]);
    got.base.add_(100); // in place on the base: the views see it, as in PyTorch
    expect(got.row.tolist()).toEqual([112, 113, 114, 115, 116, 117]);
    expect(got.col.tolist()).toEqual([103, 109, 115, 121]);
    disposeAll(got);
  });

  test('a file that is not a flat state dict of tensors is refused, naming what it holds', async () => {
    const file = path.join(TB, 'nested.bin');
    for (const err of [await failure(() => loadTorchBin(file)), await failure(() => loadTorchBinSync(file))])
      expect(err.message).toContain(
        `expected a state dict of tensors (a dict of str -> tensor) in '${file}', found a dict whose value for 'model' is a dict`,
      );
  });
});

/** One tensor of every dtype torch.save and torch-lora share, with awkward shapes. */
function everyDtype(): Record<string, Tensor> {
  return scope(() => ({
    'w.f32': tensor([[1.5, -2.25, 0], [3.4028234663852886e38, -1e-45, 7]], { dtype: 'float32' }),
    'w.f64': tensor([Math.PI, -Number.MAX_VALUE, Number.MIN_VALUE], { dtype: 'float64' }),
    'w.f16': tensor([0.5, -2, 65504, 6.103515625e-5], { dtype: 'float32' }).to('float16'),
    'w.bf16': tensor([1, -3.140625, 3.3895313892515355e38], { dtype: 'float32' }).to('bfloat16'),
    'w.i64': fromTypedArray(new BigInt64Array([-(2n ** 40n), -1n, 0n, 2n ** 40n]), [2, 2]),
    'w.i32': tensor([-2147483648, 0, 2147483647], { dtype: 'int32' }),
    'w.i16': tensor([[-32768, 1], [2, 32767]], { dtype: 'int16' }),
    'w.i8': tensor([-128, -1, 0, 127], { dtype: 'int8' }),
    'w.u8': tensor([0, 1, 128, 255], { dtype: 'uint8' }),
    'w.bool': tensor([[true, false], [false, true]], { dtype: 'bool' }),
    scalar: tensor(7.25, { dtype: 'float64' }),
    empty: zeros([0, 3], { dtype: 'int32' }),
    rank5: randn([2, 1, 3, 1, 2]),
    transposed: randn([3, 70]).t(), // not contiguous; 70 * 3 elements
    // sizes and strides past 2^31 take the LONG1 opcode
    'huge.empty': zeros([0, 3_000_000_000], { dtype: 'uint8' }),
  }));
}

/** The zip entries of a file: name, where its data starts, its size and CRC from the central directory. */
function zipEntries(file: Buffer): { name: string; dataAt: number; size: number; crc: number }[] {
  const eocd = file.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = file.readUInt16LE(eocd + 10);
  let p = file.readUInt32LE(eocd + 16);
  const out = [];
  for (let i = 0; i < count; i++) {
    expect(file.readUInt32LE(p)).toBe(0x02014b50);
    const nameLen = file.readUInt16LE(p + 28);
    const skip = nameLen + file.readUInt16LE(p + 30) + file.readUInt16LE(p + 32);
    const local = file.readUInt32LE(p + 42);
    const name = file.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    expect(file.readUInt32LE(local)).toBe(0x04034b50);
    expect(file.readUInt16LE(local + 8)).toBe(0); // stored, not compressed
    const dataAt = local + 30 + file.readUInt16LE(local + 26) + file.readUInt16LE(local + 28);
    out.push({ name, dataAt, size: file.readUInt32LE(p + 24), crc: file.readUInt32LE(p + 16) });
    p += 46 + skip;
  }
  return out;
}

describe.each([
  ['sync', (t: Record<string, Tensor>, p: string) => saveTorchBinSync(t, p)],
  ['async', (t: Record<string, Tensor>, p: string) => saveTorchBin(t, p)],
] as const)('saveTorchBin (%s)', (mode, save) => {
  test('round trip through our reader, bit for bit, in order', async () => {
    await settleGarbage();
    const before = memory().tensors;
    const src = everyDtype();
    const file = path.join(dir, `rt-${mode}`, 'adapter_model.bin');
    fs.mkdirSync(path.dirname(file));
    await save(src, file);
    const back = await loadTorchBin(file);
    expect(Object.keys(back)).toEqual(Object.keys(src));
    for (const [name, t] of Object.entries(src)) {
      expect([name, back[name].dtype, back[name].shape]).toEqual([name, t.dtype, t.shape]);
      expect([name, bytesOf(back[name]).equals(bytesOf(t))]).toEqual([name, true]);
    }
    expect(fs.readdirSync(path.dirname(file))).toEqual(['adapter_model.bin']);
    disposeAll(src);
    disposeAll(back);
    expect(memory().tensors).toBe(before);
  });

  test("torch.save's layout: records, 64-byte aligned stored data, CRCs", async () => {
    const src = everyDtype();
    const file = path.join(dir, `layout-${mode}.bin`);
    await save(src, file);
    const bytes = fs.readFileSync(file);
    const entries = zipEntries(bytes);
    const n = Object.keys(src).length;
    const keys = Array.from({ length: n }, (_, i) => String(i)).sort(); // torch.save sorts storage keys as strings
    expect(entries.map((e) => e.name)).toEqual([
      `layout-${mode}/data.pkl`,
      `layout-${mode}/.format_version`,
      `layout-${mode}/.storage_alignment`,
      `layout-${mode}/byteorder`,
      ...keys.map((k) => `layout-${mode}/data/${k}`),
      `layout-${mode}/version`,
    ]);
    const values = Object.values(src);
    for (const e of entries) {
      const data = bytes.subarray(e.dataAt, e.dataAt + e.size);
      expect([e.name, e.dataAt % 64]).toEqual([e.name, 0]);
      expect([e.name, zlib.crc32(data) >>> 0]).toEqual([e.name, e.crc]);
      const m = /\/data\/(\d+)$/.exec(e.name);
      if (m) expect([e.name, data.equals(bytesOf(values[Number(m[1])]))]).toEqual([e.name, true]);
    }
    const text = (name: string) => bytes.subarray(entries.find((e) => e.name.endsWith(name))!.dataAt).subarray(0, 6);
    expect(text('/version').subarray(0, 2).toString()).toBe('3\n');
    expect(text('/byteorder').toString()).toBe('little');
    const pkl = entries[0];
    expect(bytes.subarray(pkl.dataAt, pkl.dataAt + 29).toString('latin1')).toBe('\x80\x02ccollections\nOrderedDict\nq\x00');
    disposeAll(src);
  });
});

describe('PyTorch loads our .bin with torch.load(weights_only=True) (test/interop/torch_load.py)', () => {
  if (pythonWithTorch() === null) {
    test.skip(skipNote('loading our .bin in PyTorch'), () => undefined);
    return;
  }
  type Py = {
    type: string;
    crcOk: boolean;
    keys: string[];
    tensors: Record<string, { dtype: string; shape: number[]; values: (number | boolean)[] }>;
  };
  const asPython = (t: Tensor): (number | boolean)[] => {
    const c = t.contiguous();
    const d = c.data();
    c.dispose();
    if (t.dtype === 'bool') return Array.from(d as Uint8Array).map((x) => x !== 0);
    if (t.dtype === 'int64') return Array.from(d as BigInt64Array).map((x) => Number(x));
    return Array.from(d as ArrayLike<number>);
  };

  test('every dtype: same keys in order, dtypes, shapes and values; an OrderedDict; CRCs check', async () => {
    const src = everyDtype();
    const file = path.join(dir, 'adapter_model.bin');
    await saveTorchBin(src, file);
    const py = runPythonJson<Py>(path.join(__dirname, 'interop', 'torch_load.py'), [file]);
    expect(py.type).toBe('collections.OrderedDict');
    expect(py.crcOk).toBe(true);
    expect(py.keys).toEqual(Object.keys(src));
    for (const [name, t] of Object.entries(src)) {
      const p = py.tensors[name];
      expect([name, p.dtype, p.shape]).toEqual([name, t.dtype, t.shape]);
      if (t.numel() > 0) expect([name, p.values]).toEqual([name, asPython(t)]);
    }
    disposeAll(src);
  });

  test('1,100 tensors (more than one SETITEMS batch and 256 memo slots)', async () => {
    const src = scope(() => {
      const out: Record<string, Tensor> = {};
      for (let i = 0; i < 1100; i++) out[`layers.${i}.weight`] = tensor([i, -i], { dtype: 'int32' });
      return out;
    });
    const file = path.join(dir, 'many.bin');
    saveTorchBinSync(src, file);
    const py = runPythonJson<Py>(path.join(__dirname, 'interop', 'torch_load.py'), [file]);
    expect(py.keys).toEqual(Object.keys(src));
    expect(py.tensors['layers.1099.weight'].values).toEqual([1099, -1099]);
    const back = loadTorchBinSync(file);
    expectSameTensors(back, src);
    disposeAll(back);
    disposeAll(src);
  });
});

describe('saves are atomic', () => {
  const previous = (name: string) => previousFile(dir, name, 'adapter_model.bin', (ts, file) => saveTorchBinSync(ts, file));

  test('a disposed tensor in the list: the previous file stays, no temporary file', async () => {
    const { file, bytes } = previous('disposed');
    const good = randn([10]);
    const gone = randn([2]);
    gone.dispose();
    for (const err of [await failure(() => saveTorchBinSync({ good, gone }, file)), await failure(() => saveTorchBin({ good, gone }, file))])
      expect(err.message).toMatch(/tensor 'gone' was disposed/);
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);
    expect(leftovers(path.dirname(file))).toEqual([]);
    good.dispose();
  });

  test('a failure after the temporary file is written (the target is a directory): nothing is left behind', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'target-'));
    const target = path.join(sub, 'adapter_model.bin');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    const t = randn([4]);
    for (const err of [await failure(() => saveTorchBinSync({ t }, target)), await failure(() => saveTorchBin({ t }, target))])
      expect(err.message).toContain(`cannot write '${target}'`);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).toBe('x');
    expect(leftovers(sub)).toEqual([]);
    const missing = path.join(sub, 'no', 'dir', 'adapter_model.bin');
    expect((await failure(() => saveTorchBin({ t }, missing))).message).toContain(`cannot write '${missing}'`);
    t.dispose();
  });

  test('an un-awaited saveTorchBin holds the values of the moment it was called, though the tensor changes', async () => {
    const { file } = previous('snapshot');
    const w = zeros([1024, 4096]).add_(1); // 16 MiB, written in chunks between awaits
    const b = zeros([8]).add_(1);
    const saving = saveTorchBin({ b, w }, file);
    w.fill_(2);
    b.fill_(2);
    await saving;
    const back = loadTorchBinSync(file);
    const stats = [back.w.min(), back.w.max(), back.b.min(), back.b.max()];
    expect(stats.map((t) => t.item())).toEqual([1, 1, 1, 1]);
    disposeAll(back);
    for (const t of [w, b, ...stats]) t.dispose();
  });

  test('disposing a tensor while an async save runs does not break the save', async () => {
    const { file } = previous('during');
    const a = randn([300, 300]);
    const b = randn([5]);
    const expected = bytesOf(b);
    const pending = saveTorchBin({ a, b }, file);
    b.dispose();
    await pending;
    const back = loadTorchBinSync(file);
    expect(bytesOf(back.b).equals(expected)).toBe(true);
    disposeAll(back);
    a.dispose();
  });
});

describe('hostile and corrupt .bin files are clear errors', () => {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const raw = (s: string) => Buffer.from(s, 'latin1');
  const str = (s: string) => Buffer.concat([raw('X'), u32(Buffer.byteLength(s)), Buffer.from(s)]);
  const int = (n: number) => raw(`K${String.fromCharCode(n)}`);
  const tup = (xs: number[]) => Buffer.concat([raw('('), ...xs.map(int), raw('t')]);
  /** _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict()) */
  const tensorPk = (key: string, numel: number, size: number[], stride: number[], offset = 0, type = 'FloatStorage') =>
    Buffer.concat([
      raw('ctorch._utils\n_rebuild_tensor_v2\n(('),
      str('storage'),
      raw(`ctorch\n${type}\n`),
      str(key),
      str('cpu'),
      int(numel),
      raw('tQ'),
      int(offset),
      tup(size),
      tup(stride),
      raw('\x89ccollections\nOrderedDict\n)RtR'),
    ]);
  const dict = (...items: Buffer[]) => Buffer.concat([raw('\x80\x02}('), ...items, raw('u.')]);
  const f32 = (xs: number[]) => Buffer.from(new Float32Array(xs).buffer);

  function archive(name: string, pkl: Buffer | null, extra: { name: string; data: Buffer }[] = []): string {
    const records = [
      ...(pkl ? [{ name: 'archive/data.pkl', data: pkl }] : []),
      ...extra.map((r) => ({ name: `archive/${r.name}`, data: r.data })),
      { name: 'archive/version', data: raw('3\n') },
    ];
    const file = path.join(dir, `${name}.bin`);
    fs.writeFileSync(file, zipBytes(records));
    return file;
  }
  const fine = () => dict(str('w'), tensorPk('0', 4, [2, 2], [2, 1]));
  /** The same archive with data.pkl deflated (torch.save stores it; torch.load reads either). */
  function deflatedArchive(name: string, pkl: Buffer): string {
    const records = [
      { name: 'archive/data.pkl', data: pkl, method: 8 },
      { name: 'archive/version', data: raw('3\n'), method: 0 },
    ];
    const locals: Buffer[] = [];
    const central: Buffer[] = [];
    let pos = 0;
    for (const r of records) {
      const body = r.method === 8 ? zlib.deflateRawSync(r.data, { level: 9 }) : r.data;
      const nameBytes = Buffer.from(r.name);
      const crc = zlib.crc32(r.data);
      const h = Buffer.alloc(30);
      h.writeUInt32LE(0x04034b50, 0);
      h.writeUInt16LE(20, 4);
      h.writeUInt16LE(r.method, 8);
      h.writeUInt32LE(crc, 14);
      h.writeUInt32LE(body.length, 18);
      h.writeUInt32LE(r.data.length, 22);
      h.writeUInt16LE(nameBytes.length, 26);
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(20, 4);
      c.writeUInt16LE(20, 6);
      c.writeUInt16LE(r.method, 10);
      c.writeUInt32LE(crc, 16);
      c.writeUInt32LE(body.length, 20);
      c.writeUInt32LE(r.data.length, 24);
      c.writeUInt16LE(nameBytes.length, 28);
      c.writeUInt32LE(pos, 42);
      locals.push(h, nameBytes, body);
      central.push(c, nameBytes);
      pos += 30 + nameBytes.length + body.length;
    }
    const cd = Buffer.concat(central);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(records.length, 8);
    end.writeUInt16LE(records.length, 10);
    end.writeUInt32LE(cd.length, 12);
    end.writeUInt32LE(pos, 16);
    const file = path.join(dir, `${name}.bin`);
    fs.writeFileSync(file, Buffer.concat([...locals, cd, end]));
    return file;
  }
  const badUtf8 = (b: number[]) => Buffer.concat([raw('X'), u32(b.length), Buffer.from(b)]);

  const cases: [string, () => string, RegExp][] = [
    ['not a zip', () => (fs.writeFileSync(path.join(dir, 'text.bin'), 'hello world'), path.join(dir, 'text.bin')), /it is not a torch\.save file \(no zip archive\)/],
    ['the legacy format of PyTorch < 1.6', () => (fs.writeFileSync(path.join(dir, 'legacy.bin'), raw('\x80\x02\x8a\x0alz\xe8')), path.join(dir, 'legacy.bin')), /legacy torch\.save format of PyTorch < 1\.6/],
    ['a truncated zip', () => {
      const whole = fs.readFileSync(archive('whole', fine(), [{ name: 'data/0', data: f32([1, 2, 3, 4]) }]));
      fs.writeFileSync(path.join(dir, 'cut.bin'), whole.subarray(0, whole.length >> 1));
      return path.join(dir, 'cut.bin');
    }, /as a torch\.save file: .*(zip|central directory)/i],
    ['no data.pkl', () => archive('nopkl', null), /the archive has no data\.pkl/],
    ['a list, not a dict', () => archive('list', raw('\x80\x02]q\x00.')), /found a list of 0/],
    ['an int value', () => archive('intval', dict(str('a'), int(5))), /found a dict whose value for 'a' is an int/],
    ['a key that is not a str', () => archive('intkey', dict(int(1), tensorPk('0', 1, [1], [1])), [{ name: 'data/0', data: f32([1]) }]), /found a dict with a key that is an int/],
    ['a global that runs code', () => archive('evil', raw("\x80\x02cos\nsystem\nX\x05\x00\x00\x00touch\x85R.")), /names the global 'os\.system', which a state dict of tensors does not need/],
    ['a storage record that is missing', () => archive('norecord', fine()), /storage '0' has no record data\/0 in the archive/],
    ['a record smaller than its storage', () => archive('small', fine(), [{ name: 'data/0', data: f32([1, 2]) }]), /storage '0' needs 16 bytes but its record holds 8/],
    ['a tensor past the end of its storage', () => archive('past', dict(str('w'), tensorPk('0', 4, [3, 2], [2, 1])), [{ name: 'data/0', data: f32([1, 2, 3, 4]) }]), /a tensor of size \[3, 2\] at offset 0 runs past its storage of 4 elements/],
    ['an offset past the end of its storage', () => archive('offset', dict(str('w'), tensorPk('0', 4, [2], [1], 3)), [{ name: 'data/0', data: f32([1, 2, 3, 4]) }]), /runs past its storage of 4 elements/],
    ['a complex storage', () => archive('complex', dict(str('w'), tensorPk('0', 1, [1], [1], 0, 'ComplexFloatStorage'))), /names the global 'torch\.ComplexFloatStorage'/],
    ['big-endian data', () => archive('big', fine(), [{ name: 'byteorder', data: raw('big') }, { name: 'data/0', data: f32([1, 2, 3, 4]) }]), /stored big-endian; only little-endian/],
    ['an opcode torch.save never writes', () => archive('opcode', raw('\x80\x02I1\n.')), /pickle opcode 0x49 at byte 2 is not supported/],
    ['a truncated pickle', () => archive('shortpkl', fine().subarray(0, 40)), /data\.pkl: truncated/],
    ['a truncated string', () => archive('shortstr', fine().subarray(0, 9)), /data\.pkl: truncated \(needs 1 more bytes\)/],
    ['a directory', () => dir, /cannot read '.*': Is a directory/],
    ['an empty stack', () => archive('empty', raw('\x80\x02R.')), /the stack holds fewer values than an opcode needs/],
    ['a memo read before it is written', () => archive('memo', raw('\x80\x02h\x07.')), /memo entry 7 is read before it is written/],
    ['a dict that contains itself', () => archive('cycle', raw('\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s.')), /a container is changed after it was placed in another/],
    ['values nested too deep', () => archive('deep', Buffer.concat([raw('\x80\x02'), raw(']'.repeat(200)), raw('a'.repeat(199)), raw('.')])), /nested more than 64 deep/],
    ['a tensor name that is not UTF-8 (torch.load raises)', () => archive('utf8', dict(badUtf8([0x77, 0xff]), tensorPk('0', 1, [1], [1])), [{ name: 'data/0', data: f32([1]) }]), /data\.pkl: a str at byte \d+ is not valid UTF-8 \(byte 1 of it\)/],
    ['an overlong UTF-8 form', () => archive('overlong', dict(badUtf8([0xc0, 0xaf]), tensorPk('0', 1, [1], [1])), [{ name: 'data/0', data: f32([1]) }]), /is not valid UTF-8 \(byte 0 of it\)/],
    ['a UTF-8 surrogate, which a JS string cannot take from UTF-8', () => archive('surrogate', dict(badUtf8([0xed, 0xa0, 0x80]), tensorPk('0', 1, [1], [1])), [{ name: 'data/0', data: f32([1]) }]), /is not valid UTF-8/],
    ['a stack of a million None values', () => archive('stack', Buffer.concat([raw('\x80\x02'), Buffer.alloc(1_100_000, 'N'), raw('.')])), /its stack grows past 1048576 values \(a state dict needs a few thousand\)/],
    ['a deflated data.pkl of 40M opcodes in a small file (refused by its size before it is inflated)', () => deflatedArchive('bomb', Buffer.concat([raw('\x80\x02'), Buffer.alloc(40_000_000, 'N0'), raw('].')])), /its data\.pkl expands to 40000004 bytes, far more than a state dict in a file of \d+ bytes needs/],
    ['a persistent id that is not a storage', () => archive('persid', raw('\x80\x02X\x01\x00\x00\x00xQ.')), /a persistent id must be a 5-tuple, got a str/],
  ];

  test.each(cases)('%s', async (_what, make, why) => {
    const file = make();
    await settleGarbage();
    const before = memory().tensors;
    for (const err of [await failure(() => loadTorchBinSync(file)), await failure(() => loadTorchBin(file))]) {
      expect(err.message).toContain(`'${file}'`);
      expect(err.message).toMatch(why);
    }
    expect(memory().tensors).toBe(before);
  });

  test('the hand-made archives themselves are valid (so the cases above fail for their own reason)', () => {
    const file = archive('valid', fine(), [{ name: 'data/0', data: f32([1, 2, 3, 4]) }]);
    const t = loadTorchBinSync(file);
    expect(t.w.tolist()).toEqual([[1, 2], [3, 4]]);
    t.w.dispose();
    // a deflated data.pkl with a few thousand values on the stack and in the memo, and a valid UTF-8 name
    const many = Buffer.concat([raw('\x80\x02]('), Buffer.alloc(5000, 'N'), raw('e'), ...Array.from({ length: 3000 }, () => raw('\x94')), raw('0}'), str('wé€😀'), raw('Ns.')]);
    const r = fs.readFileSync(deflatedArchive('deflated', many));
    const file2 = path.join(dir, 'deflated-ok.bin');
    fs.writeFileSync(file2, r);
    expect(catchError(() => loadTorchBinSync(file2)).message).toMatch(/value for 'wé€😀' is None/);
  });

  test('a missing file names the path', async () => {
    const file = path.join(dir, 'nope', 'adapter_model.bin');
    expect((await failure(() => loadTorchBin(file))).message).toContain(`cannot open '${file}'`);
  });
});
