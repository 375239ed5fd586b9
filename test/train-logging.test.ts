// What a run leaves behind and prints: plain log lines off a terminal, a redrawn bar on one, the JSONL
// log, trainer_state.json, the SVG loss curve, checkpoint rotation, no half-written checkpoint folders,
// and clear errors for bad settings.
import * as fs from 'fs';
import * as path from 'path';
import { memory, Trainer } from '../lib';
import { JsonlLog, lossCurveSvg, niceTicks, resolveTrainingArguments } from '../lib/train';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

function collector(isTTY: boolean) {
  const chunks: string[] = [];
  return { stream: { isTTY, columns: 120, write: (s: string) => chunks.push(s) }, text: () => chunks.join('') };
}

async function run(isTTY: boolean, extra: Record<string, unknown> = {}) {
  const out = tmpDir('log');
  const model = await tinyLoraModel(0);
  const c = collector(isTTY);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(16, 4),
    evalDataset: randomExamples(4, 9),
    args: { outputDir: out, maxSteps: 4, perDeviceTrainBatchSize: 4, loggingSteps: 2, evalSteps: 2, learningRate: 1e-2, ...extra },
    stream: c.stream,
  });
  const result = await trainer.train();
  model.dispose();
  return { out, result, text: c.text() };
}

test('off a terminal: one plain line per log entry; the JSONL log, the state and the SVG', async () => {
  const { out, result, text } = await run(false);
  const lines = text.trim().split('\n');
  expect(text).not.toContain('\r');
  expect(lines[0]).toMatch(/^step 2\/4 \| epoch 0\.50 \| loss \d+\.\d{4} \| lr \d\.\d\de-\d+ \| grad_norm \d+\.\d+ \| \d+ tok\/s$/);
  expect(lines[1]).toMatch(/^step 2\/4 \| epoch 0\.50 \| eval_loss \d+\.\d{4} \| perplexity \d+\.\d{2}$/);
  expect(lines[lines.length - 1]).toMatch(/^step 4\/4 \| epoch 1\.00 \| train_loss \d+\.\d{4} \| \d\d:\d\d in all$/);

  const log = JsonlLog.read(path.join(out, 'trainer_log.jsonl'));
  expect(log).toEqual(result.logHistory);
  const train = log.filter((e) => e.loss !== undefined);
  expect(train.map((e) => e.step)).toEqual([2, 4]);
  for (const e of train) {
    expect(e.learning_rate).toBeGreaterThan(0);
    expect(e.grad_norm).toBeGreaterThan(0);
    expect(e.tokens_per_second).toBeGreaterThan(0);
  }
  expect(log.filter((e) => e.eval_loss !== undefined).map((e) => e.step)).toEqual([2, 4]);
  expect(result.evalLoss).toBe(log.filter((e) => e.eval_loss !== undefined).pop()!.eval_loss);
  expect(result.trainingLoss).toBeCloseTo((train[0].loss! + train[1].loss!) / 2, 12);

  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  expect(state.global_step).toBe(4);
  expect(state.log_history).toEqual(JSON.parse(JSON.stringify(result.logHistory)));
  expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
  expect(fs.existsSync(path.join(out, 'adapter_config.json'))).toBe(true);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'training_args.json'), 'utf8')).per_device_train_batch_size).toBe(4);

  const svg = fs.readFileSync(path.join(out, 'training_loss.svg'), 'utf8');
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg.trim().endsWith('</svg>')).toBe(true);
  const points = /<polyline points="([^"]+)"/.exec(svg)![1].trim().split(' ');
  expect(points).toHaveLength(2);
  expect((svg.match(/<circle [^>]*fill="#ff7f0e"/g) ?? []).length).toBe(2 + 1); // two eval points and the legend's
});

test('on a terminal: a progress bar redrawn in place, log lines above it', async () => {
  const { text } = await run(true);
  expect(text).toContain('\r\x1b[2K');
  expect(text).toMatch(/100%\|█+\| 4\/4 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ it\/s, loss \d+\.\d{4}, lr [\d.e-]+\]/);
  expect(text).toMatch(/\x1b\[2Kstep 2\/4 \| epoch 0\.50 \| loss [^\r]*\n/);
  expect(text.endsWith('\n')).toBe(true);
});

