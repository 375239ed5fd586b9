// LlamaForCausalLM against transformers 5: logits of the tiny-llama fixture (float32 within 1e-4,
// bfloat16 loosely), the loss, padded batches, structure and names, rope scaling, and memory.
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensorsSync, manualSeed, memory, noGrad, scope, tensor, Tensor } from '../lib';
import {
  AutoModelForCausalLM,
  CausalLM,
  LlamaForCausalLM,
  numParameters,
  parseLlamaConfig,
  readConfig,
  ropeInverseFrequencies,
} from '../lib/models';
import { settleGarbage } from './helpers/gc';
import { expected, FIXTURES, LLAMA_DIR, referenceLoss } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

let model: CausalLM;
let ex: { inputIds: Tensor; logits: Tensor };

beforeAll(async () => {
  model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  ex = expected(LLAMA_DIR);
});
afterAll(() => {
  model.dispose();
  ex.inputIds.dispose();
  ex.logits.dispose();
});

test('logits equal transformers within 1e-4 (float32, CPU)', () => {
  expect(model).toBeInstanceOf(LlamaForCausalLM);
  expect(model.training).toBe(false); // from_pretrained returns eval mode
  scope(() => {
    const { logits, loss } = noGrad(() => model.forward({ inputIds: ex.inputIds }));
    expect(logits.shape).toEqual([2, 7, 128]);
    expect(logits.dtype).toBe('float32');
    expect(loss).toBeUndefined();
    expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(1e-4);
  });
});

test('the loss equals transformers’ shifted mean cross-entropy, -100 ignored', () => {
  scope(() => {
    const ids = ex.inputIds.tolist() as number[][];
    const { loss } = noGrad(() => model.forward({ inputIds: ex.inputIds, labels: ex.inputIds }));
    expect(loss!.shape).toEqual([]);
    expect(Math.abs((loss!.item() as number) - referenceLoss(ex.logits, ids))).toBeLessThan(1e-5);

    const masked = ids.map((row, i) => row.map((v, t) => (t === 2 + i || t === 5 ? -100 : v)));
    const labels = tensor(masked, { dtype: 'int64' });
    const out = noGrad(() => model.forward({ inputIds: ex.inputIds, labels }));
    expect(Math.abs((out.loss!.item() as number) - referenceLoss(ex.logits, masked))).toBeLessThan(1e-5);
  });
});

test('a bfloat16 run works and stays close to the float32 logits', async () => {
  const bf = (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { dtype: 'bfloat16' })) as LlamaForCausalLM;
  try {
    expect(bf.model.embed_tokens.weight.dtype).toBe('bfloat16');
    scope(() => {
      const { logits, loss } = noGrad(() => bf.forward({ inputIds: ex.inputIds, labels: ex.inputIds }));
      expect(logits.dtype).toBe('bfloat16');
      expect(logits.isfinite().all().item()).toBe(true);
      // bfloat16 keeps 8 bits of mantissa; over 3 layers the logits (|x| < 0.5 here) drift by ~3e-3.
      expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(0.03);
      expect(loss!.dtype).toBe('float32');
      expect(Math.abs((loss!.item() as number) - referenceLoss(ex.logits, ex.inputIds.tolist() as number[][]))).toBeLessThan(0.01);
    });
  } finally {
    bf.dispose();
  }
});

test('left padding with an attention mask gives the unpadded logits at the real positions', () => {
  scope(() => {
    const ids = ex.inputIds.tolist() as number[][];
    // Row 1 keeps its last 5 tokens behind 2 padding tokens (id 0); row 0 is whole.
    const padded = tensor([ids[0], [0, 0, ...ids[1].slice(2)]], { dtype: 'int64' });
    const mask = tensor([[1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]], { dtype: 'int64' });
    const alone = tensor([ids[1].slice(2)], { dtype: 'int64' });
    noGrad(() => {
      const both = model.forward({ inputIds: padded, attentionMask: mask }).logits;
      const single = model.forward({ inputIds: alone }).logits;
      expect(both.isfinite().all().item()).toBe(true); // fully masked padding rows must not produce NaN
      expect(maxAbsDiff(both.select(0, 0), ex.logits.select(0, 0))).toBeLessThan(1e-4);
      expect(maxAbsDiff(both.select(0, 1).narrow(0, 2, 5), single.select(0, 0))).toBeLessThan(1e-4);
    });
  });
});

