// Fuzz target: the torch.save reader (src/torch_load.cpp: libtorch's zip reader and our restricted
// unpickler), sync and async alike, on the fixtures' .bin files. Byte edits of the whole archive mostly
// meet the zip's CRCs, so most inputs are rebuilt: data.pkl or a data record is mutated and the archive
// written again with correct CRCs (lib/io/torch-bin.ts's zipBytes), so that the pickle itself is explored.
import * as fs from 'fs';
import { loadTorchBin, loadTorchBinSync } from '../../lib';
import { zipBytes } from '../../lib/io/torch-bin';
import { mutateBytes, Rng } from './driver';
import { FuzzTarget, fixtureFiles, loadAndFree, namesFile, scratchFile } from './target';

const file = scratchFile('torch-bin');
let n = 0;

/** The records of a zip archive, read from its central directory (enough for the stored archives torch.save writes). */
function records(zip: Buffer): { name: string; data: Buffer }[] | undefined {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0 || end + 22 > zip.length) return undefined;
  const count = zip.readUInt16LE(end + 10);
  let p = zip.readUInt32LE(end + 16);
  const out: { name: string; data: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    if (p + 46 > zip.length || zip.readUInt32LE(p) !== 0x02014b50 || zip.readUInt16LE(p + 10) !== 0) return undefined;
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const skip = nameLen + zip.readUInt16LE(p + 30) + zip.readUInt16LE(p + 32);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    const local = zip.readUInt32LE(p + 42);
    if (local + 30 > zip.length) return undefined;
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    if (start + size > zip.length) return undefined;
    out.push({ name, data: zip.subarray(start, start + size) });
    p += 46 + skip;
  }
  return out;
}

/** Pickle opcodes and fragments that reach the unpickler's less travelled paths. */
const PICKLE_BITS = ['N', '(', 't', 'l', 'd', 'e', 'u', 's', 'a', '0', '1', '2', 'R', 'Q', 'b', '.', 'h\x00', 'q\x00', '\x94',
  '\x8a\x09', 'J\xff\xff\xff\xff', 'X\xff\xff\xff\x7f', '\x8d\xff\xff\xff\xff\xff\xff\xff\xff', 'ctorch\nFloatStorage\n', 'cos\nsystem\n', '\x80\x05', '\x95\x08\x00\x00\x00\x00\x00\x00\x00'].map((s) => Buffer.from(s, 'latin1'));

function mutatePickle(rng: Rng, pkl: Buffer, corpus: readonly Buffer[]): Buffer {
  if (rng.next() < 0.6) return mutateBytes(rng, pkl, corpus);
  const i = rng.int(pkl.length + 1);
  return Buffer.concat([pkl.subarray(0, i), rng.pick(PICKLE_BITS), pkl.subarray(i + (rng.next() < 0.5 ? 0 : 1))]);
}

function mutate(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  const recs = rng.next() < 0.15 ? undefined : records(input);
  if (!recs?.length) return mutateBytes(rng, input, corpus);
  const pkl = recs.findIndex((r) => r.name.endsWith('/data.pkl'));
  const k = pkl >= 0 && rng.next() < 0.8 ? pkl : rng.int(recs.length);
  const pickles = corpus.flatMap((c) => records(c)?.filter((r) => r.name.endsWith('/data.pkl')).map((r) => r.data) ?? []);
  const data = k === pkl ? mutatePickle(rng, recs[k].data, pickles) : mutateBytes(rng, recs[k].data, [recs[k].data]);
  const out = recs.map((r, j) => ({ name: r.name, data: j === k ? data : r.data }));
  if (rng.next() < 0.1) out.splice(rng.int(out.length), 1); // a record missing
  return zipBytes(out);
}

export const fuzzTarget: FuzzTarget = {
  name: 'torch-bin',
  corpus: () => fixtureFiles('.bin', 64 * 1024).map((f) => fs.readFileSync(f)),
  mutate,
  target: async (input) => {
    fs.writeFileSync(file, input);
    await loadAndFree(n++ % 2 ? () => loadTorchBinSync(file) : () => loadTorchBin(file));
  },
  isClear: namesFile(file),
};
