// The seed article's numbers: LoRA on all seven projections of Llama-2-7B (built on 'meta', no memory)
// trains 39,976,960 parameters at r=16 (0.59%) and 9,994,240 at r=4 (0.15%); lit-llama's fused qkv
// MergedLinear with enable_lora [q, k, v] = [true, false, true] and r=8 has lora_A 16×4096, lora_B 8192×8.
import { AutoModelForCausalLM, LoraConfig, getPeftModel, nn, peft as P } from '../lib';
import { LLAMA2_7B_CONFIG } from './helpers/llama2-7b';

const SEVEN = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

for (const [r, trainable, line] of [
  [16, 39_976_960, 'trainable params: 39,976,960 || all params: 6,778,392,576 || trainable%: 0.5898'],
  [4, 9_994_240, 'trainable params: 9,994,240 || all params: 6,748,409,856 || trainable%: 0.1481'],
] as const) {
  test(`Llama-2-7B, r=${r} on the 7 projections: ${trainable.toLocaleString('en-US')} trainable`, () => {
    const model = AutoModelForCausalLM.fromConfig(LLAMA2_7B_CONFIG, { device: 'meta' });
    const peft = getPeftModel(model, new LoraConfig({ r, loraAlpha: 2 * r, targetModules: [...SEVEN], taskType: 'CAUSAL_LM' }));
    const [t, all] = peft.getNbTrainableParameters();
    expect(t).toBe(trainable);
    expect(all).toBe(6_738_415_616 + trainable);
    expect(P.formatTrainableParameters(t, all)).toBe(line);
    const q = peft.getBaseModel().getSubmodule('model.layers.31.self_attn.q_proj') as P.LoraLinear;
    expect(q.loraAWeight('default').device).toBe('meta');
    expect(q.loraAWeight('default').shape).toEqual([r, 4096]);
    expect(q.loraBWeight('default').shape).toEqual([4096, r]);
    expect(peft.reprName()).toBe('PeftModelForCausalLM');
    peft.dispose();
  });
}

test("LLaMA's default targets are q_proj and v_proj (PEFT's per-model-type default)", () => {
  const model = AutoModelForCausalLM.fromConfig(LLAMA2_7B_CONFIG, { device: 'meta' });
  const cfg = new LoraConfig({ r: 8 });
  const peft = getPeftModel(model, cfg);
  expect(cfg.targetModules).toEqual(['q_proj', 'v_proj']);
  expect(peft.getNbTrainableParameters()[0]).toBe(32 * 2 * (8 * 4096 + 4096 * 8));
  peft.dispose();
});

test('MergedLinear over a fused qkv with enableLora [true, false, true], r=8: lora_A 16×4096, lora_B 8192×8', () => {
  const qkv = new nn.Linear(4096, 3 * 4096, { bias: false, device: 'meta' });
  const layer = new P.LoraMergedLinear(qkv, 'default', { r: 8, loraAlpha: 16, config: new LoraConfig({ r: 8, loraAlpha: 16 }), enableLora: [true, false, true] });
  const names = [...layer.namedParameters()].map(([n, p]) => `${n} ${p.shape.join('x')}`);
  expect(names).toEqual(['base_layer.weight 12288x4096', 'lora_A.default.weight 16x4096', 'lora_B.default.weight 8192x8']);
  layer.dispose();
});
