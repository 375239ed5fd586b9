// Loads the PyTorch reference values written by test/fixtures/make_torch_reference.py (and, through
// loadReferenceFile, any generator's file) and compares tensors against them (shape, dtype and values
// within a stated tolerance).
import * as path from 'path';
import { loadSafetensorsSync, readSafetensorsHeader, Tensor, torchVersion } from '../../lib';

const DIR = path.join(__dirname, '..', 'fixtures', 'torch-reference');

const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');

/**
 * Whether this addon's libtorch has the major.minor version of the PyTorch that wrote the reference
 * (1.13, what CI has). Random streams (randperm, bernoulli for dropout) may change between releases,
 * so the seed-for-seed parity tests run only then; the deterministic math runs everywhere.
 */
export function sameTorchAsReference(name: 'creation' | 'math' | 'nn'): boolean {
  const writer = readSafetensorsHeader(path.join(DIR, `${name}.safetensors`)).metadata.torch ?? '';
  return majorMinor(writer) === majorMinor(torchVersion);
}

/** The tensors of a reference file: ref(key) throws naming the file and its generator when a key is missing. */
export interface ReferenceTensors {
  ref: (key: string) => Tensor;
  has: (key: string) => boolean;
  dispose: () => void;
}

/**
 * A .safetensors file a test/fixtures/<generator> script wrote, as name -> Tensor (created outside any
 * scope; call the returned dispose in afterAll).
 */
export function loadReferenceFile(file: string, generator: string): ReferenceTensors {
  const all = loadSafetensorsSync(file);
  return {
    ref(key: string): Tensor {
      const t = all[key];
      if (t === undefined) throw new Error(`${path.basename(file)} has no '${key}'; rerun ${generator}`);
      return t;
    },
    has: (key) => key in all,
    dispose() {
      for (const t of Object.values(all)) t.dispose();
    },
  };
}

/** A make_torch_reference.py file (creation, math or nn) as name -> Tensor. */
export function loadReference(name: 'creation' | 'math' | 'nn'): ReferenceTensors {
  return loadReferenceFile(path.join(DIR, `${name}.safetensors`), 'make_torch_reference.py');
}

/** The elements as JS numbers (int64 via Number, bool as 0/1). */
export function values(t: Tensor): number[] {
  return Array.from(t.data() as ArrayLike<number | bigint>, (v) => Number(v));
}

export interface CloseOptions {
  /** |a - e| <= atol + rtol * |e| elementwise (defaults: exact). */
  atol?: number;
  rtol?: number;
  /** Also require the same dtype (default true). */
  dtype?: boolean;
}

/** Fails with the first differing element, its index and the error when `actual` is not close to `expected`. */
export function expectClose(actual: Tensor, expected: Tensor, opts: CloseOptions = {}): void {
  const { atol = 0, rtol = 0, dtype = true } = opts;
  expect(actual.shape).toEqual(expected.shape);
  if (dtype) expect(actual.dtype).toBe(expected.dtype);
  const a = values(actual);
  const e = values(expected);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < e.length; i++) {
    if (Number.isNaN(e[i]) && Number.isNaN(a[i])) continue;
    if (a[i] === e[i]) continue; // also equal infinities
    const excess = Math.abs(a[i] - e[i]) - (atol + rtol * Math.abs(e[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0)
    throw new Error(
      `element ${worst} of shape [${expected.shape}] differs: got ${a[worst]}, expected ${e[worst]} ` +
        `(|diff| ${Math.abs(a[worst] - e[worst])}, atol ${atol}, rtol ${rtol})`,
    );
}
