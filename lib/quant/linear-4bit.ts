// bitsandbytes' Linear4bit: a frozen weight held as packed 4-bit codes (uint8 [(out·in+1)/2, 1]) and its
// QuantState; computes in its compute dtype (x and bias cast to it, the weight dequantized to it, the
// result cast back to x's dtype), as bitsandbytes' forward. The state dict is bitsandbytes' own:
// weight, weight.absmax, weight.quant_map, [weight.nested_absmax, weight.nested_quant_map],
// weight.quant_state.bitsandbytes__<nf4|fp4> (the other fields as JSON bytes).
import { empty, tensor } from '../creation';
import { DType } from '../dtype';
import { noGrad } from '../autograd';
import { scope } from '../memory';
import { pyFloat } from '../nn/format';
import { Conv1D } from '../nn/conv1d';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Tensor } from '../tensor';
import { dequantize4bit, disposeQuantState, matmul4bit, QuantState, QuantType, quantize4bit, stateAbsmax } from './functional';

export interface Linear4bitOptions {
  quantType?: QuantType;
  blocksize?: number;
  compressStatistics?: boolean;
  computeDtype?: DType;
  /** Made from a GPT-2 Conv1D (transformers' source_cls): see Linear4bit.fromConv1D. */
  fromConv1D?: boolean;
}

/** json.dumps of the non-tensor QuantState fields, in bitsandbytes' order and spelling. */
export function quantStateJson(state: QuantState): string {
  const parts = [
    `"quant_type": "${state.quantType}"`,
    `"blocksize": ${state.blocksize}`,
    `"dtype": "${state.dtype}"`,
    `"shape": [${state.shape.join(', ')}]`,
  ];
  if (state.nested)
    parts.push(`"nested_blocksize": ${state.nested.blocksize}`, `"nested_dtype": "float32"`, `"nested_offset": ${pyFloat(state.nested.offset)}`);
  return `{${parts.join(', ')}}`;
}

