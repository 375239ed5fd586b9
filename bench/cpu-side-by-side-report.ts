// The table of bench/cpu-side-by-side.sh: per model and base dtype, ours next to PyTorch + PEFT from the
// JSON lines both benchmarks append (bench/train-step.ts, bench/train_step.py).
//   node dist/bench/cpu-side-by-side-report.js --in FILE.jsonl --md FILE.md [--note TEXT]
import * as fs from 'fs';
import * as os from 'os';
import { runtimeSummary } from '../lib';

interface Row {
  impl: 'ours' | 'peft';
  config: string;
  batch: number;
  seq: number;
  dtype: string;
  tokens_per_s: number | null;
  ms_per_step: number | null;
  peak_rss_mib: number | null;
  threads?: number;
  loss_first: number | null;
  torch: string;
  error: string | null;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const input = arg('--in');
const md = arg('--md');
if (!input || !md) throw new Error('usage: cpu-side-by-side-report --in FILE.jsonl --md FILE.md [--note TEXT]');
const rows: Row[] = fs.readFileSync(input, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const f = (x: number | null | undefined, d: number) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const key = (r: Row) => `${r.config.replace(/\(init\)$/, '')} ${r.batch}x${r.seq} ${r.dtype}`;
const cases = [...new Set(rows.map(key))];
const ours = rows.find((r) => r.impl === 'ours');
const peft = rows.find((r) => r.impl === 'peft');
const lines = [
  `# CPU side by side: ours vs PyTorch + PEFT (${new Date().toISOString().slice(0, 10)})`,
  '',
  `Machine: ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}.`,
  `Ours: ${runtimeSummary()}. PyTorch + PEFT: torch ${peft?.torch ?? '?'} (transformers, peft eager, SDPA), ${peft?.threads ?? '?'} threads.`,
  'LoRA r=16, alpha=16, dropout 0 on q,k,v,o,gate,up,down, adapters float32, AdamW lr 1e-3; the same random weights (init std 0.05) and batch on both sides.',
  'Peak RSS = the process\'s VmHWM / ru_maxrss (runtime, model and all).',
  arg('--note') ?? '',
  '',
  '| model | batch x seq | base dtype | ours tokens/s | PEFT tokens/s | ours ÷ PEFT | ours ms/step | PEFT ms/step | ours peak RSS MiB | PEFT peak RSS MiB | loss step 0 ours / PEFT | note |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
];
for (const c of cases) {
  const o = rows.find((r) => r.impl === 'ours' && key(r) === c);
  const p = rows.find((r) => r.impl === 'peft' && key(r) === c);
  const [model, bs, dtype] = c.split(' ');
  const ratio = o?.tokens_per_s && p?.tokens_per_s ? `${(o.tokens_per_s / p.tokens_per_s).toFixed(2)}x` : 'n/a';
  const note = [o?.error && `ours: ${o.error}`, p?.error && `PEFT: ${p.error}`].filter(Boolean).join('; ');
  lines.push(
    `| ${model} | ${bs} | ${dtype} | ${f(o?.tokens_per_s, 0)} | ${f(p?.tokens_per_s, 0)} | ${ratio} | ${f(o?.ms_per_step, 1)} | ${f(p?.ms_per_step, 1)} | ` +
      `${f(o?.peak_rss_mib, 0)} | ${f(p?.peak_rss_mib, 0)} | ${f(o?.loss_first, 4)} / ${f(p?.loss_first, 4)} | ${note} |`,
  );
}
if (!ours) lines.push('', 'No run of ours finished.');
fs.writeFileSync(md, lines.join('\n') + '\n');
process.stdout.write(lines.join('\n') + '\n');
