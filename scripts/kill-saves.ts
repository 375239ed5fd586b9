// kill -9 during saves, many times (issue 10): a child saves into one folder again and again (adapter:
// r=2 / r=4 in turn; model: sharded, tiny-llama's weights / doubled in turn) and is killed at a random
// moment; after each kill the folder must load with the files of one save. After the last kill, one more
// save must leave no orphaned files. Counts to bench/results/kill-saves-<date>.md. Run through:
//   bash scripts/kill-saves.sh [kills per kind, default 100] [adapter|model|both]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadSafetensorsSync } from '../lib';
import { checkAdapterFolder, checkModelFolder, LLAMA_FIXTURE, orphans } from '../test/helpers/save-folders';
import { spawnTs } from '../test/helpers/ts-child';

const CHILD = path.join(__dirname, '..', 'test', 'helpers', 'save-child.ts');

async function run(kind: string, kills: number): Promise<string> {
  process.removeAllListeners('warning');
  const reference = loadSafetensorsSync(path.join(LLAMA_FIXTURE, 'model.safetensors'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-kill-saves-'));
  const dir = path.join(work, kind);
  let midSave = 0;
  let unloadable = 0;
  const failures: string[] = [];
  const t0 = Date.now();
  for (let k = 0; k < kills; k++) {
    const child = spawnTs(CHILD, [kind, dir, '100000', String(k % 2)]);
    await child.waitFor(k === 0 ? 'saved 1' : 'ready');
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    child.proc.kill('SIGKILL');
    await child.exited;
    if (orphans(dir).length) midSave++;
    try {
      if (kind === 'adapter') await checkAdapterFolder(dir);
      else await checkModelFolder(dir, reference);
    } catch (e) {
      unloadable++;
      failures.push(`kill ${k + 1}: ${(e as Error).message.slice(0, 300)}`);
    }
  }
  const finish = spawnTs(CHILD, [kind, dir, '1']);
  const end = await finish.exited;
  // The next save's own words when it fails: they say why (kept in the results file).
  if (end.code !== 0) failures.push(`next save exited ${end.code ?? end.signal}: ${finish.err().trim().slice(-600)}`);
  const left = orphans(dir);
  if (end.code === 0 && left.length) failures.push(`orphans after the next save: ${left.join(', ')}`);
  fs.rmSync(work, { recursive: true, force: true });
  Object.values(reference).forEach((t) => t.dispose());
  const row = `| ${kind} | ${kills} | ${midSave} | ${unloadable} | ${end.code === 0 ? left.length : 'next save failed'} | ${((Date.now() - t0) / 1000).toFixed(0)} |`;
  console.log(row);
  return [row, ...failures.map((f) => `<!-- ${kind} ${f} -->`)].join('\n');
}

async function main(): Promise<void> {
  const kills = Number(process.argv[2] ?? 100);
  const which = process.argv[3] ?? 'both';
  const kinds = which === 'both' ? ['adapter', 'model'] : [which];
  const date = new Date().toISOString().slice(0, 10);
  const out = path.join(__dirname, '..', 'bench', 'results', `kill-saves-${date}.md`);
  const rows: string[] = [];
  for (const kind of kinds) rows.push(await run(kind, kills));
  const text = [
    `# kill -9 during saves, ${date}`,
    '',
    `scripts/kill-saves.sh ${kills} ${which}; ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${os.type()} ${os.release()}, Node ${process.version}.`,
    'A child saves into one folder in a loop (adapter: r=2 and r=4 in turn; model: tiny-llama sharded at 40 kB, its weights and',
    'the doubled weights in turn) and is killed with SIGKILL at a random moment (0-150 ms after it is ready). After each kill the',
    'folder is loaded and checked to hold the files of one save; after the last, one more save runs and the orphaned files',
    '(*.tmp-* inside, staging/old folders and lock files beside) are counted.',
    '',
    '| save | kills | kills with a save in progress | unloadable or mixed folders | orphans after the next save | seconds |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  fs.appendFileSync(out, fs.existsSync(out) ? '\n' + text : text);
  console.log(`written: ${out}`);
}

void main();