export class Linear4bit extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias?: Parameter;
  /** The dtype the product is computed in (BitsAndBytesConfig.bnb4bitComputeDtype). */
  computeDtype: DType;
  readonly quantState: QuantState;
  /**
   * Whether this replaced a GPT-2 Conv1D (transformers records source_cls): the weight is then the
   * Conv1D's transposed to [out, in], as bitsandbytes holds it; dequantizeModel gives back a Conv1D.
   */
  readonly fromConv1D: boolean;
  private quantStateBytes: Tensor;

  /** Takes ownership of `packed` (wrapped as the frozen weight), the state's tensors and `bias`. */
  constructor(inFeatures: number, outFeatures: number, packed: Tensor, state: QuantState, opts: { bias?: Parameter; computeDtype?: DType; quantStateBytes?: Tensor; fromConv1D?: boolean } = {}) {
    super();
    if (state.shape.length !== 2 || state.shape[0] !== outFeatures || state.shape[1] !== inFeatures)
      throw new Error(`Linear4bit: the quant state's shape [${state.shape.join(', ')}] is not [${outFeatures}, ${inFeatures}]`);
    const want = Math.ceil((outFeatures * inFeatures) / 2);
    if (packed.dtype !== 'uint8' || packed.numel() !== want)
      throw new Error(
        `Linear4bit: a [${outFeatures}, ${inFeatures}] weight packs into ${want} uint8 bytes, got ${packed.dtype} of shape [${packed.shape.join(', ')}]`,
      );
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = new Parameter(packed, false);
    packed.dispose();
    if (opts.bias) this.bias = opts.bias;
    this.computeDtype = opts.computeDtype ?? 'float32';
    this.quantState = state;
    this.fromConv1D = opts.fromConv1D ?? false;
    // A loaded checkpoint's own bytes are kept (so that a save writes them back unchanged).
    this.quantStateBytes = opts.quantStateBytes ?? tensor(Array.from(Buffer.from(quantStateJson(state), 'utf8')), { dtype: 'uint8' });
  }

  /**
   * Quantizes a float Linear's weight, or a Conv1D's transposed to [out, in] as transformers hands it to
   * bitsandbytes (the layer's bias Parameter is taken over; its weight is left to the caller).
   */
  static fromLinear(linear: Linear | Conv1D, opts: Linear4bitOptions = {}): Linear4bit {
    const conv = linear instanceof Conv1D;
    const [inF, outF] = conv ? [linear.nx, linear.nf] : [linear.inFeatures, linear.outFeatures];
    const [packed, state] = noGrad(() => {
      const w = conv ? scope(() => linear.weight.t().contiguous()) : linear.weight;
      try {
        return quantize4bit(w, { quantType: opts.quantType ?? 'fp4', blocksize: opts.blocksize ?? 64, compressStatistics: opts.compressStatistics });
      } finally {
        if (w !== linear.weight) w.dispose();
      }
    });
    return new Linear4bit(inF, outF, packed, state, { bias: linear.bias, computeDtype: opts.computeDtype, fromConv1D: conv });
  }

  /**
   * A Linear4bit with shapes only (every tensor on 'meta'), as quantizing a [out, in] weight would make it:
   * to size a model (getMemoryFootprint) without its weights.
   */
  static meta(inFeatures: number, outFeatures: number, opts: Linear4bitOptions & { bias?: Parameter; dtype?: DType } = {}): Linear4bit {
    const quantType = opts.quantType ?? 'fp4';
    const blocksize = opts.blocksize ?? 64;
    const n = inFeatures * outFeatures;
    const blocks = Math.ceil(n / blocksize);
    const meta = (shape: number[], dtype: DType) => empty(shape, { device: 'meta', dtype });
    const state: QuantState = {
      quantType,
      blocksize,
      dtype: opts.dtype ?? 'float32',
      shape: [outFeatures, inFeatures],
      absmax: meta([blocks], opts.compressStatistics ? 'uint8' : 'float32'),
      quantMap: meta([16], 'float32'),
    };
    if (opts.compressStatistics)
      state.nested = { absmax: meta([Math.ceil(blocks / 256)], 'float32'), quantMap: meta([256], 'float32'), blocksize: 256, offset: 0 };
    return new Linear4bit(inFeatures, outFeatures, meta([Math.ceil(n / 2), 1], 'uint8'), state, {
      bias: opts.bias,
      computeDtype: opts.computeDtype,
      fromConv1D: opts.fromConv1D,
    });
  }

  forward(x: Tensor): Tensor {
    const xc = x.dtype === this.computeDtype ? x : x.to(this.computeDtype);
    const bias = this.bias && this.bias.dtype !== this.computeDtype ? this.bias.to(this.computeDtype) : this.bias;
    const absmax = stateAbsmax(this.quantState);
    try {
      const y = matmul4bit(xc, this.weight, absmax, this.quantState, bias);
      if (y.dtype === x.dtype) return y;
      const back = y.to(x.dtype);
      y.dispose();
      return back;
    } finally {
      if (xc !== x) xc.dispose();
      if (bias !== this.bias) bias?.dispose();
      if (absmax !== this.quantState.absmax) absmax.dispose();
    }
  }

  /** As transformers for bitsandbytes models: moving is fine, casting would cast the quant state and is refused. */
  protected override checkTo(_device: unknown, dtype: DType | undefined): void {
    if (dtype !== undefined)
      throw new Error(
        `.to('${dtype}') is not supported for 4-bit bitsandbytes models: Linear4bit keeps packed weights and a float32 quant state; ` +
          'load the model with the dtype you want (fromPretrained({ dtype })) or dequantize it first (quant.dequantizeModel)',
      );
  }

  /** The weight dequantized, [out, in] in `dtype` (default the dtype it was quantized from). */
  dequantize(dtype?: DType): Tensor {
    return dequantize4bit(this.weight, this.quantState, dtype);
  }

  /** bitsandbytes' extra state-dict entries under weight.*, as persistent buffers. */
  override *ownBuffers(onlyPersistent = false): Generator<[string, Tensor]> {
    yield* super.ownBuffers(onlyPersistent);
    const s = this.quantState;
    yield ['weight.absmax', s.absmax];
    yield ['weight.quant_map', s.quantMap];
    if (s.nested) {
      yield ['weight.nested_absmax', s.nested.absmax];
      yield ['weight.nested_quant_map', s.nested.quantMap];
    }
    yield [`weight.quant_state.bitsandbytes__${s.quantType}`, this.quantStateBytes];
  }

  override dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
    disposeQuantState(this.quantState);
    this.quantStateBytes.dispose();
  }

  extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== undefined ? 'True' : 'False'}`;
  }
}
