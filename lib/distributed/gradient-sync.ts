// DistributedDataParallel's gradient synchronization for the trainable parameters only: an identical start
// on every rank (rank 0's values broadcast), then per optimizer step the gradients summed over ranks in
// buckets, each bucket one flat all-reduce (PyTorch's bucket_cap_mb, 25 MB by default). With overlap (the
// default) a native hook after each parameter's gradient accumulation issues a bucket's all-reduce as soon
// as backward has produced all of its gradients, so communication runs while backward goes on (buckets in
// their order on every rank); without it, every bucket goes out after backward. Either way the native
// reducer flattens, sums and writes back the gradients (src/grad_reducer.h). Micro-batches of a step
// accumulate locally and only the last one's backward syncs (DDP's no_sync on the others). Frozen base
// weights are never sent. The trainer weights every micro-batch by its share of the global label tokens,
// so the summed gradient is the gradient of the global token-mean loss.
import { noGrad } from '../autograd';
import { ITEMSIZE } from '../dtype';
import { Parameter } from '../nn';
import { keep, scope } from '../memory';
import { cat } from '../ops';
import { Tensor } from '../tensor';
import { native } from '../native';
import { broadcast } from './process-group';

export interface GradientSyncOptions {
  /** Bucket size in MB (PyTorch's bucket_cap_mb, default 25). */
  bucketCapMb?: number;
  /**
   * Issue each bucket's all-reduce from backward, as soon as its gradients are there (default true). Off for
   * a step whose micro-batch runs several backward passes (gradient checkpointing segment by segment).
   */
  overlap?: boolean;
}

// The native reducer of a GradientSync that was never disposed is freed with it.
const reducers = new FinalizationRegistry<number>((id) => native.distReducerFree(id));

/** PyTorch DDP's default bucket size. */
export const DEFAULT_BUCKET_CAP_MB = 25;

export class GradientSync implements Disposable {
  /** Parameters grouped into buckets of one dtype and device, each at most bucketCapMb (a larger parameter alone). */
  readonly buckets: Parameter[][];
  /** Bytes each rank contributes to the all-reduces of one step (the trainable gradients). */
  readonly bytesPerStep: number;

  /** Whether bucket all-reduces are issued from backward. */
  readonly overlap: boolean;
  private reducer?: number;

  constructor(params: Parameter[], opts: GradientSyncOptions = {}) {
    const cap = (opts.bucketCapMb ?? DEFAULT_BUCKET_CAP_MB) * 1024 * 1024;
    if (!(cap > 0)) throw new RangeError(`GradientSync: bucketCapMb must be positive, got ${opts.bucketCapMb}`);
    this.buckets = [];
    let bytes = 0;
    // PyTorch fills buckets in reverse registration order (roughly the order backward produces gradients).
    const open = new Map<string, { params: Parameter[]; bytes: number }>();
    for (const p of [...params].reverse()) {
      const key = `${p.dtype}@${p.device}`;
      const size = p.numel() * ITEMSIZE[p.dtype];
      bytes += size;
      let b = open.get(key);
      if (b !== undefined && b.bytes + size > cap && b.params.length > 0) {
        this.buckets.push(b.params);
        b = undefined;
      }
      if (b === undefined) {
        b = { params: [], bytes: 0 };
        open.set(key, b);
      }
      b.params.push(p);
      b.bytes += size;
    }
    for (const b of open.values()) if (b.params.length) this.buckets.push(b.params);
    this.bytesPerStep = bytes;
    this.overlap = opts.overlap ?? true;
  }

  /**
   * Call before each backward of a step: `sync` true for the step's last micro-batch (its backward issues the
   * buckets as they fill), false for the others (no_sync: they accumulate locally). Without overlap every backward only accumulates.
   */
  prepareForBackward(sync: boolean): void {
    native.distReducerPrepare(this.ensureReducer(), sync && this.overlap);
  }

  // Made on first use, so that a dispose() between trainings leaves no hooks and a later training works.
  private ensureReducer(): number {
    if (this.reducer === undefined) {
      this.reducer = native.distReducerNew(this.buckets.map((b) => b.map((p) => p.handle)));
      reducers.register(this, this.reducer, this);
    }
    return this.reducer;
  }

  /** Buckets the last synced backward issued before it returned (with overlap; else 0). */
  get bucketsIssuedDuringBackward(): number {
    return this.reducer === undefined ? 0 : native.distReducerIssuedDuringBackward(this.reducer);
  }

  /** Removes the gradient hooks (a later prepareForBackward makes them again). */
  dispose(): void {
    if (this.reducer === undefined) return;
    reducers.unregister(this);
    native.distReducerFree(this.reducer);
    this.reducer = undefined;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Copies rank `src`'s parameter values to every rank (DDP's construction-time broadcast). */
  async broadcastParameters(src = 0): Promise<void> {
    const flats = this.buckets.map((b) => keep(scope(() => noGrad(() => cat(b.map((p) => p.detach().reshape(-1)))))));
    try {
      await broadcast(flats, src);
      scope(() => noGrad(() => this.buckets.forEach((b, i) => scatterInto(flats[i], b))));
    } finally {
      flats.forEach((f) => f.dispose());
    }
  }

  /**
   * Sums every parameter's gradient over the ranks, in place (a parameter without a gradient on this rank
   * counts as zeros and has one afterwards, so every rank's optimizer sees the same gradients): issues the
   * buckets the last backward did not (all of them without overlap), then waits for every one.
   */
  async allReduceGradients(): Promise<void> {
    return native.distReducerFinishAsync(this.ensureReducer());
  }
}

/** Copies consecutive pieces of `flat` into the parameters of the bucket (inside a scope). */
function scatterInto(flat: Tensor, bucket: Parameter[]): void {
  let at = 0;
  for (const p of bucket) {
    const n = p.numel();
    p.copy_(flat.narrow(0, at, n).view(p.shape));
    at += n;
  }
}
