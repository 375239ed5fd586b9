// LoRA on a linear map: nn.Linear, or GPT-2's Conv1D (weight stored [in, out], fanInFanOut). The forward
// never forms ΔW: base(x) + s·B(A(dropout(x))), dropout on the LoRA input only; DoRA adapters add their
// magnitude-rescaled output instead.
import { noGrad } from '../../autograd';
import { normal_, kaimingUniform_, zeros_ } from '../../nn/init';
import { Conv1D, Dropout, Identity, Linear, Module } from '../../nn';
import * as F from '../../functional';
import { svd, qr } from '../../linalg';
import { scope } from '../../memory';
import { isFloatingPoint } from '../../dtype';
import { Linear4bit } from '../../quant/linear-4bit';
import { Linear8bit } from '../../quant/linear-8bit';
import { dequantizedLinear } from '../../quant/dequantize';
import { Tensor } from '../../tensor';
import { peftWarn } from '../warn';
import { DoraLinearLayer, outInLayout } from './dora';
import { AdapterSpec, LoraLayer, scaledLoraProduct } from './lora-layer';

/** [in, out] features of a Linear or Conv1D. */
export function linearFeatures(base: Module): [number, number] {
  if (base instanceof Linear) return [base.inFeatures, base.outFeatures];
  if (base instanceof Conv1D) return [base.nx, base.nf];
  if (base instanceof Linear4bit || base instanceof Linear8bit) return [base.inFeatures, base.outFeatures];
  throw new TypeError(`LoRA Linear: cannot adapt a ${base.reprName()} (expected Linear, Conv1D or Linear4bit)`);
}

/** The weight's device and dtype, where adapters of this layer live. */
export function placeOf(w: Tensor): { device: string; dtype: Tensor['dtype'] } {
  return { device: w.device, dtype: w.dtype };
}

/** A bias-free (or with bias) Linear built like PEFT builds it: on the CPU in float32 (so that its
 * initialization draws the same random numbers), then moved to the base's device and dtype. On 'meta'
 * it is built there directly. */
export function adapterLinear(inF: number, outF: number, bias: boolean, like: Tensor): Linear {
  if (like.device === 'meta') return new Linear(inF, outF, { bias, device: 'meta', dtype: like.dtype });
  return new Linear(inF, outF, { bias });
}

/** How often LoRA Linear forwards ran fused (one F.loraLinear node) or fell back to the composite path, and why. */
export interface FusedLoraStats {
  fused: number;
  /** Reason -> count. */
  fallbacks: Record<string, number>;
}

const fusedCounts: FusedLoraStats = { fused: 0, fallbacks: {} };

/**
 * The fused path's counts since the start (or resetFusedLoraStats): a model whose LoRA layers all fall back
 * runs slower and uses more memory, silently otherwise. With TORCH_LORA_DEBUG set, each new reason is also
 * printed once to stderr.
 */
export function fusedLoraStats(): FusedLoraStats {
  return { fused: fusedCounts.fused, fallbacks: { ...fusedCounts.fallbacks } };
}

export function resetFusedLoraStats(): void {
  fusedCounts.fused = 0;
  fusedCounts.fallbacks = {};
}

/** Counts (and, debugging, logs once) a fallback to the composite path; undefined, for fusedForward to return. */
function fallback(reason: string): undefined {
  const seen = fusedCounts.fallbacks[reason];
  fusedCounts.fallbacks[reason] = (seen ?? 0) + 1;
  if (seen === undefined && process.env.TORCH_LORA_DEBUG) process.stderr.write(`torch-lora: LoRA Linear runs the composite (unfused) path: ${reason}\n`);
  return undefined;
}

export class LoraLinear extends LoraLayer {
  /** Whether the base weight is [in, out] (a Conv1D); a merge into a quantized GPT-2 layer makes it so. */
  fanInFanOut: boolean;
  readonly isTargetConv1dLayer: boolean;

