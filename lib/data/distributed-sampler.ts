// PyTorch's DistributedSampler: rank r of N reads every N-th example of the epoch's order (order[r],
// order[r+N], ...), so the k-th batch of b on each rank together hold the k-th batch of N·b of one
// process, and every rank draws the same seeded order per epoch. When N does not divide the dataset the
// order is padded with its own first examples (as PyTorch does) so that every rank has as many batches;
// dropLast instead leaves the tail out.
import { checkOptions, OptionKeys } from '../options';

export interface DistributedSamplerOptions {
  /** The number of ranks (WORLD_SIZE). */
  numReplicas: number;
  /** This rank (RANK). */
  rank: number;
  /** Leave out the tail that N does not divide instead of repeating examples. Default false. */
  dropLast?: boolean;
}

const SAMPLER_OPTIONS: OptionKeys<DistributedSamplerOptions> = { numReplicas: true, rank: true, dropLast: true };

export class DistributedSampler {
  readonly numReplicas: number;
  readonly rank: number;
  readonly dropLast: boolean;

  constructor(opts: DistributedSamplerOptions) {
    checkOptions(opts, SAMPLER_OPTIONS, 'DistributedSampler');
    if (!Number.isInteger(opts.numReplicas) || opts.numReplicas < 1)
      throw new RangeError(`DistributedSampler: numReplicas must be a positive integer, got ${opts.numReplicas}`);
    if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= opts.numReplicas)
      throw new RangeError(`DistributedSampler: rank must be an integer in [0, ${opts.numReplicas}), got ${opts.rank}`);
    this.numReplicas = opts.numReplicas;
    this.rank = opts.rank;
    this.dropLast = opts.dropLast ?? false;
  }

  /** Examples per rank per epoch, for a dataset of n. */
  numSamples(n: number): number {
    return this.dropLast ? Math.floor(n / this.numReplicas) : Math.ceil(n / this.numReplicas);
  }

  /** This rank's share of an epoch's order (indices into the dataset). */
  shard(order: number[]): number[] {
    const per = this.numSamples(order.length);
    const total = per * this.numReplicas;
    let all = order.slice(0, total);
    while (all.length < total) all = all.concat(order.slice(0, total - all.length));
    const out: number[] = [];
    for (let i = this.rank; i < total; i += this.numReplicas) out.push(all[i]);
    return out;
  }
}
