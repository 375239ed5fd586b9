// Temporary directories for a test file: made on demand, removed with their contents after the file's
// tests (the afterAll below is registered in each test file that imports this module).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A new empty directory tl-<prefix>-XXXXXX under the system's temporary folder. Call it in a test or a
 * beforeAll, not at the top of a file: jest skips afterAll when no test of the file runs (-t filters).
 */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `tl-${prefix}-`));
  made.push(d);
  return d;
}
