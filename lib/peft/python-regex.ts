// PEFT matches module names with Python's `re`. The patterns users write (and PEFT's own) use the common
// subset of Python and JavaScript syntax; the named-group spellings differ and are translated here.

function toJs(pattern: string): string {
  return pattern.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
}

const cache = new Map<string, RegExp>();
function compiled(source: string): RegExp {
  let re = cache.get(source);
  if (re === undefined) {
    re = new RegExp(source);
    cache.set(source, re);
  }
  return re;
}

/** re.fullmatch(pattern, s) */
export function pyFullmatch(pattern: string, s: string): RegExpExecArray | null {
  return compiled(`^(?:${toJs(pattern)})$`).exec(s);
}

/** re.match(pattern, s): anchored at the start only. */
export function pyMatch(pattern: string, s: string): RegExpExecArray | null {
  return compiled(`^(?:${toJs(pattern)})`).exec(s);
}

/** re.escape for a literal piece inside a pattern. */
export function pyEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');
}

/** Throws a clear error when `pattern` is not a valid regular expression. */
export function checkPattern(pattern: string, what: string): void {
  try {
    compiled(`^(?:${toJs(pattern)})$`);
  } catch (e) {
    throw new Error(`${what}: ${JSON.stringify(pattern)} is not a valid regular expression (${(e as Error).message})`);
  }
}
