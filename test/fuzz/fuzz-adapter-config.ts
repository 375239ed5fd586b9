// The adapter-config fuzz target (./adapter-config.ts) in the shape the CI run and `npm run fuzz` find: made on first use (it
// owns a scratch folder), removed when the process exits.
import { adapterConfigTarget } from './adapter-config';
import { mutateBytes } from './driver';
import type { FuzzTarget } from './target';

let made: ReturnType<typeof adapterConfigTarget> | undefined;
const get = () => {
  if (made === undefined) {
    made = adapterConfigTarget();
    process.once('exit', () => made?.cleanup());
  }
  return made;
};

export const fuzzTarget: FuzzTarget = {
  name: 'adapter-config',
  corpus: () => get().corpus,
  mutate: (rng, input, corpus) => (get().mutate ?? mutateBytes)(rng, input, corpus),
  target: (input) => get().target(input),
  isClear: (e, input) => get().isClear(e, input),
};
