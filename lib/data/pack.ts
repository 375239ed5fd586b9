// Packing: many short examples in one row instead of one padded row each, as TRL's pack_dataset.
//   'bfd' (default, TRL's default): best-fit decreasing bin packing. Whole examples go into rows of at
//       most seqLen tokens; each row records the lengths of its examples (TRL's seq_lengths), from which
//       collate() makes position ids that restart at every example and the models keep each example's
//       attention to itself (a block-diagonal causal mask): a packed example gets the logits it has alone.
//       The first label of every example is -100, so that no loss crosses an example boundary either.
//   'wrapped': the examples concatenated and cut into blocks of exactly seqLen (run_clm's group_texts);
//       examples are cut in the middle and attend to the ones before them in the block.
import { Dataset } from './dataset';
import { Example, IGNORE_INDEX } from './labels';
import { checkOptions } from '../options';

export type PackingStrategy = 'bfd' | 'wrapped';
export const PACKING_STRATEGIES: readonly PackingStrategy[] = ['bfd', 'wrapped'];

/**
 * A packed row. attentionMask: 0 on a padded last block ('wrapped', remainder 'pad'). seqLengths: the
 * lengths of the examples in the row, in order, summing to its length ('bfd').
 */
export type MaybeMasked = Example & { attentionMask?: Int8Array; seqLengths?: Int32Array };

export interface PackOptions {
  /** The longest row ('bfd') or the length of every block ('wrapped'). */
  seqLen: number;
  /** Put after examples that do not already end with it; null puts nothing. */
  eosTokenId: number | null;
  /** 'bfd' (default) or 'wrapped' (see above). */
  strategy?: PackingStrategy;
  /**
   * 'wrapped' only: what to do with the tokens left after the last full block: 'drop' them (default, as
   * run_clm), or 'pad' them to a block (needs padTokenId; attention 0 and labels -100 on the padding).
   */
  remainder?: 'drop' | 'pad';
  padTokenId?: number | null;
}

/** An example with the EOS packing puts after it (labelled where its last token is, -100 after a masked end). */
function withEos(e: Example, eosTokenId: number | null): Example {
  const n = e.inputIds.length;
  if (eosTokenId === null || (n > 0 && e.inputIds[n - 1] === eosTokenId)) return e;
  const inputIds = new Int32Array(n + 1);
  const labels = new Int32Array(n + 1);
  inputIds.set(e.inputIds);
  labels.set(e.labels);
  inputIds[n] = eosTokenId;
  labels[n] = n > 0 && e.labels[n - 1] !== IGNORE_INDEX ? eosTokenId : IGNORE_INDEX;
  return { inputIds, labels };
}

/** How many examples 'bfd' cuts to seqLen (longer than seqLen once EOS is added). */
export function countOverlong(ds: Iterable<Example>, opts: Pick<PackOptions, 'seqLen' | 'eosTokenId'>): number {
  let n = 0;
  for (const e of ds) {
    const eos = opts.eosTokenId !== null && (e.inputIds.length === 0 || e.inputIds[e.inputIds.length - 1] !== opts.eosTokenId) ? 1 : 0;
    if (e.inputIds.length + eos > opts.seqLen) n++;
  }
  return n;
}

/**
 * Bins by free space 0..capacity: best fit is the fullest bin with room, the least free space ≥ size,
 * found in O(log capacity) by a segment tree of "some bin has this much free space".
 */
class BinsByFreeSpace {
  private readonly size: number;
  private readonly any: Uint8Array;
  private readonly bins: number[][];

  constructor(capacity: number) {
    this.size = 1;
    while (this.size < capacity + 1) this.size *= 2;
    this.any = new Uint8Array(2 * this.size);
    this.bins = Array.from({ length: capacity + 1 }, () => []);
  }

  private mark(free: number): void {
    let i = this.size + free;
    this.any[i] = this.bins[free].length > 0 ? 1 : 0;
    for (i >>= 1; i >= 1; i >>= 1) this.any[i] = this.any[2 * i] | this.any[2 * i + 1];
  }

  add(bin: number, free: number): void {
    this.bins[free].push(bin);
    this.mark(free);
  }

  /** Removes and returns [bin, free] of a bin with the least free space ≥ need, or undefined. */
  takeBestFit(need: number): [number, number] | undefined {
    const free = this.firstAtOrAfter(1, 0, this.size - 1, need);
    if (free < 0) return undefined;
    const bin = this.bins[free].shift()!;
    this.mark(free);
    return [bin, free];
  }

  private firstAtOrAfter(node: number, lo: number, hi: number, need: number): number {
    if (hi < need || !this.any[node]) return -1;
    if (lo === hi) return lo;
    const mid = (lo + hi) >> 1;
    const left = this.firstAtOrAfter(2 * node, lo, mid, need);
    return left >= 0 ? left : this.firstAtOrAfter(2 * node + 1, mid + 1, hi, need);
  }
}

