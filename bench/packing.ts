// LoRA training throughput with and without packing, on the demo's data (assets/demo-data/finetune.jsonl,
// 2000 prompt-completion records of 11..21 tokens) and base (assets/demo-base), through the Trainer as the
// demo runs it (r 8, batch 16, lr 5e-3). Variants:
//   padded        16 examples a step, each row padded to the longest of its batch
//   bfd-64        packDataset 'bfd' rows of up to 64 tokens, 4 rows a step (about the same tokens a step)
//   bfd-128       'bfd' rows of up to 128 tokens, 2 rows a step
//   wrapped-64    'wrapped' blocks of 64 (examples see each other: the old --packing), 4 rows a step
// The figure is the Trainer's train_tokens_per_second (real tokens, padding not counted). The variants
// alternate round by round (--rounds, each --steps optimizer steps after one untimed warm-up round), so
// that on a shared machine they see the same load; the median round of each is reported.
// Run: npx tsc -p tsconfig.json && node dist/bench/packing.js [--steps 30] [--rounds 3] [--results FILE.md]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoModelForCausalLM, AutoTokenizer, getNumThreads, getPeftModel, loadDataset, LoraConfig, manualSeed, packDataset, Trainer } from '../lib';
import type { Dataset, MaybeMasked } from '../lib/data';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const ROOT = path.join(__dirname, '..', '..');
const STEPS = Number(opt('--steps', '30'));
const ROUNDS = Number(opt('--rounds', '3'));

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

async function round(v: Variant, data: Dataset<MaybeMasked>, tok: Awaited<ReturnType<typeof AutoTokenizer.fromPretrained>>, steps: number): Promise<{ tps: number; padding: number; loss: number }> {
  const base = await AutoModelForCausalLM.fromPretrained(path.join(ROOT, 'assets', 'demo-base'));
  manualSeed(0);
  const model = getPeftModel(base, new LoraConfig({ r: 8, loraAlpha: 16, loraDropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-packing-'));
  const trainer = new Trainer({
    model,
    trainDataset: data,
    tokenizer: tok,
    args: { outputDir: out, maxSteps: steps, perDeviceTrainBatchSize: v.batch, learningRate: 5e-3, loggingSteps: steps, report: 'none', plotLoss: false, seed: 0 },
  });
  const r = await trainer.train();
  fs.rmSync(out, { recursive: true, force: true });
  model.dispose();
  const rows = data.toArray();
  let slots = 0;
  let real = 0;
  for (let i = 0; i < rows.length; i += v.batch) {
    const batch = rows.slice(i, i + v.batch);
    const longest = Math.max(...batch.map((e) => e.inputIds.length));
    slots += longest * batch.length;
    real += batch.reduce((s, e) => s + e.inputIds.length, 0);
  }
  return { tps: r.metrics.train_tokens_per_second!, padding: 1 - real / slots, loss: r.trainingLoss };
}

async function main(): Promise<void> {
  const tok = await AutoTokenizer.fromPretrained(path.join(ROOT, 'assets', 'demo-base'));
  const ds = loadDataset(path.join(ROOT, 'assets', 'demo-data', 'finetune.jsonl'), tok) as Dataset<MaybeMasked>;
  const sets = VARIANTS.map((v) => v.rows(ds, tok.eosTokenId));
  for (const [i, v] of VARIANTS.entries()) await round(v, sets[i], tok, 2); // warm-up
  const runs: { tps: number; padding: number; loss: number }[][] = VARIANTS.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + r) % VARIANTS.length; // the order rotates
      runs[i].push(await round(VARIANTS[i], sets[i], tok, STEPS));
      process.stderr.write(`round ${r + 1}/${ROUNDS} ${VARIANTS[i].name}: ${runs[i][runs[i].length - 1].tps.toFixed(0)} tokens/s\n`);
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const padded = median(runs[0].map((x) => x.tps));
  const lines = [
    `## Packing vs padding, demo data (${new Date().toISOString().slice(0, 10)})`,
    '',
    `${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} cores, ${getNumThreads()} intra-op threads; ${ROUNDS} rounds of ${STEPS} steps, median round.`,
    `${ds.length} examples; the demo base (assets/demo-base), LoRA r 8 on every linear layer, the Trainer's defaults (chunked loss).`,
    '',
    '| variant | rows | rows a step | padding in the batches | tokens/s (median) | rounds | vs padded |',
    '|---|---|---|---|---|---|---|',
    ...VARIANTS.map((v, i) => {
      const tps = median(runs[i].map((x) => x.tps));
      return `| ${v.name} | ${sets[i].length} | ${v.batch} | ${(100 * runs[i][0].padding).toFixed(1)}% | ${tps.toFixed(0)} | ${runs[i].map((x) => x.tps.toFixed(0)).join(', ')} | ${(tps / padded).toFixed(2)}× |`;
    }),
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(text + '\n');
  const results = opt('--results', '');
  if (results) fs.appendFileSync(results, text + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
