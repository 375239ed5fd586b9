// One writer per folder at a time: saves into the same folder wait for each other, in one process (a queue
// per folder) and across processes (an exclusive lock file beside the folder, .<name>.lock, holding the
// writer's pid). A lock whose process is gone (kill -9) is taken over; a live one is waited for up to a
// timeout, then the save fails naming the folder, the lock file and the pid.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const queues = new Map<string, Promise<void>>();

/** Whether a process of this machine is running (a pid of another host is assumed alive). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

/** The lock file of a folder: beside it, so that the folder itself can be swapped while locked. */
export function lockFileOf(dir: string): string {
  const abs = path.resolve(dir);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.lock`);
}

interface LockInfo {
  pid: number;
  host: string;
}

function readLock(file: string): LockInfo | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' ? v : undefined;
  } catch {
    return undefined; // gone, or being written
  }
}

/**
 * A writer creates its lock file and fills it in two steps; killed between them it leaves the file empty
 * (or cut short). A live writer fills it within microseconds, so one unreadable for this long is dead.
 */
const UNREADABLE_LOCK_STALE_MS = 10_000;

function unreadableAndOld(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > UNREADABLE_LOCK_STALE_MS;
  } catch {
    return false; // gone: try to take it again
  }
}

/** Lock files a writer killed while taking over a dead lock left aside (.<name>.lock.stale-<pid>-<time>). */
function removeDeadAsides(file: string): void {
  const prefix = `${path.basename(file)}.stale-`;
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (!pidAlive(pid)) fs.rmSync(path.join(path.dirname(file), n), { force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A blocking sleep, for the synchronous readers (Atomics.wait is allowed on Node's main thread). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * One try at the lock file: true when taken; else its owner (a dead writer's lock is taken over: the next
 * try can succeed).
 */
function tryLock(dir: string, file: string, me: LockInfo): true | LockInfo | undefined {
  try {
    const fd = fs.openSync(file, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, JSON.stringify(me));
    } finally {
      fs.closeSync(fd);
    }
    removeDeadAsides(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot lock '${dir}' for writing (lock file '${file}'): ${(e as Error).message}`);
  }
  const owner = readLock(file);
  const dead = owner !== undefined ? owner.host === me.host && !pidAlive(owner.pid) : unreadableAndOld(file);
  if (dead) {
    // A dead writer's lock: taken over. Renamed first, so that of two processes taking it over only one removes it.
    const aside = `${file}.stale-${process.pid}-${Date.now()}`;
    try {
      fs.renameSync(file, aside);
      const moved = readLock(aside);
      if (moved !== undefined && moved.pid !== owner?.pid) fs.renameSync(aside, file); // a fresh lock: give it back
      else fs.rmSync(aside, { force: true });
    } catch {
      // another process took it over first
    }
  }
  return owner;
}

function busyError(dir: string, file: string, owner: LockInfo | undefined, timeoutMs: number): Error {
  const who = owner ? `process ${owner.pid} on ${owner.host}` : 'another process';
  return new Error(
    `'${dir}' is being written by ${who} (lock file '${file}'); waited ${Math.round(timeoutMs / 1000)} s. ` +
      'Wait for that save to finish, or remove the lock file if no process is saving there.',
  );
}

async function acquire(dir: string, timeoutMs: number): Promise<string> {
  const file = lockFileOf(dir);
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const me: LockInfo = { pid: process.pid, host: os.hostname() };
  const start = Date.now();
  for (;;) {
    const got = tryLock(dir, file, me);
    if (got === true) return file;
    if (Date.now() - start > timeoutMs) throw busyError(dir, file, got, timeoutMs);
    await sleep(20 + Math.random() * 30);
  }
}

/** Whether a save of this process holds (or waits for) the folder's lock. */
export function folderLockedHere(dir: string): boolean {
  return queues.has(path.resolve(dir));
}

/**
 * withFolderLock for synchronous readers: waits for another process by blocking (up to `timeoutMs`, default
 * 10 s). A save of this process holding the lock cannot finish while this blocks, so that is an error.
 */
export function withFolderLockSync<T>(dir: string, fn: () => T, opts: { timeoutMs?: number } = {}): T {
  if (folderLockedHere(dir)) throw new Error(`'${dir}' is being saved by this process; await that save before reading it`);
  const file = lockFileOf(dir);
  const me: LockInfo = { pid: process.pid, host: os.hostname() };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const start = Date.now();
  for (;;) {
    const got = tryLock(dir, file, me);
    if (got === true) break;
    if (Date.now() - start > timeoutMs) throw busyError(dir, file, got, timeoutMs);
    sleepSync(20 + Math.random() * 30);
  }
  try {
    return fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/**
 * Runs `fn` holding the folder's lock: saves to one folder run one after the other, in this process and
 * across processes. `timeoutMs` (default 10 minutes) bounds the wait for another process.
 */
export async function withFolderLock<T>(dir: string, fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  const key = path.resolve(dir);
  const before = queues.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = before.then(() => mine);
  queues.set(key, tail);
  await before;
  try {
    const file = await acquire(dir, opts.timeoutMs ?? 600_000);
    try {
      return await fn();
    } finally {
      fs.rmSync(file, { force: true });
    }
  } finally {
    release();
    if (queues.get(key) === tail) queues.delete(key);
  }
}
