// LoRA and DoRA on a 4-bit base (PEFT's lora/bnb.py Linear4bit): adapters made by real PEFT
// (test/fixtures/llama-qv, llama-dora) on our nf4 + double-quant tiny Llama give the logits PEFT gives on
// the same model's dequantized weights (test/fixtures/quant/make_bnb_llama.py), unmerged and after
// mergeAndUnload (into a float model, with PEFT's rounding warning); training reaches the adapters and
// never the 4-bit weights; prepareModelForKbitTraining freezes and casts as PEFT's.
import * as path from 'path';
import { AdamW, BitsAndBytesConfig, Linear4bit, loadSafetensorsSync, memory, noGrad, PeftModel, scope, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM } from '../lib/models';
import { Linear } from '../lib/nn';
import { getPeftModel, LoraConfig, prepareModelForKbitTraining } from '../lib/peft';
import * as warn from '../lib/peft/warn';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

const EXPECT = loadSafetensorsSync(path.join(FIXTURES, 'quant', 'expect-4bit.safetensors'));
afterAll(() => Object.values(EXPECT).forEach((t) => t.dispose()));
const NF4_DQ = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
const base4bit = () => AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ });
const logitsOf = (m: { forward(i: { inputIds: Tensor }): { logits: Tensor } }) => noGrad(() => m.forward({ inputIds: EXPECT.input_ids }).logits);

// Bit-identical weights, float32 throughout, different kernels (fused vs PEFT's separate products): 1e-4.
const TOL = 1e-4;

test.each([
  ['LoRA', 'llama-qv', 'lora_qv'],
  ['DoRA', 'llama-dora', 'dora'],
])('%s adapter from PEFT on the 4-bit base: logits as PEFT on the dequantized base, merged into a float model too', async (_n, adapter, key) => {
  const peft = await PeftModel.fromPretrained(await base4bit(), path.join(FIXTURES, adapter));
  expect(peft.toString()).toContain('lora.Linear4bit(');
  expect(peft.toString()).toContain('(base_layer): Linear4bit(in_features=48, out_features=48, bias=False)');
  scope(() => expect(maxAbsDiff(logitsOf(peft as never), EXPECT[`${key}_logits`])).toBeLessThan(TOL));
  const warned: string[] = [];
  const spy = jest.spyOn(warn, 'peftWarn').mockImplementation((m: string) => void warned.push(m));
  const merged = peft.mergeAndUnload() as CausalLM;
  spy.mockRestore();
  try {
    expect(warned).toContain('Merge lora module to 4-bit linear may get different generations due to rounding errors.');
    expect(merged.getSubmodule('model.layers.0.self_attn.q_proj')).toBeInstanceOf(Linear);
    expect(merged.getSubmodule('model.layers.0.self_attn.k_proj')).toBeInstanceOf(Linear4bit);
    scope(() => expect(maxAbsDiff(logitsOf(merged), EXPECT[`${key}_merged_logits`])).toBeLessThan(TOL));
  } finally {
    merged.dispose();
  }
});

test('QLoRA training: gradients reach the adapters only, the loss falls, the 4-bit weights are untouched, nothing leaks', async () => {
  const model = prepareModelForKbitTraining(await base4bit());
  const peft = getPeftModel(model, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', loraDropout: 0 }));
  const q = peft.getSubmodule('base_model.model.model.layers.0.self_attn.q_proj.base_layer') as Linear4bit;
  const packedBefore = Buffer.from(q.weight.data() as Uint8Array);
  expect([...peft.namedParameters()].filter(([, p]) => p.requiresGrad).every(([n]) => /lora_[AB]/.test(n))).toBe(true);
  const trainable = [...peft.parameters()].filter((p) => p.requiresGrad);
  expect(trainable.length).toBe(3 * 7 * 2);
  const opt = new AdamW(trainable, { lr: 1e-2 });
  peft.train();
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
  step(); // the optimizer's state is made here
  const before = memory();
  for (let i = 1; i < 8; i++) step();
  expect(memory()).toEqual(before);
  expect(losses[7]).toBeLessThan(losses[0] - 0.05);
  expect(q.weight.grad).toBeUndefined();
  expect(Buffer.from(q.weight.data() as Uint8Array).equals(packedBefore)).toBe(true);
  opt.dispose?.();
  peft.dispose();
});

test('prepareModelForKbitTraining: every parameter frozen, half-precision ones in float32, 4-bit weights as they were', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ, dtype: 'bfloat16' });
  try {
    expect((model.getSubmodule('model.norm') as unknown as { weight: Tensor }).weight.dtype).toBe('bfloat16');
    prepareModelForKbitTraining(model);
    for (const [name, p] of model.namedParameters()) {
      expect([name, p.requiresGrad]).toEqual([name, false]);
      expect([name, p.dtype]).toEqual([name, name.includes('_proj.weight') ? 'uint8' : 'float32']);
    }
  } finally {
    model.dispose();
  }
});
