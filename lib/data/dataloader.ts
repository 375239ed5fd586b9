// A DataLoader as PyTorch's: batches of a dataset in order or in a seeded random order per epoch. The
// tensors of a batch are made when the batch is reached, so memory holds one batch at a time; the
// caller (or a scope around the step) disposes them.
import { Batch, collate, CollateOptions, MaybeMasked } from './collate';
import { Dataset } from './dataset';
import { DistributedSampler } from './distributed-sampler';
import { mixSeed, permutation } from './random';
import { Tokenizer } from './tokenizer';
import { checkOptions, OptionKeys } from '../options';

export interface DataLoaderOptions extends CollateOptions {
  batchSize?: number;
  /** A new seeded order each epoch (seed and epoch decide it). Default false. */
  shuffle?: boolean;
  seed?: number;
  /** Leave out the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Takes padTokenId and paddingSide from it when they are not given. */
  tokenizer?: Tokenizer;
  /** This rank's share of each epoch's order (data-parallel training). */
  sampler?: DistributedSampler;
}

const DATALOADER_OPTIONS: OptionKeys<DataLoaderOptions> = {
  batchSize: true, shuffle: true, seed: true, dropLast: true, tokenizer: true, sampler: true,
  padTokenId: true, paddingSide: true, padding: true, maxLength: true, padToMultipleOf: true, device: true,
}; // prettier-ignore

export class DataLoader implements Iterable<Batch> {
  readonly dataset: Dataset<MaybeMasked>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly sampler?: DistributedSampler;
  /** The epoch the plain iterator walks (setEpoch, as DistributedSampler.set_epoch). */
  epoch = 0;
  private readonly collateOptions: CollateOptions;

  constructor(dataset: Dataset<MaybeMasked>, opts: DataLoaderOptions = {}) {
    checkOptions(opts, DATALOADER_OPTIONS, 'DataLoader');
    this.dataset = dataset;
    this.batchSize = opts.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    this.dropLast = opts.dropLast ?? false;
    if (opts.sampler !== undefined && !(opts.sampler instanceof DistributedSampler))
      throw new TypeError('DataLoader: `sampler` must be a DistributedSampler');
    this.sampler = opts.sampler;
    const { tokenizer, batchSize: _b, shuffle: _s, seed: _seed, dropLast: _d, sampler: _sm, ...collateOptions } = opts;
    this.collateOptions = {
      ...collateOptions,
      padTokenId: opts.padTokenId !== undefined ? opts.padTokenId : tokenizer?.padTokenId,
      paddingSide: opts.paddingSide ?? tokenizer?.paddingSide,
    };
    if (this.length === 0)
      throw new Error(`DataLoader: ${dataset.length} examples make no batch of ${this.batchSize} with dropLast`);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.sampler ? this.sampler.numSamples(this.dataset.length) : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  /** The order of the examples in `epoch` (this rank's share of it with a sampler). */
  order(epoch = this.epoch): number[] {
    const n = this.dataset.length;
    const all = this.shuffle ? permutation(n, mixSeed(this.seed, epoch)) : Array.from({ length: n }, (_, i) => i);
    return this.sampler ? this.sampler.shard(all) : all;
  }

  /** The batches of `epoch`, from batch `start` on (to resume inside an epoch). */
  *batches(opts: { epoch?: number; start?: number } = {}): Generator<Batch> {
    const order = this.order(opts.epoch ?? this.epoch);
    for (let b = opts.start ?? 0; b < this.length; b++) {
      const idx = order.slice(b * this.batchSize, (b + 1) * this.batchSize);
      yield collate(
        idx.map((i) => this.dataset.get(i)),
        this.collateOptions,
      );
    }
  }

  [Symbol.iterator](): Iterator<Batch> {
    return this.batches();
  }
}
