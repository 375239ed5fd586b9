// What a causal LM derives from its inputs before the layers run: position ids and the attention mask
// for scaledDotProductAttention. Built once per forward and shared by every layer.
import { arange } from '../creation';
import { Tensor } from '../tensor';

/** What the attention layers pass to F.scaledDotProductAttention. */
export interface AttentionMaskArgs {
  /** bool [B or 1, 1, S, T]: true where a query may attend to a key. */
  attnMask?: Tensor;
  isCausal: boolean;
}

function checkMask(attentionMask: Tensor, batch: number, total: number): void {
  const s = attentionMask.shape;
  if (s.length !== 2 || s[0] !== batch || s[1] !== total)
    throw new Error(
      `attentionMask must be [batch, past + new tokens] = [${batch}, ${total}], got [${s.join(', ')}]`,
    );
}

/**
 * Position ids [1, S] of the `seqLength` new tokens after `pastLength` cached ones: what transformers'
 * forward uses when it is given none (arange, whatever the attention mask says; generate() passes its
 * own, see generationPositionIds).
 */
export function defaultPositionIds(pastLength: number, seqLength: number, device: string): Tensor {
  const p = arange(pastLength, pastLength + seqLength, { device });
  const out = p.unsqueeze(0);
  p.dispose();
  return out;
}

/**
 * Position ids [B, S] of the last `seqLength` tokens of sequences with attention mask [B, T], as
 * transformers' generate() derives them: real tokens are counted (cumsum(mask) - 1) and padding gets 0,
 * so a left-padded prompt gets the positions it has unpadded.
 */
export function generationPositionIds(attentionMask: Tensor, seqLength: number): Tensor {
  const s = attentionMask.shape;
  if (s.length !== 2 || s[1] < seqLength)
    throw new Error(`attentionMask must be [batch, tokens] with at least ${seqLength} tokens, got [${s.join(', ')}]`);
  const mask = attentionMask.long();
  const counted = mask.cumsum(-1);
  const ids = counted.sub(1);
  const pad = mask.eq(0);
  const filled = ids.maskedFill(pad, 0);
  const out = filled.narrow(1, s[1] - seqLength, seqLength);
  for (const t of [mask, counted, ids, pad, filled]) t.dispose();
  return out;
}

/**
 * The example each token belongs to in packed rows: [B or 1, S] ids, equal within an example, where a new
 * example starts at every position id 0 after the first token (transformers' flash-attention rule for
 * packed sequences; TRL's padding-free packing resets the positions so). undefined when no row restarts
 * (or with a cache: a cache continues one sequence), so that the plain causal paths run. One read of the
 * position ids.
 */
export function packedSequenceIds(positionIds: Tensor | undefined, pastLength: number): Tensor | undefined {
  if (positionIds === undefined || pastLength > 0 || positionIds.device === 'meta') return undefined;
  const s = positionIds.shape;
  if (s.length !== 2) throw new Error(`positionIds must be [batch, seq], got [${s.join(', ')}]`);
  if (s[1] < 2) return undefined;
  const starts = positionIds.eq(0);
  const later = starts.narrow(1, 1, s[1] - 1);
  const any = later.any();
  const packed = any.item() === true;
  let ids: Tensor | undefined;
  if (packed) ids = starts.cumsum(-1);
  for (const t of [later, any, starts]) t.dispose();
  return ids;
}

/** Whether every key of every row is a real token (an all-ones attention mask). */
function noPadding(attentionMask: Tensor): boolean {
  const all = attentionMask.all();
  const yes = all.item() === true;
  all.dispose();
  return yes;
}

/**
 * The mask for `seqLength` queries over `pastLength + seqLength` keys. Without an attention mask (or
 * with one that has no padding) and without a past this is isCausal (the fused kernels' fast path); a single query with no padding needs
 * none; otherwise an explicit bool mask: causal AND key not padding. Query rows with no allowed key
 * (padding positions of a left-padded row) are allowed every key, as transformers does, so that they
 * produce finite values instead of NaN (their outputs are ignored). With opts.slidingWindow, a query at
 * position q also only sees keys k > q - window (transformers' sliding_window_overlay), which needs an
 * explicit mask as soon as the keys outnumber the window. With opts.sequenceIds (packedSequenceIds: packed
 * rows, no past), a query also only sees keys of its own example: the block-diagonal causal mask.
 */
export function causalAttentionMask(
  attentionMask: Tensor | undefined,
  batch: number,
  pastLength: number,
  seqLength: number,
  device: string,
  opts: { slidingWindow?: number; sequenceIds?: Tensor } = {},
): AttentionMaskArgs {
  const total = pastLength + seqLength;
  const seqIds = opts.sequenceIds;
  if (seqIds !== undefined) {
    const s = seqIds.shape;
    if (pastLength !== 0 || s.length !== 2 || (s[0] !== 1 && s[0] !== batch) || s[1] !== seqLength)
      throw new Error(`sequenceIds must be [batch or 1, seq] = [${batch}, ${seqLength}] without a past, got [${s.join(', ')}] after ${pastLength} cached tokens`);
  }
  const window = opts.slidingWindow;
  if (window !== undefined && !(Number.isInteger(window) && window > 0))
    throw new RangeError(`sliding_window must be a positive integer, got ${window}`);
  const windowed = window !== undefined && total > window;
  // A mask without padding (every training batch of equal-length rows) says no more than none: drop it
  // so that the fused kernels' isCausal path runs, as transformers' sdpa mask does (one read of the mask).
  if (attentionMask !== undefined) {
    checkMask(attentionMask, batch, total);
    if (noPadding(attentionMask)) attentionMask = undefined;
  }
  if (attentionMask === undefined && !windowed && seqIds === undefined) {
    if (pastLength === 0 && seqLength > 1) return { isCausal: true };
    if (seqLength === 1) return { isCausal: false };
  }
  const keyPos = arange(total, { device });
  const queryPos0 = arange(pastLength, total, { device });
  const queryPos = queryPos0.unsqueeze(1);
  let causal = keyPos.le(queryPos); // [S, T]
  const temps = [keyPos, queryPos0, queryPos];
  if (windowed) {
    const lowest = queryPos.sub(window);
    const inWindow = keyPos.gt(lowest);
    temps.push(causal, lowest, inWindow);
    causal = causal.logicalAnd(inWindow);
  }
  if (seqIds !== undefined) {
    // [B or 1, S, S]: same example. The diagonal stays allowed, so no query row is left without a key.
    const rows = seqIds.unsqueeze(2);
    const cols = seqIds.unsqueeze(1);
    const same = rows.eq(cols);
    temps.push(causal, rows, cols, same);
    causal = causal.logicalAnd(same);
  }
  let mask: Tensor;
  if (attentionMask === undefined) {
    mask = causal.dim() === 2 ? causal.view(1, 1, seqLength, total) : causal.unsqueeze(1);
    temps.push(causal);
  } else {
    const keys = attentionMask.bool();
    const keys3 = keys.unsqueeze(1); // [B, 1, T]
    const both = causal.logicalAnd(keys3); // [B, S, T]
    const any = both.any(-1, true);
    const none = any.logicalNot();
    const fixed = both.logicalOr(none);
    mask = fixed.unsqueeze(1);
    temps.push(causal, keys, keys3, both, any, none, fixed);
  }
  for (const t of temps) t.dispose();
  return { attnMask: mask, isCausal: false };
}
