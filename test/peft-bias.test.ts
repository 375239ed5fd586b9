// Adapters that train biases, against real PEFT (test/fixtures/gpt2-bias, written by
// test/fixtures/make_peft_bias_reference.py over tiny-gpt2): lora_bias (a bias on lora_B), bias "all"
// and bias "lora_only". Loading gives PEFT's logits (so the saved biases are restored: they were
// perturbed before PEFT saved them), saving writes PEFT's keys and bytes, and merging a lora_bias
// adapter folds s·lora_B.bias into the base bias as PEFT's merge_and_unload does.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, LoraConfig, loadSafetensorsSync, noGrad, PeftModel, peft as P, readSafetensorsHeader, Tensor } from '../lib';
import type { CausalLM } from '../lib';
import { tmpDir } from './helpers/tmp-dir';
import { maxAbsDiff } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');
const CASES = ['lora-bias', 'bias-all', 'bias-lora-only'] as const;
const dirOf = (c: string) => path.join(FIX, 'gpt2-bias', c);

async function gpt2(): Promise<CausalLM> {
  const m = await AutoModelForCausalLM.fromPretrained(path.join(FIX, 'tiny-gpt2'));
  m.nameOrPath = undefined; // PEFT's files say base_model_name_or_path null
  return m;
}
const logitsOf = (m: { forward(i: { inputIds: Tensor }): unknown }, ids: Tensor) => noGrad(() => (m.forward({ inputIds: ids }) as { logits: Tensor }).logits);
const fileKeys = (file: string) => [...readSafetensorsHeader(file).tensors.keys()].sort();

const figures: Record<string, number> = {};
afterAll(() => console.log(`bias adapters vs PEFT, max abs logit differences: ${JSON.stringify(figures)}`));

describe.each(CASES)('%s', (c) => {
  test("loading gives PEFT's logits (1e-5); saving writes PEFT's config text and adapter bytes", async () => {
    const exp = loadSafetensorsSync(path.join(dirOf(c), 'expect.safetensors'));
    const peft = await PeftModel.fromPretrained(await gpt2(), dirOf(c));
    const logits = logitsOf(peft, exp.input_ids);
    figures[c] = maxAbsDiff(logits, exp.logits);
    expect(figures[c]).toBeLessThan(1e-5);
    // The base alone differs clearly: the adapter (and, for the bias modes, the restored biases) matter.
    const bare = await gpt2();
    const baseLogits = logitsOf(bare, exp.input_ids);
    expect(maxAbsDiff(baseLogits, exp.logits)).toBeGreaterThan(1e-2);
    // Every saved bias is back in the model, exactly, and differs from the base's own.
    const saved = loadSafetensorsSync(path.join(dirOf(c), 'adapter_model.safetensors'));
    const mine = peft.stateDict();
    const own = bare.stateDict();
    const biases = Object.keys(saved).filter((k) => k.endsWith('.bias'));
    expect(biases.length).toBeGreaterThan(0);
    for (const k of biases) {
      const modelKey = k.replace('.lora_B.bias', '.lora_B.default.bias');
      expect(mine[modelKey].equal(saved[k])).toBe(true);
      const baseKey = k.replace(/^base_model\.model\./, '').replace('.base_layer.', '.');
      if (own[baseKey] !== undefined) expect(maxAbsDiff(own[baseKey], saved[k])).toBeGreaterThan(1e-3);
      else expect(k).toContain('lora_B.bias');
    }
    Object.values(saved).forEach((t) => t.dispose());
    bare.dispose();

    const dir = tmpDir('peft-bias');
    await peft.savePretrained(dir);
    const theirs = path.join(dirOf(c), 'adapter_model.safetensors');
    const ours = path.join(dir, 'adapter_model.safetensors');
    expect(fileKeys(ours)).toEqual(fileKeys(theirs));
    expect(fs.readFileSync(ours).equals(fs.readFileSync(theirs))).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).toBe(fs.readFileSync(path.join(dirOf(c), 'adapter_config.json'), 'utf8'));

    if (c === 'lora-bias') {
      // merge_and_unload adds s·lora_B.bias to the base bias: PEFT's merged logits.
      const merged = peft.mergeAndUnload() as CausalLM;
      expect(merged.toString()).not.toContain('lora');
      const ml = logitsOf(merged, exp.input_ids);
      figures[`${c} merged`] = maxAbsDiff(ml, exp.merged_logits);
      expect(figures[`${c} merged`]).toBeLessThan(1e-5);
      merged.dispose();
    } else peft.dispose();
    Object.values(exp).forEach((t) => t.dispose());
  });

  test("a fresh model with the same config selects the keys PEFT saved (per bias mode)", async () => {
    const cfg = LoraConfig.fromPretrained(dirOf(c));
    cfg.inferenceMode = false;
    const peft = getPeftModel(await gpt2(), cfg);
    const keys = [...P.getPeftModelStateDict(peft).keys()].sort();
    expect(keys).toEqual(fileKeys(path.join(dirOf(c), 'adapter_model.safetensors')));
    // What is saved is what trains (PEFT's bias modes thaw exactly the biases they save).
    const trainable = [...peft.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n.replace('.default', '')).sort();
    expect(trainable).toEqual(keys);
    peft.dispose();
  });
});
