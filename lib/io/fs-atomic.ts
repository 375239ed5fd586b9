// Atomic file writes: the bytes go to a temporary file beside the target, are flushed to disk, and the
// temporary is renamed over the target, so a crash mid-save leaves the previous file whole.
import * as crypto from 'crypto';
import * as fs from 'fs';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const handle = await fs.promises.open(tmp, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
}
