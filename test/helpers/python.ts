// The system Python with PyTorch (Debian: apt-get install python3-torch), for the tests that check our
// files against PyTorch itself. Where it is absent those tests skip and say why; the product never
// needs Python.
import { spawnSync } from 'child_process';
import * as fs from 'fs';

const CANDIDATES = ['/usr/bin/python3', 'python3'];
let found: string | null | undefined;

/** The python3 that imports torch, or null. */
export function pythonWithTorch(): string | null {
  if (found !== undefined) return found;
  found = null;
  for (const exe of CANDIDATES) {
    if (exe.startsWith('/') && !fs.existsSync(exe)) continue;
    const r = spawnSync(exe, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      found = exe;
      break;
    }
  }
  return found;
}

/** Why Python tests skip here (printed once per file). */
export function skipNote(what: string): string {
  return `skipped: ${what} needs /usr/bin/python3 with PyTorch (apt-get install python3-torch), which is absent`;
}

/** Runs a Python script file with arguments; returns its stdout parsed as JSON. Throws with stderr on failure. */
export function runPythonJson<T = unknown>(script: string, args: string[]): T {
  const exe = pythonWithTorch();
  if (exe === null) throw new Error(skipNote(script));
  const r = spawnSync(exe, [script, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
