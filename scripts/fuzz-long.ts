// The long fuzz run (issue 10): every target of test/fuzz for a time budget, each in a child process so
// that a native crash (a signal) is counted and its input kept, not lost with the run. Writes the counts
// to bench/results/fuzz-<date>.md. Run through scripts/fuzz-long.sh:
//   bash scripts/fuzz-long.sh [seconds per target, default 300] [first seed, default 1] [targets, comma-separated]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { COUNTS_HEADER, countsRow, fuzz, FuzzCounts } from '../test/fuzz/driver';
import { adapterConfigTarget } from '../test/fuzz/adapter-config';
import { jsonlTarget } from '../test/fuzz/jsonl';
import { modelConfigTarget } from '../test/fuzz/model-config';

const TARGETS: Record<string, () => ReturnType<typeof adapterConfigTarget>> = {
  'adapter-config': adapterConfigTarget,
  'model-config': modelConfigTarget,
  jsonl: jsonlTarget,
};
const ROOT = path.join(__dirname, '..');

/** The child: one target, one seed, until the time is up; the counts as JSON on stdout; each input saved first. */
async function child(name: string, seed: number, ms: number, lastInput: string): Promise<void> {
  const t = TARGETS[name]();
  try {
    const counts = await fuzz({ ...t, seed, maxInputs: Number.MAX_SAFE_INTEGER, maxMs: ms, onInput: (input) => fs.writeFileSync(lastInput, input) });
    process.stdout.write(JSON.stringify(counts));
  } finally {
    t.cleanup();
  }
}

/** The parent: each target for `seconds`, restarting a crashed child with the next seed. */
function parent(seconds: number, firstSeed: number, names: string[]): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-fuzz-long-'));
  const rows: string[] = [];
  const findings: string[] = [];
  for (const name of names) {
    const total: FuzzCounts = { name, seed: firstSeed, inputs: 0, accepted: 0, clearErrors: 0, unclear: 0, crashes: 0, hangs: 0, ms: 0, findings: [] };
    const end = Date.now() + seconds * 1000;
    for (let seed = firstSeed; Date.now() < end; seed++) {
      const last = path.join(work, `${name}-${seed}.input`);
      const left = end - Date.now();
      const r = spawnSync(process.execPath, [...process.execArgv, __filename, '--child', name, String(seed), String(left), last], {
        cwd: ROOT,
        encoding: 'utf8',
        // The child's start (loading the library) is not in its budget; beyond this, one input hangs it.
        timeout: left + 600000,
        maxBuffer: 64 << 20,
      });
      if (r.status === 0) {
        const c = JSON.parse(r.stdout) as FuzzCounts;
        for (const k of ['inputs', 'accepted', 'clearErrors', 'unclear', 'crashes', 'hangs', 'ms'] as const) total[k] += c[k];
        total.findings.push(...c.findings);
        break; // the time is used up
      }
      const input = fs.existsSync(last) ? fs.readFileSync(last, 'utf8').slice(0, 500) : '';
      if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') total.hangs++;
      else total.crashes++;
      findings.push(`- ${name} seed ${seed}: child ended with ${r.signal ?? `code ${r.status}`}; last input: ${JSON.stringify(input)}\n  ${(r.stderr ?? '').slice(-500)}`);
    }
    rows.push(countsRow(total));
    for (const f of total.findings) findings.push(`- ${name}: ${f.kind}: ${f.message}; input: ${JSON.stringify(f.input.slice(0, 300))}`);
    console.log(countsRow(total));
  }
  fs.rmSync(work, { recursive: true, force: true });
  const date = new Date().toISOString().slice(0, 10);
  const out = path.join(ROOT, 'bench', 'results', `fuzz-${date}.md`);
  const text = [
    `# Fuzz run ${date}: ${names.join(', ')}`,
    '',
    `scripts/fuzz-long.sh ${seconds} ${firstSeed} ${names.join(',')}: each target ${seconds} s, seeds from ${firstSeed}, corpus from test/fixtures.`,
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${os.type()} ${os.release()}, Node ${process.version}.`,
    'Accepted: loaded without error; clear errors: an Error naming the file; unclear: any other error;',
    'crashes: a non-Error throw or a child killed by a signal; hangs: an input over 2 s.',
    '',
    COUNTS_HEADER,
    ...rows,
    '',
    '## Findings',
    '',
    findings.length ? findings.join('\n') : 'None.',
    '',
  ].join('\n');
  fs.appendFileSync(out, fs.existsSync(out) ? '\n' + text : text);
  console.log(`written: ${out}`);
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') void child(argv[1], Number(argv[2]), Number(argv[3]), argv[4]);
else parent(Number(argv[0] ?? 300), Number(argv[1] ?? 1), argv[2] ? argv[2].split(',') : Object.keys(TARGETS));
