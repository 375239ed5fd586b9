// Phi3ForCausalLM against transformers 5.18 and peft 0.21 (fixture test/fixtures/phi3, made by its
// make_phi3.py: fused qkv_proj/gate_up_proj, partial rotary 0.5, longrope past its original 8 positions,
// a window of 5 on every layer, sequences of 12): the shared family checks, then what is Phi-3's own.
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig } from '../lib';
import { parsePhi3Config, Phi3ForCausalLM, readConfig } from '../lib/models';
import { familyFixture, familyParityTests } from './helpers/family-parity';

familyParityTests('phi3', 'Phi3ForCausalLM', null);

const DIR = familyFixture('phi3').dir;
const BASE = path.join(DIR, 'base');

test('config: longrope with its factors, partial rotary, a window on every layer; Phi-3-mini defaults; old "su" read as longrope', () => {
  const c = parsePhi3Config(readConfig(BASE));
  expect(c.rope.ropeType).toBe('longrope');
  expect([c.rope.partialRotaryFactor, c.rope.originalMaxPositionEmbeddings, c.originalMaxPositionEmbeddings]).toEqual([0.5, 8, 8]);
  expect(c.slidingWindow).toBe(5);
  expect(c.layerTypes).toEqual(['sliding_attention', 'sliding_attention']);
  const d = parsePhi3Config({ model_type: 'phi3' });
  expect([d.vocabSize, d.hiddenSize, d.headDim, d.numKeyValueHeads, d.rmsNormEps, d.padTokenId, d.slidingWindow]).toEqual([32064, 3072, 96, 32, 1e-5, 32000, undefined]);
  const su = parsePhi3Config({ model_type: 'phi3', hidden_size: 64, num_attention_heads: 4, rope_scaling: { type: 'su', short_factor: [1, 1, 1, 1, 1, 1, 1, 1], long_factor: [2, 2, 2, 2, 2, 2, 2, 2] } });
  expect(su.rope.ropeType).toBe('longrope');
});

test("LoRA on 'all-linear' targets the fused qkv_proj and gate_up_proj, as PEFT does", async () => {
  const model = (await AutoModelForCausalLM.fromPretrained(BASE)) as Phi3ForCausalLM;
  const peft = getPeftModel(model, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear' }));
  const names = [...peft.namedModules()].map(([n]) => n).filter((n) => n.endsWith('lora_A.default'));
  expect(names.map((n) => n.split('.').slice(-3, -2)[0]).sort()).toEqual(
    ['down_proj', 'down_proj', 'gate_up_proj', 'gate_up_proj', 'o_proj', 'o_proj', 'qkv_proj', 'qkv_proj'].sort(),
  );
  peft.dispose();
});

test('generate() across original_max_position_embeddings (short -> long factors): the cache is rebuilt once, the ids are transformers\' uncached ones', async () => {
  // expect_crossing.safetensors (make_phi3_crossing.py): a 6-token prompt, 8 new tokens, the original context 8.
  const e = loadSafetensorsSync(path.join(DIR, 'expect_crossing.safetensors'));
  const model = await AutoModelForCausalLM.fromPretrained(BASE);
  const ids = (t: { tolist(): unknown }) => JSON.stringify(t.tolist());
  const cached = model.generate(e.prompt, { maxNewTokens: 8, useCache: true });
  const uncached = model.generate(e.prompt, { maxNewTokens: 8, useCache: false });
  expect(ids(uncached)).toBe(ids(e.generated_no_cache));
  expect(ids(cached)).toBe(ids(e.generated_no_cache));
  [cached, uncached, model, ...Object.values(e)].forEach((t) => t.dispose());
});
