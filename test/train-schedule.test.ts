// How many steps a run takes, how its warmup is sized, and which learning rate each step logs, as
// transformers 5's Trainer: an epoch is ceil(batches / gradientAccumulationSteps) optimizer steps whose
// last one takes the remainder batches (trainer.py set_initial_training_values, _run_epoch); epochs give
// ceil(numTrainEpochs × steps per epoch) steps; warmup is ceil(ratio × steps) (get_warmup_steps); and
// the learning_rate logged at step k is the one step k used (read after optimizer.step(), before
// lr_scheduler.step()): lr·λ(k-1). The expected values come from those formulas, written out here; for
// the first setup transformers 5.18's Trainer logs the same steps, epochs and rates (max_steps 3, epochs
// 0.75, 1, 1.75, learning rates 0, 0.01, 0.005).
import { Dataset, Trainer } from '../lib';
import { Example } from '../lib/data';
import { resolveTrainingArguments } from '../lib/train';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

/** transformers' set_initial_training_values for a dataloader of `batches` batches. */
function hfSteps(batches: number, accumulation: number, epochs: number): { perEpoch: number; maxSteps: number } {
  const perEpoch = Math.max(Math.floor(batches / accumulation) + (batches % accumulation > 0 ? 1 : 0), 1);
  return { perEpoch, maxSteps: Math.ceil(epochs * perEpoch) };
}

/** transformers' linear and cosine schedule factors. */
function lambda(type: 'linear' | 'cosine', step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (type === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
  const progress = (step - warmup) / Math.max(1, total - warmup);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}

function tokenCount(data: Dataset<Example>, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += data.get(i).inputIds.length;
  return n;
}

test('epochs: ceil(batches / accumulation) steps per epoch, the last taking the remainder batches; ceil(epochs × that) steps', async () => {
  // 10 examples in batches of 3: 4 batches; accumulating 3 makes 2 steps per epoch (3 batches, then 1).
  // Rounding down would make 1 step per epoch, and 2 steps for 1.5 epochs instead of 3.
  const data = randomExamples(10, 3);
  for (const epochs of [1.5, 2.2]) {
    const model = await tinyLoraModel(0);
    const trainer = new Trainer({
      model,
      trainDataset: data,
      args: { outputDir: tmpDir('epochs'), numTrainEpochs: epochs, perDeviceTrainBatchSize: 3, gradientAccumulationSteps: 3, shuffle: false, loggingSteps: 1, report: 'none' },
    });
    const want = hfSteps(4, 3, epochs);
    expect([trainer.stepsPerEpoch, trainer.maxSteps]).toEqual([want.perEpoch, want.maxSteps]);
    expect(want).toEqual(epochs === 1.5 ? { perEpoch: 2, maxSteps: 3 } : { perEpoch: 2, maxSteps: 5 });
    const r = await trainer.train();
    const logs = r.logHistory.filter((e) => e.loss !== undefined);
    expect(logs.map((e) => e.step)).toEqual(Array.from({ length: want.maxSteps }, (_, i) => i + 1));
    // epoch = e + (batches done in epoch e) / batches per epoch, as transformers' state.epoch.
    const epochOf = (k: number) => Math.floor((k - 1) / 2) + ((k - 1) % 2 === 0 ? 3 / 4 : 1);
    expect(logs.map((e) => e.epoch)).toEqual(logs.map((e) => epochOf(e.step)));
    // Unshuffled: odd steps take examples 0-8 (3 batches), even steps example 9 (the remainder batch).
    const seen = logs.map((e) => e.num_input_tokens_seen!);
    const perStep = seen.map((s, i) => s - (i === 0 ? 0 : seen[i - 1]));
    expect(perStep).toEqual(logs.map((e) => (e.step % 2 === 1 ? tokenCount(data, 0, 9) : tokenCount(data, 9, 10))));
    model.dispose();
  }
});

test('warmup: ceil(ratio × steps), as warmupRatio or as a fraction warmupSteps; each step logs the rate it used, lr·λ(step-1)', async () => {
  // 14 examples in batches of 2, one epoch: 7 steps. 0.3 × 7 = 2.1: 3 warmup steps (rounding would give 2).
  const data = randomExamples(14, 8);
  const lr = 0.01;
  for (const [type, warm] of [['linear', { warmupRatio: 0.3 }], ['cosine', { warmupSteps: 0.3 }]] as const) {
    const model = await tinyLoraModel(0);
    const trainer = new Trainer({
      model,
      trainDataset: data,
      args: { outputDir: tmpDir('warmup'), numTrainEpochs: 1, perDeviceTrainBatchSize: 2, learningRate: lr, lrSchedulerType: type, loggingSteps: 1, report: 'none', ...warm },
    });
    expect(trainer.maxSteps).toBe(7);
    expect(trainer.warmupSteps).toBe(Math.ceil(0.3 * 7));
    expect(trainer.warmupSteps).toBe(3);
    const r = await trainer.train();
    const rates = r.logHistory.filter((e) => e.loss !== undefined).map((e) => [e.step, e.learning_rate]);
    expect(rates).toHaveLength(7);
    for (const [step, rate] of rates) expect([type, step, rate]).toEqual([type, step, expect.closeTo(lr * lambda(type, step! - 1, 3, 7), 15)]);
    expect(rates[0][1]).toBe(0); // the first step of a warmup learns nothing, as in transformers
    model.dispose();
  }
  // warmupSteps ≥ 1 is a count; below 1 a fraction; a count with a fraction part is refused.
  expect(resolveTrainingArguments({ outputDir: 'x', warmupSteps: 0.25 }).warmupSteps).toBe(0.25);
  expect(() => resolveTrainingArguments({ outputDir: 'x', warmupSteps: 2.5 })).toThrow(
    'TrainingArguments: warmupSteps must be a non-negative integer, or a fraction in (0, 1) of the steps, got 2.5',
  );
});

test("'constant' ignores warmup and 'constant_with_warmup' uses it, as transformers' get_scheduler", async () => {
  const data = randomExamples(8, 8);
  const lr = 0.01;
  const rates: Record<string, number[]> = {};
  for (const type of ['constant', 'constant_with_warmup'] as const) {
    const model = await tinyLoraModel(0);
    const trainer = new Trainer({
      model,
      trainDataset: data,
      args: { outputDir: tmpDir('constant'), maxSteps: 4, perDeviceTrainBatchSize: 2, learningRate: lr, lrSchedulerType: type, warmupSteps: 2, loggingSteps: 1, report: 'none' },
    });
    const r = await trainer.train();
    rates[type] = r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.learning_rate!);
    model.dispose();
  }
  expect(rates.constant).toEqual([lr, lr, lr, lr]);
  expect(rates.constant_with_warmup).toEqual([0, lr / 2, lr, lr]);
});
