/** Tests run from TypeScript through ts-jest; the addon must be built first (npm install does it). */
// One intra-op thread per worker (inherited by the workers): two workers share the two cores of CI, and
// the numeric tests' tolerances were set at one thread. Tests of the default count clear it in a child.
process.env.OMP_NUM_THREADS ??= '1';
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 60000,
  // Each test file in a fresh worker process: memory() counts the process's live tensors, and garbage an
  // earlier file left to the finalizers would otherwise be freed at a random moment inside another file's
  // measurement (in one in-band process, as jest runs on 2 cores, that made CI flaky). Two workers, each
  // recycled after every file (a worker always uses more than 1 KB). Costs ~20 s over the whole suite.
  maxWorkers: 2,
  workerIdleMemoryLimit: '1KB',
};
