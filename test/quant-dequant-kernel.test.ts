// The fused CPU dequantize of 4-bit weights (src/dequantize_4bit_cpu.cpp): two codes per byte through the
// 16-entry book times the block's absmax, written straight into the output. It must give bit for bit what
// the generic ATen path gives (dequantize4bitGeneric, the path CUDA takes and the CPU took before): the
// same float32 product, then one cast. Checked for every output dtype, both books, block sizes with a short
// last block and an odd count, double-quantized absmax, strided inputs, and sizes spread over threads.
import * as torch from '../lib';
import { DType, memory, scope, Tensor } from '../lib';
import { dtypeCode } from '../lib/dtype';
import { native } from '../lib/native';
import * as Q from '../lib/quant/functional';
import { errorMessage } from './helpers/errors';
import { bytesOf } from './helpers/tensors';

function generic(packed: Tensor, absmax: Tensor, state: Q.QuantState, dtype: DType): Tensor {
  return Tensor.wrap(native.dequantize4bitGeneric(packed.handle, absmax.handle, state.blocksize, state.quantType, state.shape, dtypeCode(dtype)));
}

function expectSameBytes(a: Tensor, b: Tensor): void {
  expect([a.dtype, a.shape]).toEqual([b.dtype, b.shape]);
  expect(bytesOf(a).equals(bytesOf(b))).toBe(true);
}

const DTYPES: DType[] = ['float32', 'float64', 'bfloat16', 'float16'];

describe.each([
  // [shape, blocksize]: a short last block (n % blocksize), an odd n (the last low nibble is padding),
  // one partial block only, and a size that parallel_for cuts into several tasks
  [[48, 144], 64],
  [[37, 29], 64],
  [[7, 5], 32],
  [[3], 4096],
  [[256, 1000], 128],
  [[1, 4096 * 3 + 33], 4096],
] as const)('shape %j, blocksize %d', (shape, blocksize) => {
  test.each([
    ['nf4', false],
    ['fp4', false],
    ['nf4', true],
    ['fp4', true],
  ] as const)('%s, double quant %s: fused = generic, bit for bit, in every dtype', (quantType, dq) => {
    scope(() => {
      torch.manualSeed(13);
      // wide magnitudes: products that overflow float16 (to inf) and underflow bfloat16 take the same route
      const w = torch.randn([...shape]).mul(torch.rand([...shape]).mul(12).sub(6).exp());
      const [packed, state] = Q.quantize4bit(w, { blocksize, quantType, compressStatistics: dq });
      const absmax = Q.stateAbsmax(state);
      for (const dtype of DTYPES) expectSameBytes(Q.dequantize4bit(packed, state, dtype), generic(packed, absmax, state, dtype));
      Q.disposeQuantState(state);
    });
  });
});

test('float16 overflow: a block whose products pass 65504 gives inf in both paths', () => {
  scope(() => {
    const w = torch.tensor([[70000, -70000, 1, 0.5, ...new Array(60).fill(2)]]);
    const [packed, state] = Q.quantize4bit(w, { blocksize: 64, quantType: 'nf4' });
    const fused = Q.dequantize4bit(packed, state, 'float16');
    expectSameBytes(fused, generic(packed, state.absmax, state, 'float16'));
    expect(fused.float().isinf().sum().item()).toBe(2);
    Q.disposeQuantState(state);
  });
});

test('strided packed bytes and absmax (views of larger tensors) decode as their contiguous copies', () => {
  scope(() => {
    torch.manualSeed(1);
    const w = torch.randn([64, 96]);
    const [packed, state] = Q.quantize4bit(w, { blocksize: 64, quantType: 'nf4' });
    // every other row of a [2·n, 1] tensor holds the bytes; every other value of a [2·blocks] one the absmax
    const bigP = torch.zeros([packed.shape[0], 2], { dtype: 'uint8' });
    bigP.select(1, 0).copy_(packed.view(-1));
    const stridedP = bigP.select(1, 0).unsqueeze(1);
    const bigA = torch.zeros([state.absmax.numel(), 2]);
    bigA.select(1, 1).copy_(state.absmax);
    const stridedA = bigA.select(1, 1);
    expect(stridedP.isContiguous()).toBe(false);
    expect(stridedA.isContiguous()).toBe(false);
    const viaViews = Tensor.wrap(native.dequantize4bit(stridedP.handle, stridedA.handle, 64, 'nf4', [64, 96], dtypeCode('float32')));
    expectSameBytes(viaViews, Q.dequantize4bit(packed, state, 'float32'));
    Q.disposeQuantState(state);
  });
});

test('matmul4bit through the fused dequantize: forward and input gradient equal linear on the generic weight', () => {
  scope(() => {
    torch.manualSeed(2);
    const w = torch.randn([40, 72]);
    const [packed, state] = Q.quantize4bit(w, { blocksize: 64, quantType: 'nf4', compressStatistics: true });
    const absmax = Q.stateAbsmax(state);
    const bias = torch.randn([40]);
    for (const dtype of ['float32', 'bfloat16'] as DType[]) {
      const x = torch.randn([3, 5, 72]).to(dtype).requiresGrad_(true);
      const b = bias.to(dtype);
      const y = Q.matmul4bit(x, packed, absmax, state, b);
      const x2 = x.detach().requiresGrad_(true);
      const y2 = torch.F.linear(x2, generic(packed, absmax, state, dtype), b);
      expectSameBytes(y, y2);
      y.sum().backward();
      y2.sum().backward();
      expectSameBytes(x.grad!, x2.grad!);
    }
    Q.disposeQuantState(state);
  });
});

test('a wrong absmax count is an error naming the counts (both paths)', () => {
  scope(() => {
    const [packed, state] = Q.quantize4bit(torch.randn([10, 64]), { blocksize: 64, quantType: 'nf4' });
    const short = state.absmax.slice(0, 0, 9);
    for (const op of ['dequantize4bit', 'dequantize4bitGeneric'] as const)
      expect(errorMessage(() => native[op](packed.handle, short.handle, 64, 'nf4', [10, 64], dtypeCode('float32')))).toMatch(
        new RegExp(`${op}: 640 values in blocks of 64 need 10 absmax values, got 9`),
      );
    Q.disposeQuantState(state);
  });
});

test('a loop of fused dequantizes leaks no tensor', () => {
  const [packed, state] = Q.quantize4bit(torch.randn([128, 256]), { blocksize: 64, quantType: 'nf4', compressStatistics: true });
  const run = () => scope(() => void Q.dequantize4bit(packed, state, 'bfloat16'));
  run();
  const before = memory();
  for (let i = 0; i < 20; i++) run();
  expect(memory()).toEqual(before);
  packed.dispose();
  Q.disposeQuantState(state);
});
