// Examples -> batches. Padding: to the longest example of the batch or to maxLength, attention mask 0
// and label -100 on the padding (transformers' DataCollatorForSeq2Seq / TRL's collator). Packing: the
// examples concatenated, an EOS between them, cut into blocks of seqLen (run_clm's group_texts); the
// labels follow the ids, so -100 stays where the examples had it.
import { tensor } from '../creation';
import { Device, Tensor } from '../tensor';
import { Dataset } from './dataset';
import { Example, IGNORE_INDEX } from './labels';
import { PaddingSide } from './tokenizer';
import { checkOptions } from '../options';

/** int64 [batch, length] tensors; the caller (or a scope) disposes them. */
export interface Batch {
  inputIds: Tensor;
  attentionMask: Tensor;
  labels: Tensor;
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

/** Examples packed by packDataset carry their attention mask (0 only on a padded last block). */
export type MaybeMasked = Example & { attentionMask?: Int8Array };

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
  });
  const made: Tensor[] = [];
  try {
    made.push(int64(ids, length, opts.device));
    made.push(int64(mask, length, opts.device));
    made.push(int64(labels, length, opts.device));
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
  return { inputIds: made[0], attentionMask: made[1], labels: made[2] };
}

export interface PackOptions {
  seqLen: number;
  /** Put between examples that do not already end with it; null puts nothing. */
  eosTokenId: number | null;
  /**
   * What to do with the tokens left after the last full block: 'drop' them (default, as run_clm), or
   * 'pad' them to a block (needs padTokenId; attention 0 and labels -100 on the padding).
   */
  remainder?: 'drop' | 'pad';
  padTokenId?: number | null;
}

/**
 * Concatenates the examples (each followed by EOS unless it ends with one) and cuts the stream into
 * blocks of seqLen. The EOS put between two examples is a label where the example's last token is
 * (so text learns to stop) and -100 after a masked end.
 */
export function packDataset(ds: Dataset<Example>, opts: PackOptions): Dataset<MaybeMasked> {
  checkOptions(opts, { seqLen: true, eosTokenId: true, remainder: true, padTokenId: true }, 'packDataset');
  const { seqLen } = opts;
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new RangeError(`packDataset: seqLen must be a positive integer, got ${seqLen}`);
  let total = 0;
  for (const e of ds) total += e.inputIds.length + 1;
  const ids = new Int32Array(total);
  const labels = new Int32Array(total);
  let n = 0;
  for (const e of ds) {
    ids.set(e.inputIds, n);
    labels.set(e.labels, n);
    n += e.inputIds.length;
    const last = e.inputIds.length ? e.inputIds[e.inputIds.length - 1] : -1;
    if (opts.eosTokenId !== null && last !== opts.eosTokenId) {
      ids[n] = opts.eosTokenId;
      labels[n] = e.labels.length && e.labels[e.labels.length - 1] !== IGNORE_INDEX ? opts.eosTokenId : IGNORE_INDEX;
      n++;
    }
  }
  const blocks: MaybeMasked[] = [];
  const full = Math.floor(n / seqLen);
  for (let b = 0; b < full; b++)
    blocks.push({ inputIds: ids.slice(b * seqLen, (b + 1) * seqLen), labels: labels.slice(b * seqLen, (b + 1) * seqLen) });
  const rest = n - full * seqLen;
  if (rest > 0 && opts.remainder === 'pad') {
    if (opts.padTokenId === undefined || opts.padTokenId === null)
      throw new Error("packDataset: remainder 'pad' needs padTokenId");
    const id = new Int32Array(seqLen).fill(opts.padTokenId);
    const lab = new Int32Array(seqLen).fill(IGNORE_INDEX);
    const mask = new Int8Array(seqLen);
    id.set(ids.subarray(full * seqLen, n));
    lab.set(labels.subarray(full * seqLen, n));
    mask.fill(1, 0, rest);
    blocks.push({ inputIds: id, labels: lab, attentionMask: mask });
  }
  if (blocks.length === 0)
    throw new Error(`packDataset: ${n} tokens in all make no block of seqLen ${seqLen}; lower seqLen or pass remainder: 'pad'`);
  return new Dataset(blocks);
}