test("report 'none' prints nothing; saveTotalLimit keeps the newest checkpoints; no temporary folders stay", async () => {
  const { out, text } = await run(true, { report: 'none', saveSteps: 1, saveTotalLimit: 2 });
  expect(text).toBe('');
  const names = fs.readdirSync(out).sort();
  expect(names.filter((n) => n.startsWith('checkpoint-'))).toEqual(['checkpoint-3', 'checkpoint-4']);
  expect(names.filter((n) => n.startsWith('.tmp'))).toEqual([]);
  expect(fs.readdirSync(path.join(out, 'checkpoint-4')).sort()).toEqual(
    ['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'optimizer.json', 'optimizer.safetensors', 'rng_state.safetensors', 'scheduler.json', 'trainer_state.json'].sort(),
  );
});

test('settings are checked, naming the bad one', () => {
  expect(() => resolveTrainingArguments({ outputDir: 'x', learningRate: -1 })).toThrow(/learningRate must be a non-negative number, got -1/);
  expect(() => resolveTrainingArguments({ outputDir: 'x', lrSchedulerType: 'step' as never })).toThrow(/lrSchedulerType must be one of constant, constant_with_warmup, linear, cosine/);
  expect(() => resolveTrainingArguments({ outputDir: 'x', lr: 1 } as never)).toThrow(/unknown setting 'lr'/);
  expect(() => resolveTrainingArguments({ outputDir: '' })).toThrow(/outputDir must be a folder path/);
  expect(() => resolveTrainingArguments({ outputDir: 'x', device: 'gpu' })).toThrow(/device must be 'cpu', 'cuda' or 'cuda:N'/);
  const a = resolveTrainingArguments({ outputDir: 'x' });
  expect([a.numTrainEpochs, a.maxSteps, a.perDeviceTrainBatchSize, a.gradientAccumulationSteps, a.lrSchedulerType, a.maxGradNorm, a.seed]).toEqual([3, -1, 8, 1, 'linear', 1, 42]);
});

test('niceTicks and an empty plot', () => {
  expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
  expect(niceTicks(1.23, 4.56)).toEqual([1, 2, 3, 4, 5]);
  expect(niceTicks(4.1, 4.9)).toEqual([4, 4.2, 4.4, 4.6, 4.8, 5]);
  expect(lossCurveSvg([])).toContain('no loss logged yet');
});

test('a run leaves no tensors behind but the optimizer state (with gradient checkpointing and evaluation too)', async () => {
  const out = tmpDir('mem');
  const model = await tinyLoraModel(0, { loraDropout: 0.1 });
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(8, 4),
    evalDataset: randomExamples(4, 9),
    args: { outputDir: out, maxSteps: 3, perDeviceTrainBatchSize: 4, evalSteps: 2, saveSteps: 2, gradientCheckpointing: true, report: 'none' },
  });
  const before = memory().tensors;
  await trainer.train();
  const trainable = [...model.parameters()].filter((p) => p.requiresGrad).length;
  expect(memory().tensors - before).toBe(2 * trainable); // exp_avg and exp_avg_sq of each
  trainer.optimizer.dispose();
  expect(memory().tensors).toBe(before);
  model.dispose();
});

test('a checkpoint a killed rotation was deleting is not a checkpoint and goes at the next rotation', async () => {
  const { listCheckpoints, rotateCheckpoints } = await import('../lib/train/checkpoint');
  const out = tmpDir('rotation');
  const make = (name: string, files: string[]) => {
    fs.mkdirSync(path.join(out, name));
    for (const f of files) fs.writeFileSync(path.join(out, name, f), '{}');
  };
  for (const step of [1, 2, 3]) make(`checkpoint-${step}`, ['trainer_state.json', 'adapter_model.safetensors']);
  // What a rotation killed mid-delete leaves: renamed aside, partly emptied (its trainer_state.json gone).
  make('checkpoint-0.deleting', ['adapter_model.safetensors']);
  expect(listCheckpoints(out).map((c) => path.basename(c.dir))).toEqual(['checkpoint-1', 'checkpoint-2', 'checkpoint-3']);
  await rotateCheckpoints(out, 2);
  expect(fs.readdirSync(out).sort()).toEqual(['checkpoint-2', 'checkpoint-3']);
});
