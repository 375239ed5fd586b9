// memory() counts every live tensor handle of the process. Tensors that another test file left to
// the garbage collector would otherwise be finalized at a random moment, inside a measurement; this
// collects them first so that a before/after comparison sees only what the test itself did.
import { setFlagsFromString } from 'v8';
import { runInNewContext } from 'vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Runs the garbage collector and lets deferred finalizers run (twice, for objects freed by finalizers). */
export async function settleGarbage(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
