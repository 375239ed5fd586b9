// Python's json.dumps(obj, indent=2, sort_keys=True), the way PEFT writes adapter_config.json: keys sorted,
// 2-space indent, ", "/": " separators, non-ASCII escaped (ensure_ascii), empty containers as [] and {},
// floats spelled as Python's repr(float) (0.0, 1e-05). JavaScript numbers do not say whether they were
// ints or floats, so the caller names the keys whose values are floats; other integral numbers are ints.
import { pyFloat } from '../python-float';

/** A value that marks a number as a Python float (json writes 16.0, not 16). */
export class PyFloat {
  constructor(readonly value: number) {}
}

function pyString(s: string): string {
  // JSON.stringify escapes quotes, backslashes and control characters as Python does (lowercase \u00XX);
  // ensure_ascii also escapes DEL and everything above it, one UTF-16 unit at a time.
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function pyNumber(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  return Number.isInteger(x) ? String(x) : pyFloat(x);
}

function dump(value: unknown, indent: string, floatKeys: ReadonlySet<string>, key?: string): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof PyFloat) return Number.isFinite(value.value) ? pyFloat(value.value) : pyNumber(value.value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return key !== undefined && floatKeys.has(key) && Number.isFinite(value) ? pyFloat(value) : pyNumber(value);
  if (typeof value === 'string') return pyString(value);
  const inner = indent + '  ';
  if (value instanceof Set) value = [...value];
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    // a list under a float key holds floats (longrope's long_factor: [1.0, 2.5])
    return `[\n${value.map((v) => inner + dump(v, inner, floatKeys, key)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${pyString(k)}: ${dump(v, inner, floatKeys, k)}`).join(',\n')}\n${indent}}`;
  }
  throw new TypeError(`pythonJsonDumps: cannot write a value of type ${typeof value}`);
}

/**
 * The text json.dumps(value, indent=2, sort_keys=True) gives, with the numbers under `floatKeys` (at any
 * depth) written as floats. No trailing newline, as PEFT writes none.
 */
export function pythonJsonDumps(value: unknown, floatKeys: Iterable<string> = []): string {
  return dump(value, '', new Set(floatKeys));
}
