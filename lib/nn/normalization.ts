// Normalization layers: nn.LayerNorm, and RMSNorm as Hugging Face's LlamaRMSNorm computes and prints it.
import { ones, zeros } from '../creation';
import { layerNorm, rmsNorm } from '../functional';
import { Tensor } from '../tensor';
import { pyBool, pyFloat, pyTuple } from './format';
import { FactoryOptions } from './linear';
import { Module } from './module';
import { Parameter } from './parameter';

function ownedParameter(t: Tensor): Parameter {
  const p = new Parameter(t);
  t.dispose();
  return p;
}

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  weight?: Parameter;
  bias?: Parameter;

  constructor(
    normalizedShape: number | number[],
    opts: FactoryOptions & { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    const f = { device: opts.device, dtype: opts.dtype };
    // PyTorch's default: weight ones, bias zeros (no random draw).
    if (this.elementwiseAffine) {
      this.weight = ownedParameter(ones(this.normalizedShape, f));
      if (opts.bias ?? true) this.bias = ownedParameter(zeros(this.normalizedShape, f));
    }
  }

  /** Normalizes over the trailing normalizedShape dimensions. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  extraRepr(): string {
    return `${pyTuple(this.normalizedShape)}, eps=${pyFloat(this.eps)}, elementwise_affine=${pyBool(this.elementwiseAffine)}`;
  }
}

/**
 * Root-mean-square norm over the last dimension, as Hugging Face's LlamaRMSNorm: statistics in float32
 * for half inputs, the normalized value cast back to the input's dtype, then times weight (ones).
 * Printed as `(hidden,), eps=1e-06`, so a subclass named LlamaRMSNorm prints as transformers does.
 */
export class RMSNorm extends Module {
  readonly eps: number;
  weight: Parameter;

  constructor(hiddenSize: number, opts: FactoryOptions & { eps?: number } = {}) {
    super();
    this.eps = opts.eps ?? 1e-6;
    this.weight = ownedParameter(ones([hiddenSize], { device: opts.device, dtype: opts.dtype }));
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }

  extraRepr(): string {
    return `${pyTuple(this.weight.shape)}, eps=${pyFloat(this.eps)}`;
  }
}
