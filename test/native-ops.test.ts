// Issue 9: every native op is typed (lib/native-ops.ts, generated from binding/ by
// scripts/gen-native-types.js), and the declaration cannot drift from the addon: it is what the generator
// makes of the binding sources now, and its ops are exactly the ones the built addon exports.
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../lib/native';
import { NATIVE_OP_NAMES } from '../lib/native-ops';
import { tmpDir } from './helpers/tmp-dir';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const gen = require('../scripts/gen-native-types.js') as { generate: (root?: string) => string; OUT: string };
const ROOT = path.join(__dirname, '..');

test('lib/native-ops.ts is what scripts/gen-native-types.js makes of binding/ now', () => {
  const current = fs.readFileSync(gen.OUT, 'utf8');
  // (on failure: binding/ changed without `node scripts/gen-native-types.js` or `npm run build:ts`)
  expect(current === gen.generate()).toBe(true);
});

test("the declared ops are exactly the built addon's exports", () => {
  const exported = Object.keys(native).filter((k) => typeof (native as unknown as Record<string, unknown>)[k] === 'function');
  expect([...NATIVE_OP_NAMES].sort()).toEqual(exported.sort());
  expect(new Set(NATIVE_OP_NAMES).size).toBe(NATIVE_OP_NAMES.length);
});

/** The package's binding/ and src/ copied under a temporary root, with `edit` applied to one binding file. */
function editedRoot(file: string, edit: (text: string) => string): string {
  const root = tmpDir('native-ops');
  for (const d of ['binding', 'src']) fs.cpSync(path.join(ROOT, d), path.join(root, d), { recursive: true });
  const f = path.join(root, 'binding', file);
  const before = fs.readFileSync(f, 'utf8');
  const after = edit(before);
  expect(after).not.toBe(before);
  fs.writeFileSync(f, after);
  return root;
}
const declOf = (text: string, op: string) => text.split('\n').find((l) => l.startsWith(`  ${op}(`));

test('the declaration follows a changed C++ signature: arguments added, retyped, made optional, an op renamed', () => {
  expect(declOf(gen.generate(), 'swiglu')).toBe('  swiglu(a0: NativeHandle, a1: NativeHandle): NativeHandle;');
  const added = editedRoot('ops_fused.cpp', (s) => s.replace('swiglu(a.t(0), a.t(1))', 'swiglu(a.t(0), a.t(1)) * a.f64(2)'));
  expect(declOf(gen.generate(added), 'swiglu')).toBe('  swiglu(a0: NativeHandle, a1: NativeHandle, a2: number): NativeHandle;');
  const retyped = editedRoot('ops_shape.cpp', (s) => s.replace('a.t(0).transpose(a.i64(1), a.i64(2))', 'a.t(0).transpose(a.i64(1), a.i64(2, -1))'));
  expect(declOf(gen.generate(retyped), 'transpose')).toBe('  transpose(a0: NativeHandle, a1: number | bigint, a2?: number | bigint | null): NativeHandle;');
  const renamed = editedRoot('ops_math.cpp', (s) => s.replace('"matmul"', '"matMul"'));
  const text = gen.generate(renamed);
  expect([declOf(text, 'matmul'), declOf(text, 'matMul')]).toEqual([undefined, '  matMul(a0: NativeHandle, a1: NativeHandle): NativeHandle;']);
});

test("argument names come from the '// (name, ...)' comment above a def line when it fits the arguments read", () => {
  expect(declOf(gen.generate(), 'layerNorm')).toBe(
    '  layerNorm(x: NativeHandle, normalizedShape: number | bigint | readonly number[], weight?: NativeHandle | null, bias?: NativeHandle | null, eps?: number | null): NativeHandle;',
  );
  // A comment that no longer fits (an argument added below it) is not used
  const stale = editedRoot('ops_nn.cpp', (s) => s.replace('a.f64(4, 1e-5)', 'a.f64(4, 1e-5) + a.f64(5, 0.0)'));
  expect(declOf(gen.generate(stale), 'layerNorm')).toMatch(/^  layerNorm\(a0: NativeHandle, .*, a5\?: number \| null\): NativeHandle;$/);
});

test('the generator refuses what it cannot type, naming the op and what to do', () => {
  const napiValue = editedRoot('ops_fused.cpp', (s) => s.replace('def(env, e, "swiglu", [](Args& a) {', 'def(env, e, "swiglu", [](Args& a) -> Napi::Value {'));
  expect(() => gen.generate(napiValue)).toThrow("ops_fused.cpp: op 'swiglu' returns Napi::Value: give its TS type in RETURNS");
  const gap = editedRoot('ops_fused.cpp', (s) => s.replace('swiglu(a.t(0), a.t(1))', 'swiglu(a.t(0), a.t(2))'));
  expect(() => gen.generate(gap)).toThrow("ops_fused.cpp: op 'swiglu' never reads argument 1 but reads a later one");
  const raw = editedRoot('ops_fused.cpp', (s) => s.replace('swiglu(a.t(0), a.t(1))', 'swiglu(a.t(0), a.t(1)) * a.raw(2).ToNumber().DoubleValue()'));
  expect(() => gen.generate(raw)).toThrow("ops_fused.cpp: op 'swiglu' reads argument 2 raw: give its type in RAW_ARGS");
  const twice = editedRoot('ops_fused.cpp', (s) => s.replace('"swiglu"', '"loraLinear"'));
  expect(() => gen.generate(twice)).toThrow("op 'loraLinear' is registered twice");
});
