// Data-parallel training (Gloo over 127.0.0.1, real worker processes): N ranks of batch b give the adapter
// one process of batch N·b gives, with and without gradient accumulation; each rank starts from another
// LoRA init, so only the broadcast from rank 0 can make them agree. Then resume after a killed rank, and a
// dead or hung rank ending the job with an error in bounded time.
import * as fs from 'fs';
import * as path from 'path';
import { dist, Trainer } from '../lib';
import { runDistJob } from './helpers/dist-job';
import { maxFileDiff, randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

const maybe = dist.isAvailable('gloo') ? describe : describe.skip;
const WORKER = 'test/helpers/ddp/train-worker.ts';
const ADAPTER = 'adapter_model.safetensors';

interface Extra {
  bucketCapMb?: number;
  gradientCheckpointing?: boolean;
  evalSteps?: number;
}

/** One process with batch `batch` (the reference); returns the logged losses and evaluation losses. */
async function single(outputDir: string, batch: number, accumulation: number, maxSteps: number, extra: Extra = {}): Promise<{ losses: number[]; evalLosses: number[][] }> {
  const model = await tinyLoraModel(0);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(24, 5, 4, 16),
    evalDataset: extra.evalSteps ? randomExamples(7, 9, 4, 16) : undefined,
    args: {
      outputDir, maxSteps, perDeviceTrainBatchSize: batch, gradientAccumulationSteps: accumulation, learningRate: 1e-3, weightDecay: 0.01, maxGradNorm: 1,
      loggingSteps: 1, report: 'none', gradientCheckpointing: extra.gradientCheckpointing ?? false, evalSteps: extra.evalSteps, perDeviceEvalBatchSize: 2,
    }, // prettier-ignore
  });
  const r = await trainer.train();
  model.dispose();
  return {
    losses: r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!),
    evalLosses: r.logHistory.filter((e) => e.eval_loss !== undefined).map((e) => [e.step, e.eval_loss!]),
  };
}

function results(out: string[]): { rank: number; losses: number[]; evalLosses: number[][]; overlap: number[][]; step: number; live: number[] }[][] {
  return out.map((o) => o.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7))));
}