  constructor(baseLayer: Module, adapterName: string, spec: AdapterSpec) {
    const [inF, outF] = linearFeatures(baseLayer instanceof LoraLayer ? baseLayer.getBaseLayer() : baseLayer);
    super(baseLayer, adapterName, inF, outF);
    const conv1d = this.getBaseLayer() instanceof Conv1D;
    this.isTargetConv1dLayer = conv1d;
    // As PEFT: a Linear never transposes, a Conv1D always does (whatever the config says, with a warning).
    // A bitsandbytes layer (GPT-2's Conv1D quantized included: its weight is [out, in]) never transposes
    // either, and PEFT's bnb dispatch leaves the config's fan_in_fan_out as the user wrote it, silently.
    const base = this.getBaseLayer();
    if (base instanceof Linear4bit || base instanceof Linear8bit) {
      // nothing to warn about or change
    } else if (spec.config.fanInFanOut && !conv1d) {
      peftWarn('fan_in_fan_out is set to True but the target module is `torch.nn.Linear`. Setting fan_in_fan_out to False.');
      spec.config.fanInFanOut = false;
    } else if (!spec.config.fanInFanOut && conv1d) {
      peftWarn('fan_in_fan_out is set to False but the target module is `Conv1D`. Setting fan_in_fan_out to True.');
      spec.config.fanInFanOut = true;
    }
    this.fanInFanOut = conv1d;
    this.updateLayer(adapterName, spec);
  }

  /** Adds an adapter: lora_A Linear(in, r), lora_B Linear(r, out), initialized per initLoraWeights. */
  updateLayer(adapterName: string, spec: AdapterSpec): void {
    const { config } = spec;
    if (config.loraBias && this.baseBias === undefined)
      peftWarn(`\`lora_bias=True\` was passed but the targeted layer of type ${this.getBaseLayer().reprName()} has no bias. This means that merging LoRA weights won't be possible.`);
    this.registerAdapter(adapterName, spec);
    const w = this.baseWeight;
    const r = spec.r;
    this.lora_A.set(adapterName, adapterLinear(this.inFeatures, r, false, w));
    this.lora_B.set(adapterName, adapterLinear(r, this.outFeatures, config.loraBias, w));
    const init = config.initLoraWeights;
    if (w.device !== 'meta') {
      if (init === 'pissa') this.pissaInit(adapterName);
      else if (init === 'olora') this.oloraInit(adapterName);
      else if (init) this.resetLoraParameters(adapterName, init);
      this.moveAdapterToBase(adapterName);
    }
    if (config.useDora) {
      const dora = new DoraLinearLayer(this.fanInFanOut);
      const a = this.loraAWeight(adapterName);
      const b = this.loraBWeight(adapterName);
      if (w.device === 'meta') dora.allocateMeta(this.outFeatures, w);
      else scope(() => dora.updateLayer(this.floatBaseWeight(), a, b, this.scaling.get(adapterName)!));
      this.lora_magnitude_vector.set(adapterName, dora);
    }
    this.setAdapter(this.activeAdapters, config.inferenceMode);
  }

  /**
   * The base weight in float: a 4-bit base dequantized (to the dtype it was quantized from, as PEFT's
   * dequantize_module_weight; a new tensor, so call it inside a scope), else the weight itself.
   */
  floatBaseWeight(): Tensor {
    const base = this.getBaseLayer();
    return base instanceof Linear4bit || base instanceof Linear8bit ? base.dequantize() : this.baseWeight;
  }

  /**
   * Merging into a 4-bit base: the base becomes a float Linear (a Conv1D, where it was one: see
   * dequantizedLinear) holding the dequantized weight (in the dtype it was quantized from), into which ΔW
   * is added, with PEFT's warning about rounding.
   */
  override merge(opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): void {
    const base = this.getBaseLayer();
    const pending = (opts.adapterNames ?? this.activeAdapters).filter((a) => !this.mergedAdapters.includes(a) && this.hasLoraWeights(a));
    if ((base instanceof Linear4bit || base instanceof Linear8bit) && pending.length > 0) {
      if (this.base_layer !== base) throw new Error(`${this.reprName()}: cannot merge into a 4-bit layer wrapped twice`);
      peftWarn(`Merge lora module to ${base instanceof Linear4bit ? '4-bit' : '8-bit'} linear may get different generations due to rounding errors.`);
      const lin = dequantizedLinear(base);
      this.base_layer = lin;
      base.dispose();
      // A quantized GPT-2 layer comes back as its Conv1D (weight [in, out]): ΔW goes in transposed from now on.
      if (lin instanceof Conv1D) {
        this.fanInFanOut = true;
        for (const d of this.lora_magnitude_vector.values()) (d as DoraLinearLayer).fanInFanOut = true;
      }
    }
    super.merge(opts);
  }

  loraAWeight(adapter: string): Tensor {
    return (this.lora_A.get(adapter) as Linear).weight;
  }
  loraBWeight(adapter: string): Tensor {
    return (this.lora_B.get(adapter) as Linear).weight;
  }

