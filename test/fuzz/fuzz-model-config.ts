// The model-config fuzz target (./model-config.ts) in the shape the CI run and `npm run fuzz` find: made on first use (it
// owns a scratch folder), removed when the process exits.
import { modelConfigTarget } from './model-config';
import { mutateBytes } from './driver';
import type { FuzzTarget } from './target';

let made: ReturnType<typeof modelConfigTarget> | undefined;
const get = () => {
  if (made === undefined) {
    made = modelConfigTarget();
    process.once('exit', () => made?.cleanup());
  }
  return made;
};

export const fuzzTarget: FuzzTarget = {
  name: 'model-config',
  corpus: () => get().corpus,
  mutate: (rng, input, corpus) => (get().mutate ?? mutateBytes)(rng, input, corpus),
  target: (input) => get().target(input),
  isClear: (e, input) => get().isClear(e, input),
};
