// The Trainer against a PEFT training run saved as a fixture (<fixture>/init, batch.safetensors, final/):
// 5 steps of AdamW (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, constant lr, no clipping)
// on the one batch with labels = input_ids, the whole batch each step. Used by the llama-train and the
// Gemma 2 parity tests.
import * as path from 'path';
import type { TrainingArgumentsOptions } from '../../lib/train';
import { AutoModelForCausalLM, Dataset, loadSafetensorsSync, PeftModel, Trainer } from '../../lib';
import { Example } from '../../lib/data';
import { maxFileDiff, tmpDir } from './train';

export function fixtureExamples(fixture: string): Dataset<Example> {
  const batch = loadSafetensorsSync(path.join(fixture, 'batch.safetensors'));
  const ids = batch.input_ids;
  const [rows, len] = ids.shape;
  const flat = ids.data() as BigInt64Array;
  ids.dispose();
  const examples: Example[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Int32Array.from(flat.subarray(r * len, (r + 1) * len), Number);
    examples.push({ inputIds: row, labels: Int32Array.from(row) });
  }
  return new Dataset(examples);
}

/** Trains init/ on `base` as the fixture's loop did; returns the logged losses and the adapter's largest difference from final/. */
/**
 * The training loop of the PEFT fixture generators (make_fixture.py of llama-train, qwen2-train,
 * llama-loraplus ...) as Trainer settings: 5 steps over the whole batch (`batchSize` examples), AdamW
 * (lr 1e-3, weight decay 0.01) at a constant rate, no clipping, a log every step.
 */
export function fixtureLoopArgs(outputDir: string, batchSize: number, extra: Partial<TrainingArgumentsOptions> = {}): TrainingArgumentsOptions {
  return {
    outputDir,
    maxSteps: 5,
    perDeviceTrainBatchSize: batchSize,
    shuffle: false,
    learningRate: 1e-3,
    lrSchedulerType: 'constant',
    weightDecay: 0.01,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    maxGradNorm: 0,
    loggingSteps: 1,
    report: 'none',
    ...extra,
  };
}

export async function trainFixture(
  base: string,
  fixture: string,
  opts: { chunkedLoss: boolean; gradientCheckpointing?: boolean },
): Promise<{ losses: number[]; adapterDiff: number; out: string }> {
  const model = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fixture, 'init'), { isTrainable: true });
  const data = fixtureExamples(fixture);
  const out = tmpDir('parity');
  const trainer = new Trainer({
    model,
    trainDataset: data,
    args: fixtureLoopArgs(out, data.length, { chunkedLoss: opts.chunkedLoss, gradientCheckpointing: opts.gradientCheckpointing ?? false }),
  });
  const result = await trainer.train();
  model.dispose();
  const losses = result.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!);
  const adapterDiff = maxFileDiff(path.join(out, 'adapter_model.safetensors'), path.join(fixture, 'final', 'adapter_model.safetensors'));
  return { losses, adapterDiff, out };
}
