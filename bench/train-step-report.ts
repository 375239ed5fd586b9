// The side-by-side table of bench/train-step.sh: reads the JSON lines that train-step.js and
// train_step.py append (--out), groups them by model config and batch shape, and writes one markdown
// table per group (ours next to each peer: tokens/s, ms/step, peak GiB, TFLOP/s, loss at step 0 and
// last), the speed-up of our best row over each peer, and, where both sides started from the same
// --init-from folder, how far our losses are from PEFT's.
//   node dist/bench/train-step-report.js --in FILE.jsonl [--md FILE.md] [--title TEXT]
import * as fs from 'fs';
import type { RunResult } from './train-step';

interface Args {
  inputs: string[];
  md?: string;
  title: string;
  notes: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { inputs: [], title: 'LoRA training step: ours vs transformers + peft', notes: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`train-step-report: ${k} needs a value`);
    if (k === '--in') a.inputs.push(v);
    else if (k === '--md') a.md = v;
    else if (k === '--title') a.title = v;
    else if (k === '--note') a.notes.push(v);
    else throw new Error(`train-step-report: unknown argument '${k}'`);
  }
  if (a.inputs.length === 0) throw new Error('train-step-report: give at least one --in FILE.jsonl');
  return a;
}

const num = (x: number | null | undefined, d: number): string =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x !== 0 && Math.abs(x) < 1 && d <= 1 ? x.toPrecision(3) : x.toFixed(d);

/** Where a step-0 loss of ours and PEFT's on the same weights count as equal (the bound). */
const LOSS0_TOL = 1e-2;

function groupKey(r: RunResult): string {
  return `${r.config} ${r.batch}x${r.seq} ${r.device.startsWith('cuda') ? 'cuda' : r.device} ${r.dtype}`;
}

