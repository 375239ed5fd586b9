#!/usr/bin/env node
// Writes lib/native-ops.ts, the TypeScript declaration of every native op, from the binding sources: one
// member per def(...) of binding/*.cpp, its parameters from what the op reads through Args (binding/
// op_bridge.h: a.t(0), a.i64(1, dflt), a.optT(2), a.has(3)...) and its result from the C++ it returns.
// So a C++ signature that changes (an op renamed, an argument added, removed or retyped) changes the
// declaration, and tsc then reports every call site that no longer fits. `npm run build:ts` runs it;
// `--check` only reports whether lib/native-ops.ts is current (test/native-ops.test.ts runs that too).
//
//   node scripts/gen-native-types.js [--check]
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'lib', 'native-ops.ts');

// --- What the C++ cannot say by itself ---
// Results built by hand as JS values (Napi::Value), or by ATen functions whose overload decides the type.
const RETURNS = {
  toBytes: 'ArrayBuffer',
  distBackends: 'string[]',
  distInitAsync: 'Promise<void>',
  distAllReduceAsync: 'Promise<void>',
  distBroadcastAsync: 'Promise<void>',
  distAllGatherAsync: 'Promise<void>',
  distBarrierAsync: 'Promise<void>',
  distReducerFinishAsync: 'Promise<void>',
  distReducerIssuedDuringBackward: 'number',
  readTensorsAsync: 'Promise<NativeHandle[]>',
  writeFileAtomicAsync: 'Promise<void>',
  loadTorchBin: '[string[], NativeHandle[]]',
  loadTorchBinAsync: 'Promise<[string[], NativeHandle[]]>',
  quantizeNestedAbsmax: '[NativeHandle, NativeHandle, number]',
  liveTensors: 'number',
  liveBytes: 'number',
  liveCudaBytes: 'number',
  maxDim: '[NativeHandle, NativeHandle]',
  minDim: '[NativeHandle, NativeHandle]',
  topk: '[NativeHandle, NativeHandle]',
  sort: '[NativeHandle, NativeHandle]',
  linalgSvd: '[NativeHandle, NativeHandle, NativeHandle]',
  linalgQr: '[NativeHandle, NativeHandle]',
  linalgCholeskyEx: '[NativeHandle, NativeHandle]',
  split: 'NativeHandle[]',
  chunk: 'NativeHandle[]',
  unbind: 'NativeHandle[]',
  allclose: 'boolean',
  equal: 'boolean',
  sameStorage: 'boolean',
  requiresGrad: 'boolean',
  isLeaf: 'boolean',
  isContiguous: 'boolean',
  isDisposed: 'boolean',
  isGradEnabled: 'boolean',
  cudaIsAvailable: 'boolean',
  gradsDefined: 'boolean[]',
  item: 'number | boolean',
  gradFnName: 'string | null',
  grad: 'NativeHandle | undefined', // (an undefined at::Tensor reaches JS as undefined)
  parallelInfo: 'string',
  showConfig: 'string',
  torchVersion: 'string',
  device: 'string',
  blasInfo: '{ library: string; config: string; threads: number }',
};
// Arguments read as raw JS values (a.raw(i)), by op and index, or by the helper that reads them.
const RAW_ARGS = {
  'fromBytes:0': 'ArrayBufferView',
  'index:1': 'ReadonlyArray<NativeHandle | null | undefined>',
  'split:1': 'number | bigint | readonly number[]',
  'dispose:0': 'NativeHandle',
  'isDisposed:0': 'NativeHandle',
};
const HELPER_ARGS = {
  readSpecs: 'ReadonlyArray<{ dtype: number; shape: readonly number[]; offset: number; nbytes: number }>',
  bytesArg: 'Uint8Array',
  tensorBuckets: 'ReadonlyArray<readonly NativeHandle[]>',
  initOptions:
    '{ backend: string; store: string; host?: string; port?: number; path?: string; rank: number; worldSize: number; timeoutMs?: number; ifname?: string }',
};