/** Best-fit decreasing: longest first, each into the fullest row it fits in (or a new row). */
function packBfd(examples: Example[], seqLen: number): MaybeMasked[] {
  const order = examples.map((_, i) => i).sort((a, b) => examples[b].inputIds.length - examples[a].inputIds.length || a - b);
  const rows: number[][] = [];
  const space = new BinsByFreeSpace(seqLen);
  for (const i of order) {
    const n = examples[i].inputIds.length;
    if (n === 0) continue;
    const fit = space.takeBestFit(n);
    if (fit === undefined) {
      rows.push([i]);
      if (seqLen - n > 0) space.add(rows.length - 1, seqLen - n);
    } else {
      rows[fit[0]].push(i);
      if (fit[1] - n > 0) space.add(fit[0], fit[1] - n);
    }
  }
  return rows.map((members) => {
    const total = members.reduce((s, i) => s + examples[i].inputIds.length, 0);
    const inputIds = new Int32Array(total);
    const labels = new Int32Array(total);
    const seqLengths = Int32Array.from(members, (i) => examples[i].inputIds.length);
    let at = 0;
    for (const i of members) {
      const e = examples[i];
      inputIds.set(e.inputIds, at);
      labels.set(e.labels, at);
      labels[at] = IGNORE_INDEX; // the first token is not predicted from the previous example's end
      at += e.inputIds.length;
    }
    return { inputIds, labels, seqLengths };
  });
}

function packWrapped(examples: Example[], opts: PackOptions): MaybeMasked[] {
  const { seqLen } = opts;
  const n = examples.reduce((s, e) => s + e.inputIds.length, 0);
  const ids = new Int32Array(n);
  const labels = new Int32Array(n);
  let at = 0;
  for (const e of examples) {
    ids.set(e.inputIds, at);
    labels.set(e.labels, at);
    at += e.inputIds.length;
  }
  const blocks: MaybeMasked[] = [];
  const full = Math.floor(n / seqLen);
  for (let b = 0; b < full; b++)
    blocks.push({ inputIds: ids.slice(b * seqLen, (b + 1) * seqLen), labels: labels.slice(b * seqLen, (b + 1) * seqLen) });
  const rest = n - full * seqLen;
  if (rest > 0 && opts.remainder === 'pad') {
    const id = new Int32Array(seqLen).fill(opts.padTokenId!);
    const lab = new Int32Array(seqLen).fill(IGNORE_INDEX);
    const mask = new Int8Array(seqLen);
    id.set(ids.subarray(full * seqLen, n));
    lab.set(labels.subarray(full * seqLen, n));
    mask.fill(1, 0, rest);
    blocks.push({ inputIds: id, labels: lab, attentionMask: mask });
  }
  if (blocks.length === 0)
    throw new Error(`packDataset: ${n} tokens in all make no block of seqLen ${seqLen}; lower seqLen or pass remainder: 'pad'`);
  return blocks;
}

/**
 * Packs tokenized examples (each followed by EOS unless it ends with one) into rows of seqLen tokens by
 * opts.strategy (see the top of this file). 'bfd' cuts an example longer than seqLen to its first seqLen
 * tokens (as TRL's 'bfd'; countOverlong says how many).
 */
export function packDataset(ds: Dataset<Example>, opts: PackOptions): Dataset<MaybeMasked> {
  checkOptions(opts, { seqLen: true, eosTokenId: true, strategy: true, remainder: true, padTokenId: true }, 'packDataset');
  const { seqLen } = opts;
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`packDataset: seqLen must be a positive integer, got ${seqLen}`);
  const strategy = opts.strategy ?? 'bfd';
  if (!PACKING_STRATEGIES.includes(strategy))
    throw new RangeError(`packDataset: strategy must be one of ${PACKING_STRATEGIES.map((s) => `'${s}'`).join(', ')}, got ${JSON.stringify(strategy)}`);
  if (opts.remainder !== undefined && !['drop', 'pad'].includes(opts.remainder))
    throw new RangeError(`packDataset: remainder must be 'drop' or 'pad', got ${JSON.stringify(opts.remainder)}`);
  if (strategy === 'bfd' && opts.remainder !== undefined)
    throw new Error("packDataset: remainder is for strategy 'wrapped' (strategy 'bfd' packs whole examples and leaves none)");
  if (opts.remainder === 'pad' && (opts.padTokenId === undefined || opts.padTokenId === null))
    throw new Error("packDataset: remainder 'pad' needs padTokenId");
  const examples: Example[] = [];
  for (const e of ds) {
    if (e.labels.length !== e.inputIds.length)
      throw new Error(`packDataset: example ${examples.length} has ${e.inputIds.length} input ids but ${e.labels.length} labels`);
    const full = withEos(e, opts.eosTokenId);
    examples.push(
      strategy === 'bfd' && full.inputIds.length > seqLen
        ? { inputIds: full.inputIds.slice(0, seqLen), labels: full.labels.slice(0, seqLen) }
        : full,
    );
  }
  if (strategy === 'wrapped') return new Dataset(packWrapped(examples, opts));
  const rows = packBfd(examples, seqLen);
  if (rows.length === 0) throw new Error('packDataset: the examples have no tokens');
  return new Dataset(rows);
}
