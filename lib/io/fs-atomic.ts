// Atomic file writes: the bytes go to a temporary file beside the target, are flushed to disk, and the
// temporary is renamed over the target, then the folder is flushed, so a crash mid-save leaves the
// previous file whole and a finished save survives a power cut. Every writer of the package uses these.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** A fresh temporary name beside `file` (same folder, so the rename stays on one file system). */
export function tempPathFor(file: string): string {
  return `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

/** fsync of a folder's entries, so that renames in it survive a crash (best effort: some platforms cannot). */
export async function syncDir(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // The rename is still atomic where a folder cannot be opened or flushed.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** syncDir, blocking. */
export function syncDirSync(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // as syncDir
  }
}

/** Writes `file` atomically through `write`, which fills the open temporary file. */
export async function writeAtomic(file: string, write: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(file);
  const fh = await fs.promises.open(tmp, 'wx', 0o644);
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(path.dirname(file));
}

/** writeAtomic, blocking: `write` fills the open temporary file descriptor. */
export function writeAtomicSync(file: string, write: (fd: number) => void): void {
  const tmp = tempPathFor(file);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirSync(path.dirname(file));
}

export function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  return writeAtomic(file, (fh) => fh.writeFile(data));
}

export function writeFileAtomicSync(file: string, data: string | Uint8Array): void {
  writeAtomicSync(file, (fd) => fs.writeFileSync(fd, data));
}
