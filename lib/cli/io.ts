// What a command writes to and the checks every command makes on the paths it is given.
import * as fs from 'fs';
import * as path from 'path';
import { hubIdError, looksLikeHubId } from '../io/local-folder';
import type { ReportStream } from '../train';

export interface CliIO {
  /** Results and progress (a TTY gets a progress bar). */
  out: ReportStream;
  /** Errors. */
  err: { write(s: string): unknown };
}

export const processIO: CliIO = { out: process.stdout, err: process.stderr };

/** A line to `out`. */
export function say(io: CliIO, line = ''): void {
  io.out.write(line + '\n');
}

/** Throws unless `p` is an existing folder (holding `mustHave`, if given). */
export function requireDir(p: string, what: string, mustHave?: string[]): string {
  if (looksLikeHubId(p)) throw hubIdError(p, what);
  if (!fs.existsSync(p)) throw new Error(`${what} '${p}' does not exist`);
  if (!fs.statSync(p).isDirectory()) throw new Error(`${what} '${p}' is not a folder`);
  for (const f of mustHave ?? [])
    if (!fs.existsSync(path.join(p, f))) throw new Error(`${what} '${p}' has no ${f}`);
  return p;
}

/** Throws unless `p` is an existing file. */
export function requireFile(p: string, what: string): string {
  if (!fs.existsSync(p)) throw new Error(`${what} '${p}' does not exist`);
  if (!fs.statSync(p).isFile()) throw new Error(`${what} '${p}' is not a file`);
  return p;
}

/** The folder of this package (where package.json names torch-lora): assets/ are found from here. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'torch-lora') return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the torch-lora package folder above ${__dirname}`);
  }
}

/** Bytes in a readable unit. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** 1234567 -> '1,234,567'. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