// --- Args accessors: the TS type each reads, and whether it has a default (so the argument may be left out) ---
const ACCESSORS = {
  t: ['NativeHandle', false],
  optT: ['NativeHandle', true],
  tensors: ['readonly NativeHandle[]', false],
  i64: ['number | bigint', false],
  optI64: ['number | bigint', true],
  f64: ['number', false],
  optF64: ['number', true],
  b: ['boolean', true],
  str: ['string', false],
  scalar: ['number | boolean | bigint', false],
  optScalar: ['number | boolean | bigint', true],
  dims: ['number | bigint | readonly number[]', false],
  optDims: ['number | bigint | readonly number[]', true],
  dtype: ['number', false],
  optDtype: ['number', true],
  device: ['string', true],
};

/** C++ result types (of src/ functions, trailing return types, named ops) in TS. */
function tsOfCpp(type) {
  const t = type.replace(/\s+/g, ' ').replace(/\bconst\b|&/g, '').trim();
  const simple = {
    'at::Tensor': 'NativeHandle',
    'std::vector<at::Tensor>': 'NativeHandle[]',
    'std::vector<int64_t>': 'number[]',
    double: 'number',
    int64_t: 'number',
    bool: 'boolean',
    'std::string': 'string',
    void: 'void',
  };
  if (t in simple) return simple[t];
  const tuple = /^std::tuple<(.*)>$/.exec(t);
  if (tuple) return `[${splitTop(tuple[1], ',').map(tsOfCpp).join(', ')}]`;
  return undefined;
}

