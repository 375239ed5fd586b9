// The Trainer's eval_loss against the loss computed by hand, as transformers' evaluate() defines it
// (trainer.py evaluation_loop: each batch's loss is the mean over its label tokens, repeated
// eval_batch_size times, the last batch's copies cut to its size by accelerate's gather_for_metrics, and
// the mean taken): the mean of the batches' token-mean losses weighted by their numbers of examples.
// The reference runs every example alone (no padding) in eval mode and takes the cross-entropy from the
// logits in float64 here, so padding, the attention mask, dropout being off and the weighting are all
// checked. float32 logits: agreement within 1e-5.
import { noGrad, PeftModel, scope, Tensor, tensor, Trainer } from '../lib';
import { Dataset, Example, IGNORE_INDEX } from '../lib/data';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

/** Σ -log p(label) over an example's label tokens (after the causal shift) and their count, from the logits. */
function exampleNll(model: PeftModel, ex: Example): { nll: number; n: number } {
  const logits = scope(() => {
    const ids = tensor([Array.from(ex.inputIds)], { dtype: 'int64' });
    const out = model.forward({ inputIds: ids }) as { logits: Tensor };
    return Float32Array.from(out.logits.float().data() as Float32Array);
  });
  const len = ex.inputIds.length;
  const vocab = logits.length / len;
  let nll = 0;
  let n = 0;
  for (let j = 0; j + 1 < len; j++) {
    const target = ex.labels[j + 1];
    if (target === IGNORE_INDEX) continue;
    const row = logits.subarray(j * vocab, (j + 1) * vocab);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    nll += max + Math.log(sum) - row[target];
    n++;
  }
  return { nll, n };
}

/** transformers' eval_loss for batches of `batchSize` in order, and the plain token mean, by hand. */
function manualEvalLoss(model: PeftModel, data: Dataset<Example>, batchSize: number): { evalLoss: number; tokenMean: number; tokens: number } {
  const wasTraining = model.training;
  model.eval();
  const per = noGrad(() => Array.from({ length: data.length }, (_, i) => exampleNll(model, data.get(i))));
  model.train(wasTraining);
  let weighted = 0;
  for (let s = 0; s < per.length; s += batchSize) {
    const batch = per.slice(s, s + batchSize);
    const nll = batch.reduce((a, e) => a + e.nll, 0);
    const n = batch.reduce((a, e) => a + e.n, 0);
    weighted += batch.length * (nll / n);
  }
  const nll = per.reduce((a, e) => a + e.nll, 0);
  const tokens = per.reduce((a, e) => a + e.n, 0);
  return { evalLoss: weighted / per.length, tokenMean: nll / tokens, tokens };
}

test('eval_loss: batches of 3, 3 and 1 weighted by their examples, padding ignored, dropout off', async () => {
  // Dropout 0.5 on the LoRA input (the adapter starts non-zero): a forward in training mode differs.
  const model = await tinyLoraModel(0, { loraDropout: 0.5 });
  const evalSet = randomExamples(7, 11, 3, 15);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(8, 4),
    evalDataset: evalSet,
    args: { outputDir: tmpDir('eval'), maxSteps: 2, perDeviceTrainBatchSize: 4, perDeviceEvalBatchSize: 3, evalSteps: 2, learningRate: 1e-2, report: 'none' },
  });

  const before = manualEvalLoss(model, evalSet, 3);
  // The data makes the weightings differ, so that the comparison below tells them apart.
  expect(Math.abs(before.evalLoss - before.tokenMean)).toBeGreaterThan(1e-3);
  const m = trainer.evaluate();
  expect(Math.abs(m.eval_loss - before.evalLoss)).toBeLessThan(1e-5);
  expect(m.eval_tokens).toBe(before.tokens);
  expect(model.training).toBe(true); // evaluate() puts the mode back

  // In training mode (dropout on) the same batches give another loss: eval mode matters.
  const trainModeLoss = scope(() => {
    const ex = evalSet.get(1);
    const ids = tensor([Array.from(ex.inputIds)], { dtype: 'int64' });
    const labels = tensor([Array.from(ex.labels)], { dtype: 'int64' });
    return noGrad(() => (model.forward({ inputIds: ids, labels }) as { loss: Tensor }).loss.item() as number);
  });
  model.eval();
  const evalModeLoss = scope(() => {
    const ex = evalSet.get(1);
    const ids = tensor([Array.from(ex.inputIds)], { dtype: 'int64' });
    const labels = tensor([Array.from(ex.labels)], { dtype: 'int64' });
    return noGrad(() => (model.forward({ inputIds: ids, labels }) as { loss: Tensor }).loss.item() as number);
  });
  model.train();
  expect(Math.abs(trainModeLoss - evalModeLoss)).toBeGreaterThan(1e-4);

  // After training, the logged eval_loss (at step 2, the last) is the trained model's, by hand.
  const result = await trainer.train();
  const after = manualEvalLoss(model, evalSet, 3);
  const logged = result.logHistory.filter((e) => e.eval_loss !== undefined);
  expect(logged.map((e) => e.step)).toEqual([2]);
  expect(Math.abs(logged[0].eval_loss! - after.evalLoss)).toBeLessThan(1e-5);
  expect(result.evalLoss).toBe(logged[0].eval_loss);
  expect(Math.abs(after.evalLoss - before.evalLoss)).toBeGreaterThan(1e-3); // training changed it
  model.dispose();
});

test('eval_loss with every example in one batch is the mean over all label tokens', async () => {
  const model = await tinyLoraModel(1);
  const evalSet = randomExamples(7, 11, 3, 15);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(4, 4),
    evalDataset: evalSet,
    args: { outputDir: tmpDir('eval1'), perDeviceEvalBatchSize: 8, report: 'none' },
  });
  const ref = manualEvalLoss(model, evalSet, 8);
  expect(ref.evalLoss).toBeCloseTo(ref.tokenMean, 12);
  expect(Math.abs(trainer.evaluate().eval_loss - ref.tokenMean)).toBeLessThan(1e-5);
  model.dispose();
});
