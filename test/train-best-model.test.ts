// Best model, early stopping and computeMetrics against transformers 5.18: for scripted metric values
// (computeMetrics returns them, evaluation after evaluation) the Trainer must stop at the step, keep the
// best_metric / best_global_step / best_model_checkpoint and leave the checkpoint folders that
// transformers' EarlyStoppingCallback, _determine_best_metric, _save_checkpoint and rotate_checkpoints give
// (test/fixtures/early-stopping/make_early_stopping.py ran them). Then real runs: an eval loss that rises
// stops training after `patience` evaluations and loadBestModelAtEnd restores the best checkpoint's adapter
// exactly; a resumed run keeps best_metric and the patience counter; computeMetrics sees the logits and
// labels of the whole evaluation set; wrong settings are refused with messages naming them.
import * as fs from 'fs';
import * as path from 'path';
import { memory, Trainer } from '../lib';
import { Dataset, Example } from '../lib/data';
import { listCheckpoints, readTrainerState, resolveTrainingArguments, TrainingArgumentsOptions } from '../lib/train';
import { FIXTURES, maxFileDiff, randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

interface Case {
  name: string;
  values: number[];
  greater_is_better: boolean;
  patience: number | null;
  threshold: number;
  eval_steps: number;
  save_steps: number;
  save_total_limit: number | null;
  max_steps: number;
  evals: { step: number; counter: number | null; best_metric: number; best_global_step: number | null }[];
  stopped_at: number | null;
  best_metric: number;
  best_global_step: number;
  best_model_checkpoint: string | null;
  checkpoints_before_end: string[];
  checkpoints_after_end: string[];
}
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'early-stopping', 'expected.json'), 'utf8')) as {
  cases: Case[];
  args: { kwargs: Record<string, unknown>; error: string | null }[];
  defaults: Record<string, boolean>;
  default_metric: string;
};

const trainData = randomExamples(4, 1);
const evalData = randomExamples(5, 2, 4, 9);
const names = (dir: string) => listCheckpoints(dir).map((c) => path.basename(c.dir));

describe.each(expected.cases.map((c) => [c.name, c] as const))('as transformers: %s', (_name, c) => {
  test('stop step, best metric and checkpoint, folders left', async () => {
    const out = tmpDir('best');
    const model = await tinyLoraModel(0);
    let evaluation = 0;
    let before: string[] = [];
    const trainer = new Trainer({
      model,
      trainDataset: trainData,
      evalDataset: evalData,
      computeMetrics: () => ({ score: c.values[evaluation++] }),
      callbacks: { onStepEnd: () => void (before = names(out)) },
      args: {
        outputDir: out,
        maxSteps: c.max_steps,
        perDeviceTrainBatchSize: 4,
        learningRate: 1e-3,
        evalSteps: c.eval_steps,
        saveSteps: c.save_steps,
        saveTotalLimit: c.save_total_limit ?? undefined,
        loadBestModelAtEnd: true,
        metricForBestModel: 'score',
        greaterIsBetter: c.greater_is_better,
        earlyStoppingPatience: c.patience ?? undefined,
        earlyStoppingThreshold: c.patience === null ? undefined : c.threshold,
        report: 'none',
      },
    });
    const r = await trainer.train();
    model.dispose();

    expect(r.globalStep).toBe(c.stopped_at ?? c.max_steps);
    expect(r.stoppedEarly).toBe(c.stopped_at !== null && c.stopped_at < c.max_steps);
    expect(evaluation).toBe(c.evals.length);
    expect(r.logHistory.filter((e) => e.eval_score !== undefined).map((e) => [e.step, e.eval_score])).toEqual(
      c.evals.map((e, i) => [e.step, c.values[i]]),
    );
    expect(r.bestMetric).toBe(c.best_metric);
    expect(r.bestModelCheckpoint).toBe(c.best_model_checkpoint === null ? undefined : path.join(out, c.best_model_checkpoint));
    expect(before).toEqual(c.checkpoints_before_end);
    expect(names(out)).toEqual(c.checkpoints_after_end);

    const final = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
    expect([final.best_metric, final.best_global_step, final.best_model_checkpoint]).toEqual([
      c.best_metric,
      c.best_global_step,
      c.best_model_checkpoint === null ? null : path.join(out, c.best_model_checkpoint),
    ]);
    // Each checkpoint left holds the state of its step: the best so far and the patience counter.
    for (const name of names(out)) {
      const s = readTrainerState(path.join(out, name));
      const e = c.evals.find((x) => x.step === s.global_step)!;
      expect([s.best_metric, s.best_global_step]).toEqual([e.best_metric, e.best_global_step]);
      expect(s.stateful_callbacks?.EarlyStoppingCallback?.attributes.early_stopping_patience_counter).toBe(e.counter ?? undefined);
    }
    // loadBestModelAtEnd: the adapter written to the output folder is the best checkpoint's.
    if (c.best_model_checkpoint !== null)
      expect(maxFileDiff(path.join(out, 'adapter_model.safetensors'), path.join(out, c.best_model_checkpoint, 'adapter_model.safetensors'))).toBe(0);
  });
});

