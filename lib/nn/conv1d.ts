// Hugging Face's Conv1D (GPT-2's projections): a linear layer whose weight is stored [in, out] = [nx, nf],
// the transpose of nn.Linear's, so y = x·W + b. Named, stored and printed as transformers does.
import { empty, zeros } from '../creation';
import { addmm } from '../ops';
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { normal_ } from './init';
import { FactoryOptions } from './linear';
import { Module } from './module';
import { Parameter } from './parameter';

export class Conv1D extends Module {
  /** Output features. */
  readonly nf: number;
  /** Input features. */
  readonly nx: number;
  weight: Parameter;
  bias: Parameter;

  constructor(nf: number, nx: number, opts: FactoryOptions = {}) {
    super();
    this.nf = nf;
    this.nx = nx;
    const w = empty([nx, nf], opts);
    this.weight = new Parameter(w);
    w.dispose();
    const b = zeros([nf], opts);
    this.bias = new Parameter(b);
    b.dispose();
    // transformers' init: weight N(0, 0.02²), bias zeros.
    if (this.weight.device !== 'meta') normal_(this.weight, 0, 0.02);
  }

  /** x [..., nx] -> [..., nf], as addmm(bias, x.view(-1, nx), weight). */
  forward(x: Tensor): Tensor {
    const shape = x.shape;
    if (shape[shape.length - 1] !== this.nx)
      throw new Error(`Conv1D(nf=${this.nf}, nx=${this.nx}): the input's last dimension is ${shape[shape.length - 1]}, expected ${this.nx}`);
    return scope(() => addmm(this.bias, x.reshape(-1, this.nx), this.weight).view([...shape.slice(0, -1), this.nf]));
  }

  extraRepr(): string {
    return `nf=${this.nf}, nx=${this.nx}`;
  }
}
