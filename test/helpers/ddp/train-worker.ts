// One rank of a data-parallel training test: tiny-llama + LoRA, trained with the Trainer inside the job's
// process group. argv: a JSON list of runs { outputDir, batch, accumulation, maxSteps, saveSteps?, resume?,
// seed?, dieAtStep?, hangAtStep?, timeout?, bucketCapMb?, gradientCheckpointing?, evalSteps? }. Each rank starts from a different LoRA init (seed + rank), so
// only the broadcast from rank 0 makes the runs agree.
import { exitWithLauncher } from '../../../lib/distributed/launch';
import { dist, memory, Trainer } from '../../../lib';
// (the shared test helpers register an afterAll for their temporary folders: outside jest, a no-op)
(globalThis as { afterAll?: unknown }).afterAll ??= () => undefined;
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { randomExamples, tinyLoraModel } = require('../train') as typeof import('../train');

interface Run {
  outputDir: string;
  batch: number;
  accumulation: number;
  maxSteps: number;
  saveSteps?: number;
  resume?: boolean;
  dieAtStep?: number;
  hangAtStep?: number;
  /** the rank that hangs (default 1) */
  hangRank?: number;
  /** rank 1 aborts its signal (as Ctrl-C would) after this step */
  abortAtStep?: number;
  /** rank 1's onStepEnd asks to stop after this step */
  stopAtStep?: number;
  timeout?: number;
  /** ddpBucketCapMb */
  bucketCapMb?: number;
  gradientCheckpointing?: boolean;
  /** evaluate randomExamples(7, 9) every evalSteps steps (sharded over the ranks) */
  evalSteps?: number;
}

async function main(): Promise<void> {
  const runs = JSON.parse(process.argv[2]) as Run[];
  exitWithLauncher(); // (no worker outlives a test runner that was killed)
  await dist.initProcessGroup({ backend: 'gloo', timeout: runs[0].timeout ?? 60000 });
  const rank = dist.getRank();
  for (const run of runs) {
    const model = await tinyLoraModel(rank);
    const ctl = new AbortController();
    const live: number[] = [];
    // per step: [buckets the synced backward issued itself, buckets]
    const overlap: number[][] = [];
    const trainer: Trainer = new Trainer({
      model,
      trainDataset: randomExamples(24, 5, 4, 16),
      evalDataset: run.evalSteps ? randomExamples(7, 9, 4, 16) : undefined,
      args: {
        outputDir: run.outputDir,
        maxSteps: run.maxSteps,
        perDeviceTrainBatchSize: run.batch,
        gradientAccumulationSteps: run.accumulation,
        learningRate: 1e-3,
        weightDecay: 0.01,
        maxGradNorm: 1,
        loggingSteps: 1,
        saveSteps: run.saveSteps ?? 0,
        report: 'none',
        ddpBucketCapMb: run.bucketCapMb,
        gradientCheckpointing: run.gradientCheckpointing ?? false,
        evalSteps: run.evalSteps,
        perDeviceEvalBatchSize: 2,
      },
      callbacks: {
        onPreOptimizerStep: () => {
          const s = trainer.gradientSync!;
          overlap.push([s.bucketsIssuedDuringBackward, s.buckets.length]);
        },
        onStepEnd: ({ globalStep }) => {
          live.push(memory().tensors);
          if (rank === 1 && globalStep === run.dieAtStep) process.kill(process.pid, 'SIGKILL');
          if (rank === (run.hangRank ?? 1) && globalStep === run.hangAtStep) process.kill(process.pid, 'SIGSTOP');
          if (rank === 1 && globalStep === run.abortAtStep) ctl.abort();
          return rank === 1 && globalStep === run.stopAtStep;
        },
      },
    });
    const r = await trainer.train({ resumeFromCheckpoint: run.resume, signal: ctl.signal });
    const losses = r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss);
    const evalLosses = r.logHistory.filter((e) => e.eval_loss !== undefined).map((e) => [e.step, e.eval_loss]);
    console.log(
      'RESULT ' + JSON.stringify({ rank, losses, evalLosses, overlap, step: r.globalStep, interrupted: r.interrupted ?? false, stoppedEarly: r.stoppedEarly, checkpoint: r.checkpoint, live }),
    );
    model.dispose();
  }
  dist.destroyProcessGroup();
}

main().catch((e) => {
  console.error(`rank ${process.env.RANK}: ${(e as Error).message}`);
  process.exit(1);
});