test("defaults as transformers': metric 'loss', greaterIsBetter from the name (perplexity lower-is-better here)", () => {
  const base = { outputDir: 'unused', evalSteps: 2, saveSteps: 2 };
  expect(resolveTrainingArguments({ ...base, loadBestModelAtEnd: true }).metricForBestModel).toBe(expected.default_metric);
  expect(resolveTrainingArguments({ ...base, earlyStoppingPatience: 2 }).metricForBestModel).toBe('loss');
  expect(resolveTrainingArguments(base).metricForBestModel).toBeUndefined();
  for (const [metric, greater] of Object.entries(expected.defaults)) {
    // transformers' rule (not ending in 'loss': greater is better) would rank the perplexity backwards.
    const want = metric === 'perplexity' ? false : greater;
    expect([metric, resolveTrainingArguments({ ...base, metricForBestModel: metric }).greaterIsBetter]).toEqual([metric, want]);
  }
  expect(resolveTrainingArguments({ ...base, metricForBestModel: 'eval_perplexity' }).greaterIsBetter).toBe(false);
  expect(resolveTrainingArguments({ ...base, metricForBestModel: 'loss', greaterIsBetter: true }).greaterIsBetter).toBe(true);
});

test("load_best_model_at_end's rules on eval and save steps: refused where transformers refuses", () => {
  const toOurs = (k: Record<string, unknown>): TrainingArgumentsOptions => ({
    outputDir: 'unused',
    loadBestModelAtEnd: true,
    evalSteps: k.eval_strategy === 'steps' ? (k.eval_steps as number) : undefined,
    saveSteps: k.save_strategy === 'steps' ? (k.save_steps as number) : 0,
  });
  for (const { kwargs, error } of expected.args) {
    if (error === null) expect(() => resolveTrainingArguments(toOurs(kwargs))).not.toThrow();
    else expect(() => resolveTrainingArguments(toOurs(kwargs))).toThrow(/loadBestModelAtEnd requires/);
  }
  expect(() => resolveTrainingArguments(toOurs(expected.args[0].kwargs))).toThrow(
    'loadBestModelAtEnd requires saveSteps to be a round multiple of evalSteps, but found saveSteps 3, which is not a round multiple of evalSteps 2',
  );
  expect(() => resolveTrainingArguments({ outputDir: 'x', loadBestModelAtEnd: true, evalSteps: 2 })).toThrow('found evalSteps 2 and saveSteps 0');
  expect(() => resolveTrainingArguments({ outputDir: 'x', loadBestModelAtEnd: true, saveSteps: 2 })).toThrow('found evalSteps unset and saveSteps 2');
});

