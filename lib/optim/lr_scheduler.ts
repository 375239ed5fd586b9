// torch.optim.lr_scheduler.LambdaLR: each group's lr = its initial lr × lambda(step). Constructing it
// takes the first step (lambda(0)), as PyTorch does; call step() after each optimizer.step().
import { BaseHyper, Optimizer } from './optimizer';

/** The factor applied to a group's initial lr at a given scheduler step. */
export type LrLambda = (step: number) => number;

/** What stateDict() returns: plain numbers, ready for JSON. */
export interface LRSchedulerState {
  baseLrs: number[];
  lastEpoch: number;
  stepCount: number;
  lastLr: number[];
}

export class LambdaLR {
  readonly optimizer: Optimizer<BaseHyper>;
  private readonly lrLambdas: LrLambda[];
  /** Each group's initial lr (stored on the group as `initialLr`, as PyTorch's initial_lr). */
  baseLrs: number[];
  /** The number of step() calls since the start, less one (PyTorch's last_epoch). */
  lastEpoch: number;
  stepCount = 0;
  private lastLr: number[] = [];

  /**
   * lrLambda: one function for every group, or one per group. lastEpoch -1 starts afresh; another
   * value resumes, and then each group must already have `initialLr`.
   */
  constructor(optimizer: Optimizer<BaseHyper>, lrLambda: LrLambda | LrLambda[], lastEpoch = -1) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError('LambdaLR: the first argument must be an Optimizer');
    const groups = optimizer.paramGroups;
    if (Array.isArray(lrLambda)) {
      if (lrLambda.length !== groups.length) throw new Error(`LambdaLR: expected ${groups.length} lr lambdas (one per group), but got ${lrLambda.length}`);
      this.lrLambdas = [...lrLambda];
    } else {
      this.lrLambdas = groups.map(() => lrLambda);
    }
    this.optimizer = optimizer;
    groups.forEach((g, i) => {
      if (lastEpoch === -1) g.initialLr ??= g.lr;
      else if (g.initialLr === undefined)
        throw new Error(`LambdaLR: param group ${i} has no initialLr, which resuming (lastEpoch ${lastEpoch}) needs; load the optimizer's state dict first`);
    });
    this.baseLrs = groups.map((g) => g.initialLr as number);
    this.lastEpoch = lastEpoch;
    this.step();
  }

  /** Advances one step and sets every group's lr. */
  step(): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    const lrs = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = lrs[i]));
    this.lastLr = lrs;
  }

  /** The lrs for the current lastEpoch (what step() sets). */
  getLr(): number[] {
    return this.lrLambdas.map((f, i) => this.baseLrs[i] * f(this.lastEpoch));
  }

  /** The lrs the last step() set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): LRSchedulerState {
    return { baseLrs: [...this.baseLrs], lastEpoch: this.lastEpoch, stepCount: this.stepCount, lastLr: [...this.lastLr] };
  }

  /** Restores the counters (the lambdas are the constructor's). The groups' lrs come from the optimizer's own state dict. */
  loadStateDict(s: LRSchedulerState): void {
    const n = this.lrLambdas.length;
    if (s === null || typeof s !== 'object' || !Array.isArray(s.baseLrs) || typeof s.lastEpoch !== 'number')
      throw new TypeError('LambdaLR.loadStateDict: expected { baseLrs, lastEpoch, stepCount, lastLr } from stateDict()');
    if (s.baseLrs.length !== n) throw new Error(`LambdaLR.loadStateDict: the state has ${s.baseLrs.length} base lrs, the optimizer ${n} groups`);
    this.baseLrs = [...s.baseLrs];
    this.lastEpoch = s.lastEpoch;
    this.stepCount = s.stepCount ?? 0;
    this.lastLr = Array.isArray(s.lastLr) ? [...s.lastLr] : this.getLr();
  }
}
