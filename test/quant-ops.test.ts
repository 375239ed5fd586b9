// bitsandbytes' blockwise quantization (src/quant_*.cpp, lib/quant/functional.ts) against
// test/fixtures/quant/make_quant_reference.py (bitsandbytes' definitions written out in torch ops; bitsandbytes
// itself has no wheel here): code books, packed 4-bit codes, absmax and the double-quantized absmax
// byte-identical; dequantized values equal (exactly: the same float32 products, then one cast); the 4-bit
// matmul equal to linear on the dequantized weight, with the input's gradient; errors that say what is wrong.
import * as path from 'path';
import * as torch from '../lib';
import { DType, F, memory, scope, Tensor } from '../lib';
import * as Q from '../lib/quant/functional';
import { errorMessage } from './helpers/errors';
import { loadReferenceFile, ReferenceTensors } from './helpers/reference';
import { bytesOf, maxAbsDiff } from './helpers/tensors';

const FILE = path.join(__dirname, 'fixtures', 'quant', 'quant-reference.safetensors');
let R: ReferenceTensors;
beforeAll(() => {
  R = loadReferenceFile(FILE, 'test/fixtures/quant/make_quant_reference.py');
});
afterAll(() => R.dispose());

const CASES: [string, number][] = [
  ['w64', 64],
  ['tail', 64],
  ['bs32', 32],
  ['bs128', 128],
  ['bs4096', 4096],
  ['bs256', 256],
];

function expectBytes(actual: Tensor, expected: Tensor): void {
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.dtype).toBe(expected.dtype);
  expect(bytesOf(actual).equals(bytesOf(expected))).toBe(true);
}

test('code books: NF4, FP4 and the 8-bit dynamic map are bitsandbytes\' bit for bit', () => {
  scope(() => {
    expectBytes(Q.fourBitCode('nf4'), R.ref('code.nf4'));
    expectBytes(Q.fourBitCode('fp4'), R.ref('code.fp4'));
    expectBytes(Q.dynamicMap(), R.ref('code.dynamic'));
  });
});

describe.each(CASES)('4-bit %s (blocksize %d)', (name, blocksize) => {
  test.each([
    ['nf4', false],
    ['fp4', false],
    ['nf4', true],
    ['fp4', true],
  ] as const)('%s, double quant %s: codes and absmax byte-identical, dequantized values equal', (quantType, dq) => {
    scope(() => {
      const key = `${name}.${quantType}${dq ? '.dq' : ''}`;
      const input = R.ref(`${name}.input`);
      const [packed, state] = Q.quantize4bit(input, { blocksize, quantType, compressStatistics: dq });
      expectBytes(packed, R.ref(`${key}.packed`));
      if (dq) {
        expectBytes(state.absmax, R.ref(`${key}.qabsmax`));
        expectBytes(state.nested!.absmax, R.ref(`${key}.nested_absmax`));
        // the offset is a float32 in bitsandbytes: ours is that float32's exact value
        expect(state.nested!.offset).toBe(R.ref(`${key}.offset`).item());
        expect(state.nested!.blocksize).toBe(256);
      } else {
        expectBytes(state.absmax, R.ref(`${key}.absmax`));
      }
      expect(state.shape).toEqual(input.shape);
      expect(state.dtype).toBe(input.dtype);
      for (const dtype of ['float32', 'bfloat16', 'float16'] as DType[]) {
        const refKey = `${key}.dequant.${dtype}`;
        if (!R.has(refKey)) continue;
        expectBytes(Q.dequantize4bit(packed, state, dtype), R.ref(refKey));
      }
      Q.disposeQuantState(state);
    });
  });
});

test('8-bit blockwise with the dynamic map (double quantization\'s own step) is byte-identical', () => {
  scope(() => {
    const [q, absmax] = Q.quantizeBlockwise(R.ref('blockwise.input'), Q.dynamicMap(), 256);
    expectBytes(q, R.ref('blockwise.q'));
    expectBytes(absmax, R.ref('blockwise.absmax'));
    expectBytes(Q.dequantizeBlockwise(q, absmax, Q.dynamicMap(), 256), R.ref('blockwise.dequant'));
  });
});

test('matmul4bit equals linear on the dequantized weight, forward and the input gradient, in each compute dtype', () => {
  scope(() => {
    torch.manualSeed(0);
    const w = torch.randn([24, 48]).mul(0.05);
    const [packed, state] = Q.quantize4bit(w, { quantType: 'nf4', compressStatistics: true });
    const absmax = Q.stateAbsmax(state);
    const bias = torch.randn([24]);
    for (const dtype of ['float32', 'bfloat16', 'float64'] as DType[]) {
      const x = torch.randn([2, 3, 48], { dtype }).requiresGrad_(true);
      const y = Q.matmul4bit(x, packed, absmax, state, bias.to(dtype));
      const x2 = x.detach().clone().requiresGrad_(true);
      const wd = Q.dequantize4bit(packed, state, dtype);
      const y2 = F.linear(x2, wd, bias.to(dtype));
      // the same dequantized weight and the same ATen linear: equal
      expect(maxAbsDiff(y, y2)).toBe(0);
      expect(y.dtype).toBe(dtype);
      const g = torch.randnLike(y);
      y.backward(g);
      y2.backward(g);
      expect(maxAbsDiff(x.grad!, x2.grad!)).toBe(0);
    }
    Q.disposeQuantState(state);
  });
});

test('matmul4bit keeps no dequantized weight alive and leaks nothing over a loop', () => {
  const [packed, state] = Q.quantize4bit(torch.randn([64, 64]), { quantType: 'nf4' });
  const before = memory();
  for (let i = 0; i < 5; i++) {
    scope(() => {
      const x = torch.randn([4, 64]).requiresGrad_(true);
      const y = Q.matmul4bit(x, packed, state.absmax, state);
      y.sum().backward();
    });
  }
  expect(memory()).toEqual(before);
  packed.dispose();
  Q.disposeQuantState(state);
});

test('errors name what is wrong: block size, quant type, dtype, NaN, mismatched sizes', () => {
  scope(() => {
    const w = torch.randn([8, 8]);
    expect(errorMessage(() => Q.quantize4bit(w, { blocksize: 48 }))).toMatch(/blocksize must be one of 32, 64.*got 48/);
    expect(errorMessage(() => Q.quantize4bit(w, { quantType: 'int4' as Q.QuantType }))).toMatch(/'nf4' or 'fp4', got 'int4'/);
    expect(errorMessage(() => Q.quantize4bit(torch.arange(0, 64)))).toMatch(/float32, bfloat16 or float16 tensors, got Long/);
    const nan = torch.tensor([1, NaN, 2, 3]);
    expect(errorMessage(() => Q.quantize4bit(nan))).toMatch(/NaN or infinite/);
    const [packed, state] = Q.quantize4bit(w, { quantType: 'nf4' });
    expect(errorMessage(() => Q.dequantize4bit(packed, { ...state, shape: [8, 16] }))).toMatch(
      /shape \[8, 16\] holds 128 values, which pack into 64 bytes, but the packed weight has 32/,
    );
    expect(errorMessage(() => Q.matmul4bit(torch.randn([2, 7]), packed, state.absmax, state))).toMatch(
      /the input \[2, 7\] must end in 8 features/,
    );
    expect(errorMessage(() => Q.dequantize4bit(packed, { ...state, blocksize: 32 }))).toMatch(
      /64 values in blocks of 32 need 2 absmax values, got 1/,
    );
    Q.disposeQuantState(state);
  });
});
