// Examples -> batches. Padding: to the longest example of the batch or to maxLength, attention mask 0
// and label -100 on the padding (transformers' DataCollatorForSeq2Seq / TRL's collator). Rows packed by
// packDataset's 'bfd' (pack.ts) also get position ids that restart at each of their examples, as TRL's
// padding-free collator makes them from seq_lengths: the models read the restarts as example boundaries.
import { tensor } from '../creation';
import { Device, Tensor } from '../tensor';
import { Dataset } from './dataset';
import { IGNORE_INDEX } from './labels';
import { PaddingSide } from './tokenizer';
import { MaybeMasked } from './pack';

/** int64 [batch, length] tensors; the caller (or a scope) disposes them. */
export interface Batch {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
  /** Packed rows (examples with seqLengths): positions restarting at 0 at every example; padding counts on from 0. */
  positionIds?: Tensor;
}

export interface CollateOptions {
  /** Needed when some example is shorter than the batch length. */
  padTokenId?: number | null;
  /** Default 'right'. */
  paddingSide?: PaddingSide;
  /** 'longest' (default) pads to the longest example of the batch, 'max_length' to maxLength. */
  padding?: 'longest' | 'max_length';
  maxLength?: number;
  padToMultipleOf?: number;
  device?: Device;
}

export type { MaybeMasked } from './pack';

/** Positions of a row: 0.. within each example of seqLengths (or of the whole row), 0.. again over the padding. */
function positions(e: MaybeMasked, i: number, length: number, at: number): Int32Array {
  const n = e.inputIds.length;
  const lengths = e.seqLengths ?? Int32Array.of(n);
  const sum = lengths.reduce((a, b) => a + b, 0);
  if (sum !== n || lengths.some((l) => !(l > 0))) throw new Error(`collate: example ${i} has ${n} tokens but seqLengths [${lengths.join(', ')}] (positive, summing to its length)`);
  const p = new Int32Array(length);
  for (let j = 0; j < at; j++) p[j] = j; // left padding
  let k = at;
  for (const l of lengths) for (let j = 0; j < l; j++) p[k++] = j;
  for (let j = 0; k < length; j++) p[k++] = j; // right padding
  return p;
}

function int64(rows: Int32Array[] | Int8Array[], length: number, device?: Device): Tensor {
  const flat = new BigInt64Array(rows.length * length);
  rows.forEach((r, i) => {
    for (let j = 0; j < length; j++) flat[i * length + j] = BigInt(r[j]);
  });
  return tensor(flat, { shape: [rows.length, length], device });
}

/** Pads examples into one batch of int64 tensors. */
export function collate(examples: MaybeMasked[], opts: CollateOptions = {}): Batch {
  if (examples.length === 0) throw new Error('collate: no examples');
  const longest = examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0);
  let length = longest;
  if (opts.padding === 'max_length') {
    if (opts.maxLength === undefined) throw new Error("collate: padding 'max_length' needs maxLength");
    length = opts.maxLength;
  }
  if (opts.padToMultipleOf && length % opts.padToMultipleOf !== 0) length += opts.padToMultipleOf - (length % opts.padToMultipleOf);
  const side = opts.paddingSide ?? 'right';
  const ids: Int32Array[] = [];
  const labels: Int32Array[] = [];
  const mask: Int8Array[] = [];
  const packed = examples.some((e) => e.seqLengths !== undefined);
  const pos: Int32Array[] = [];
  examples.forEach((e, i) => {
    const n = e.inputIds.length;
    if (e.labels.length !== n) throw new Error(`collate: example ${i} has ${n} input ids but ${e.labels.length} labels`);
    if (n > length)
      throw new Error(`collate: example ${i} has ${n} tokens, more than maxLength ${length}; tokenize with maxLength to cut it`);
    const pad = length - n;
    if (pad > 0 && (opts.padTokenId === undefined || opts.padTokenId === null))
      throw new Error('collate: examples differ in length and there is no padTokenId (set tokenizer.padToken, e.g. to its eosToken)');
    const at = side === 'right' ? 0 : pad;
    const id = new Int32Array(length).fill(opts.padTokenId ?? 0);
    const lab = new Int32Array(length).fill(IGNORE_INDEX);
    const m = new Int8Array(length);
    id.set(e.inputIds, at);
    lab.set(e.labels, at);
    if (e.attentionMask) m.set(e.attentionMask, at);
    else m.fill(1, at, at + n);
    ids.push(id);
    labels.push(lab);
    mask.push(m);
    if (packed) pos.push(positions(e, i, length, at));
  });
  const made: Tensor[] = [];
  try {
    made.push(int64(ids, length, opts.device));
    made.push(int64(mask, length, opts.device));
    made.push(int64(labels, length, opts.device));
    if (packed) made.push(int64(pos, length, opts.device));
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
  const batch: Batch = { inputIds: made[0], attentionMask: made[1], labels: made[2] };
  if (packed) batch.positionIds = made[3];
  return batch;
}