  /** PEFT's reset_lora_parameters: A kaiming-uniform(a=√5) (or N(0, 1/r²) for 'gaussian'), B zero. */
  resetLoraParameters(adapter: string, init: true | 'gaussian' | string): void {
    const A = this.lora_A.get(adapter) as Linear | undefined;
    if (A === undefined) return;
    const B = this.lora_B.get(adapter) as Linear;
    if (init === true) kaimingUniform_(A.weight, { a: Math.sqrt(5) });
    else if (init === 'gaussian') normal_(A.weight, 0, 1 / this.r.get(adapter)!);
    else throw new Error(`Unknown initialization initLoraWeights=${JSON.stringify(init)}`);
    zeros_(B.weight);
    if (B.bias) zeros_(B.bias);
  }

  /** Puts an adapter's weights on the base weight's device and dtype. */
  protected moveAdapterToBase(adapter: string): void {
    const place = placeOf(this.baseWeight);
    const device = place.device;
    // A quantized (uint8) base: the adapters keep their float dtype and only follow the device, as PEFT.
    const dtype = isFloatingPoint(place.dtype) ? place.dtype : undefined;
    for (const d of [this.lora_A, this.lora_B]) {
      const m = d.get(adapter);
      if (m === undefined) continue;
      const p = m.parameters().next().value as Tensor | undefined;
      if (p && (p.device !== device || (dtype !== undefined && p.dtype !== dtype))) m.to({ device, dtype });
    }
  }

  /**
   * PiSSA: A, B from the top-r singular triplets of W (√S split between them, divided by the scaling),
   * and W replaced by the residual W − s·B·A, so that the layer's output is unchanged.
   */
  protected pissaInit(adapter: string): void {
    const w = this.baseWeight;
    const dtype = w.dtype;
    if (!['float32', 'float16', 'bfloat16'].includes(dtype))
      throw new TypeError('Please initialize PiSSA under float32, float16, or bfloat16. Subsequently, re-quantize the residual model to help minimize quantization errors.');
    const r = this.r.get(adapter)!;
    const s = this.scaling.get(adapter)!;
    noGrad(() =>
      scope(() => {
        const W = outInLayout(w.to('float32'), this.fanInFanOut);
        if (r > Math.min(...W.shape)) throw new Error(`PiSSA needs r <= min(out, in) = ${Math.min(...W.shape)}, got r=${r}`);
        const [V, S, Uh] = svd(W, { fullMatrices: false });
        const sqrtS = S.narrow(0, 0, r).div(s).sqrt();
        const loraA = sqrtS.unsqueeze(1).mul(Uh.narrow(0, 0, r));
        const loraB = V.narrow(1, 0, r).mul(sqrtS.unsqueeze(0));
        this.loraAWeight(adapter).setData_(loraA.contiguous());
        this.loraBWeight(adapter).setData_(loraB.contiguous());
        const residual = W.sub(loraB.matmul(loraA).mul(s)).to(dtype);
        w.setData_(outInLayout(residual, this.fanInFanOut).contiguous());
      }),
    );
  }

  /** OLoRA: A, B from the QR decomposition of W (B = Q[:, :r], A = R[:r]), W replaced by W − s·B·A. */
  protected oloraInit(adapter: string): void {
    const w = this.baseWeight;
    const dtype = w.dtype;
    if (!['float32', 'float16', 'bfloat16'].includes(dtype)) throw new TypeError(`Unsupported data type for the base layer. Got ${dtype}.`);
    const r = this.r.get(adapter)!;
    const s = this.scaling.get(adapter)!;
    noGrad(() =>
      scope(() => {
        const W = w.to('float32');
        if (r > Math.min(...W.shape)) throw new Error(`OLoRA needs r <= min of the weight's dimensions (${Math.min(...W.shape)}), got r=${r}`);
        const [Q, R] = qr(W);
        const loraA = R.narrow(0, 0, r).contiguous();
        const loraB = Q.narrow(1, 0, r).contiguous();
        this.loraAWeight(adapter).setData_(loraA);
        this.loraBWeight(adapter).setData_(loraB);
        w.setData_(W.sub(loraB.matmul(loraA).mul(s)).to(dtype));
      }),
    );
  }

  /** ΔW = s·B·A in the base weight's layout (transposed for Conv1D; computed in B's dtype, as PEFT). */
  getDeltaWeight(adapter: string): Tensor {
    const b = this.loraBWeight(adapter);
    return scaledLoraProduct(b, this.loraAWeight(adapter), this.scaling.get(adapter)!, this.fanInFanOut, b.dtype);
  }

