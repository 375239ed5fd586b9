// JSON files as Python's json module reads them (Hugging Face's configs are written by json.dumps, which
// spells non-finite floats NaN, Infinity and -Infinity), with every failure naming the file: a missing
// file, a folder where a file should be, unreadable bytes, invalid JSON (with its line), a non-object.
import * as fs from 'fs';

/** Bare NaN / Infinity / -Infinity outside strings (strings are matched first, so their contents are skipped). */
const NON_FINITE = /"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g;
const SENTINEL = '\u0000py-float:';

/** JSON.parse that also takes Python's NaN, Infinity and -Infinity (as json.loads does). */
export function parsePythonJson(text: string): unknown {
  let swapped = false;
  const json = text.replace(NON_FINITE, (m) => {
    if (m.startsWith('"')) return m;
    swapped = true;
    return JSON.stringify(SENTINEL + m);
  });
  if (!swapped) return JSON.parse(text);
  return JSON.parse(json, (_k, v) => (typeof v === 'string' && v.startsWith(SENTINEL) ? Number(v.slice(SENTINEL.length)) : v));
}

/** 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The file's text; an Error naming the file (and `what` it is) when it is missing, a folder or unreadable. */
export function readTextFile(file: string, what = 'file'): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${what} '${file}' does not exist` : `cannot read ${what} '${file}': ${(e as Error).message}`);
  }
  if (st.isDirectory()) throw new Error(`${what} '${file}' is a folder; expected a file`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} '${file}': ${(e as Error).message}`);
  }
}

/** Parses JSON text read from `file`; a syntax error names the file and the line. */
export function parseJsonText(text: string, file: string, what = 'file'): unknown {
  try {
    return parsePythonJson(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const at = pos ? `, line ${lineAt(text, Number(pos[1]))}` : '';
    throw new Error(`${what} '${file}' is not valid JSON${at}: ${msg}`);
  }
}

/** Reads a JSON file that must hold an object (a config). Keys such as '__proto__' stay plain own keys. */
export function readJsonObject(file: string, what = 'file'): Record<string, unknown> {
  const value = parseJsonText(readTextFile(file, what), file, what);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new Error(`${what} '${file}' must hold a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  return value as Record<string, unknown>;
}
