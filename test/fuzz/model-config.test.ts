// Short fuzz run for CI: config.json, seeded and bounded (the long run is scripts/fuzz-long.ts).
import { fuzz } from './driver';
import { modelConfigTarget } from './model-config';

test('config.json: 300 mutated inputs, every refusal a clear error, no hang', async () => {
  const t = modelConfigTarget();
  try {
    const counts = await fuzz({ ...t, seed: 10, maxInputs: 300, maxMs: 20000 });
    expect(counts.findings).toEqual([]);
    expect(counts.inputs).toBeGreaterThan(t.corpus.length);
    expect(counts.accepted).toBeGreaterThan(0); // the unmutated corpus loads
  } finally {
    t.cleanup();
  }
});