  /** s·lora_B.bias: lora_bias trains a bias in lora_B, which merging folds into the base bias. */
  protected override loraBiasDelta(adapter: string): Tensor | undefined {
    const bias = (this.lora_B.get(adapter) as Linear).bias;
    return bias?.mul(this.scaling.get(adapter)!);
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  protected adapterForward(x: Tensor, rest: any[]): Tensor {
    const adapters = this.activeAdapters.filter((a) => this.lora_A.has(a));
    // The first adapter, when fusable, is applied with the base in one native node (F.loraLinear);
    // the others are added the composite way after it (same dropout draws in the same order).
    const fused = rest.length === 0 && adapters.length > 0 ? this.fusedForward(x, adapters[0]) : undefined;
    let result: Tensor = fused ?? this.base_layer.forward(x, ...rest);
    const resultDtype = result.dtype;
    for (const a of fused === undefined ? adapters : adapters.slice(1)) {
      const A = this.lora_A.get(a)!;
      const B = this.lora_B.get(a)!;
      const dropout = this.lora_dropout.get(a)!;
      const s = this.scaling.get(a)!;
      const wDtype = this.loraAWeight(a).dtype;
      const xa = x.dtype === wDtype ? x : x.to(wDtype);
      const dora = this.lora_magnitude_vector.get(a) as DoraLinearLayer | undefined;
      if (dora === undefined) {
        result = result.add((B.forward(A.forward(dropout.forward(xa))) as Tensor).mul(s));
      } else {
        // With no active dropout, the base output (bias taken off) is reused; else x·Wᵀ of the dropped x.
        const identity = dropout instanceof Identity || !this.training;
        const xd = identity ? xa : (dropout.forward(xa) as Tensor);
        result = result.add(
          dora.forward(xd, {
            loraA: A,
            loraB: B,
            scaling: s,
            baseWeight: this.floatBaseWeight(),
            baseBias: this.baseBias,
            baseResult: identity ? result : undefined,
          }),
        );
      }
    }
    return result.dtype === resultDtype ? result : result.to(resultDtype);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  /**
   * base(x) + s·B(A(dropout(x))) as one F.loraLinear call, or undefined where the composite path must
   * run: DoRA, lora_B with a bias, a base other than a plain Linear/Conv1D, or tensors the native op
   * does not take (dtypes/devices that differ, 'meta').
   */
  private fusedForward(x: Tensor, adapter: string): Tensor | undefined {
    const base = this.base_layer;
    if (base.constructor !== Linear && base.constructor !== Conv1D) return fallback('the base layer is not a plain Linear or Conv1D');
    if (this.lora_magnitude_vector.has(adapter)) return fallback('DoRA');
    if (this.loraBias.get(adapter)) return fallback('lora_bias');
    const A = this.lora_A.get(adapter);
    const B = this.lora_B.get(adapter);
    if (!(A instanceof Linear) || !(B instanceof Linear)) return fallback('lora_A or lora_B is not a Linear');
    if (A.bias !== undefined || B.bias !== undefined) return fallback('lora_A or lora_B has a bias');
    const dropout = this.lora_dropout.get(adapter);
    if (!(dropout instanceof Dropout) && !(dropout instanceof Identity)) return fallback('the LoRA dropout is not Dropout or Identity');
    const { weight, bias } = base as Linear | Conv1D;
    const a = A.weight;
    const b = B.weight;
    if (weight.dtype !== x.dtype || (bias !== undefined && bias.dtype !== x.dtype) || a.dtype !== b.dtype)
      return fallback(`dtypes differ (input ${x.dtype}, base weight ${weight.dtype}, lora_A ${a.dtype}, lora_B ${b.dtype})`);
    if (x.device === 'meta') return fallback("tensors on 'meta'");
    if (weight.device !== x.device || a.device !== x.device || b.device !== x.device) return fallback('devices differ');
    // The Dropout module's own flag decides, as in the composite path (it follows this.training via train()/eval()).
    const active = dropout instanceof Dropout;
    fusedCounts.fused++;
    return F.loraLinear(x, weight, bias, a, b, this.scaling.get(adapter)!, {
      dropoutP: active ? dropout.p : 0,
      training: active && dropout.training,
      fanInFanOut: this.fanInFanOut,
    });
  }

  reprName(): string {
    const base = this.getBaseLayer();
    return base instanceof Linear4bit ? 'lora.Linear4bit' : base instanceof Linear8bit ? 'lora.Linear8bitLt' : 'lora.Linear';
  }
}
