// Exact continuation and determinism. A run stopped after step 3 (its last checkpoint: step 2) and
// resumed in a fresh model ends with the very bytes an unbroken run writes: the adapter, the optimizer
// state and the logged losses. LoRA dropout is on, so this also needs the random generator's state
// restored; the data is shuffled per epoch and the run crosses an epoch, so it needs the data position.
// Two runs with the same seed write the same bytes; another seed changes them.
import * as fs from 'fs';
import * as path from 'path';
import { Trainer } from '../lib';
import { TrainingArgumentsOptions } from '../lib/train';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

const data = randomExamples(24, 1);
const evalData = randomExamples(6, 2);

function args(outputDir: string, extra: Partial<TrainingArgumentsOptions> = {}): TrainingArgumentsOptions {
  return {
    outputDir,
    maxSteps: 6, // 8 batches of 3 per epoch, 2 per step: the run crosses into the second epoch
    perDeviceTrainBatchSize: 3,
    gradientAccumulationSteps: 2,
    learningRate: 5e-3,
    lrSchedulerType: 'cosine',
    warmupSteps: 2,
    weightDecay: 0.01,
    maxGradNorm: 0.5,
    loggingSteps: 1,
    saveSteps: 2,
    evalSteps: 3,
    seed: 7,
    report: 'none',
    ...extra,
  };
}

async function run(outputDir: string, opts: { seed?: number; stopAt?: number; resume?: boolean; modelSeed?: number } = {}) {
  const model = await tinyLoraModel(opts.modelSeed ?? 0, { loraDropout: 0.1 });
  const trainer = new Trainer({
    model,
    trainDataset: data,
    evalDataset: evalData,
    args: args(outputDir, opts.seed === undefined ? {} : { seed: opts.seed }),
    callbacks: { onStepEnd: ({ globalStep }) => globalStep === opts.stopAt },
  });
  const result = await trainer.train({ resumeFromCheckpoint: opts.resume });
  model.dispose();
  return result;
}

const bytes = (...p: string[]) => fs.readFileSync(path.join(...p));

test('a run stopped after step 3 and resumed from checkpoint-2 ends byte for byte as an unbroken run', async () => {
  const whole = tmpDir('whole');
  const broken = tmpDir('broken');
  const a = await run(whole);
  expect(a.globalStep).toBe(6);
  expect(fs.readdirSync(whole).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-4', 'checkpoint-6']);

  const b = await run(broken, { stopAt: 3 });
  expect(b.stoppedEarly).toBe(true);
  expect(b.globalStep).toBe(3);
  // The resumed run starts from another random adapter: everything must come from the checkpoint.
  const c = await run(broken, { resume: true, modelSeed: 123 });
  expect(c.resumedFrom).toBe(path.join(broken, 'checkpoint-2'));
  expect(c.globalStep).toBe(6);

  expect(bytes(broken, 'adapter_model.safetensors').equals(bytes(whole, 'adapter_model.safetensors'))).toBe(true);
  for (const f of ['adapter_model.safetensors', 'optimizer.safetensors', 'optimizer.json', 'scheduler.json', 'rng_state.safetensors'])
    expect(bytes(broken, 'checkpoint-6', f).equals(bytes(whole, 'checkpoint-6', f))).toBe(true);
  const losses = (r: typeof a) => r.logHistory.filter((e) => e.loss !== undefined).map((e) => [e.step, e.loss, e.learning_rate, e.grad_norm]);
  expect(losses(c)).toEqual(losses(a));
  const evals = (r: typeof a) => r.logHistory.filter((e) => e.eval_loss !== undefined).map((e) => [e.step, e.eval_loss]);
  expect(evals(c)).toEqual(evals(a));
  expect(c.trainingLoss).toBe(a.trainingLoss);
  // The log file of the resumed run is the unbroken run's (the stopped run's step 3 was replaced).
  const lines = (d: string) => fs.readFileSync(path.join(d, 'trainer_log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const strip = (es: Record<string, unknown>[]) => es.filter((e) => e.loss !== undefined).map((e) => [e.step, e.loss]);
  expect(strip(lines(broken))).toEqual(strip(lines(whole)));
});

test('same seed, same bytes; another seed, another adapter', async () => {
  const one = tmpDir('seed-a');
  const two = tmpDir('seed-b');
  const three = tmpDir('seed-c');
  await run(one);
  await run(two);
  await run(three, { seed: 8 });
  expect(bytes(one, 'adapter_model.safetensors').equals(bytes(two, 'adapter_model.safetensors'))).toBe(true);
  expect(bytes(one, 'adapter_model.safetensors').equals(bytes(three, 'adapter_model.safetensors'))).toBe(false);
});

test('resuming with different batching is refused, naming what differs', async () => {
  const out = tmpDir('refuse');
  await run(out, { stopAt: 2 });
  const model = await tinyLoraModel(0);
  const trainer = new Trainer({ model, trainDataset: data, args: args(out, { perDeviceTrainBatchSize: 4 }) });
  await expect(trainer.train({ resumeFromCheckpoint: true })).rejects.toThrow(/perDeviceTrainBatchSize 3 \(now 4\)/);
  const fresh = tmpDir('none');
  const t2 = new Trainer({ model, trainDataset: data, args: args(fresh) });
  await expect(t2.train({ resumeFromCheckpoint: true })).rejects.toThrow(/no checkpoint in/);
  await expect(t2.train({ resumeFromCheckpoint: path.join(fresh, 'checkpoint-9') })).rejects.toThrow(/does not exist/);
  model.dispose();
});
