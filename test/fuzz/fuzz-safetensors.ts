// Fuzz target: the safetensors reader (lib/io/safetensors.ts), sync and async alike, on the fixtures'
// .safetensors files mutated as bytes and, in their JSON header, as structure (the length prefix then
// rewritten to fit, so that the header's checks are reached).
import { loadSafetensors, loadSafetensorsSync } from '../../lib';
import { mutateBytes, mutateJson, Rng } from './driver';
import { FuzzTarget, fixtureFiles, loadAndFree, namesFile, scratchFile } from './target';
import * as fs from 'fs';

const file = scratchFile('safetensors');
let n = 0;

function mutate(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  if (rng.next() < 0.5 || input.length < 8) return mutateBytes(rng, input, corpus);
  const len = input.readBigUInt64LE(0);
  if (len > BigInt(input.length - 8)) return mutateBytes(rng, input, corpus);
  const header = input.subarray(8, 8 + Number(len));
  const data = input.subarray(8 + Number(len));
  const json = mutateJson(rng, header, [header]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  // Sometimes the data is cut or extended too, so that ranges and the file's end disagree.
  const tail = rng.next() < 0.2 ? data.subarray(0, rng.int(data.length + 1)) : data;
  return Buffer.concat([prefix, json, tail]);
}

export const fuzzTarget: FuzzTarget = {
  name: 'safetensors',
  corpus: () => fixtureFiles('.safetensors', 64 * 1024).map((f) => fs.readFileSync(f)),
  mutate,
  target: async (input) => {
    fs.writeFileSync(file, input);
    // alternately the blocking and the worker-thread reader
    await loadAndFree(n++ % 2 ? () => loadSafetensorsSync(file) : () => loadSafetensors(file));
  },
  isClear: namesFile(file),
};
