// Seeded shuffles for datasets: a small deterministic generator in JavaScript, so that the order of
// the data depends on the seed alone (not on the torch generator's state, which training also draws on).

/** mulberry32: a 32-bit generator; returns floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from several integers (seed and epoch, say), well mixed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    if (!Number.isInteger(p)) throw new TypeError(`seed parts must be integers, got ${p}`);
    // Both 32-bit halves of the integer, so that large seeds do not collide.
    for (const word of [p >>> 0, Math.floor(p / 4294967296) >>> 0]) {
      h = Math.imul(h ^ word, 0x01000193) >>> 0;
      h ^= h >>> 13;
    }
  }
  return h >>> 0;
}

/** A permutation of 0..n-1 (Fisher-Yates) that depends only on the seed. */
export function permutation(n: number, seed: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  const next = rng(mixSeed(seed));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
