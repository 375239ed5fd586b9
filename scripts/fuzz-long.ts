// The long fuzz run: `npm run fuzz -- --minutes N [--target NAME] [--seed S] [--out FILE]`.
// Each target (test/fuzz/fuzz-<name>.ts) runs in a child process for its share of the minutes, so that a
// native crash or a hang is seen from outside: the child records each input before it runs it, and when
// the child dies by a signal or stops reporting, that input is saved and the run goes on in a new child
// with the next seed. The counts (inputs, accepted, clear errors, unclear errors, crashes, hangs) go to
// bench/results/fuzz-<date>.md (or --out). Run from dist/ (the npm script builds it first).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { COUNTS_HEADER, countsRow, Finding, fuzz, FuzzCounts } from '../test/fuzz/driver';
import { loadTarget, targetFiles } from '../test/fuzz/targets';
import { ROOT } from '../test/fuzz/target';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** In the child: one target, one seed, until the time is up; the counts as the last line of stdout. */
async function child(file: string, seed: number, ms: number, current: string): Promise<void> {
  const t = loadTarget(file)!;
  const counts = await fuzz({
    ...t,
    corpus: t.corpus(),
    seed,
    maxInputs: Number.MAX_SAFE_INTEGER,
    maxMs: ms,
    onInput: (input) => fs.writeFileSync(current, input),
  });
  process.stdout.write(`\n${JSON.stringify(counts)}\n`);
}

interface Outcome {
  counts?: FuzzCounts;
  signal?: string | null;
  code?: number | null;
  hung?: boolean;
}

function runChild(file: string, seed: number, ms: number, current: string, hangMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [__filename, '--child', file, '--seed', String(seed), '--ms', String(ms), '--current', current], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    let hung = false;
    // No per-input heartbeat is needed: the child stops starting inputs at `ms`; one that outlives it
    // by hangMs is stuck in an input.
    const timer = setTimeout(() => {
      hung = true;
      p.kill('SIGKILL');
    }, ms + hangMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      let counts: FuzzCounts | undefined;
      try {
        counts = last.startsWith('{') ? (JSON.parse(last) as FuzzCounts) : undefined;
      } catch {
        counts = undefined;
      }
      resolve({ counts, code, signal, hung });
    });
  });
}

async function main(): Promise<void> {
  const minutes = Number(arg('minutes') ?? '1');
  const baseSeed = Number(arg('seed') ?? '1');
  const only = arg('target');
  const files = targetFiles().filter((f) => loadTarget(f) !== undefined && (!only || path.basename(f).startsWith(`fuzz-${only}.`)));
  if (!files.length) throw new Error(`no fuzz target${only ? ` named '${only}'` : ''} under ${path.dirname(targetFiles()[0] ?? '.')}`);
  const date = new Date().toISOString().slice(0, 10);
  const out = arg('out') ?? path.join(ROOT, 'bench', 'results', `fuzz-${date}.md`);
  const saved = path.join(ROOT, 'bench', 'results', `fuzz-${date}-findings`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-fuzz-long-'));
  const shareMs = (minutes * 60000) / files.length;
  const rows: string[] = [];
  const findings: Finding[] = [];
  for (const file of files) {
    const name = loadTarget(file)!.name;
    const total: FuzzCounts = { name, seed: baseSeed, inputs: 0, accepted: 0, clearErrors: 0, unclear: 0, crashes: 0, hangs: 0, ms: 0, findings: [] };
    const end = Date.now() + shareMs;
    for (let seed = baseSeed; Date.now() < end; seed++) {
      const current = path.join(work, `${name}.current`);
      fs.rmSync(current, { force: true });
      const o = await runChild(file, seed, end - Date.now(), current, 60000);
      if (o.counts) {
        for (const k of ['inputs', 'accepted', 'clearErrors', 'unclear', 'crashes', 'hangs', 'ms'] as const) total[k] += o.counts[k];
        findings.push(...o.counts.findings.map((f) => ({ ...f, message: `${name} seed ${seed}: ${f.message}` })));
      }
      if (!o.counts || o.code !== 0) {
        // The child died in an input (a native crash) or was stuck in one: keep that input.
        const kind = o.hung ? 'hang' : 'crash';
        total[o.hung ? 'hangs' : 'crashes']++;
        total.inputs++;
        fs.mkdirSync(saved, { recursive: true });
        const keep = path.join(saved, `${name}-${kind}-seed${seed}.bin`);
        if (fs.existsSync(current)) fs.copyFileSync(current, keep);
        findings.push({ kind, message: `${name} seed ${seed}: child ${o.hung ? 'stuck' : `exited with ${o.signal ?? o.code}`}; input saved as ${path.relative(ROOT, keep)}`, input: '' });
      }
    }
    rows.push(countsRow(total));
    process.stderr.write(`${countsRow(total)}\n`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const text = [
    `# Fuzz run ${date}`,
    '',
    `\`npm run fuzz -- --minutes ${minutes} --seed ${baseSeed}${only ? ` --target ${only}` : ''}\`: ${files.length} target(s), ${(shareMs / 60000).toFixed(1)} min each,`,
    `on ${cpu} (${os.cpus().length} cores, shared), Node ${process.version}, libtorch ${require('../lib').torchVersion}.`,
    'Each target runs in a child process from the seed on; a crash or hang restarts it with the next seed.',
    'Unclear errors are errors that do not name the file (or that leak tensors); crashes are native deaths',
    '(a signal) or non-Error throws; hangs are inputs over 2 s, or a child stuck past its time.',
    '',
    COUNTS_HEADER,
    ...rows,
    '',
    findings.length ? '## Findings\n' : 'No findings.',
    ...findings.map((f) => `- ${f.kind}: ${f.message.replace(/\n/g, ' ')}`),
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, text);
  process.stderr.write(`wrote ${out}\n`);
  if (findings.length) process.exitCode = 1;
}

if (process.argv.includes('--child')) {
  child(arg('child')!, Number(arg('seed')), Number(arg('ms')), arg('current')!).catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  });
} else {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  });
}