test('structure: HF key names in transformers’ order, parameter count, printed tree', () => {
  const names = [...model.namedParameters()].map(([k]) => k);
  const file = loadSafetensorsSync(path.join(LLAMA_DIR, 'model.safetensors'));
  expect([...names].sort()).toEqual(Object.keys(file).sort());
  for (const t of Object.values(file)) t.dispose();
  expect(names.slice(0, 10)).toEqual([
    'model.embed_tokens.weight',
    'model.layers.0.self_attn.q_proj.weight',
    'model.layers.0.self_attn.k_proj.weight',
    'model.layers.0.self_attn.v_proj.weight',
    'model.layers.0.self_attn.o_proj.weight',
    'model.layers.0.mlp.gate_proj.weight',
    'model.layers.0.mlp.up_proj.weight',
    'model.layers.0.mlp.down_proj.weight',
    'model.layers.0.input_layernorm.weight',
    'model.layers.0.post_attention_layernorm.weight',
  ]);
  expect(names.slice(-2)).toEqual(['model.norm.weight', 'lm_head.weight']);
  // peft's get_nb_trainable_parameters() on the fixture: all - trainable = the base model's count.
  const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'meta.json'), 'utf8'));
  expect(numParameters(model)).toBe(meta['llama-qv'].all - meta['llama-qv'].trainable);
  // Not tied: lm_head has its own weight.
  const m = model as LlamaForCausalLM;
  expect(m.lm_head.weight).not.toBe(m.model.embed_tokens.weight);
  // inv_freq is a non-persistent buffer: not in the state dict.
  expect(Object.keys(model.stateDict())).not.toContain('model.rotary_emb.inv_freq');
  expect([...model.namedBuffers()].map(([k]) => k)).toEqual(['model.rotary_emb.inv_freq']);
  const text = model.toString();
  expect(text).toContain('(0-2): 3 x LlamaDecoderLayer(');
  expect(text).toContain('(input_layernorm): LlamaRMSNorm((48,), eps=1e-06)');
  expect(text).toContain('(k_proj): Linear(in_features=48, out_features=24, bias=False)');
  expect(text).toContain('(rotary_emb): LlamaRotaryEmbedding()');
});

test('rotary inverse frequencies: default, linear and llama3 scaling as transformers computes them', () => {
  const ref = loadSafetensorsSync(path.join(FIXTURES, 'models-reference.safetensors'));
  const close = (got: Float32Array, want: Tensor) => {
    const w = want.data() as Float32Array;
    expect(got.length).toBe(w.length);
    for (let i = 0; i < w.length; i++) expect(Math.abs(got[i] - w[i])).toBeLessThanOrEqual(2e-7 * Math.abs(w[i]));
  };
  const base = { partialRotaryFactor: 1 };
  close(ropeInverseFrequencies({ ...base, ropeType: 'default', ropeTheta: 10000 }, 12)[0], ref.rope_default_12);
  close(ropeInverseFrequencies({ ...base, ropeType: 'linear', ropeTheta: 10000, factor: 4 }, 64)[0], ref.rope_linear_64);
  const llama31 = {
    ...base,
    ropeType: 'llama3',
    ropeTheta: 500000,
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  };
  close(ropeInverseFrequencies(llama31, 128)[0], ref.rope_llama3_128);

  // The model's buffer follows the config: transformers 4's rope_scaling and 5's rope_parameters.
  const raw = readConfig(LLAMA_DIR);
  const scaling = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  for (const cfg of [
    { ...raw, rope_parameters: undefined, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', ...scaling }, head_dim: 128 },
    { ...raw, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, ...scaling }, head_dim: 128 },
  ]) {
    const m = new LlamaForCausalLM(parseLlamaConfig(cfg), { device: 'meta' });
    expect(m.config.rope.ropeType).toBe('llama3');
    const cpuRope = new LlamaForCausalLM(parseLlamaConfig({ ...cfg, num_hidden_layers: 0 }));
    close(cpuRope.model.rotary_emb.inv_freq.data() as Float32Array, ref.rope_llama3_128);
    cpuRope.dispose();
    m.dispose();
  }
  expect(() => new LlamaForCausalLM(parseLlamaConfig({ ...raw, rope_parameters: { rope_type: 'su', rope_theta: 1e4 } }))).toThrow(
    /rope_type 'su' is not supported/,
  );
  for (const t of Object.values(ref)) t.dispose();
});

test('forward leaves only its outputs; a forward/backward loop does not leak', async () => {
  manualSeed(0);
  const m = AutoModelForCausalLM.fromConfig(readConfig(LLAMA_DIR));
  expect(m.training).toBe(true); // from_config: train mode
  await settleGarbage();
  const before = memory().tensors;
  const out = m.forward({ inputIds: ex.inputIds, labels: ex.inputIds });
  expect(memory().tensors).toBe(before + 2); // logits and loss
  out.loss!.backward();
  out.logits.dispose();
  out.loss!.dispose();
  m.zeroGrad();
  const counts: number[] = [];
  const bytes: number[] = [];
  for (let i = 0; i < 4; i++) {
    scope(() => {
      const { loss } = m.forward({ inputIds: ex.inputIds, labels: ex.inputIds });
      loss!.backward();
    });
    // every parameter got a gradient
    expect(scope(() => [...m.parameters()].every((p) => p.grad !== undefined))).toBe(true);
    m.zeroGrad();
    counts.push(memory().tensors);
    bytes.push(memory().bytes);
  }
  expect(new Set(counts).size).toBe(1);
  expect(new Set(bytes).size).toBe(1);
  expect(counts[0]).toBe(before);
  m.dispose();
});
