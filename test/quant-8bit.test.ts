// 8-bit bases (LLM.int8's row-wise absmax int8, bitsandbytes' Linear8bitLt state dict): quantized on load,
// codes and SCB byte-identical to bitsandbytes' definitions (test/fixtures/quant/make_bnb_llama.py), logits
// as transformers' on the dequantized weights, LoRA trains on top, merging dequantizes.
import * as fs from 'fs';
import * as path from 'path';
import { AdamW, BitsAndBytesConfig, loadSafetensorsSync, memory, noGrad, scope, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM } from '../lib/models';
import { Linear } from '../lib/nn';
import { getPeftModel, LoraConfig } from '../lib/peft';
import { Linear8bit } from '../lib/quant';
import * as warn from '../lib/peft/warn';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { bytesOf, maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const EXPECT = loadSafetensorsSync(path.join(FIXTURES, 'quant', 'expect-4bit.safetensors'));
afterAll(() => Object.values(EXPECT).forEach((t) => t.dispose()));
const INT8 = new BitsAndBytesConfig({ loadIn8bit: true });
const logitsOf = (m: { forward(i: { inputIds: Tensor }): { logits: Tensor } }) => noGrad(() => m.forward({ inputIds: EXPECT.input_ids }).logits);

test('loadIn8bit: Linear8bitLt layers with bitsandbytes\' codes and SCB, logits as transformers\' on the dequantized weights (1e-4)', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: INT8 });
  try {
    expect(model.getSubmodule('model.layers.0.mlp.up_proj')).toBeInstanceOf(Linear8bit);
    expect(model.getSubmodule('lm_head')).toBeInstanceOf(Linear);
    const saved = loadSafetensorsSync(path.join(FIXTURES, 'quant', 'int8-state.safetensors'));
    const mine = model.stateDict();
    expect(Object.keys(mine).sort()).toEqual(Object.keys(saved).sort());
    for (const [name, t] of Object.entries(saved)) {
      expect([name, mine[name].dtype, mine[name].shape]).toEqual([name, t.dtype, t.shape]);
      expect([name, bytesOf(mine[name]).equals(bytesOf(t))]).toEqual([name, true]);
      t.dispose();
    }
    // bit-identical weights, different float32 kernels
    scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT.logits_int8)).toBeLessThan(1e-4));
    expect(() => model.to('float16')).toThrow(/not supported for 8-bit/);
  } finally {
    model.dispose();
  }
});

test('LoRA on an 8-bit base trains the adapters only and leaks nothing; mergeAndUnload gives a float layer computing the same', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: INT8 });
  const peft = getPeftModel(model, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'], initLoraWeights: false }));
  expect(peft.toString()).toContain('lora.Linear8bitLt(');
  const trainable = [...peft.parameters()].filter((p) => p.requiresGrad);
  const opt = new AdamW(trainable, { lr: 1e-2 });
  const ids = EXPECT.input_ids;
  const losses: number[] = [];
  const step = () =>
    scope(() => {
      const out = (peft as unknown as CausalLM).forward({ inputIds: ids, labels: ids });
      out.loss!.backward();
      losses.push(out.loss!.item() as number);
      opt.step();
      opt.zeroGrad();
    });
  peft.train();
  step();
  const before = memory();
  for (let i = 1; i < 6; i++) step();
  expect(memory()).toEqual(before);
  expect(losses[5]).toBeLessThan(losses[0]);
  peft.eval();
  const unmerged = logitsOf(peft as never);
  const spy = jest.spyOn(warn, 'peftWarn').mockImplementation(() => undefined);
  const merged = peft.mergeAndUnload() as CausalLM;
  spy.mockRestore();
  expect(merged.getSubmodule('model.layers.0.self_attn.q_proj')).toBeInstanceOf(Linear);
  scope(() => expect(maxAbsDiff(logitsOf(merged), unmerged)).toBeLessThan(1e-4));
  unmerged.dispose();
  merged.dispose();
});

test('an 8-bit model saved by savePretrained (Linear8bitLt\'s format, quantization_config load_in_8bit) loads as it is, byte-identical on a second save', async () => {
  const tmp = tmpDir('quant-8bit');
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: INT8 });
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  await model.savePretrained(a);
  const want = logitsOf(model);
  model.dispose();
  expect(JSON.parse(fs.readFileSync(path.join(a, 'config.json'), 'utf8')).quantization_config.load_in_8bit).toBe(true);
  const again = await AutoModelForCausalLM.fromPretrained(a);
  try {
    expect(again.getSubmodule('model.layers.1.self_attn.o_proj')).toBeInstanceOf(Linear8bit);
    scope(() => expect(maxAbsDiff(logitsOf(again), want)).toBe(0));
    await again.savePretrained(b);
  } finally {
    again.dispose();
    want.dispose();
  }
  for (const f of ['config.json', 'model.safetensors']) expect([f, fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))]).toEqual([f, true]);
});
