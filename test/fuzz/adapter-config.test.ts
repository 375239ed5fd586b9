// Short fuzz run for CI: adapter_config.json, seeded and bounded (the long run is scripts/fuzz-long.ts).
import { fuzz } from './driver';
import { adapterConfigTarget } from './adapter-config';

test('adapter_config.json: 400 mutated inputs, every refusal a clear error, no hang', async () => {
  const t = adapterConfigTarget();
  try {
    const counts = await fuzz({ ...t, seed: 10, maxInputs: 400, maxMs: 20000 });
    expect(counts.findings).toEqual([]);
    expect(counts.inputs).toBeGreaterThan(t.corpus.length);
    expect(counts.accepted).toBeGreaterThan(0); // the unmutated corpus loads
  } finally {
    t.cleanup();
  }
});
