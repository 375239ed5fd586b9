// bitsandbytes' blockwise quantization (src/quant_blockwise.cpp, matmul_4bit.cpp), typed: bitsandbytes.functional
// in camelCase. The codes and absmax are byte-identical to bitsandbytes' CPU/default backend.
import { DType, dtypeCode } from '../dtype';
import { native } from '../native';
import { Tensor } from '../tensor';

export type QuantType = 'nf4' | 'fp4';
/** The block sizes bitsandbytes accepts for 4-bit weights. */
export const BLOCKSIZES_4BIT = [32, 64, 128, 256, 512, 1024, 2048, 4096] as const;

/** The 16 values of the NF4 or FP4 code book (float32; FP4 in bit-pattern order), as get_4bit_type. */
export function fourBitCode(quantType: QuantType): Tensor {
  return Tensor.wrap(native.fourBitCode(quantType));
}
/** The 8-bit dynamic map (create_dynamic_map(signed=True)): 256 sorted float32 values, double quantization's code. */
export function dynamicMap(): Tensor {
  return Tensor.wrap(native.dynamicMap());
}

/** 8-bit blockwise: [codes uint8 of a's shape, absmax float32 per block]. */
export function quantizeBlockwise(a: Tensor, code: Tensor, blocksize: number): [Tensor, Tensor] {
  const [q, absmax] = native.quantizeBlockwise(a.handle, code.handle, blocksize);
  return [Tensor.wrap(q), Tensor.wrap(absmax)];
}
export function dequantizeBlockwise(q: Tensor, absmax: Tensor, code: Tensor, blocksize: number, dtype: DType = 'float32'): Tensor {
  return Tensor.wrap(native.dequantizeBlockwise(q.handle, absmax.handle, code.handle, blocksize, dtypeCode(dtype)));
}

/**
 * bitsandbytes' QuantState of one 4-bit weight (the fields its as_dict writes). absmax is float32 per block,
 * or, double-quantized (nested), uint8 codes of (absmax - nestedOffset) in blocks of nestedBlocksize.
 */
export interface QuantState {
  quantType: QuantType;
  blocksize: number;
  /** The original weight's dtype (the 'dtype' bitsandbytes records). */
  dtype: DType;
  shape: number[];
  absmax: Tensor;
  /** The 4-bit code book (bitsandbytes' quant_map). */
  quantMap: Tensor;
  nested?: { absmax: Tensor; quantMap: Tensor; blocksize: number; offset: number };
}

/**
 * Quantizes a float tensor to packed 4-bit ([(n+1)/2, 1] uint8, the first value in the high nibble) as
 * bitsandbytes.functional.quantize_4bit; compressStatistics double-quantizes the absmax.
 */
export function quantize4bit(
  a: Tensor,
  opts: { blocksize?: number; quantType?: QuantType; compressStatistics?: boolean } = {},
): [Tensor, QuantState] {
  const blocksize = opts.blocksize ?? 64;
  const quantType = opts.quantType ?? 'fp4'; // bitsandbytes' default
  const [p, am] = native.quantize4bit(a.handle, blocksize, quantType);
  const packed = Tensor.wrap(p);
  const absmax = Tensor.wrap(am);
  const state: QuantState = { quantType, blocksize, dtype: a.dtype, shape: [...a.shape], absmax, quantMap: fourBitCode(quantType) };
  if (opts.compressStatistics) {
    const [q, nested, offset] = native.quantizeNestedAbsmax(absmax.handle);
    absmax.dispose();
    state.absmax = Tensor.wrap(q);
    state.nested = { absmax: Tensor.wrap(nested), quantMap: dynamicMap(), blocksize: 256, offset };
  }
  return [packed, state];
}

/** The float32 absmax of a state: its own, or the double-quantized one dequantized (+ offset). */
export function stateAbsmax(state: QuantState): Tensor {
  const n = state.nested;
  if (n === undefined) return state.absmax;
  return Tensor.wrap(native.dequantizeNestedAbsmax(state.absmax.handle, n.absmax.handle, n.quantMap.handle, n.blocksize, n.offset));
}

/** bitsandbytes.functional.dequantize_4bit: the weight in `dtype` (default the state's). */
export function dequantize4bit(packed: Tensor, state: QuantState, dtype?: DType): Tensor {
  const absmax = stateAbsmax(state);
  try {
    return Tensor.wrap(
      native.dequantize4bit(packed.handle, absmax.handle, state.blocksize, state.quantType, state.shape, dtypeCode(dtype ?? state.dtype)),
    );
  } finally {
    if (absmax !== state.absmax) absmax.dispose();
  }
}

/**
 * x·Wᵀ + bias for a 4-bit W [out, in] given its float32 absmax (see stateAbsmax), computed in x's dtype;
 * one autograd node that keeps only the packed weight for the backward (x gets a gradient, W none).
 */
export function matmul4bit(x: Tensor, packed: Tensor, absmax: Tensor, state: QuantState, bias?: Tensor): Tensor {
  const [out, inF] = state.shape;
  return Tensor.wrap(native.matmul4bit(x.handle, packed.handle, absmax.handle, state.blocksize, state.quantType, out, inF, bias?.handle));
}

/** Frees a state's tensors. */
export function disposeQuantState(state: QuantState): void {
  state.absmax.dispose();
  state.quantMap.dispose();
  if (state.nested) {
    state.nested.absmax.dispose();
    state.nested.quantMap.dispose();
  }
}
