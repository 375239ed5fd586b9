// Issue 10: concurrent saves into one folder (in one process and across processes) and kill -9 during
// saves. Every folder must load, with files of one save only (an adapter's config r matching its weights,
// a model's tensors all from one save), and the next save must leave no orphaned temporary files.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, LoraConfig, loadSafetensorsSync, noGrad, Tensor } from '../lib';
import { lockFileOf } from '../lib/io/folder-lock';
import { checkAdapterFolder, checkModelFolder, LLAMA_FIXTURE, orphans } from './helpers/save-folders';
import { spawnTs } from './helpers/ts-child';
import { tmpDir } from './helpers/tmp-dir';

const CHILD = path.join(__dirname, 'helpers', 'save-child.ts');
let reference: Record<string, Tensor>;
beforeAll(() => {
  reference = loadSafetensorsSync(path.join(LLAMA_FIXTURE, 'model.safetensors'));
});
afterAll(() => Object.values(reference).forEach((t) => t.dispose()));
beforeEach(() => jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined));
afterEach(() => jest.restoreAllMocks());

test('in one process: concurrent sharded model saves and adapter saves with different r into one folder', async () => {
  const a = await AutoModelForCausalLM.fromPretrained(LLAMA_FIXTURE);
  const b = await AutoModelForCausalLM.fromPretrained(LLAMA_FIXTURE);
  noGrad(() => [...b.parameters()].forEach((p) => p.mul_(2)));
  const dir = path.join(tmpDir('concurrent'), 'model');
  for (let round = 0; round < 5; round++) {
    await Promise.all([a.savePretrained(dir, { maxShardSize: 40000 }), b.savePretrained(dir, { maxShardSize: 60000 })]);
    // Saves run in call order: the last one wins, whole.
    expect((await checkModelFolder(dir, reference)).variant).toBe(1);
    expect(orphans(dir)).toEqual([]);
  }
  const adapters = path.join(path.dirname(dir), 'adapter');
  const p2 = getPeftModel(a, new LoraConfig({ r: 2, targetModules: ['q_proj', 'v_proj'], initLoraWeights: false }));
  const p4 = getPeftModel(b, new LoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'], initLoraWeights: false }));
  for (let round = 0; round < 5; round++) {
    await Promise.all([p4.savePretrained(adapters), p2.savePretrained(adapters)]);
    expect((await checkAdapterFolder(adapters)).r).toBe(2);
  }
  expect(orphans(adapters)).toEqual([]);
  p2.dispose();
  p4.dispose();
});

test('across two processes: both save 6 times into one folder, each save whole', async () => {
  for (const kind of ['adapter', 'model']) {
    const dir = path.join(tmpDir('two-procs'), kind);
    const children = [spawnTs(CHILD, [kind, dir, '6', '0']), spawnTs(CHILD, [kind, dir, '6', '1'])];
    const ends = await Promise.all(children.map((c) => c.exited));
    ends.forEach((e, i) => expect({ ...e, err: e.code === 0 ? '' : children[i].err() }).toEqual({ code: 0, signal: null, err: '' }));
    if (kind === 'adapter') await checkAdapterFolder(dir);
    else await checkModelFolder(dir, reference);
    expect(orphans(dir)).toEqual([]);
  }
}, 300000);

test("a dead process's lock is taken over; a live one's is waited for", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_FIXTURE);
  const dir = path.join(tmpDir('stale-lock'), 'model');
  // A pid that no longer runs: a child that has exited.
  const gone = spawnTs(CHILD, ['none', dir, '0']);
  await gone.exited;
  fs.writeFileSync(lockFileOf(dir), JSON.stringify({ pid: gone.proc.pid, host: require('os').hostname() }));
  await model.savePretrained(dir);
  expect(fs.existsSync(lockFileOf(dir))).toBe(false);
  // A live one (this process's parent stands for another writer): the save waits, then fails naming it.
  fs.writeFileSync(lockFileOf(dir), JSON.stringify({ pid: process.ppid, host: require('os').hostname() }));
  const { replaceFolder } = await import('../lib/io/folder-swap');
  await expect(replaceFolder(dir, async () => undefined, { lockTimeoutMs: 300 })).rejects.toThrow(
    `'${dir}' is being written by process ${process.ppid}`,
  );
  fs.rmSync(lockFileOf(dir));
  model.dispose();
});

test('a lock file left empty (its writer killed between creating and filling it) is taken over once it is old', async () => {
  // Found by scripts/kill-saves.sh 100 model: the next save waited its whole 600 s on such a lock.
  const dir = path.join(tmpDir('empty-lock'), 'model');
  const { replaceFolder } = await import('../lib/io/folder-swap');
  fs.writeFileSync(lockFileOf(dir), '');
  // Fresh: it may be a writer between its two steps, so it is waited for.
  await expect(replaceFolder(dir, async () => undefined, { lockTimeoutMs: 300 })).rejects.toThrow(`'${dir}' is being written by another process`);
  // Old: nobody is filling it; taken over.
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(lockFileOf(dir), past, past);
  await replaceFolder(dir, async (staging) => fs.writeFileSync(path.join(staging, 'x'), 'y'), { lockTimeoutMs: 2000 });
  expect(fs.readFileSync(path.join(dir, 'x'), 'utf8')).toBe('y');
  expect(fs.existsSync(lockFileOf(dir))).toBe(false);
});

test("what a writer killed while taking over a dead lock left aside (.<name>.lock.stale-<pid>-<time>) is removed by the next save", async () => {
  const dir = path.join(tmpDir('stale-aside'), 'model');
  const gone = spawnTs(CHILD, ['none', dir, '0']);
  await gone.exited;
  const aside = `${lockFileOf(dir)}.stale-${gone.proc.pid}-${Date.now()}`;
  fs.writeFileSync(aside, JSON.stringify({ pid: 12345, host: require('os').hostname() }));
  const { replaceFolder } = await import('../lib/io/folder-swap');
  await replaceFolder(dir, async (staging) => fs.writeFileSync(path.join(staging, 'x'), 'y'));
  expect(orphans(dir)).toEqual([]);
});

test.each(['adapter', 'model'])('kill -9 during %s saves, 10 times: the folder always loads whole; the next save leaves no orphans', async (kind) => {
  const dir = path.join(tmpDir('kill'), kind);
  let killedMidSave = 0;
  for (let k = 0; k < 10; k++) {
    const child = spawnTs(CHILD, [kind, dir, '1000', String(k % 2)]);
    await child.waitFor(k === 0 ? 'saved 1' : 'ready');
    // A random moment within the next saves (a save of these tiny folders takes tens of milliseconds).
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    child.proc.kill('SIGKILL');
    const end = await child.exited;
    expect(end.signal).toBe('SIGKILL');
    if (orphans(dir).length) killedMidSave++;
    if (kind === 'adapter') await checkAdapterFolder(dir);
    else await checkModelFolder(dir, reference);
  }
  // The next save cleans what the killed writers left.
  const finish = spawnTs(CHILD, [kind, dir, '1']);
  expect((await finish.exited).code).toBe(0);
  expect(orphans(dir)).toEqual([]);
  if (kind === 'adapter') await checkAdapterFolder(dir);
  else await checkModelFolder(dir, reference);
  // Not a count the test can demand (timing), but reported: kills that hit a save in progress.
  process.stdout.write(`${kind}: ${killedMidSave}/10 kills left a save in progress\n`);
}, 600000);
