// nn.Linear: y = x·Wᵀ + b, weight [out, in].
import { empty } from '../creation';
import { DType } from '../dtype';
import { linear } from '../functional';
import { Device, Tensor } from '../tensor';
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from './init';
import { Module } from './module';
import { Parameter } from './parameter';

export interface FactoryOptions {
  device?: Device;
  dtype?: DType;
}

export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias?: Parameter;

  constructor(inFeatures: number, outFeatures: number, opts: FactoryOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const w = empty([outFeatures, inFeatures], opts);
    this.weight = new Parameter(w);
    w.dispose();
    if (opts.bias ?? true) {
      const b = empty([outFeatures], opts);
      this.bias = new Parameter(b);
      b.dispose();
    }
    this.resetParameters();
  }

  /** PyTorch's default: kaiming_uniform(a=√5) weights, U(±1/√fan_in) bias. */
  resetParameters(): void {
    if (this.weight.device === 'meta') return;
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== undefined ? 'True' : 'False'}`;
  }
}