test('bad early-stopping and best-model settings: errors that name them', async () => {
  const ok = { outputDir: 'x', evalSteps: 1 };
  const bad: [Partial<TrainingArgumentsOptions>, string | RegExp][] = [
    [{ earlyStoppingPatience: 0 }, 'earlyStoppingPatience must be a positive integer'],
    [{ earlyStoppingPatience: 1.5 }, 'earlyStoppingPatience must be a positive integer'],
    [{ earlyStoppingPatience: 2, earlyStoppingThreshold: -0.1 }, 'earlyStoppingThreshold must be a non-negative number'],
    [{ earlyStoppingThreshold: 0.1 }, 'earlyStoppingThreshold needs earlyStoppingPatience'],
    [{ evalSteps: undefined, earlyStoppingPatience: 2 }, 'earlyStoppingPatience counts evaluations, and there are none during training: set evalSteps'],
    [{ metricForBestModel: '' }, 'metricForBestModel must be a metric name'],
    [{ metricForBestModel: 'loss', greaterIsBetter: 'yes' as unknown as boolean }, 'greaterIsBetter must be true or false'],
    [{ loadBestModelAtEnd: 1 as unknown as boolean }, 'loadBestModelAtEnd must be true or false'],
  ];
  for (const [extra, message] of bad) expect(() => resolveTrainingArguments({ ...ok, ...extra })).toThrow(message);

  const model = await tinyLoraModel(0);
  const make = (extra: Partial<TrainingArgumentsOptions>, more: object = {}) =>
    new Trainer({ model, trainDataset: trainData, evalDataset: evalData, args: { outputDir: tmpDir('bad'), evalSteps: 1, report: 'none', ...extra }, ...more });
  // A metric the evaluation does not give: refused before training.
  expect(() => make({ metricForBestModel: 'accuracy', loadBestModelAtEnd: true, saveSteps: 1 })).toThrow(
    "metricForBestModel 'accuracy' is not a metric of the evaluation (eval_loss, eval_perplexity, eval_runtime, eval_tokens); choose one of those, or give the Trainer a computeMetrics",
  );
  expect(() => new Trainer({ model, trainDataset: trainData, args: { outputDir: tmpDir('bad'), evalSteps: 1, earlyStoppingPatience: 1 } })).toThrow(
    'earlyStoppingPatience ranks evaluations, and there is no evalDataset',
  );
  expect(() => make({}, { preprocessLogitsForMetrics: (l: unknown) => l })).toThrow('give computeMetrics too');
  // computeMetrics that does not return the metric, or returns something else than numbers: at the first evaluation.
  await expect(make({ metricForBestModel: 'accuracy', maxSteps: 2 }, { computeMetrics: () => ({ f1: 0.5 }) }).train()).rejects.toThrow(
    "metricForBestModel is 'accuracy', but the evaluation has no 'eval_accuracy'; it has eval_loss, eval_perplexity, eval_runtime, eval_tokens, eval_f1",
  );
  await expect(make({ maxSteps: 1 }, { computeMetrics: () => ({ accuracy: '0.5' }) }).train()).rejects.toThrow(
    `computeMetrics returned 'accuracy': "0.5"; each metric must be a number`,
  );
  await expect(make({ maxSteps: 1 }, { computeMetrics: () => 0.5 }).train()).rejects.toThrow('computeMetrics must return an object of numbers');
  model.dispose();
});

/** Inputs of 5s whose every label is 5: training on it makes the labels 100 of `rising` ever less likely. */
function constant(n: number, label: number): Dataset<Example> {
  return new Dataset(Array.from({ length: n }, () => ({ inputIds: new Int32Array(12).fill(5), labels: new Int32Array(12).fill(label) })));
}