function table(rows: RunResult[]): string[] {
  const ok = rows.filter((r) => r.error === null && r.tokens_per_s !== null);
  const oursOk = ok.filter((r) => r.impl === 'ours');
  const bestOurs = oursOk.sort((p, q) => q.tokens_per_s! - p.tokens_per_s!)[0];
  const out = [
    '| impl | variant | tokens/s | ms/step | peak GiB | TFLOP/s | loss step 0 | loss last | best ours ÷ this | note |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const sorted = [...rows].sort((p, q) => (p.impl === q.impl ? (q.tokens_per_s ?? -1) - (p.tokens_per_s ?? -1) : p.impl === 'ours' ? -1 : 1));
  for (const r of sorted) {
    const ratio = bestOurs && r.tokens_per_s ? `${(bestOurs.tokens_per_s! / r.tokens_per_s).toFixed(2)}×` : '';
    out.push(
      `| ${r.impl} | ${r.variant} | ${num(r.tokens_per_s, 0)} | ${num(r.ms_per_step, 1)} | ${num(r.peak_gib, 2)} | ${num(r.tflops, 1)} | ` +
        `${num(r.loss_first, 4)} | ${num(r.loss_last, 4)} | ${r.impl === 'ours' ? '' : ratio} | ${r.error ?? ''} |`,
    );
  }
  const peers = ok.filter((r) => r.impl === 'peft').sort((p, q) => q.tokens_per_s! - p.tokens_per_s!);
  if (!rows.some((r) => r.init_from)) out.push('', 'Each side drew its own random weights and tokens: the losses agree in size only.');
  if (bestOurs && peers.length && bestOurs.device.startsWith('cuda') && !rows.some((r) => r.init_from)) {
    const best = peers[0];
    const minPeak = Math.min(...peers.map((p) => p.peak_gib ?? Infinity));
    const speed = bestOurs.tokens_per_s! / best.tokens_per_s!;
    let line = `Best ours (${bestOurs.variant}) vs best peer (${best.variant}): ${speed.toFixed(2)}× tokens/s`;
    if (bestOurs.peak_gib !== null && best.peak_gib !== null)
      line += `; peak ${num(bestOurs.peak_gib, 2)} GiB vs ${num(best.peak_gib, 2)} GiB (lowest peer peak ${num(minPeak, 2)} GiB)`;
    line += `. Goal (≥ 1.2×, peak ≤ best peer's): ${speed >= 1.2 && (bestOurs.peak_gib ?? 0) <= (best.peak_gib ?? Infinity) ? 'met' : 'not met'}.`;
    out.push('', line);
  }
  // Both sides must have built the same model: the same parameter counts (the FLOP count rests on them).
  const counts = new Set(ok.map((r) => `${r.frozen_matmul_params}/${r.trainable_params}`));
  if (counts.size > 1) out.push('', `WARNING: the rows' models differ (frozen matmul / trainable parameters: ${[...counts].join(', ')}).`);
  else if (counts.size === 1) out.push('', `Frozen matmul parameters ${ok[0].frozen_matmul_params!.toLocaleString('en-US')}, trainable ${ok[0].trainable_params!.toLocaleString('en-US')} (the same on every row).`);
  // Same weights on both sides: the losses must agree (step 0 within LOSS0_TOL).
  const parity: string[] = [];
  for (const o of oursOk.filter((r) => r.init_from)) {
    for (const p of ok.filter((r) => r.impl === 'peft' && r.init_from === o.init_from && r.adapter_dtype === o.adapter_dtype)) {
      const n = Math.min(o.losses.length, p.losses.length);
      let maxD = 0;
      for (let i = 0; i < n; i++) maxD = Math.max(maxD, Math.abs(o.losses[i] - p.losses[i]));
      const d0 = Math.abs(o.losses[0] - p.losses[0]);
      parity.push(
        `| ${o.variant} | ${p.variant} | ${o.losses[0].toFixed(6)} | ${p.losses[0].toFixed(6)} | ${d0.toExponential(2)} | ${maxD.toExponential(2)} (${n} steps) | ${d0 <= LOSS0_TOL ? 'yes' : 'NO'} |`,
      );
    }
  }
  if (parity.length)
    out.push(
      '',
      `Same weights and batch on both sides (--init-from): |Δ loss| of ours vs PEFT with the same adapter dtype.`,
      '',
      `| ours | peft | ours loss 0 | peft loss 0 | |Δ| step 0 | max |Δ| over steps | step 0 within ${LOSS0_TOL} |`,
      '|---|---|---:|---:|---:|---:|---|',
      ...parity,
    );
  return out;
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const rows: RunResult[] = [];
  for (const f of a.inputs) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        rows.push(JSON.parse(line) as RunResult);
      } catch {
        // a line cut short by a timeout: skipped
      }
    }
  }
  const groups = new Map<string, RunResult[]>();
  for (const r of rows) {
    const k = groupKey(r);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  const torchOurs = [...new Set(rows.filter((r) => r.impl === 'ours').map((r) => r.torch))].join(', ');
  const torchPeft = [...new Set(rows.filter((r) => r.impl === 'peft').map((r) => r.torch))].join(', ');
  const devices = [...new Set(rows.filter((r) => r.impl === 'peft').map((r) => r.device_name))].join(', ');
  const parts = [
    `# ${a.title}`,
    '',
    `Device: ${devices || 'n/a'}; libtorch ${torchOurs || 'n/a'} (ours), PyTorch ${torchPeft || 'n/a'} (transformers + peft).`,
    'LoRA r=16, α=16, dropout 0 on q,k,v,o,gate,up,down; AdamW (lr 1e-3) on the adapters; one fixed batch of random tokens;',
    'median ms/step of the timed steps after warm-up; peak = caching allocator peak allocated over the timed steps;',
    'TFLOP/s = (4·frozen matmul params + 6·trainable params + 12·layers·seq·hidden)·tokens/s.',
    ...a.notes.map((n) => `${n}`),
  ];
  for (const [k, rs] of groups) parts.push('', `## ${k}`, '', ...table(rs));
  const text = parts.join('\n') + '\n';
  console.log(text);
  if (a.md) fs.writeFileSync(a.md, text);
}

main();