// --- C++ text ---
/** The source without comments (string and char literals kept). */
function stripComments(s) {
  let out = '';
  for (let i = 0; i < s.length; ) {
    const c = s[i];
    if (c === '"' || c === "'") {
      const j = literalEnd(s, i);
      out += s.slice(i, j + 1);
      i = j + 1;
    } else if (s.startsWith('//', i)) {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (s.startsWith('/*', i)) {
      i = s.indexOf('*/', i + 2) + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
function literalEnd(s, i) {
  let j = i + 1;
  while (s[j] !== s[i]) j += s[j] === '\\' ? 2 : 1;
  return j;
}
/** The index of the bracket closing the one at `i`. */
function closing(s, i) {
  const open = s[i];
  const close = { '(': ')', '{': '}', '[': ']', '<': '>' }[open];
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    if (s[j] === '"' || s[j] === "'") j = literalEnd(s, j);
    else if (s[j] === open) depth++;
    else if (s[j] === close && --depth === 0) return j;
  }
  throw new Error(`unbalanced '${open}' at ${s.slice(i, i + 60)}`);
}
/** `s` split at `sep` outside brackets. */
function splitTop(s, sep) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let j = 0; j < s.length; j++) {
    if ('(<[{'.includes(s[j])) depth++;
    else if (')>]}'.includes(s[j])) depth--;
    else if (s[j] === sep && depth === 0 && !(sep === ':' && (s[j + 1] === ':' || s[j - 1] === ':'))) {
      parts.push(s.slice(start, j).trim());
      start = j + 1;
    }
  }
  parts.push(s.slice(start).trim());
  return parts;
}
/** Function-like macros of a file expanded (the op tables of ops_math.cpp). */
function expandMacros(s) {
  const macros = [];
  s = s.replace(/\\\n/g, ' ').replace(/^#define (\w+)\(([^)]*)\)(.*)$/gm, (_, name, params, body) => {
    macros.push({ name, params: params.split(',').map((p) => p.trim()), body });
    return '';
  });
  for (const m of macros)
    s = s.replace(new RegExp(`\\b${m.name}\\(([^;]*?)\\);`, 'g'), (_, args) => {
      const vals = splitTop(args, ',');
      return m.params.reduce((b, p, k) => b.replace(new RegExp(`\\b${p}\\b`, 'g'), vals[k]), m.body) + ';';
    });
  return s;
}
/** Functions of a file that take Args: name -> { params, ret, body }. */
function argsFunctions(s) {
  const out = {};
  for (const m of s.matchAll(/(?:^|\n)\s*(?:static\s+)?([\w:<>, ]+?)\s+(\w+)\(\s*(?:const\s+)?Args&\s*a(?:,\s*size_t\s+(\w+))?\)\s*\{/g)) {
    const open = m.index + m[0].length - 1;
    out[m[2]] = { ret: m[1].trim(), index: m[3], body: s.slice(open + 1, closing(s, open)) };
  }
  return out;
}
/** Return types of the src/ functions the binding calls, from src/*.h. */
function srcReturnTypes(root) {
  const out = {};
  const dir = path.join(root, 'src');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.h')).sort()) {
    const s = stripComments(fs.readFileSync(path.join(dir, f), 'utf8'));
    for (const m of s.matchAll(/^([\w:<>, ]+?)\s+(\w+)\(/gm)) out[m[2]] = m[1].trim();
  }
  return out;
}

/**
 * Argument names from the comment right above a def line, `// (x, weight, bias?, ...)`, by op; ops without
 * one (or whose list does not fit the arguments read) get a0, a1, ...
 */
function commentNames(text) {
  const out = {};
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const def = /\bdef\(\s*env\s*,\s*\w+\s*,\s*"(\w+)"/.exec(line);
    if (!def) return;
    let j = i;
    while (j > 0 && /^\s*\/\//.test(lines[j - 1])) j--;
    const comment = lines.slice(j, i).map((l) => l.replace(/^\s*\/\/\s?/, '')).join(' ');
    if (!comment.startsWith('(')) return;
    const inner = comment.slice(1, closing(comment, 0));
    const names = inner.trim() === '' ? [] : splitTop(inner, ',').map((item) => /^([A-Za-z_]\w*)\??(?:$|[ :[(])/.exec(item)?.[1]);
    if (names.every((n) => n !== undefined && !RESERVED.has(n)) && new Set(names).size === names.length) out[def[1]] = names;
  });
  return out;
}
const RESERVED = new Set(['var', 'let', 'const', 'function', 'default', 'new', 'delete', 'in', 'this', 'class', 'return', 'void', 'null', 'true', 'false', 'typeof']);

// --- One op ---
function readsOf(body, indexName) {
  // Every argument read: [accessor, index expression, has a default]
  const reads = [];
  for (const m of body.matchAll(/\ba\.(\w+)\(([^()]*(?:\([^()]*\))?[^()]*)\)/g)) {
    const [acc, argText] = [m[1], m[2]];
    if (!(acc in ACCESSORS) && !['raw', 'has', 'options', 'tensorIn'].includes(acc)) continue;
    const args = splitTop(argText, ',');
    if (acc === 'options') {
      reads.push(['optDtype', args[0], true], ['device', args[1], true]);
      continue;
    }
    if (acc === 'tensorIn') continue; // elements of an array argument read raw (index: RAW_ARGS)
    reads.push([acc, args[0], args.length > 1]);
  }
  for (const m of body.matchAll(/\bisTensorArg(?:At)?\(a,\s*(\w+)\)/g)) reads.push(['isTensor', m[1], false]);
  // Helpers given (a, i)
  for (const m of body.matchAll(/\b(\w+)\(a,\s*(\w+)\)/g)) if (m[1] in HELPER_ARGS || m[1] === 'deviceIndex') reads.push([m[1], m[2], false]);
  return reads.map(([acc, idx, dflt]) => [acc, idx === indexName ? idx : idx, dflt]);
}

function opDeclaration(file, name, lambda, helpers, srcTypes, names) {
  const { body, trailing } = lambda;
  const reads = readsOf(body);
  const params = [];
  const optional = new Set();
  for (const [acc, idxText, dflt] of reads) {
    if (!/^\d+$/.test(idxText)) throw new Error(`${file}: op '${name}' reads argument '${idxText}', not a number: the generator cannot type it`);
    const i = Number(idxText);
    params[i] ??= new Set();
    if (acc === 'has') {
      optional.add(i);
      continue;
    }
    if (acc === 'raw') {
      const t = RAW_ARGS[`${name}:${i}`];
      if (t === undefined) throw new Error(`${file}: op '${name}' reads argument ${i} raw: give its type in RAW_ARGS of ${__filename}`);
      params[i].add(t);
      continue;
    }
    if (acc === 'isTensor') {
      params[i].add('NativeHandle');
      continue;
    }
    if (acc === 'deviceIndex') {
      params[i].add('number | bigint');
      optional.add(i);
      continue;
    }
    if (acc in HELPER_ARGS) {
      params[i].add(HELPER_ARGS[acc]);
      continue;
    }
    const [type, alwaysOptional] = ACCESSORS[acc];
    params[i].add(type);
    if (alwaysOptional || dflt) optional.add(i);
  }
  for (let i = 0; i < params.length; i++)
    if (params[i] === undefined) throw new Error(`${file}: op '${name}' never reads argument ${i} but reads a later one`);
  // Required: read by an accessor without a default (and no a.has(i) guard); optional params must come last.
  const required = params.map((_, i) => !optional.has(i) || reads.some(([acc, idx, dflt]) => Number(idx) === i && acc in ACCESSORS && !ACCESSORS[acc][1] && !dflt && !optional.has(i)));
  const lastRequired = required.lastIndexOf(true);
  const argName = (i) => (names !== undefined && names.length === params.length ? names[i] : `a${i}`);
  const list = params.map((types, i) => {
    const t = [...new Set([...types].flatMap((x) => x.split(' | ')))].join(' | ');
    if (i <= lastRequired) return required[i] ? `${argName(i)}: ${t}` : `${argName(i)}: ${t} | null | undefined`;
    return `${argName(i)}?: ${t} | null`;
  });
  return `  ${name}(${list.join(', ')}): ${resultOf(file, name, lambda, srcTypes)};`;
}

function resultOf(file, name, { body, trailing, ret }, srcTypes) {
  if (name in RETURNS) return RETURNS[name];
  const fixed = trailing ?? ret;
  if (fixed !== undefined) {
    const t = tsOfCpp(fixed);
    if (t === undefined) throw new Error(`${file}: op '${name}' returns ${fixed}: give its TS type in RETURNS of ${__filename}`);
    return t;
  }
  const returns = [...body.matchAll(/\breturn\b([^;]*);/g)].map((m) => m[1].trim());
  if (returns.every((r) => r === '')) return 'void';
  const types = new Set();
  for (const r of returns) for (const branch of ternaryBranches(r)) types.add(typeOfExpression(file, name, branch, srcTypes));
  if (types.size !== 1) throw new Error(`${file}: op '${name}' returns ${[...types].join(' or ')}: give its TS type in RETURNS of ${__filename}`);
  return [...types][0];
}
function ternaryBranches(r) {
  const q = splitTop(r, '?');
  if (q.length === 1) return [r];
  return splitTop(q.slice(1).join('?'), ':').flatMap(ternaryBranches);
}
/** `a.t(0).m(...).n(...)` or `x.m(...)`: calls of methods on a tensor. */
function isMethodChain(e) {
  const head = /^(a\.t\(\d+\)|[a-z]\w*)/.exec(e);
  if (!head) return false;
  let i = head[0].length;
  while (i < e.length) {
    const m = /^\.\w+\(/.exec(e.slice(i));
    if (!m) return false;
    i = closing(e, i + m[0].length - 1) + 1;
  }
  return i > head[0].length;
}
function typeOfExpression(file, name, e, srcTypes) {
  const call = /^(\w+)\(/.exec(e);
  if (call && call[1] in srcTypes) {
    const t = tsOfCpp(srcTypes[call[1]]);
    if (t !== undefined) return t;
  }
  if (/^static_cast<int64_t>\(/.test(e)) return 'number';
  // ATen functions and Tensor methods that return a tensor (the ones that do not are in RETURNS)
  if (/^at::\w+\(/.test(e) || isMethodChain(e)) {
    if (/\.(sizes|strides)\(\)\.vec\(\)$/.test(e)) return 'number[]';
    return 'NativeHandle';
  }
  throw new Error(`${file}: op '${name}' returns '${e}': give its TS type in RETURNS of ${__filename}`);
}

// --- All ops ---
function collectOps(root) {
  const srcTypes = srcReturnTypes(root);
  const ops = [];
  const dir = path.join(root, 'binding');
  for (const file of fs.readdirSync(dir).filter((n) => n.endsWith('.cpp')).sort()) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const names = commentNames(text);
    const s = expandMacros(stripComments(text));
    const helpers = argsFunctions(s);
    for (const m of s.matchAll(/\bdef\(\s*env\s*,\s*\w+\s*,\s*"(\w+)"\s*,\s*/g)) {
      const at = m.index + m[0].length;
      let lambda;
      if (s[at] === '[') {
        const lp = s.indexOf('(', closing(s, at));
        const rp = closing(s, lp);
        const ob = s.indexOf('{', rp);
        const trailing = /^->\s*(.+)$/.exec(s.slice(rp + 1, ob).trim())?.[1];
        lambda = { body: s.slice(ob + 1, closing(s, ob)), trailing };
      } else {
        const fn = /^(\w+)\s*\)/.exec(s.slice(at))?.[1];
        if (fn === undefined || !(fn in helpers)) throw new Error(`${file}: op '${m[1]}' is registered with neither a lambda nor a function of Args in this file`);
        lambda = { body: helpers[fn].body, ret: helpers[fn].ret === 'Napi::Value' ? undefined : helpers[fn].ret };
        if (helpers[fn].ret === 'Napi::Value' && !(m[1] in RETURNS)) throw new Error(`${file}: op '${m[1]}' returns Napi::Value: give its TS type in RETURNS of ${__filename}`);
      }
      ops.push({ file, name: m[1], decl: opDeclaration(file, m[1], lambda, helpers, srcTypes, names[m[1]]) });
    }
  }
  const seen = new Set();
  for (const o of ops) {
    if (seen.has(o.name)) throw new Error(`binding/${o.file}: op '${o.name}' is registered twice`);
    seen.add(o.name);
  }
  for (const n of [...Object.keys(RETURNS), ...Object.keys(RAW_ARGS).map((k) => k.split(':')[0])])
    if (!seen.has(n)) throw new Error(`${__filename} names op '${n}', which binding/ no longer registers: remove it`);
  return ops;
}

/** The text of lib/native-ops.ts for the sources under `root` (the package root). */
function generate(root = ROOT) {
  const ops = collectOps(root);
  const lines = [
    '// Generated by scripts/gen-native-types.js from binding/*.cpp: do not edit (`npm run build:ts` rewrites it).',
    '// One member per def(...) of the addon: its arguments as the op reads them (binding/op_bridge.h Args),',
    '// its result as the C++ returns it. An argument the op may go without is optional (null counts as absent).',
    '// Argument names: the `// (name, ...)` comment right above a def line where it fits the arguments, else a0, a1, ...',
    "import type { NativeHandle } from './native';",
    '',
    '/* eslint-disable @typescript-eslint/member-ordering */',
    'export interface NativeOps {',
  ];
  let file = '';
  for (const o of ops) {
    if (o.file !== file) lines.push(`  // binding/${(file = o.file)}`);
    lines.push(o.decl);
  }
  lines.push('}', '', '/** The names of the ops, as binding/ registers them. */');
  lines.push(`export const NATIVE_OP_NAMES: ReadonlyArray<keyof NativeOps> = [`);
  for (const o of ops) lines.push(`  '${o.name}',`);
  lines.push('];', '');
  return lines.join('\n');
}

module.exports = { generate, OUT };

if (require.main === module) {
  const text = generate();
  const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (process.argv.includes('--check')) {
    if (current !== text) {
      console.error(`${path.relative(ROOT, OUT)} is not current with binding/: run node scripts/gen-native-types.js`);
      process.exit(1);
    }
  } else if (current !== text) {
    const tmp = `${OUT}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, OUT);
  }
}
