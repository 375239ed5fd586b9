// Training parity with peft for the families built on Llama (fixtures <family>-train, made by their
// make_fixture.py as llama-train): the adapter init/ (r=8 on all seven projections) trained 5 steps with
// AdamW(lr 1e-3, wd 0.01) on one batch gives peft's five losses and peft's final adapter.
import * as fs from 'fs';
import * as path from 'path';
import { AdamW, AutoModelForCausalLM, loadSafetensorsSync, PeftModel, scope, Tensor } from '../lib';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures');

/** [fixture, base model folder] */
const CASES: [string, string][] = [['qwen2-train', 'qwen2/model']];

test.each(CASES)("%s: 5 AdamW steps reproduce peft's losses and final adapter", async (name, base) => {
  const dir = path.join(FIX, name);
  const want = JSON.parse(fs.readFileSync(path.join(dir, 'losses.json'), 'utf8')) as { losses: number[]; trainable: [number, number] };
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(path.join(FIX, base)), path.join(dir, 'init'), { isTrainable: true });
  expect(peft.getNbTrainableParameters()).toEqual(want.trainable);
  peft.train();
  const params = [...peft.parameters()].filter((p) => p.requiresGrad);
  const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
  const batch = loadSafetensorsSync(path.join(dir, 'batch.safetensors'));
  const losses: number[] = [];
  for (let step = 0; step < 5; step++) {
    scope(() => {
      const out = peft.forward({ inputIds: batch.input_ids, labels: batch.input_ids }) as { loss: Tensor };
      losses.push(out.loss.item() as number);
      out.loss.backward();
    });
    opt.step();
    opt.zeroGrad();
  }
  // float32 forward and backward in a different summation order than PyTorch's: 2e-5 on a loss of ~5
  want.losses.forEach((w, i) => expect(Math.abs(losses[i] - w)).toBeLessThan(2e-5));

  const out = tmpDir(`peft-train-${name}`);
  await peft.savePretrained(out);
  const ours = loadSafetensorsSync(path.join(out, 'adapter_model.safetensors'));
  const theirs = loadSafetensorsSync(path.join(dir, 'final', 'adapter_model.safetensors'));
  expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
  let worst = 0;
  for (const k of Object.keys(theirs)) worst = Math.max(worst, scope(() => ours[k].sub(theirs[k]).abs().max().item() as number));
  expect(worst).toBeLessThan(5e-5); // as llama-train: five 1e-3 AdamW steps in float32
  [...Object.values(ours), ...Object.values(theirs), ...Object.values(batch)].forEach((t) => t.dispose());
  peft.dispose();
});
