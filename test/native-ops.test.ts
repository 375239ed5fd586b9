// Issue 9: every native op is typed (lib/native-ops.ts, generated from binding/ by
// scripts/gen-native-types.js), and the declaration cannot drift from the addon: it is what the generator
// makes of the binding sources now, and its ops are exactly the ones the built addon exports.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
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

test('tsc reports the calls that do not fit the declaration (arity, argument and result types)', () => {
  const file = path.join(tmpDir('native-ops-tsc'), 'calls.ts');
  const lines = [
    `import type { NativeHandle } from ${JSON.stringify(path.join(ROOT, 'lib', 'native'))};`,
    `import type { NativeOps } from ${JSON.stringify(path.join(ROOT, 'lib', 'native-ops'))};`,
    'declare const native: NativeOps;',
    'declare const h: NativeHandle;',
    'native.swiglu(h, h);', // fits
    'native.swiglu(h);', // an argument missing
    'native.transpose(h, 0, 1, 2);', // one too many
    "native.softmax(h, 'last');", // a string where an int is read
    'const n: number = native.shape(h);', // number[] is not a number
    'native.sum(h, undefined, undefined, 6);', // optional arguments left out before a given one
  ];
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const program = ts.createProgram([file], { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], target: ts.ScriptTarget.ES2022, moduleResolution: ts.ModuleResolutionKind.Node10 });
  const found = ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName === file ? d.file.getLineAndCharacterOfPosition(d.start!).line + 1 : d.file?.fileName}: TS${d.code}`);
  expect(found).toEqual(['6: TS2554', '7: TS2554', '8: TS2345', '9: TS2322']);
});