maybe.each([2, 3])('%i ranks x batch 2 == 1 process x batch 2N', (n) => {
  test('without and with gradient accumulation, buckets sent from backward or after it, evaluation sharded: the same losses and adapter (1e-5)', async () => {
    const base = tmpDir(`ddp-${n}`);
    const runs: ({ outputDir: string; batch: number; accumulation: number; maxSteps: number } & Extra)[] = [
      { outputDir: path.join(base, 'acc1'), batch: 2, accumulation: 1, maxSteps: 4 },
      { outputDir: path.join(base, 'acc2'), batch: 2, accumulation: 2, maxSteps: 3 },
      // every parameter its own bucket (~100 bytes): each all-reduce goes out from backward as its gradient is made
      { outputDir: path.join(base, 'buckets'), batch: 2, accumulation: 2, maxSteps: 3, bucketCapMb: 1e-4, evalSteps: 2 },
      // several backward passes per micro-batch: the buckets go out after backward
      { outputDir: path.join(base, 'ckpt'), batch: 2, accumulation: 1, maxSteps: 2, gradientCheckpointing: true },
    ];
    const job = await runDistJob(WORKER, n, [JSON.stringify(runs)], { timeoutMs: 150000 });
    if (job.error) throw new Error(`${job.error.message}\n${job.err.join('\n')}`);
    const res = results(job.out);
    for (const [i, run] of runs.entries()) {
      const ref = path.join(base, `ref${i}`);
      const { losses, evalLosses } = await single(ref, 2 * n, run.accumulation, run.maxSteps, run);
      expect(losses).toHaveLength(run.maxSteps);
      // the step loop leaves no tensors behind: the live count is the same after every step from the second on
      // (the first makes the optimizer's state)
      for (let r = 0; r < n; r++) expect(new Set(res[r][i].live.slice(1)).size).toBe(1);
      // every rank logs the global loss of each step
      for (let r = 0; r < n; r++) res[r][i].losses.forEach((l, k) => expect(Math.abs(l - losses[k])).toBeLessThan(1e-5));
      expect(maxFileDiff(path.join(run.outputDir, ADAPTER), path.join(ref, ADAPTER))).toBeLessThan(1e-5);
      // rank 0 alone wrote the files: one log line per step, the evaluations and the final entry
      expect(fs.readFileSync(path.join(run.outputDir, 'trainer_log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(run.maxSteps + 1 + evalLosses.length);
      for (let r = 0; r < n; r++) {
        // [buckets issued from the synced backward, buckets] of every step
        const want = run.gradientCheckpointing ? 0 : res[r][i].overlap[0][1];
        expect(res[r][i].overlap).toEqual(Array(run.maxSteps).fill([want, res[r][i].overlap[0][1]]));
        // each rank evaluated its share of the batches and got the whole set's loss (steps 2 and 3, the last)
        expect(res[r][i].evalLosses.map(([s]) => s)).toEqual(evalLosses.map(([s]) => s));
        res[r][i].evalLosses.forEach(([, l], k) => expect(Math.abs(l - evalLosses[k][1])).toBeLessThan(1e-5));
      }
    }
    // lora_A and lora_B of 3 target modules x 3 layers: a bucket each
    expect(res[0][2].overlap[0][1]).toBe(18);
    expect(res[0][0].overlap[0][1]).toBe(1);
  }, 300000);
});

maybe('failures', () => {
  test('a killed 2-rank run resumes from its checkpoint to the unbroken run', async () => {
    const base = tmpDir('ddp-resume');
    const unbroken = path.join(base, 'unbroken');
    const broken = path.join(base, 'broken');
    const common = { batch: 2, accumulation: 1, maxSteps: 5, saveSteps: 2 };
    const ok = await runDistJob(WORKER, 2, [JSON.stringify([{ ...common, outputDir: unbroken }])], { timeoutMs: 90000 });
    if (ok.error) throw new Error(`${ok.error.message}\n${ok.err.join('\n')}`);
    // rank 1 is killed (SIGKILL) after step 3: checkpoint-2 is the last complete one
    const killed = await runDistJob(WORKER, 2, [JSON.stringify([{ ...common, outputDir: broken, dieAtStep: 3 }])], { timeoutMs: 90000 });
    expect(killed.error?.message).toMatch(/^rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL; the other ranks were stopped/);
    expect(fs.existsSync(path.join(broken, ADAPTER))).toBe(false);
    expect(fs.readdirSync(broken).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-2']);
    const resumed = await runDistJob(WORKER, 2, [JSON.stringify([{ ...common, outputDir: broken, resume: true }])], { timeoutMs: 90000 });
    if (resumed.error) throw new Error(`${resumed.error.message}\n${resumed.err.join('\n')}`);
    expect(maxFileDiff(path.join(broken, ADAPTER), path.join(unbroken, ADAPTER))).toBeLessThan(1e-6);
    // another number of ranks cannot continue it
    const three = await runDistJob(WORKER, 3, [JSON.stringify([{ ...common, outputDir: broken, maxSteps: 6, resume: true }])], { timeoutMs: 90000 });
    expect(three.error).toBeDefined();
    expect(three.err.join('\n')).toMatch(/was made by 2 processes and this run has 3: .* resume with 2 processes/);
  }, 300000);

  test("one rank's signal or callback stop ends every rank after the same step (with a checkpoint when interrupted)", async () => {
    const base = tmpDir('ddp-stop');
    const runs = [
      { outputDir: path.join(base, 'abort'), batch: 2, accumulation: 1, maxSteps: 6, abortAtStep: 2 },
      { outputDir: path.join(base, 'stop'), batch: 2, accumulation: 1, maxSteps: 6, stopAtStep: 2 },
    ];
    const job = await runDistJob(WORKER, 2, [JSON.stringify(runs)], { timeoutMs: 90000 });
    if (job.error) throw new Error(`${job.error.message}\n${job.err.join('\n')}`);
    const res = results(job.out);
    for (const r of [0, 1]) {
      // the abort on rank 1 after step 2 is seen by both after step 3
      expect(res[r][0]).toMatchObject({ step: 3, interrupted: true, checkpoint: path.join(runs[0].outputDir, 'checkpoint-3') });
      expect(res[r][1]).toMatchObject({ step: 2, interrupted: false, stoppedEarly: true });
    }
    expect(fs.existsSync(path.join(runs[0].outputDir, 'checkpoint-3', 'trainer_state.json'))).toBe(true);
    expect(fs.existsSync(path.join(runs[0].outputDir, ADAPTER))).toBe(false);
    expect(fs.existsSync(path.join(runs[1].outputDir, ADAPTER))).toBe(true);
  }, 120000);

  test('a hung rank: the others fail after the collective timeout, naming it; the launcher ends the job', async () => {
    const base = tmpDir('ddp-hang');
    const job = await runDistJob(WORKER, 2, [JSON.stringify([{ outputDir: base, batch: 2, accumulation: 1, maxSteps: 6, hangAtStep: 2, timeout: 4000 }])], {
      timeoutMs: 60000,
    });
    expect(job.error?.message).toMatch(/^rank 0 \(local rank 0, pid \d+\) exited with code 1; the other ranks were stopped \(still running then: rank 1\)/);
    // rank 0 reads every rank's progress from the store: rank 1 never issued the collective and went silent
    expect(job.err[0]).toMatch(
      /allReduce failed on rank 0 of 2 \(gloo, collective #(\d+), timeout 4 s\): .* -- rank 1 has not reached this collective \(#\1; its last is #\d+(, \w+)?\) and has stopped answering: it is hung or dead/,
    );
    expect(job.seconds).toBeLessThan(40);
    expect(fs.existsSync(path.join(base, ADAPTER))).toBe(false);
    // rank 0 hangs: it hosts the store, which does not answer either
    const zero = await runDistJob(WORKER, 2, [JSON.stringify([{ outputDir: tmpDir('ddp-hang0'), batch: 2, accumulation: 1, maxSteps: 6, hangAtStep: 2, hangRank: 0, timeout: 4000 }])], {
      timeoutMs: 60000,
    });
    expect(zero.error?.message).toMatch(/^rank 1 \(local rank 1, pid \d+\) exited with code 1; the other ranks were stopped \(still running then: rank 0\)/);
    expect(zero.err[1]).toMatch(/allReduce failed on rank 1 of 2 .* -- the store \(hosted by rank 0\) (failed: .* -- rank 0 has probably exited or hung|did not answer within 7 s: rank 0 is probably hung)/);
    expect(zero.seconds).toBeLessThan(40);
  }, 120000);
});
