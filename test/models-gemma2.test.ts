// Gemma2ForCausalLM against transformers 5.18 and peft 0.21 (fixture test/fixtures/gemma2, made by its
// make_gemma2.py: sliding window 4 on layers 0 and 2, sequences of 12, soft-caps 2 and 3 that bend real
// values): the shared family checks (test/helpers/family-parity.ts), then what is Gemma 2's own.
import * as path from 'path';
import { AutoModelForCausalLM, noGrad, scope, Tensor } from '../lib';
import { Gemma2ForCausalLM, parseGemma2Config, readConfig } from '../lib/models';
import { familyFixture, familyParityTests } from './helpers/family-parity';
import { maxAbsDiff } from './helpers/tensors';
import { loadSafetensorsSync } from '../lib';

familyParityTests('gemma2', 'Gemma2ForCausalLM', ['q_proj', 'v_proj']);

const DIR = familyFixture('gemma2').dir;
const BASE = path.join(DIR, 'base');

test('config: alternate sliding layers, query_pre_attn_scalar, the caps; transformers defaults when absent', () => {
  const c = parseGemma2Config(readConfig(BASE));
  expect(c.layerTypes).toEqual(['sliding_attention', 'full_attention', 'sliding_attention']);
  expect([c.slidingWindow, c.queryPreAttnScalar, c.attnLogitSoftcapping, c.finalLogitSoftcapping, c.hiddenAct]).toEqual([4, 10, 2, 3, 'gelu_pytorch_tanh']);
  const d = parseGemma2Config({ model_type: 'gemma2', num_hidden_layers: 4 });
  expect([d.slidingWindow, d.queryPreAttnScalar, d.attnLogitSoftcapping, d.finalLogitSoftcapping, d.headDim, d.padTokenId]).toEqual([4096, 256, 50, 30, 256, 0]);
  expect(d.layerTypes).toEqual(['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention']);
  const none = parseGemma2Config({ model_type: 'gemma2', attn_logit_softcapping: null, final_logit_softcapping: null });
  expect([none.attnLogitSoftcapping, none.finalLogitSoftcapping]).toEqual([undefined, undefined]);
});

test('the soft-caps and the window all change the logits: each one removed moves them off transformers’', async () => {
  const exp = loadSafetensorsSync(path.join(DIR, 'expect.safetensors'));
  const raw = readConfig(BASE);
  for (const change of [{ final_logit_softcapping: null }, { attn_logit_softcapping: null }, { sliding_window: 64 }]) {
    const m = (await AutoModelForCausalLM.fromPretrained(BASE)) as Gemma2ForCausalLM;
    const variant = AutoModelForCausalLM.fromConfig({ ...raw, ...change }, { device: 'meta' }) as Gemma2ForCausalLM;
    // the variant's modules, the loaded weights: swap the config-driven pieces only
    (m as unknown as { config: unknown }).config = variant.config;
    if ('attn_logit_softcapping' in change)
      for (const l of m.model.layers) (l.self_attn as unknown as { attnLogitSoftcapping?: number }).attnLogitSoftcapping = undefined;
    if ('sliding_window' in change) (m.model as unknown as { slidingWindow: number }).slidingWindow = 64;
    scope(() => {
      const logits = noGrad(() => m.forward({ inputIds: exp.input_ids }).logits);
      expect([Object.keys(change)[0], maxAbsDiff(logits, exp.logits) > 1e-2]).toEqual([Object.keys(change)[0], true]);
    });
    variant.dispose();
    m.dispose();
  }
  Object.values(exp).forEach((t: Tensor) => t.dispose());
});
