// DoRA (weight-decomposed LoRA, arXiv 2402.09353) as PEFT computes it: the adapted weight is
// m · (W + s·B·A) / ‖W + s·B·A‖ with the norm taken per output feature and treated as a constant
// (detached, section 4.3 of the paper). m is the trainable magnitude, PEFT's lora_magnitude_vector.
import { empty } from '../../creation';
import { linear } from '../../functional';
import { noGrad } from '../../autograd';
import { scope } from '../../memory';
import { Module, Parameter } from '../../nn';
import { Tensor } from '../../tensor';

/** W in [out, in] layout (a Conv1D weight [in, out] is transposed). */
export function outInLayout(w: Tensor, fanInFanOut: boolean): Tensor {
  return fanInFanOut ? w.t() : w.view(w.shape);
}

export class DoraLinearLayer extends Module {
  /** The magnitude m, one value per output feature. */
  weight!: Parameter;
  /** Set again when a merge turns a quantized GPT-2 base back into a Conv1D (LoraLinear.merge). */
  fanInFanOut: boolean;

  constructor(fanInFanOut: boolean) {
    super();
    this.fanInFanOut = fanInFanOut;
  }

  /** ‖W + s·ΔW‖ per output feature (rows of the [out, in] layout); `loraWeight` is B·A in [out, in]. */
  getWeightNorm(weight: Tensor, loraWeight: Tensor, scaling: number): Tensor {
    return scope(() => {
      const w = outInLayout(weight, this.fanInFanOut).add(loraWeight.mul(scaling));
      return w.norm(2, 1).to(w.dtype);
    });
  }

  /** m starts as the norm of the adapted weight, so that DoRA starts equal to LoRA. */
  updateLayer(baseWeight: Tensor, loraA: Tensor, loraB: Tensor, scaling: number): void {
    const norm = noGrad(() =>
      scope(() => {
        const half = loraA.dtype === 'float16';
        const a = half ? loraA.float() : loraA;
        const b = half ? loraB.float() : loraB;
        let loraWeight = b.matmul(a);
        if (half) loraWeight = loraWeight.half();
        return this.getWeightNorm(baseWeight.to(loraA.device), loraWeight, scaling);
      }),
    );
    if (this.weight !== undefined) this.weight.dispose();
    this.weight = new Parameter(norm);
    norm.dispose();
  }

  /** For meta-device models: m without values. */
  allocateMeta(outFeatures: number, like: Tensor): void {
    const t = empty([outFeatures], { dtype: like.dtype, device: like.device });
    this.weight = new Parameter(t);
    t.dispose();
  }

  /**
   * The DoRA output to add to the base output: (m/‖W+sBA‖ − 1)·(x·Wᵀ) + m/‖W+sBA‖·s·B(A(x)).
   * baseResult: the base layer's output when x is the undropped input (its bias is taken off), else
   * undefined and x·Wᵀ is computed from the dropped-out x.
   */
  forward(x: Tensor, ctx: { loraA: Module; loraB: Module; scaling: number; baseWeight: Tensor; baseBias?: Tensor; baseResult?: Tensor }): Tensor {
    return scope(() => {
      const aW = (ctx.loraA as unknown as { weight: Tensor }).weight;
      const bW = (ctx.loraB as unknown as { weight: Tensor }).weight;
      const loraWeight = bW.matmul(aW).to(x.dtype);
      const weight = ctx.baseWeight.to(x.dtype);
      const weightNorm = this.getWeightNorm(weight, loraWeight.detach(), ctx.scaling).detach();
      const magNormScale = this.weight.div(weightNorm).view(1, -1);
      const loraResult = ctx.loraB.forward(ctx.loraA.forward(x)) as Tensor;
      let baseResult: Tensor;
      if (ctx.baseResult !== undefined) baseResult = ctx.baseBias !== undefined ? ctx.baseResult.sub(ctx.baseBias) : ctx.baseResult;
      else baseResult = linear(x, outInLayout(weight, this.fanInFanOut));
      return magNormScale.sub(1).mul(baseResult).add(magNormScale.mul(loraResult).mul(ctx.scaling));
    });
  }

  reprName(): string {
    return 'lora.dora.DoraLinearLayer';
  }
}

/**
 * DoRA on an embedding table (PEFT's DoraEmbeddingLayer): one magnitude per embedding dimension, the norm
 * taken over the vocabulary of (W + s·(B·A)ᵀ), i.e. of the [dim, vocab] layout (fanInFanOut).
 */
export class DoraEmbeddingLayer extends DoraLinearLayer {
  constructor() {
    super(true);
  }
  reprName(): string {
    return 'lora.dora.DoraEmbeddingLayer';
  }
}
