// What a fuzz target module (test/fuzz/fuzz-<name>.ts) exports as `fuzzTarget`, so that the CI run
// (fuzz-ci.test.ts) and the long run (scripts/fuzz-long.ts) find every target the same way; and the
// helpers the file-format targets share: the corpus from the test fixtures and the scratch file each
// input is written to.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { memory } from '../../lib';
import type { FuzzOptions } from './driver';

export interface FuzzTarget extends Pick<FuzzOptions, 'name' | 'mutate' | 'target' | 'isClear' | 'hangMs'> {
  /** The starting inputs, read when a run starts. */
  corpus: () => Buffer[];
}

/** The repository root, from test/fuzz or from its compiled copy in dist/test/fuzz. */
export const ROOT = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'torch-lora') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no torch-lora package above ${__dirname}`);
  }
})();

/** Files under test/fixtures whose names end with `suffix` and that are at most `maxBytes` long, sorted. */
export function fixtureFiles(suffix: string, maxBytes: number): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(suffix) && fs.statSync(p).size <= maxBytes) out.push(p);
    }
  };
  walk(path.join(ROOT, 'test', 'fixtures'));
  return out.sort();
}

/** One scratch folder per process and target, removed when the process exits. */
export function scratchDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tl-fuzz-${name}-`));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One scratch file per process and target: each input is written there and loaded from there. */
export function scratchFile(name: string, fileName = `input-${name}`): string {
  return path.join(scratchDir(name), fileName);
}

/**
 * A clear error names the file it is about and carries no C++ backtrace. A load that leaves tensors
 * behind (an error path that forgot to free what it made) is an unclear result too.
 */
export function namesFile(file: string, opts: { quoted?: boolean } = {}) {
  const name = opts.quoted === false ? file : `'${file}'`;
  return (e: Error) => e.message.includes(name) && !/Exception raised from|frame #\d+/.test(e.message);
}

/** Runs a load, frees what it returned, and throws if live tensors did not come back to where they were. */
export async function loadAndFree(load: () => Record<string, { dispose(): void }> | Promise<Record<string, { dispose(): void }>>) {
  const before = memory().tensors;
  try {
    const out = await load();
    for (const t of Object.values(out)) t.dispose();
  } finally {
    const after = memory().tensors;
    // Only growth is a leak: the safety net's finalizers may free tensors other code dropped earlier while
    // the load runs (the count fell by 295 once, in the one-minute CI run).
    if (after > before) throw new Error(`leak: ${after - before} tensors left alive by the load`);
  }
}
