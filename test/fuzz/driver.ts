// The fuzz driver every target under test/fuzz shares: a seeded generator, byte and JSON mutators, and a
// loop that feeds mutated corpus inputs to a target for a bounded number of inputs or time and counts
// what happened. A target either accepts an input or throws an Error; the target's `isClear` says which
// errors are the clear ones (naming the file, the key). Anything else is a finding: an unclear error, a
// non-Error throw, or an input slower than `hangMs`. A native crash kills the process: the long-run
// script (scripts/fuzz-long.ts) runs each target in a child and reads the last input it was given.
import * as fs from 'fs';
import { types } from 'util';

/** mulberry32: a small, fast, seedable generator (the same seed gives the same inputs). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

/** Bytes that often matter to parsers: bounds, signs, JSON punctuation, UTF-8 lead bytes. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x2d, 0x30, 0x39, 0x65, 0xc0, 0xe0, 0xf0];

/** One random byte-level edit: flip, set, insert, delete, duplicate a range, truncate, or splice another corpus input. */
export function mutateBytes(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  const b = Buffer.from(input);
  const at = () => rng.int(Math.max(1, b.length));
  switch (rng.int(7)) {
    case 0:
      if (b.length) b[at()] ^= 1 << rng.int(8);
      return b;
    case 1:
      if (b.length) b[at()] = rng.pick(INTERESTING_BYTES);
      return b;
    case 2: {
      const i = at();
      return Buffer.concat([b.subarray(0, i), Buffer.from([rng.pick(INTERESTING_BYTES)]), b.subarray(i)]);
    }
    case 3: {
      const i = at();
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + rng.int(16))]);
    }
    case 4: {
      const i = at();
      const j = Math.min(b.length, i + 1 + rng.int(64));
      return Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
    }
    case 5:
      return b.subarray(0, at());
    default: {
      const other = rng.pick(corpus);
      const i = at();
      const j = rng.int(Math.max(1, other.length));
      return Buffer.concat([b.subarray(0, i), other.subarray(j)]);
    }
  }
}

/** JSON values that break naive readers: huge, negative, fractional, non-finite, wrong types, deep nests. */
function hostileValue(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => 2 ** 31,
    () => 2 ** 53 + 2,
    () => -1,
    () => 0,
    () => 1.5,
    () => 1e308,
    () => Number.NaN,
    () => '',
    () => 'x'.repeat(rng.int(300)),
    () => null,
    () => true,
    () => [],
    () => ({}),
    () => [rng.int(10), 'a', null],
    () => JSON.parse('{"__proto__": {"polluted": 1}}'),
  ])();
}

/** One structural edit of a JSON object: a key's value replaced, a key removed or added (also '__proto__', 'constructor'). */
export function mutateJsonValue(rng: Rng, value: unknown): unknown {
  const obj = structuredClone(value);
  // Walk to a random object or array inside.
  let node: unknown = obj;
  for (let depth = 0; depth < 3 && node !== null && typeof node === 'object' && rng.next() < 0.4; depth++) {
    const kids = Object.values(node as object).filter((v) => v !== null && typeof v === 'object');
    if (!kids.length) break;
    node = rng.pick(kids);
  }
  if (node === null || typeof node !== 'object') return hostileValue(rng);
  const rec = node as Record<string, unknown>;
  const keys = Object.keys(rec);
  const set = (k: string, v: unknown) => Object.defineProperty(rec, k, { value: v, enumerable: true, writable: true, configurable: true });
  switch (rng.int(4)) {
    case 0:
      if (keys.length) set(rng.pick(keys), hostileValue(rng));
      break;
    case 1:
      if (keys.length) delete rec[rng.pick(keys)];
      break;
    case 2:
      set(rng.pick(['__proto__', 'constructor', 'toString', 'unknown_key', ...keys]), hostileValue(rng));
      break;
    default:
      if (keys.length) set(rng.pick(keys), rec[rng.pick(keys)]);
  }
  return obj;
}

/** A JSON text made from a corpus input: mostly a structural edit (written with NaN as Python writes it), sometimes a byte edit. */
export function mutateJson(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  if (rng.next() < 0.3) return mutateBytes(rng, input, corpus);
  let value: unknown;
  try {
    value = JSON.parse(input.toString('utf8'));
  } catch {
    return mutateBytes(rng, input, corpus);
  }
  let v = value;
  for (let i = 1 + rng.int(3); i > 0; i--) v = mutateJsonValue(rng, v);
  const text = JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `@@${x}@@` : x), 2);
  return Buffer.from((text ?? 'null').replace(/"@@(NaN|-?Infinity)@@"/g, '$1'));
}

