// memory() counts every live tensor handle of the process. Tensors that another test file left to
// the garbage collector would otherwise be finalized at a random moment, inside a measurement; this
// collects them first so that a before/after comparison sees only what the test itself did.
import { setFlagsFromString } from 'v8';
import { runInNewContext } from 'vm';
import { memory } from '../../lib';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the garbage collector until finalizers have run. A dropped Tensor is registered with the
 * FinalizationRegistry only when the current job ends (lib/memory.ts), and V8 posts cleanup callbacks
 * as a later task, so one gc() is not enough: this yields first, then collects and waits in rounds.
 * It rounds until the live-tensor count stops moving over two rounds. (No parameters: jest passes
 * a `done` callback to a hook function that declares one.)
 */
export async function settleGarbage(): Promise<void> {
  let last = -1;
  let still = 0;
  for (let round = 0; round < 100; round++) {
    await tick(0); // lets pending microtasks (the registration sweep) and finalizer tasks run
    gc();
    await tick(round < 5 ? 1 : 20);
    const now = memory().tensors;
    still = now === last ? still + 1 : 0;
    if (still >= 2) return;
    last = now;
  }
}
