// nn.Dropout: zeroes elements with probability p while training (scaling the rest by 1/(1-p)).
import { dropout } from '../functional';
import { Tensor } from '../tensor';
import { pyFloat } from './format';
import { Module } from './module';

export class Dropout extends Module {
  readonly p: number;

  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be a probability in [0, 1], got ${p}`);
    this.p = p;
  }

  /** Identity in eval mode (module.eval()), random masking in train mode. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }

  extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }
}
