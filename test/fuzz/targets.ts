// Every fuzz target: the modules test/fuzz/fuzz-<name>.ts (or their compiled .js) that export `fuzzTarget`.
import * as fs from 'fs';
import * as path from 'path';
import type { FuzzTarget } from './target';

export function targetFiles(): string[] {
  return fs
    .readdirSync(__dirname)
    .filter((f) => /^fuzz-[\w-]+\.(ts|js)$/.test(f) && !f.endsWith('.d.ts') && !f.includes('.test.'))
    .sort()
    .map((f) => path.join(__dirname, f));
}

export function loadTarget(file: string): FuzzTarget | undefined {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require(file) as { fuzzTarget?: FuzzTarget }).fuzzTarget;
}
