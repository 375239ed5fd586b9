// The short fuzz run of CI: every target under test/fuzz (fuzz-<name>.ts exporting `fuzzTarget`) for a
// share of one minute in all, from a fixed seed, must find no crash (a native crash would kill this
// process), no hang, no unclear error and no leak. The long run is `npm run fuzz -- --minutes N`
// (scripts/fuzz-long.ts), its counts in bench/results/fuzz-<date>.md.
import { fuzz } from './driver';
import { loadTarget, targetFiles } from './targets';

const files = targetFiles();
const SHARE_MS = Math.max(4000, Math.floor(60000 / Math.max(1, files.length)));

describe.each(files.map((f) => [f.replace(/.*\/fuzz-(.*)\.[tj]s$/, '$1'), f]))('fuzz target %s', (_name, file) => {
  test(`${Math.round(SHARE_MS / 1000)} s of mutated fixture inputs: only acceptances and clear errors`, async () => {
    const t = loadTarget(file);
    if (t === undefined) return; // a helper module, not a target
    const counts = await fuzz({ ...t, corpus: t.corpus(), seed: 20261202, maxInputs: 1e9, maxMs: SHARE_MS });
    expect(counts.findings).toEqual([]);
    expect(counts.inputs).toBeGreaterThan(t.corpus().length);
    expect(counts.clearErrors).toBeGreaterThan(0);
  }, SHARE_MS + 30000);
});