test('an eval loss that rises stops training after `patience` evaluations; the best adapter is loaded and saved', async () => {
  const out = tmpDir('rise');
  const model = await tinyLoraModel(0);
  const patience = 3;
  const trainer = new Trainer({
    model,
    trainDataset: constant(4, 5),
    evalDataset: constant(1, 100),
    args: {
      outputDir: out, maxSteps: 12, perDeviceTrainBatchSize: 4, learningRate: 5e-2, lrSchedulerType: 'constant',
      evalSteps: 1, saveSteps: 1, saveTotalLimit: 1, loadBestModelAtEnd: true, earlyStoppingPatience: patience, report: 'none',
    }, // prettier-ignore
  });
  const r = await trainer.train();
  const evals = r.logHistory.filter((e) => e.eval_loss !== undefined);
  // The first evaluation is the best and each later one is worse: the run stops at the (patience+1)-th.
  expect(evals.map((e) => e.step)).toEqual([1, 2, 3, 4]);
  for (const e of evals.slice(1)) expect(e.eval_loss!).toBeGreaterThan(evals[0].eval_loss!);
  expect(r.globalStep).toBe(patience + 1);
  expect(r.stoppedEarly).toBe(true);
  for (const e of evals) expect(e.eval_perplexity).toBeCloseTo(Math.exp(e.eval_loss!), 10);
  expect(r.bestMetric).toBe(evals[0].eval_loss);
  expect(r.bestModelCheckpoint).toBe(path.join(out, 'checkpoint-1'));
  expect(r.evalLoss).toBe(evals[0].eval_loss);
  // saveTotalLimit 1 kept the best and the newest while training, and only the best at the end.
  expect(names(out)).toEqual(['checkpoint-1']);
  // The model in memory and the adapter in the output folder are the best checkpoint's, not the last step's.
  expect(maxFileDiff(path.join(out, 'adapter_model.safetensors'), path.join(out, 'checkpoint-1', 'adapter_model.safetensors'))).toBe(0);
  expect(Math.abs(trainer.evaluate().eval_loss - evals[0].eval_loss!)).toBeLessThan(1e-6);
  const last = tmpDir('rise-last');
  await model.savePretrained(last);
  expect(maxFileDiff(path.join(last, 'adapter_model.safetensors'), path.join(out, 'checkpoint-1', 'adapter_model.safetensors'))).toBe(0);
  model.dispose();

  // Without loadBestModelAtEnd the last step's adapter stays (and differs): the comparison above can fail.
  const out2 = tmpDir('rise-nobest');
  const model2 = await tinyLoraModel(0);
  const r2 = await new Trainer({
    model: model2,
    trainDataset: constant(4, 5),
    evalDataset: constant(1, 100),
    args: { outputDir: out2, maxSteps: 12, perDeviceTrainBatchSize: 4, learningRate: 5e-2, lrSchedulerType: 'constant', evalSteps: 1, saveSteps: 1, earlyStoppingPatience: patience, loggingSteps: 1, report: 'none' },
  }).train();
  expect(r2.globalStep).toBe(patience + 1);
  // The same steps: train_loss of the first run (no step logged: loggingSteps 10) is the mean of all 4, as transformers'.
  const losses = r2.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!);
  expect(losses.length).toBe(patience + 1);
  expect(Math.abs(r.trainingLoss - losses.reduce((a, b) => a + b, 0) / losses.length)).toBeLessThan(1e-6);
  expect(r2.bestModelCheckpoint).toBe(path.join(out2, 'checkpoint-1'));
  expect(maxFileDiff(path.join(out2, 'adapter_model.safetensors'), path.join(out2, `checkpoint-${patience + 1}`, 'adapter_model.safetensors'))).toBe(0);
  expect(maxFileDiff(path.join(out2, 'adapter_model.safetensors'), path.join(out2, 'checkpoint-1', 'adapter_model.safetensors'))).toBeGreaterThan(1e-4);
  model2.dispose();
});

