// Issue 10: LoraConfig.fromPretrained (synchronous) reads an adapter folder that a save killed between its
// folder swap's two renames left aside: it puts the old folder back first, as PeftModel.fromPretrained does.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LoraConfig } from '../lib';
import { lockFileOf, withFolderLock } from '../lib/io/folder-lock';
import { orphans } from './helpers/save-folders';
import { tmpDir } from './helpers/tmp-dir';

/** A pid that no longer runs: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

/** `dir` as a swap killed between its renames leaves it: set aside as an old sibling, the new one staged. */
async function interruptSwap(dir: string, pid: number): Promise<void> {
  await new LoraConfig({ r: 4, targetModules: ['q_proj'] }).savePretrained(dir);
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const staging = path.join(parent, `.${base}.staging-${pid}-0123456789ab`);
  await new LoraConfig({ r: 8, targetModules: ['q_proj'] }).savePretrained(staging);
  fs.renameSync(dir, path.join(parent, `.${base}.old-${pid}-ba9876543210`));
}

test('a folder a dead writer left aside is put back; its staging sibling and a stale lock are removed', async () => {
  const dir = path.join(tmpDir('config-recover'), 'adapter');
  const pid = deadPid();
  await interruptSwap(dir, pid);
  fs.writeFileSync(lockFileOf(dir), JSON.stringify({ pid, host: os.hostname() }));
  expect(fs.existsSync(dir)).toBe(false);
  expect(LoraConfig.fromPretrained(dir).r).toBe(4);
  expect(fs.existsSync(path.join(dir, 'adapter_config.json'))).toBe(true);
  expect(orphans(dir)).toEqual([]);
});

test('with subfolder: the folder given is put back, then its subfolder read', async () => {
  const dir = path.join(tmpDir('config-recover-sub'), 'adapters');
  const pid = deadPid();
  await new LoraConfig({ r: 2, targetModules: ['v_proj'] }).savePretrained(path.join(dir, 'style'));
  const parent = path.dirname(dir);
  fs.renameSync(dir, path.join(parent, `.adapters.old-${pid}-ba9876543210`));
  expect(LoraConfig.fromPretrained(dir, { subfolder: 'style' }).r).toBe(2);
  expect(orphans(dir)).toEqual([]);
});

test("a live writer's set-aside folder is left alone: after a short wait the folder is reported missing", async () => {
  const dir = path.join(tmpDir('config-live'), 'adapter');
  // This process's parent stands for another writer, alive, between its two renames.
  await interruptSwap(dir, process.ppid);
  const start = Date.now();
  expect(() => LoraConfig.fromPretrained(dir)).toThrow(`Can't find 'adapter_config.json' at '${dir}'`);
  expect(Date.now() - start).toBeGreaterThanOrEqual(900);
  expect(orphans(dir).sort()).toEqual([`.adapter.old-${process.ppid}-ba9876543210`, `.adapter.staging-${process.ppid}-0123456789ab`]);
});

test("a save of this process between its renames is left alone (it cannot finish while the read blocks)", async () => {
  const dir = path.join(tmpDir('config-own'), 'adapter');
  await new LoraConfig({ r: 4, targetModules: ['q_proj'] }).savePretrained(dir);
  const aside = path.join(path.dirname(dir), `.adapter.old-${process.pid}-ba9876543210`);
  await withFolderLock(dir, async () => {
    fs.renameSync(dir, aside);
    const start = Date.now();
    expect(() => LoraConfig.fromPretrained(dir)).toThrow(`Can't find 'adapter_config.json' at '${dir}'`);
    expect(Date.now() - start).toBeLessThan(500);
    expect(fs.existsSync(aside)).toBe(true);
    fs.renameSync(aside, dir);
  });
  expect(LoraConfig.fromPretrained(dir).r).toBe(4);
});

test('a missing folder with nothing set aside fails at once, naming the folder', () => {
  const dir = path.join(tmpDir('config-missing'), 'nope');
  const start = Date.now();
  expect(() => LoraConfig.fromPretrained(dir)).toThrow(`Can't find 'adapter_config.json' at '${dir}'`);
  expect(Date.now() - start).toBeLessThan(500);
});
