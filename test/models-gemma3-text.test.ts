// Gemma3ForCausalLM (model_type gemma3_text) against transformers 5.18 and peft 0.21 (fixture
// test/fixtures/gemma3_text, made by its make_gemma3_text.py: q/k norms, layers sliding, sliding, full
// with a window of 4 over sequences of 12, local rope base 10000 and global 1e6 with linear scaling):
// the shared family checks, then what is Gemma 3's own.
import * as path from 'path';
import { loadSafetensorsSync, noGrad, scope, Tensor } from '../lib';
import { AutoModelForCausalLM, Gemma3ForCausalLM, parseGemma3TextConfig, readConfig } from '../lib/models';
import { familyFixture, familyParityTests } from './helpers/family-parity';
import { maxAbsDiff } from './helpers/tensors';

familyParityTests('gemma3_text', 'Gemma3ForCausalLM', ['q_proj', 'v_proj']);

const DIR = familyFixture('gemma3_text').dir;
const BASE = path.join(DIR, 'base');

test('config: the layer pattern and two ropes, from transformers 5 (nested rope_parameters) and 4 (rope_theta, rope_scaling, rope_local_base_freq)', () => {
  const c = parseGemma3TextConfig(readConfig(BASE));
  expect(c.layerTypes).toEqual(['sliding_attention', 'sliding_attention', 'full_attention']);
  expect([c.rope.ropeType, c.rope.ropeTheta, c.rope.factor, c.localRope.ropeType, c.localRope.ropeTheta]).toEqual(['linear', 1e6, 2, 'default', 10000]);
  const v4 = parseGemma3TextConfig({ model_type: 'gemma3_text', num_hidden_layers: 7, rope_theta: 1e6, rope_local_base_freq: 10000, rope_scaling: { rope_type: 'linear', factor: 8 } });
  expect([v4.rope.ropeType, v4.rope.ropeTheta, v4.rope.factor, v4.localRope.ropeTheta]).toEqual(['linear', 1e6, 8, 10000]);
  // sliding_window_pattern 6 by default: five sliding layers, then a full one
  expect(v4.layerTypes).toEqual([...Array(5).fill('sliding_attention'), 'full_attention', 'sliding_attention']);
  expect([v4.vocabSize, v4.attnLogitSoftcapping, v4.finalLogitSoftcapping, v4.queryPreAttnScalar]).toEqual([262208, undefined, undefined, 256]);
});

test('each layer type takes its own rotary embedding: swapping the two moves the logits', async () => {
  const exp = loadSafetensorsSync(path.join(DIR, 'expect.safetensors'));
  const m = (await AutoModelForCausalLM.fromPretrained(BASE)) as Gemma3ForCausalLM;
  expect([...m.namedBuffers()].map(([k]) => k).filter((k) => k.includes('inv_freq'))).toEqual([
    'model.rotary_emb.full_attention_inv_freq',
    'model.rotary_emb.sliding_attention_inv_freq',
  ]);
  for (const l of m.model.layers) l.self_attn.ropeKey = l.self_attn.layerType === 'full_attention' ? 'sliding_attention' : 'full_attention';
  scope(() => {
    const logits = noGrad(() => m.forward({ inputIds: exp.input_ids }).logits);
    expect(maxAbsDiff(logits, exp.logits)).toBeGreaterThan(1e-2);
  });
  m.dispose();
  Object.values(exp).forEach((t: Tensor) => t.dispose());
});

test('use_bidirectional_attention (EmbeddingGemma) is refused with a clear error, not run with a causal mask', () => {
  for (const model_type of ['gemma', 'gemma2', 'gemma3_text'])
    expect(() => AutoModelForCausalLM.fromConfig({ ...readConfig(BASE), model_type, use_bidirectional_attention: true }, { device: 'meta' })).toThrow(
      /use_bidirectional_attention is true .*causal models only/,
    );
});
