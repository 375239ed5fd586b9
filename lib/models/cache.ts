// The key/value cache of a causal LM: per layer, the keys and values [B, Hkv, T, D] of every position seen
// so far, so that a decoding step attends to them without recomputing them (transformers' Cache).
// The cache owns its tensors (they outlive the scopes of the forwards that fill it): dispose() it.
import { empty } from '../creation';
import { isGradEnabled } from '../autograd';
import { cat } from '../ops';
import { keep } from '../memory';
import { Tensor } from '../tensor';

export interface KVCacheOptions {
  /**
   * Positions to preallocate (prompt + new tokens). With it, each step writes into preallocated storage
   * (no copy of the past, the buffer grows by doubling if outrun); without it, each step concatenates,
   * which autograd can follow. Preallocation is used only while grad mode is off.
   */
  capacity?: number;
}

export class KVCache {
  private readonly keys: Tensor[] = [];
  private readonly values: Tensor[] = [];
  private readonly lengths: number[] = [];
  /** Per layer: storage preallocated (written in place) rather than exactly filled (concatenated). */
  private readonly preallocated: boolean[] = [];
  private readonly capacity?: number;

  constructor(opts: KVCacheOptions = {}) {
    if (opts.capacity !== undefined && !(Number.isInteger(opts.capacity) && opts.capacity > 0))
      throw new RangeError(`KVCache: capacity must be a positive integer, got ${opts.capacity}`);
    this.capacity = opts.capacity;
  }

  /** Positions cached in layer `layer` (0: the sequence length seen so far), as get_seq_length(). */
  length(layer = 0): number {
    return this.lengths[layer] ?? 0;
  }
  /** Number of layers holding entries. */
  get numLayers(): number {
    return this.keys.length;
  }

  /**
   * Appends k, v [B, Hkv, S, D] to layer `layer` and returns the keys and values of all its positions
   * (views, owned by the caller's scope).
   */
  update(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (layer > this.keys.length) throw new Error(`KVCache.update: layer ${layer} comes before layer ${this.keys.length} was filled`);
    const s = k.shape[2];
    const past = this.lengths[layer] ?? 0;
    const total = past + s;
    const preallocate = this.capacity !== undefined && !isGradEnabled();
    if (layer === this.keys.length) {
      if (preallocate) {
        this.keys.push(allocate(k, Math.max(this.capacity!, s)));
        this.values.push(allocate(v, Math.max(this.capacity!, s)));
        copyInto(this.keys[layer], 0, k);
        copyInto(this.values[layer], 0, v);
      } else {
        // Own handles on the caller's tensors (aliases: same storage, no copy), outside every scope.
        this.keys.push(keep(k.narrow(2, 0, s)));
        this.values.push(keep(v.narrow(2, 0, s)));
      }
      this.lengths.push(s);
      this.preallocated.push(preallocate);
    } else if (preallocate && this.preallocated[layer]) {
      const capacity = this.keys[layer].shape[2];
      if (total > capacity) {
        const positions = Math.max(2 * capacity, total);
        for (const store of [this.keys, this.values]) {
          const bigger = allocate(store[layer], positions);
          const old = store[layer].narrow(2, 0, past);
          copyInto(bigger, 0, old);
          old.dispose();
          store[layer].dispose();
          store[layer] = bigger;
        }
      }
      copyInto(this.keys[layer], past, k);
      copyInto(this.values[layer], past, v);
    } else {
      // Concatenation: differentiable; what a cache without capacity does.
      const kPast = this.keys[layer].narrow(2, 0, past);
      const vPast = this.values[layer].narrow(2, 0, past);
      const kNew = keep(cat([kPast, k], 2));
      const vNew = keep(cat([vPast, v], 2));
      kPast.dispose();
      vPast.dispose();
      this.keys[layer].dispose();
      this.values[layer].dispose();
      this.keys[layer] = kNew;
      this.values[layer] = vNew;
      this.preallocated[layer] = false;
    }
    this.lengths[layer] = total;
    return [this.keys[layer].narrow(2, 0, total), this.values[layer].narrow(2, 0, total)];
  }

  /** Frees every cached tensor; the cache is empty afterwards. */
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.keys.length = 0;
    this.values.length = 0;
    this.lengths.length = 0;
    this.preallocated.length = 0;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Storage for `positions` positions shaped like `like` [B, H, *, D], outside every scope. */
function allocate(like: Tensor, positions: number): Tensor {
  const [b, h, , d] = like.shape;
  return keep(empty([b, h, positions, d], { dtype: like.dtype, device: like.device }));
}

/** dst[:, :, start:start+S] = src */
function copyInto(dst: Tensor, start: number, src: Tensor): void {
  const window = dst.narrow(2, start, src.shape[2]);
  window.copy_(src);
  window.dispose();
}
