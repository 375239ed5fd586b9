// Data-parallel step time on this machine: the Trainer's optimizer step with 1 process and with N Gloo
// ranks (local processes over 127.0.0.1, the launcher `torch-lora train --nproc-per-node` uses), and the
// bytes each rank sends into the all-reduces per step (the LoRA gradients only, plus two scalars).
//
//   node -r <ts register> bench/ddp-step.ts [--config demo|30m] [--batch 4] [--seq 128] [--steps 8] [--nproc 2] [--bucketCapMb 25]
//
// The N-rank run twice: gradient buckets all-reduced from backward (overlap, the default) and after it.
//
// Each rank trains LoRA r=16 on q,k,v,o,gate,up,down of a random Llama of the preset's shape (the same
// presets as train-step.ts) on random tokens; steps after the first two are timed (wall clock per
// optimizer step, as the Trainer's onStepEnd sees them). Prints one JSON line per run and a table.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as torch from '../lib';
import { dist, Trainer } from '../lib';
import { Dataset } from '../lib/data';
import { launch } from '../lib/distributed/launch';
import { getPeftModel, LoraConfig } from '../lib/peft';
import { hfConfig, TARGET_MODULES } from './train-step';

interface Args {
  config: string;
  batch: number;
  seq: number;
  steps: number;
  nproc: number;
  /** 1: bucket all-reduces issued from backward (the Trainer's default); 0: after backward */
  overlap: number;
  /** ddpBucketCapMb (default 25, PyTorch's) */
  bucketCapMb: number;
}

function parse(argv: string[]): Args {
  const a: Args = { config: 'demo', batch: 4, seq: 128, steps: 8, nproc: 2, overlap: 1, bucketCapMb: 25 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '') as keyof Args;
    if (!(k in a)) throw new Error(`ddp-step: unknown option ${argv[i]}`);
    (a as unknown as Record<string, unknown>)[k] = k === 'config' ? argv[i + 1] : Number(argv[i + 1]);
  }
  return a;
}

/** One process's run (a rank of a job when WORLD_SIZE is set): prints its JSON line on rank 0. */
async function worker(a: Args): Promise<void> {
  const world = Number(process.env.WORLD_SIZE ?? 1);
  if (world > 1) await dist.initProcessGroup({ backend: 'gloo' });
  const rank = world > 1 ? dist.getRank() : 0;
  const config = hfConfig(a.config, a.seq);
  torch.manualSeed(0);
  const base = torch.AutoModelForCausalLM.fromConfig(config, { device: 'cpu', dtype: 'float32' });
  const model = getPeftModel(base, new LoraConfig({ r: 16, loraAlpha: 16, loraDropout: 0, targetModules: TARGET_MODULES }));
  const vocab = config.vocab_size as number;
  // the same global data for every world size; each rank reads its shard
  let seed = 1;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed);
  const n = a.batch * world * (a.steps + 2);
  const examples = Array.from({ length: n }, () => {
    const ids = Int32Array.from({ length: a.seq }, () => next() % vocab);
    return { inputIds: ids, labels: Int32Array.from(ids) };
  });
  const outputDir = path.join(os.tmpdir(), `tl-ddp-bench-${process.ppid}`);
  const times: number[] = [];
  let t = Date.now();
  const trainer = new Trainer({
    model,
    trainDataset: new Dataset(examples),
    args: { outputDir, maxSteps: a.steps + 2, perDeviceTrainBatchSize: a.batch, learningRate: 1e-4, loggingSteps: 1000, report: 'none', plotLoss: false, ddpBucketCapMb: a.bucketCapMb },
    callbacks: {
      onStepEnd: () => {
        const now = Date.now();
        times.push(now - t);
        t = now;
      },
    },
  });
  // (a bench switch: the Trainer turns overlap off only for gradient checkpointing)
  if (a.overlap === 0 && trainer.gradientSync) Object.assign(trainer.gradientSync, { overlap: false });
  await trainer.train();
  const timed = times.slice(2).sort((x, y) => x - y);
  const median = timed[Math.floor(timed.length / 2)];
  if (rank === 0)
    console.log(
      'RESULT ' +
        JSON.stringify({
          config: a.config,
          world,
          overlap: world > 1 ? a.overlap === 1 : undefined,
          perRankBatch: a.batch,
          globalBatch: a.batch * world,
          seq: a.seq,
          threadsPerRank: torch.getNumThreads(),
          stepMsMedian: median,
          stepMsMin: timed[0],
          trainableParams: model.getNbTrainableParameters()[0],
          allReduceBytesPerStep: trainer.gradientSync ? trainer.gradientSync.bytesPerStep + 2 * 8 + 4 : 0,
          buckets: trainer.gradientSync?.buckets.length ?? 0,
        }),
    );
  model.dispose();
  if (world > 1) dist.destroyProcessGroup();
  if (rank === 0) fs.rmSync(outputDir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  if (process.env.WORLD_SIZE !== undefined) return worker(a);
  // (libgomp's threads wait passively in the workers: lib/native.ts sets OMP_WAIT_POLICY when it loads.)
  // the launcher: 1 process x batch b, 1 process x batch N·b, N processes x batch b
  const runs: [number, number, number][] = [
    [1, a.batch, 1],
    [1, a.batch * a.nproc, 1],
    [a.nproc, a.batch, 1],
    [a.nproc, a.batch, 0],
  ];
  for (const [nproc, batch, overlap] of runs) {
    const job = launch({
      nprocPerNode: nproc,
      command: [process.execPath, ...process.execArgv, __filename, '--config', a.config, '--seq', String(a.seq), '--steps', String(a.steps), '--batch', String(batch), '--overlap', String(overlap), '--bucketCapMb', String(a.bucketCapMb)],
      stdio: 'inherit',
    });
    await job.done;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
