// bitsandbytes' 8-bit weights (LLM.int8's row-wise absmax format): int8 codes round(W · 127/absmax(row))
// and the float32 row absmax SCB, as its int8_vectorwise_quant / int8_vectorwise_dequant define them. The
// state dict is Linear8bitLt's: weight (int8 [out, in]), SCB (float32 [out]), weight_format (uint8 0).
// The forward dequantizes the weight into x's dtype and multiplies (weight-only; bitsandbytes' CUDA path
// also quantizes the activations, with outlier columns in half precision).
import { noGrad } from '../autograd';
import { tensor } from '../creation';
import { DType } from '../dtype';
import { linear } from '../functional';
import { scope } from '../memory';
import { Conv1D } from '../nn/conv1d';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Tensor } from '../tensor';

/** bitsandbytes' 1/127 in float32, the factor its dequantization multiplies by. */
const INV_127 = 7.874015718698502e-3;

/** int8_vectorwise_quant(threshold=0): [codes int8 [rows, cols], SCB float32 [rows]]. */
export function int8VectorwiseQuant(w: Tensor): [Tensor, Tensor] {
  if (w.shape.length !== 2) throw new Error(`int8VectorwiseQuant: expected a 2-D weight, got shape [${w.shape.join(', ')}]`);
  if (!['float32', 'float16', 'bfloat16'].includes(w.dtype)) throw new Error(`int8VectorwiseQuant: quantizes float32, bfloat16 or float16 weights, got ${w.dtype}`);
  return noGrad(() =>
    scope(() => {
      if (!(w.isfinite().all().item() as boolean)) throw new Error(`int8VectorwiseQuant: the weight (shape [${w.shape.join(', ')}]) holds NaN or infinite values`);
      const scb = w.abs().amax(1).float();
      // 127.0 / row_stats is reciprocal()·127 in PyTorch; an all-zero row gets codes 0 (not 0·inf)
      const scale = scb.reciprocal().mul(127).unsqueeze(-1);
      const q = w.mul(scale).round().nanToNum().to('int8');
      return [q, scb] as [Tensor, Tensor];
    }),
  );
}

/** int8_vectorwise_dequant: codes · SCB · (1/127), float32, cast to dtype. */
export function int8VectorwiseDequant(q: Tensor, scb: Tensor, dtype: DType = 'float32'): Tensor {
  return scope(() => {
    const w = q.mul(scb.view(-1, 1)).mul(INV_127);
    return w.dtype === dtype ? w : w.to(dtype);
  });
}

export class Linear8bit extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias?: Parameter;
  declare SCB: Tensor;
  declare weight_format: Tensor;
  /** Whether this replaced a GPT-2 Conv1D (its weight transposed to [out, in], as bitsandbytes holds it). */
  readonly fromConv1D: boolean;

  /** Takes ownership of `codes` (int8 [out, in]), `scb` (float32 [out]) and `bias`. */
  constructor(inFeatures: number, outFeatures: number, codes: Tensor, scb: Tensor, opts: { bias?: Parameter; fromConv1D?: boolean } = {}) {
    super();
    if (codes.dtype !== 'int8' || codes.shape.length !== 2 || codes.shape[0] !== outFeatures || codes.shape[1] !== inFeatures)
      throw new Error(`Linear8bit: weight must be int8 [${outFeatures}, ${inFeatures}], got ${codes.dtype} [${codes.shape.join(', ')}]`);
    if (scb.dtype !== 'float32' || scb.numel() !== outFeatures)
      throw new Error(`Linear8bit: SCB must be ${outFeatures} float32 values, got ${scb.numel()} of ${scb.dtype}`);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.fromConv1D = opts.fromConv1D ?? false;
    this.weight = new Parameter(codes, false);
    codes.dispose();
    if (opts.bias) this.bias = opts.bias;
    this.registerBuffer('SCB', scb.view(-1));
    scb.dispose();
    this.registerBuffer('weight_format', tensor(0, { dtype: 'uint8' }));
  }

  /**
   * Quantizes a float Linear, or a Conv1D's weight transposed to [out, in] as transformers hands it to
   * bitsandbytes (the layer's bias Parameter is taken over; its weight is left to the caller).
   */
  static fromLinear(lin: Linear | Conv1D): Linear8bit {
    if (!(lin instanceof Conv1D)) {
      const [q, scb] = int8VectorwiseQuant(lin.weight);
      return new Linear8bit(lin.inFeatures, lin.outFeatures, q, scb, { bias: lin.bias });
    }
    const w = noGrad(() => scope(() => lin.weight.t().contiguous()));
    try {
      const [q, scb] = int8VectorwiseQuant(w);
      return new Linear8bit(lin.nx, lin.nf, q, scb, { bias: lin.bias, fromConv1D: true });
    } finally {
      w.dispose();
    }
  }

  /** The weight dequantized, [out, in] in `dtype` (default float32). */
  dequantize(dtype: DType = 'float32'): Tensor {
    return int8VectorwiseDequant(this.weight, this.SCB, dtype);
  }

  forward(x: Tensor): Tensor {
    const w = noGrad(() => this.dequantize(x.dtype));
    const b = this.bias && this.bias.dtype !== x.dtype ? this.bias.to(x.dtype) : this.bias;
    try {
      return linear(x, w, b);
    } finally {
      w.dispose();
      if (b !== this.bias) b?.dispose();
    }
  }

  protected override checkTo(_device: unknown, dtype: DType | undefined): void {
    if (dtype !== undefined)
      throw new Error(`.to('${dtype}') is not supported for 8-bit bitsandbytes models; load the model with the dtype you want`);
  }

  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== undefined ? 'True' : 'False'}`;
  }
  reprName(): string {
    return 'Linear8bitLt';
  }
}
