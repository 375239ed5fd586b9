// torch.optim.AdamW: Adam with decoupled weight decay (p *= 1 - lr * weightDecay), bias-corrected
// moments and a step count per parameter. The update runs in native code (src/adamw.cpp): PyTorch's
// single-tensor arithmetic op for op, or its fused CUDA kernel where libtorch has one.
import { native, NativeHandle } from '../native';
import { Tensor } from '../tensor';
import { Optimizer, ParamGroup, ParamsInput } from './optimizer';

export interface AdamWHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export type AdamWOptions = Partial<AdamWHyper>;

export class AdamW extends Optimizer<AdamWHyper> {
  /**
   * params: parameters (an array or module.parameters()) or groups `{ params, lr?, weightDecay? ... }`.
   * Defaults as PyTorch: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 1e-2, amsgrad false.
   */
  constructor(params: ParamsInput<AdamWHyper>, opts: AdamWOptions = {}) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ? [opts.betas[0], opts.betas[1]] : [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 1e-2,
      amsgrad: opts.amsgrad ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected checkHyper(h: AdamWHyper): void {
    if (!(h.lr >= 0)) throw new RangeError(`AdamW: invalid learning rate: ${h.lr}`);
    if (!(h.eps >= 0)) throw new RangeError(`AdamW: invalid epsilon value: ${h.eps}`);
    if (!Array.isArray(h.betas) || h.betas.length !== 2) throw new RangeError(`AdamW: betas must be [beta1, beta2], got ${JSON.stringify(h.betas)}`);
    h.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new RangeError(`AdamW: invalid beta parameter at index ${i}: ${b}`);
    });
    if (!(h.weightDecay >= 0)) throw new RangeError(`AdamW: invalid weightDecay value: ${h.weightDecay}`);
  }

  protected update(group: ParamGroup<AdamWHyper>, params: Tensor[]): void {
    const expAvgs: NativeHandle[] = [];
    const expAvgSqs: NativeHandle[] = [];
    const maxExpAvgSqs: NativeHandle[] = [];
    const steps: number[] = [];
    const states = params.map((p) => {
      let s = this.state.get(p);
      if (s === undefined) {
        s = { step: 0, exp_avg: this.zerosLike(p), exp_avg_sq: this.zerosLike(p) };
        this.state.set(p, s);
      }
      if (group.amsgrad && s.max_exp_avg_sq === undefined) s.max_exp_avg_sq = this.zerosLike(p);
      expAvgs.push((s.exp_avg as Tensor).handle);
      expAvgSqs.push((s.exp_avg_sq as Tensor).handle);
      if (group.amsgrad) maxExpAvgSqs.push((s.max_exp_avg_sq as Tensor).handle);
      steps.push((s.step as number) + 1);
      return s;
    });
    native.adamwStep(
      params.map((p) => p.handle),
      expAvgs,
      expAvgSqs,
      maxExpAvgSqs,
      steps,
      group.lr,
      group.betas[0],
      group.betas[1],
      group.eps,
      group.weightDecay,
      group.amsgrad,
      group.maximize,
    );
    // Counted only once the update has happened, so that a failed step does not skew bias corrections.
    states.forEach((s, i) => (s.step = steps[i]));
  }
}