describe('resume', () => {
  // Evaluation i (from 1) gives values[i - 1]: best 2.0 at step 2, then worse; patience 3 stops at step 5.
  const values = [3, 2, 2.5, 2.6, 2.7, 2.8, 2.9, 3];
  async function run(out: string, opts: { stopAt?: number; resume?: string; deleteBest?: boolean } = {}) {
    const model = await tinyLoraModel(0);
    let evaluation = opts.resume ? readTrainerState(opts.resume).global_step : 0;
    const messages: string[] = [];
    const trainer = new Trainer({
      model,
      trainDataset: trainData,
      evalDataset: evalData,
      computeMetrics: () => ({ score: values[evaluation++] }),
      callbacks: { onStepEnd: ({ globalStep }) => globalStep === opts.stopAt },
      stream: { write: (s: string) => messages.push(s) },
      args: {
        outputDir: out, maxSteps: 8, perDeviceTrainBatchSize: 4, learningRate: 1e-3, evalSteps: 1, saveSteps: 1,
        loadBestModelAtEnd: true, metricForBestModel: 'eval_score', greaterIsBetter: false, earlyStoppingPatience: 3, report: 'plain',
      }, // prettier-ignore
    });
    const r = await trainer.train({ resumeFromCheckpoint: opts.resume });
    model.dispose();
    return { r, messages: messages.join('') };
  }

  test('a resumed run keeps best_metric, best_model_checkpoint and the patience counter', async () => {
    const whole = tmpDir('resume-whole');
    const a = await run(whole);
    expect(a.r.globalStep).toBe(5);
    expect(a.r.bestMetric).toBe(2);

    const broken = tmpDir('resume-broken');
    const b = await run(broken, { stopAt: 3 });
    expect(b.r.globalStep).toBe(3);
    const s = readTrainerState(path.join(broken, 'checkpoint-3'));
    expect([s.best_metric, s.best_global_step, s.best_model_checkpoint]).toEqual([2, 2, path.join(broken, 'checkpoint-2')]);
    expect(s.stateful_callbacks!.EarlyStoppingCallback).toEqual({
      args: { early_stopping_patience: 3, early_stopping_threshold: 0 },
      attributes: { early_stopping_patience_counter: 1 },
    });
    // Resumed from step 3: without the counter it would stop at 6; without the best, step 4 would be "best".
    const c = await run(broken, { resume: path.join(broken, 'checkpoint-3') });
    expect(c.r.globalStep).toBe(5);
    expect(c.r.bestMetric).toBe(2);
    expect(c.r.bestModelCheckpoint).toBe(path.join(broken, 'checkpoint-2'));
    expect(maxFileDiff(path.join(broken, 'adapter_model.safetensors'), path.join(broken, 'checkpoint-2', 'adapter_model.safetensors'))).toBe(0);
    expect(maxFileDiff(path.join(broken, 'adapter_model.safetensors'), path.join(whole, 'adapter_model.safetensors'))).toBe(0);
  });

  test('a best checkpoint deleted since is dropped, as transformers does, with a message', async () => {
    const out = tmpDir('resume-gone');
    await run(out, { stopAt: 3 });
    fs.rmSync(path.join(out, 'checkpoint-2'), { recursive: true });
    const c = await run(out, { resume: path.join(out, 'checkpoint-3') });
    expect(c.messages).toContain(`the best checkpoint ${path.join(out, 'checkpoint-2')} recorded in the resumed state does not exist anymore; ignoring it for this run`);
    expect(c.r.globalStep).toBe(5);
    expect(c.r.bestMetric).toBe(2);
    expect(c.r.bestModelCheckpoint).toBeUndefined(); // best_global_step 2 has no checkpoint any more: nothing to load
    expect(maxFileDiff(path.join(out, 'adapter_model.safetensors'), path.join(out, 'checkpoint-5', 'adapter_model.safetensors'))).toBe(0);
  });
});