export interface FuzzOptions {
  name: string;
  seed: number;
  /** Inputs to start from (the test fixtures): each is also run unmutated first. */
  corpus: Buffer[];
  /** Default mutateBytes. */
  mutate?: (rng: Rng, input: Buffer, corpus: readonly Buffer[]) => Buffer;
  /** Runs one input; throws on a refused input. */
  target: (input: Buffer) => unknown | Promise<unknown>;
  /** Whether an error is a clear one (an Error that names what was wrong). */
  isClear: (e: Error, input: Buffer) => boolean;
  /** Stop after this many inputs... */
  maxInputs: number;
  /** ...or this much time. */
  maxMs: number;
  /** An input taking longer than this counts as a hang (default 2000 ms). */
  hangMs?: number;
  /** Called with each input before it runs (the long-run script records it, to name what crashed a child). */
  onInput?: (input: Buffer, index: number) => void;
}

export interface Finding {
  kind: 'unclear' | 'crash' | 'hang';
  message: string;
  input: string;
}

export interface FuzzCounts {
  name: string;
  seed: number;
  inputs: number;
  accepted: number;
  clearErrors: number;
  /** Errors that do not say what was wrong (a bare SyntaxError, a TypeError from inside). */
  unclear: number;
  /** Throws of non-Errors (native crashes are counted by the long-run script). */
  crashes: number;
  hangs: number;
  ms: number;
  findings: Finding[];
}

/** Runs the fuzz loop; the same options give the same inputs. */
export async function fuzz(opts: FuzzOptions): Promise<FuzzCounts> {
  const rng = new Rng(opts.seed);
  const mutate = opts.mutate ?? mutateBytes;
  const hangMs = opts.hangMs ?? 2000;
  const counts: FuzzCounts = { name: opts.name, seed: opts.seed, inputs: 0, accepted: 0, clearErrors: 0, unclear: 0, crashes: 0, hangs: 0, ms: 0, findings: [] };
  const start = Date.now();
  const note = (kind: Finding['kind'], message: string, input: Buffer) => {
    if (counts.findings.length < 20) counts.findings.push({ kind, message: message.slice(0, 300), input: input.toString('utf8').slice(0, 2000) });
  };
  for (let i = 0; i < opts.maxInputs && Date.now() - start < opts.maxMs; i++) {
    const input = i < opts.corpus.length ? opts.corpus[i] : mutate(rng, rng.pick(opts.corpus), opts.corpus);
    opts.onInput?.(input, i);
    counts.inputs++;
    const t0 = Date.now();
    try {
      await opts.target(input);
      counts.accepted++;
    } catch (e) {
      // (util.types.isNativeError: errors the addon throws come from Node's realm, not jest's sandbox)
      if (!(e instanceof Error) && !types.isNativeError(e)) {
        counts.crashes++;
        note('crash', `threw a non-Error: ${String(e)}`, input);
      } else if (opts.isClear(e as Error, input)) counts.clearErrors++;
      else {
        counts.unclear++;
        note('unclear', `${(e as Error).name}: ${(e as Error).message}`, input);
      }
    }
    const took = Date.now() - t0;
    if (took > hangMs) {
      counts.hangs++;
      note('hang', `took ${took} ms`, input);
    }
  }
  counts.ms = Date.now() - start;
  return counts;
}

/** Reads every file of a list into a corpus (fixtures). */
export function readCorpus(files: string[]): Buffer[] {
  return files.map((f) => fs.readFileSync(f));
}

/** One line of the results table. */
export function countsRow(c: FuzzCounts): string {
  return `| ${c.name} | ${c.seed} | ${c.inputs} | ${c.accepted} | ${c.clearErrors} | ${c.unclear} | ${c.crashes} | ${c.hangs} | ${(c.ms / 1000).toFixed(1)} |`;
}
export const COUNTS_HEADER = '| target | seed | inputs | accepted | clear errors | unclear errors | crashes | hangs | seconds |\n|---|---|---|---|---|---|---|---|---|';
