// Adds where an error happened (a file, a folder) to its message. Duck-typed, not `instanceof Error`: an
// error the native addon makes belongs to the main realm, not to a vm context's (jest's), and must not lose
// its context there.

/** Appends `context` to `e`'s message when `e` has a writable string message; returns `e`. */
export function withContext(e: unknown, context: string): unknown {
  if (e !== null && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    try {
      (e as { message: string }).message += context;
    } catch {
      // a frozen error keeps its message
    }
  }
  return e;
}
