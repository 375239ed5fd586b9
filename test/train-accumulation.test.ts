// Gradient accumulation: k micro-batches of b examples make the same optimizer step as one batch of
// k·b. The examples differ in length (so the micro-batches are padded differently) and in how many
// label tokens they carry, so this holds only because each micro-batch's mean loss is weighted by its
// share of the step's label tokens (transformers' num_items_in_batch), not averaged as equals.
import * as path from 'path';
import { PeftModel, Trainer } from '../lib';
import { gradients, maxFileDiff, randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

test('3 micro-batches of 2 == 1 batch of 6: the same gradients, losses and adapter', async () => {
  const data = randomExamples(24, 5, 4, 16);
  const outs = [tmpDir('acc-3x2'), tmpDir('acc-1x6')];
  const losses: number[][] = [];
  const grads: Map<string, Float32Array>[][] = [];
  for (const [i, [b, k]] of [[2, 3], [6, 1]].entries()) {
    const model = await tinyLoraModel(0);
    const seen: Map<string, Float32Array>[] = [];
    const trainer = new Trainer({
      model,
      trainDataset: data,
      args: {
        outputDir: outs[i],
        maxSteps: 4, // one epoch, shuffled: both runs see the same examples in each step
        perDeviceTrainBatchSize: b,
        gradientAccumulationSteps: k,
        learningRate: 1e-3,
        weightDecay: 0.01,
        maxGradNorm: 1,
        loggingSteps: 1,
        report: 'none',
      },
      callbacks: { onPreOptimizerStep: ({ model: m }) => seen.push(gradients(m as PeftModel)) },
    });
    const r = await trainer.train();
    losses.push(r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!));
    grads.push(seen);
    model.dispose();
  }
  expect(losses[0]).toHaveLength(4);
  losses[0].forEach((l, i) => expect(Math.abs(l - losses[1][i])).toBeLessThan(1e-6));
  expect(grads[0]).toHaveLength(4);
  let worst = 0;
  grads[0].forEach((g, step) => {
    for (const [name, x] of g) {
      const y = grads[1][step].get(name)!;
      for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - y[j]));
    }
  });
  expect(worst).toBeLessThan(1e-6);
  // After 4 AdamW steps (lr 1e-3): Adam divides by the root of the squared gradients, which magnifies
  // rounding differences in near-zero gradient entries; still far below the size of one update (1e-3).
  expect(maxFileDiff(path.join(outs[0], 'adapter_model.safetensors'), path.join(outs[1], 'adapter_model.safetensors'))).toBeLessThan(1e-5);
});
