// Options objects from JavaScript have no types to catch a misspelt key ({ learningrate: 1e-3 }, { dtyp:
// 'bfloat16' }): every public options object is checked against its keys, so that a typo is an error
// naming it instead of a default silently used. The key lists are typed Record<keyof Options, true>, so a
// list that misses or invents a key fails the TypeScript build.

/** Every key of an options interface, as an object (checked by TypeScript against the interface). */
export type OptionKeys<T> = { [K in keyof Required<T>]: true };

/** Throws a TypeError naming the first key of `opts` that `keys` does not have. */
export function checkOptions<T>(opts: T | undefined, keys: OptionKeys<T>, who: string): void {
  if (opts === undefined || opts === null) return;
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`${who}: expected an options object, got ${JSON.stringify(opts)}`);
  for (const k of Object.keys(opts as object))
    if (!Object.hasOwn(keys, k)) throw new TypeError(`${who}: unknown option '${k}' (options: ${Object.keys(keys).join(', ')})`);
}
