// The sliding-window causal mask (transformers' sliding_window_overlay AND causal): a query at position q
// sees keys q - window < k <= q, for a whole sequence and for the steps of a KV-cached generate().
import { scope, tensor } from '../lib';
import { causalAttentionMask } from '../lib/models/attention-mask';

/** The mask as booleans [B][S][T], from its definition. */
function expectedMask(past: number, seq: number, window: number | undefined, keys?: number[][]): boolean[][][] {
  const batch = keys?.length ?? 1;
  return Array.from({ length: batch }, (_, b) => {
    const rows = Array.from({ length: seq }, (_, i) => {
      const q = past + i;
      return Array.from({ length: past + seq }, (_, k) => k <= q && (window === undefined || k > q - window) && (keys === undefined || keys[b][k] === 1));
    });
    // rows that allow nothing (padding queries) allow everything, as transformers
    return rows.map((r) => (r.some(Boolean) ? r : r.map(() => true)));
  });
}

test.each([
  [0, 9, 3],
  [0, 3, 3],
  [0, 4, 3],
  [7, 1, 3],
  [2, 1, 3],
  [5, 4, 2],
  [6, 1, 1],
])('past %i, %i new tokens, window %i: keys q - window < k <= q', (past, seq, window) => {
  scope(() => {
    const m = causalAttentionMask(undefined, 1, past, seq, 'cpu', { slidingWindow: window });
    const total = past + seq;
    if (total <= window) {
      // within the window the mask is the causal one, and the fast paths stay
      const full = causalAttentionMask(undefined, 1, past, seq, 'cpu');
      expect(m.isCausal).toBe(full.isCausal);
      expect(m.attnMask === undefined).toBe(full.attnMask === undefined);
      return;
    }
    expect(m.isCausal).toBe(false);
    expect(m.attnMask!.shape).toEqual([1, 1, seq, total]);
    expect(m.attnMask!.squeeze(1).tolist()).toEqual(expectedMask(past, seq, window));
  });
});

test('with left padding and a past, the window and the padding combine', () => {
  scope(() => {
    const keys = [
      [0, 0, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 1],
    ];
    for (const [past, seq] of [
      [0, 7],
      [4, 3],
      [6, 1],
    ]) {
      const m = causalAttentionMask(tensor(keys).long(), 2, past, seq, 'cpu', { slidingWindow: 3 });
      expect(m.attnMask!.squeeze(1).tolist()).toEqual(expectedMask(past, seq, 3, keys));
    }
  });
  expect(() => causalAttentionMask(undefined, 1, 0, 4, 'cpu', { slidingWindow: 0 })).toThrow(/sliding_window must be a positive integer, got 0/);
});
