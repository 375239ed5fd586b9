// LoRA training throughput with and without packing, on the demo's data (assets/demo-data/finetune.jsonl,
// 2000 prompt-completion records of 11..21 tokens) and base (assets/demo-base), LoRA r 8 on every linear
// layer, steps as the Trainer takes them (the chunked LM-head loss, backward, AdamW, zero grad). Variants:
//   padded        16 examples a step, each row padded to the longest of its batch (the DataLoader's collate)
//   bfd-64        packDataset 'bfd' rows of up to 64 tokens, 4 rows a step (about the same tokens a step)
//   bfd-128       'bfd' rows of up to 128 tokens, 2 rows a step
//   wrapped-64    'wrapped' blocks of 64 (examples see each other: no mask at all), 4 rows a step
// tokens/s = real (non-padding) tokens / time of the steps. The variants take their steps in turn (the
// order rotating each round), so that on a shared, loaded machine they see the same load; --warmup steps
// each are not timed.
// Run: npx tsc -p tsconfig.json && node dist/bench/packing.js [--steps 40] [--warmup 3] [--results FILE.md]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoModelForCausalLM, AutoTokenizer, DataLoader, getNumThreads, getPeftModel, loadDataset, LoraConfig, manualSeed, packDataset, PeftModel, scope } from '../lib';
import type { Batch, Dataset, MaybeMasked } from '../lib/data';
import { AdamW } from '../lib/optim';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const ROOT = path.join(__dirname, '..', '..');
const STEPS = Number(opt('--steps', '40'));
const WARMUP = Number(opt('--warmup', '3'));

interface Variant {
  name: string;
  rows: (ds: Dataset<MaybeMasked>, eos: number | null) => Dataset<MaybeMasked>;
  batch: number;
}
const VARIANTS: Variant[] = [
  { name: 'padded', rows: (ds) => ds, batch: 16 },
  { name: 'bfd-64', rows: (ds, eos) => packDataset(ds, { seqLen: 64, eosTokenId: eos }), batch: 4 },
  { name: 'bfd-128', rows: (ds, eos) => packDataset(ds, { seqLen: 128, eosTokenId: eos }), batch: 2 },
  { name: 'wrapped-64', rows: (ds, eos) => packDataset(ds, { seqLen: 64, eosTokenId: eos, strategy: 'wrapped' }), batch: 4 },
];

interface Run {
  model: PeftModel;
  optimizer: AdamW;
  batches: Iterator<Batch>;
  loader: DataLoader;
  epoch: number;
  ms: number;
  tokens: number;
  slots: number;
  stepMs: number[];
}

function nextBatch(r: Run): Batch {
  let n = r.batches.next();
  if (n.done) {
    r.epoch++;
    r.batches = r.loader.batches({ epoch: r.epoch });
    n = r.batches.next();
  }
  return n.value as Batch;
}

function step(r: Run, timed: boolean): void {
  const b = nextBatch(r);
  const real = scope(() => b.attentionMask.sum().item() as number);
  const t0 = process.hrtime.bigint();
  scope(() => {
    const loss = r.model.forwardLoss({ inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels, positionIds: b.positionIds });
    loss.backward();
  });
  r.optimizer.step();
  r.optimizer.zeroGrad();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (timed) {
    r.ms += ms;
    r.tokens += real;
    r.slots += b.inputIds.shape[0] * b.inputIds.shape[1];
    r.stepMs.push(ms);
  }
  for (const t of [b.inputIds, b.attentionMask, b.labels, b.positionIds]) t?.dispose();
}

async function main(): Promise<void> {
  const tok = await AutoTokenizer.fromPretrained(path.join(ROOT, 'assets', 'demo-base'));
  const ds = loadDataset(path.join(ROOT, 'assets', 'demo-data', 'finetune.jsonl'), tok) as Dataset<MaybeMasked>;
  const runs: Run[] = [];
  const sets = VARIANTS.map((v) => v.rows(ds, tok.eosTokenId));
  for (const [i, v] of VARIANTS.entries()) {
    const base = await AutoModelForCausalLM.fromPretrained(path.join(ROOT, 'assets', 'demo-base'));
    manualSeed(0);
    const model = getPeftModel(base, new LoraConfig({ r: 8, loraAlpha: 16, loraDropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }));
    const optimizer = new AdamW([...model.parameters()].filter((p) => p.requiresGrad), { lr: 5e-3 });
    const loader = new DataLoader(sets[i], { batchSize: v.batch, shuffle: true, seed: 0, tokenizer: tok });
    runs.push({ model, optimizer, loader, batches: loader.batches({ epoch: 0 }), epoch: 0, ms: 0, tokens: 0, slots: 0, stepMs: [] });
  }
  for (let s = 0; s < WARMUP; s++) for (const r of runs) step(r, false);
  for (let s = 0; s < STEPS; s++) {
    for (let k = 0; k < runs.length; k++) step(runs[(k + s) % runs.length], true);
    if ((s + 1) % 10 === 0) process.stderr.write(`${s + 1}/${STEPS} steps each\n`);
  }
  const tps = runs.map((r) => (1000 * r.tokens) / r.ms);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const lines = [
    `## Packing vs padding, demo data (${new Date().toISOString().slice(0, 10)})`,
    '',
    `${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} cores, ${getNumThreads()} intra-op threads, load average ${os.loadavg()[0].toFixed(1)} at the end; ` +
      `${STEPS} timed steps of each variant, taken in turn (after ${WARMUP} untimed).`,
    `${ds.length} examples of the demo data; the demo base, LoRA r 8 on every linear layer; a step as the Trainer's (chunked loss, backward, AdamW).`,
    '',
    '| variant | rows | rows a step | padding in its batches | median step (ms) | real tokens/s | vs padded |',
    '|---|---|---|---|---|---|---|',
    ...VARIANTS.map(
      (v, i) =>
        `| ${v.name} | ${sets[i].length} | ${v.batch} | ${(100 * (1 - runs[i].tokens / runs[i].slots)).toFixed(1)}% | ${median(runs[i].stepMs).toFixed(0)} | ${tps[i].toFixed(0)} | ${(tps[i] / tps[0]).toFixed(2)}× |`,
    ),
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(text + '\n');
  const results = opt('--results', '');
  if (results) fs.appendFileSync(results, text + '\n');
  for (const r of runs) r.model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