test('computeMetrics gets the logits and labels of the whole evaluation set, padded with -100 across batches', async () => {
  const model = await tinyLoraModel(0);
  const data = randomExamples(7, 11, 3, 15);
  let seen: { shape: number[]; labelShape: number[]; labels: number[][] } | undefined;
  let ownLoss = NaN;
  const trainer = new Trainer({
    model,
    trainDataset: trainData,
    evalDataset: data,
    args: { outputDir: tmpDir('cm'), perDeviceEvalBatchSize: 3, report: 'none' },
    computeMetrics: ({ predictions, labelIds }) => {
      const [n, len, vocab] = predictions.shape;
      const logits = predictions.float().data() as Float32Array;
      const labels = Array.from(labelIds.data() as BigInt64Array, Number);
      seen = { shape: predictions.shape, labelShape: labelIds.shape, labels: Array.from({ length: n }, (_, i) => labels.slice(i * len, (i + 1) * len)) };
      // Token-mean cross-entropy from the logits (position j predicts label j + 1).
      let nll = 0;
      let count = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0; j + 1 < len; j++) {
          const target = labels[i * len + j + 1];
          if (target === -100) continue;
          const row = logits.subarray((i * len + j) * vocab, (i * len + j + 1) * vocab);
          const max = Math.max(...row);
          nll += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[target];
          count++;
        }
      ownLoss = nll / count;
      return { token_nll: ownLoss, eval_examples: n };
    },
  });
  const live = memory().tensors;
  const m = trainer.evaluate();
  expect(memory().tensors).toBe(live); // the kept logits and labels are freed
  const longest = Math.max(...[...data].map((e) => e.inputIds.length));
  expect(seen!.shape).toEqual([7, longest, 128]);
  expect(seen!.labelShape).toEqual([7, longest]);
  // Each example's labels, then -100 up to the longest (its batch's padding and the concatenation's).
  [...data].forEach((e, i) => expect(seen!.labels[i]).toEqual([...Array.from(e.labels), ...new Array(longest - e.labels.length).fill(-100)]));
  expect(m.eval_token_nll).toBe(ownLoss);
  expect(m.eval_examples).toBe(7);
  // The token mean from the predictions equals the loss over all label tokens of the examples alone.
  const whole = new Trainer({ model, trainDataset: trainData, evalDataset: data, args: { outputDir: tmpDir('cm1'), perDeviceEvalBatchSize: 8, report: 'none' } });
  expect(Math.abs(ownLoss - whole.evaluate().eval_loss)).toBeLessThan(1e-5);
  expect(m.eval_perplexity).toBe(Math.exp(m.eval_loss));

  // preprocessLogitsForMetrics: what it returns is what computeMetrics gets (here the argmax, [7, longest]).
  let argmaxShape: number[] = [];
  const slim = new Trainer({
    model,
    trainDataset: trainData,
    evalDataset: data,
    args: { outputDir: tmpDir('cm2'), perDeviceEvalBatchSize: 3, report: 'none' },
    preprocessLogitsForMetrics: (logits) => logits.argmax(-1),
    computeMetrics: ({ predictions }) => {
      argmaxShape = predictions.shape;
      return { n: predictions.shape[0] };
    },
  });
  const before = memory().tensors;
  expect(slim.evaluate().eval_n).toBe(7);
  expect(memory().tensors).toBe(before);
  expect(argmaxShape).toEqual([7, longest]);
  model.dispose();
});

test('a run with computeMetrics, early stopping and loadBestModelAtEnd leaves no tensors behind but the optimizer state', async () => {
  const model = await tinyLoraModel(0);
  const scores = [1, 2, 0.5, 0.4, 0.3];
  let i = 0;
  const trainer = new Trainer({
    model,
    trainDataset: trainData,
    evalDataset: evalData,
    preprocessLogitsForMetrics: (logits) => logits.argmax(-1),
    computeMetrics: ({ predictions }) => ({ score: scores[i++] + 0 * predictions.shape[0] }),
    args: {
      outputDir: tmpDir('best-mem'), maxSteps: 5, perDeviceTrainBatchSize: 4, evalSteps: 1, saveSteps: 1, saveTotalLimit: 1,
      loadBestModelAtEnd: true, metricForBestModel: 'score', earlyStoppingPatience: 2, report: 'none',
    }, // prettier-ignore
  });
  const before = memory().tensors;
  const r = await trainer.train();
  expect([r.globalStep, r.bestMetric, path.basename(r.bestModelCheckpoint!)]).toEqual([4, 2, 'checkpoint-2']); // 'score': greater is better
  const trainable = [...model.parameters()].filter((p) => p.requiresGrad).length;
  expect(memory().tensors - before).toBe(2 * trainable); // exp_avg and exp_avg_sq of each
  trainer.optimizer.dispose();
  expect(memory().tensors).toBe(before);
  model.dispose();
});
