// Dynamic loss scaling for float16 training, as torch.amp.GradScaler: the loss is multiplied by a large
// scale before backward so that small float16 gradients do not flush to zero; the gradients are divided
// by it again before clipping and the update. A step whose gradients overflowed (inf or NaN) is skipped
// and the scale halved; after `growthInterval` good steps in a row it doubles.
import { noGrad } from '../autograd';
import { Tensor } from '../tensor';

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
}

/** What stateDict() returns (PyTorch's key names). */
export interface GradScalerState {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

export class GradScaler {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  private growthTracker = 0;

  constructor(opts: GradScalerOptions = {}) {
    this.scale = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (!(this.scale > 0) || !(this.growthFactor > 1) || !(this.backoffFactor > 0 && this.backoffFactor < 1) || !(this.growthInterval >= 1))
      throw new RangeError('GradScaler: needs initScale > 0, growthFactor > 1, 0 < backoffFactor < 1 and growthInterval >= 1');
  }

  /** Divides the gradients of `params` by the scale, in place. */
  unscale(params: Iterable<Tensor>): void {
    const inv = 1 / this.scale;
    noGrad(() => {
      for (const p of params) {
        const g = p.grad;
        if (g === undefined) continue;
        g.mul_(inv);
        g.dispose();
      }
    });
  }

  /** After a step: back off when the gradients were not finite (the step was skipped), else maybe grow. */
  update(foundInf: boolean): void {
    if (foundInf) {
      this.scale *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker === this.growthInterval) {
      this.scale *= this.growthFactor;
      this.growthTracker = 0;
    }
  }

  stateDict(): GradScalerState {
    return {
      scale: this.scale,
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.growthTracker,
    };
  }

  loadStateDict(s: GradScalerState): void {
    if (s === null || typeof s !== 'object' || typeof s.scale !== 'number' || typeof s._growth_tracker !== 'number')
      throw new TypeError('GradScaler.loadStateDict: expected { scale, _growth_tracker, ... } from stateDict()');
    this.scale = s.scale;
    this.growthFactor = s.growth_factor ?? this.growthFactor;
    this.backoffFactor = s.backoff_factor ?? this.backoffFactor;
    this.growthInterval = s.growth_interval ?? this.growthInterval;
    this.growthTracker = s._growth_tracker;
  }
}
