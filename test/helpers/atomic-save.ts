// What the "saves are atomic" tests of the file formats (safetensors, torch.save) check: a failed save
// leaves the previous file as it was and no temporary file next to it.
import * as fs from 'fs';
import * as path from 'path';
import { tensor, Tensor } from '../../lib';

/** The temporary files a save left in `dir` (an atomic save leaves none, failed or not). */
export function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('.tmp-'));
}

/**
 * A small file `fileName` saved by `save` in a new folder <parent>/<name>-XXXXXX, and its bytes: what a
 * later save to the same path that fails must leave unchanged.
 */
export function previousFile(
  parent: string,
  name: string,
  fileName: string,
  save: (tensors: Record<string, Tensor>, file: string) => void,
): { file: string; bytes: Buffer } {
  const file = path.join(fs.mkdtempSync(path.join(parent, `${name}-`)), fileName);
  const t = tensor([1, 2, 3], { dtype: 'float32' });
  save({ t }, file);
  t.dispose();
  return { file, bytes: fs.readFileSync(file) };
}
