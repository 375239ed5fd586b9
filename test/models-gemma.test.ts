// GemmaForCausalLM against transformers 5.18 and peft 0.21 (fixture test/fixtures/gemma, made by its
// make_gemma.py): the shared family checks (test/helpers/family-parity.ts), then what is Gemma's own.
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, noGrad, PeftModel, scope, tensor, Tensor } from '../lib';
import { maxAbsDiff } from './helpers/tensors';
import { GemmaForCausalLM, parseGemmaConfig, readConfig } from '../lib/models';
import { familyFixture, familyParityTests } from './helpers/family-parity';

familyParityTests('gemma', 'GemmaForCausalLM', ['q_proj', 'v_proj']);

const BASE = path.join(familyFixture('gemma').dir, 'base');

test("the embedding scale is sqrt(hidden) rounded to the weights' dtype, as transformers rounds it", async () => {
  const model = (await AutoModelForCausalLM.fromPretrained(BASE, { dtype: 'bfloat16' })) as GemmaForCausalLM;
  scope(() => {
    const ids = tensor([[5, 9]], { dtype: 'int64' });
    const got = noGrad(() => model.model.embed_tokens.forward(ids)).float();
    const raw = noGrad(() => model.model.embed_tokens.weight.index([ids.select(0, 0)])).float();
    // sqrt(32) = 5.656854... is 5.65625 in bfloat16; the product is rounded to bfloat16 again.
    const want = raw.mul(5.65625).to('bfloat16').float();
    expect(got.sub(want).abs().max().item()).toBe(0);
  });
  // The buffer is transformers' non-persistent embed_scale, not a checkpoint key.
  expect([...model.namedBuffers()].map(([k]) => k)).toContain('model.embed_tokens.embed_scale');
  expect(Object.keys(model.stateDict())).not.toContain('model.embed_tokens.embed_scale');
  model.dispose();
});

test("config: Gemma's defaults, hidden_act 'gelu' read as the tanh approximation, tied embeddings", () => {
  const raw = readConfig(BASE);
  const c = parseGemmaConfig(raw);
  expect(c.modelType).toBe('gemma');
  expect(c.headDim).toBe(12); // explicit, not hidden / heads (8)
  expect(c.tieWordEmbeddings).toBe(true);
  expect(parseGemmaConfig({ ...raw, hidden_act: 'gelu' }).hiddenAct).toBe('gelu_pytorch_tanh');
  const d = parseGemmaConfig({ model_type: 'gemma' });
  expect([d.vocabSize, d.hiddenSize, d.headDim, d.numHiddenLayers, d.padTokenId]).toEqual([256000, 3072, 256, 28, 0]);
});

test("LoRA on the scaled embedding: the update is scaled by embed_scale as PEFT does (logits and merged logits equal PEFT's)", async () => {
  // embed-lora/ (make_gemma_embed_lora.py): embed_tokens and q_proj, tied lm_head as published Gemma has it.
  const dir = path.join(familyFixture('gemma').dir, 'embed-lora');
  const exp = loadSafetensorsSync(path.join(dir, 'expect.safetensors'));
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(BASE), dir);
  scope(() => {
    const logits = noGrad(() => (peft.forward({ inputIds: exp.input_ids }) as { logits: Tensor }).logits);
    expect(maxAbsDiff(logits, exp.logits)).toBeLessThan(1e-4);
  });
  // Merging into the tied table changes lm_head too, in PEFT as here (PEFT warns about it).
  const merged = peft.mergeAndUnload() as GemmaForCausalLM;
  scope(() => {
    const logits = noGrad(() => merged.forward({ inputIds: exp.input_ids }).logits);
    expect(maxAbsDiff(logits, exp.merged_logits)).toBeLessThan(1e-4);
  });
  merged.dispose();
  Object.values(exp).forEach((t) => t.dispose());
});
