// A folder replaced as one unit: the new content is written into a hidden staging sibling that starts as
// hard links of the current folder's files (so files the save does not write, a tokenizer or trainer logs,
// are kept without copying), then the folder is swapped for it by two renames. A kill -9 at any point leaves
// either the old folder or the new one, never new weights beside an old config; what a dead writer left
// (staging siblings, an old folder set aside, *.tmp-<pid>-* files) is cleaned up, or the old folder put back,
// by the next save. Readers check that the folder was not swapped while they read it (folderIdentity).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { syncDir } from './fs-atomic';
import { folderLockedHere, pidAlive, withFolderLock, withFolderLockSync } from './folder-lock';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Hidden siblings of a folder made by a swap: .<name>.staging-<pid>-<hex> and .<name>.old-<pid>-<hex>. */
function siblingPattern(base: string): RegExp {
  return new RegExp(`^\\.${escape(base)}\\.(staging|old)-(\\d+)-[0-9a-f]+$`);
}
/** Temporary files of the atomic writers (fs-atomic's tempPathFor). */
const TEMP_FILE = /\.tmp-(\d+)-[0-9a-f]{12}$/;

function sibling(dir: string, kind: 'staging' | 'old'): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.${kind}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
}

/** A writer that is gone: another pid not running, or this process (the folder lock is held, so no live writer of ours). */
const deadWriter = (pid: number) => pid === process.pid || !pidAlive(pid);

/**
 * Undoes what killed writers left (call with the folder's lock held): an old folder set aside with no folder
 * in its place is put back; their staging and old siblings and their temporary files inside are removed.
 * Synchronous, so that synchronous readers (LoraConfig.fromPretrained) can use it too.
 */
export function recoverFolderSync(dir: string): void {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const pattern = siblingPattern(path.basename(abs));
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  const stale = names
    .map((n) => ({ n, m: pattern.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null && deadWriter(Number(x.m[2])));
  if (!fs.existsSync(abs)) {
    // Killed between the two renames of a swap: the old folder goes back (the new one was not yet in place).
    const old = stale.find((x) => x.m[1] === 'old');
    if (old !== undefined) fs.renameSync(path.join(parent, old.n), abs);
  }
  for (const { n } of stale) fs.rmSync(path.join(parent, n), { recursive: true, force: true });
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory())
    for (const n of fs.readdirSync(abs)) {
      const m = TEMP_FILE.exec(n);
      if (m !== null && deadWriter(Number(m[1]))) fs.rmSync(path.join(abs, n), { recursive: true, force: true });
    }
}

/** recoverFolderSync for the async writers (call with the folder's lock held). */
export async function recoverFolder(dir: string): Promise<void> {
  recoverFolderSync(dir);
}

/** The pids of the writers that set `abs` aside (.<name>.old-<pid>-<hex> beside it). */
function setAsideBy(abs: string): number[] {
  const pattern = siblingPattern(path.basename(abs));
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(abs));
  } catch {
    return [];
  }
  return names
    .map((n) => pattern.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === 'old')
    .map((m) => Number(m[2]));
}

/**
 * For synchronous readers of `dir`: when it is missing because a writer was killed between the swap's two
 * renames, puts the old folder back (under the folder's lock, as the next save would); when a writer of
 * another process is between its renames, waits up to `waitMs` for it. Leaves alone a folder that a save
 * of this process is swapping (it cannot finish while a synchronous read blocks).
 */
export function putBackFolderSync(dir: string, waitMs = 1000): void {
  const abs = path.resolve(dir);
  const deadline = Date.now() + waitMs;
  while (!fs.existsSync(abs)) {
    const pids = setAsideBy(abs);
    if (pids.length === 0 || folderLockedHere(abs)) return;
    if (pids.some((pid) => pid === process.pid || !pidAlive(pid))) {
      withFolderLockSync(abs, () => recoverFolderSync(abs), { timeoutMs: waitMs });
      continue;
    }
    if (Date.now() > deadline) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // a live writer is between its renames
  }
}

/** `to` made as hard links of `from`'s files (copies where links are refused), folders recreated. */
async function linkTree(from: string, to: string): Promise<void> {
  for (const e of await fs.promises.readdir(from, { withFileTypes: true })) {
    const a = path.join(from, e.name);
    const b = path.join(to, e.name);
    if (e.isDirectory()) {
      await fs.promises.mkdir(b);
      await linkTree(a, b);
    } else if (e.isSymbolicLink()) {
      await fs.promises.symlink(await fs.promises.readlink(a), b);
    } else {
      await fs.promises.link(a, b).catch(() => fs.promises.copyFile(a, b));
    }
  }
}

/**
 * Replaces `dir` as one unit with what `write` puts into the staging folder it is given (which starts as
 * the current content). Saves to one folder are serialized (withFolderLock); a failed `write` leaves `dir`
 * as it was.
 */
export async function replaceFolder(dir: string, write: (staging: string) => Promise<void>, opts: { lockTimeoutMs?: number } = {}): Promise<void> {
  const abs = path.resolve(dir);
  await withFolderLock(
    abs,
    async () => {
      await recoverFolder(abs);
      const staging = sibling(abs, 'staging');
      const existed = fs.existsSync(abs);
      try {
        await fs.promises.mkdir(staging);
        if (existed) await linkTree(abs, staging);
        await write(staging);
        await syncDir(staging);
      } catch (e) {
        await fs.promises.rm(staging, { recursive: true, force: true });
        throw e;
      }
      if (existed) {
        const old = sibling(abs, 'old');
        await fs.promises.rename(abs, old);
        await fs.promises.rename(staging, abs);
        await syncDir(path.dirname(abs));
        await fs.promises.rm(old, { recursive: true, force: true });
      } else {
        await fs.promises.rename(staging, abs);
      }
      await syncDir(path.dirname(abs));
    },
    { timeoutMs: opts.lockTimeoutMs },
  );
}

/**
 * What identifies a folder's current content for readers: its inode changes with every swap. Waits briefly
 * when the folder is missing because a swap is between its two renames.
 */
export async function folderIdentity(dir: string): Promise<string | undefined> {
  const abs = path.resolve(dir);
  for (let i = 0; i < 100; i++) {
    try {
      const st = await fs.promises.stat(abs);
      return `${st.dev}:${st.ino}`;
    } catch {
      const pids = setAsideBy(abs);
      if (pids.length === 0) return undefined;
      // A writer killed between its two renames left the old folder aside: put it back (as its next save would).
      if (pids.some((pid) => pid !== process.pid && !pidAlive(pid))) await withFolderLock(abs, () => recoverFolder(abs));
      else await new Promise((r) => setTimeout(r, 10)); // a live writer is between its renames
    }
  }
  return undefined;
}

/**
 * Runs a read of `dir` until the folder was not swapped during it (up to `attempts` times): a reader never
 * combines files of two saves. `read` must free what it made when `discard` is called.
 */
export async function readConsistently<T>(dir: string, read: () => Promise<T>, discard: (value: T) => void, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    const before = await folderIdentity(dir);
    let value: T;
    try {
      value = await read();
    } catch (e) {
      // A file missing or short because the folder was swapped under the read: read again.
      if (i < attempts && (await folderIdentity(dir)) !== before) continue;
      throw e;
    }
    const after = await folderIdentity(dir);
    if (before === after) return value;
    discard(value);
    if (i >= attempts) throw new Error(`'${dir}' was replaced by another save ${attempts} times while it was being read; try again`);
  }
}
