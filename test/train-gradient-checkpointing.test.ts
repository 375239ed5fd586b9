// Gradient checkpointing recomputes each decoder layer in backward; the gradients must be the ones a
// plain backward gives. Dropout is on (LoRA dropout in Llama; GPT-2's embedding, attention and residual
// dropout), so the recomputation must replay the random numbers of the forward, and the generator must
// end where a plain step leaves it. Also through the Trainer, and with trainable embeddings and a
// trainable (tied) head, whose gradients come from outside the checkpointed layers.
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, getRngState, LoraConfig, manualSeed, memory, PeftModel, scope, tensor, Tensor, Trainer } from '../lib';
import { CausalLM } from '../lib/models';
import { checkpointedForwardBackward, isSegmentable } from '../lib/train';
import { FIXTURES, gradients, maxFileDiff, randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

function batch(): { inputIds: Tensor; attentionMask: Tensor; labels: Tensor } {
  const ids = [
    [5, 9, 33, 2, 17, 64, 101, 7, 8, 12],
    [44, 3, 90, 11, 120, 6, 2, 2, 2, 2],
  ];
  const mask = ids.map((r, i) => r.map((_, j) => (i === 1 && j >= 6 ? 0 : 1)));
  const labels = ids.map((r, i) => r.map((v, j) => (mask[i][j] === 0 || j < 2 ? -100 : v)));
  return {
    inputIds: tensor(ids, { dtype: 'int64' }),
    attentionMask: tensor(mask, { dtype: 'int64' }),
    labels: tensor(labels, { dtype: 'int64' }),
  };
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

const rngBytes = () => scope(() => Buffer.from((getRngState().data() as Uint8Array).buffer.slice(0)));

/** Plain backward and checkpointed backward of the same batch from the same generator state. */
function compare(model: PeftModel): { gradDiff: number; lossDiff: number; sameRng: boolean; nonZero: boolean } {
  model.train();
  const input = batch();
  const scale = 0.7;
  manualSeed(11);
  // The Trainer's plain step: forwardLoss (the same LM head loss the checkpointed path ends with).
  const core = model.getBaseModel() as unknown as { forwardLoss(i: typeof input): Tensor };
  const plain = scope(() => {
    const loss = core.forwardLoss(input);
    loss.mul(scale).backward();
    return loss.item() as number;
  });
  const rngPlain = rngBytes();
  const g1 = gradients(model);
  model.zeroGrad();
  manualSeed(11);
  const base = model.getBaseModel();
  expect(isSegmentable(base)).toBe(true);
  const before = memory().tensors;
  const loss = checkpointedForwardBackward(base as never, input, scale);
  const ckpt = loss.item() as number;
  loss.dispose();
  expect(memory().tensors).toBe(before); // every intermediate freed (gradients live in the parameters)
  const rngCkpt = rngBytes();
  const g2 = gradients(model);
  model.zeroGrad();
  Object.values(input).forEach((t) => t.dispose());
  const nonZero = [...g1.values()].every((g) => g.some((v) => v !== 0));
  return { gradDiff: maxDiff(g1, g2), lossDiff: Math.abs(plain - ckpt), sameRng: rngPlain.equals(rngCkpt), nonZero };
}

test('Llama with LoRA dropout: checkpointed gradients equal plain ones', async () => {
  const model = await tinyLoraModel(0, { loraDropout: 0.2 });
  const r = compare(model);
  expect(r.nonZero).toBe(true);
  expect(r.lossDiff).toBe(0);
  expect(r.gradDiff).toBeLessThan(1e-6);
  expect(r.sameRng).toBe(true);
  model.dispose();
});

test('Llama with LoRA on the embeddings and the LM head: their gradients come through too', async () => {
  const model = await tinyLoraModel(0, { targetModules: ['embed_tokens', 'o_proj', 'lm_head'], loraDropout: 0.1 });
  const r = compare(model);
  expect(r.nonZero).toBe(true);
  expect(r.gradDiff).toBeLessThan(1e-6);
  expect(r.sameRng).toBe(true);
  model.dispose();
});

test('GPT-2 with embedding, attention and residual dropout: gradients equal, generator replayed', async () => {
  const base = (await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, 'tiny-gpt2'))) as CausalLM;
  manualSeed(0);
  const model = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ['c_attn', 'c_proj'], fanInFanOut: true, initLoraWeights: false }));
  const r = compare(model);
  expect(r.nonZero).toBe(true);
  expect(r.gradDiff).toBeLessThan(1e-6);
  expect(r.sameRng).toBe(true);
  model.dispose();
});

test('Trainer with gradientCheckpointing ends with the adapter of a plain run', async () => {
  const outs = [tmpDir('gc-off'), tmpDir('gc-on')];
  for (const [i, gc] of [false, true].entries()) {
    const model = await tinyLoraModel(0, { loraDropout: 0.1 });
    const trainer = new Trainer({
      model,
      trainDataset: randomExamples(12, 3),
      args: { outputDir: outs[i], maxSteps: 4, perDeviceTrainBatchSize: 3, learningRate: 1e-2, gradientCheckpointing: gc, report: 'none', seed: 3 },
    });
    await trainer.train();
    model.dispose();
  }
  expect(maxFileDiff(path.join(outs[0], 'adapter_model.safetensors'), path.join(outs[1], 'adapter_model.safetensors'))).toBeLessThan(1e-6);
});

test('gradientCheckpointing on a model that cannot run in segments is refused', () => {
  const model = new (class extends (require('../lib').nn.Linear as typeof import('../lib').nn.Linear) {})(2, 2);
  expect(() => new Trainer({ model, trainDataset: randomExamples(2, 0), args: { outputDir: 'unused', gradientCheckpointing: true } })).toThrow(
    /gradientCheckpointing needs a model that runs its decoder layers one by one/,
  );
  model.dispose();
});
