// Rotary embeddings against transformers 5's LlamaRotaryEmbedding (fixtures/rope, made by
// make_rope_reference.py): every rope_type's inverse frequencies and attention scaling, and the
// sequence-dependent ones (dynamic NTK, longrope) across successive calls, state included.
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensorsSync, scope, tensor, Tensor } from '../lib';
import { LlamaRotaryEmbedding, parseLlamaConfig, ropeInverseFrequencies } from '../lib/models';
import { maxAbsDiff } from './helpers/tensors';

const DIR = path.join(__dirname, 'fixtures', 'rope');
const meta = JSON.parse(fs.readFileSync(path.join(DIR, 'cases.json'), 'utf8')) as {
  cases: Record<string, Record<string, unknown>>;
  calls: number[];
  head_dim: number;
  max_position_embeddings: number;
};
let ref: Record<string, Tensor>;
beforeAll(() => {
  ref = loadSafetensorsSync(path.join(DIR, 'rope-reference.safetensors'));
});
afterAll(() => {
  for (const t of Object.values(ref)) t.dispose();
});

function configOf(rope: Record<string, unknown>) {
  return parseLlamaConfig({
    hidden_size: 64,
    num_attention_heads: 4,
    head_dim: meta.head_dim,
    max_position_embeddings: meta.max_position_embeddings,
    num_hidden_layers: 0,
    rope_parameters: rope,
  });
}

describe.each(Object.keys(meta.cases))('rope_type case %s', (name) => {
  test('inverse frequencies, cos and sin equal transformers over successive calls', () => {
    const config = configOf(meta.cases[name]);
    const emb = new LlamaRotaryEmbedding(config);
    try {
      // Frequencies: float32 ops in transformers' order, so within an ulp or two (pow may round differently).
      const initial = ref[`${name}.init_inv_freq`].data() as Float32Array;
      const mine = ropeInverseFrequencies(config.rope, config.headDim, { maxPositionEmbeddings: config.maxPositionEmbeddings })[0];
      for (let i = 0; i < initial.length; i++) expect(Math.abs(mine[i] - initial[i])).toBeLessThanOrEqual(4e-7 * Math.abs(initial[i]));
      const x = tensor([0]);
      meta.calls.forEach((s, i) => {
        scope(() => {
          const pos = tensor(Array.from({ length: s }, (_, j) => j)).long().unsqueeze(0);
          const [cos, sin] = emb.forward(x, pos);
          expect(maxAbsDiff(emb.inv_freq, ref[`${name}.${i}.inv_freq`])).toBeLessThanOrEqual(4e-7 * 1);
          // cos/sin of positions < 20 from those frequencies: float32 rounding of pos × freq (~2e-6).
          expect(cos.shape).toEqual(ref[`${name}.${i}.cos`].shape);
          expect(maxAbsDiff(cos, ref[`${name}.${i}.cos`])).toBeLessThan(1e-5);
          expect(maxAbsDiff(sin, ref[`${name}.${i}.sin`])).toBeLessThan(1e-5);
        });
      });
      x.dispose();
    } finally {
      emb.dispose();
    }
  });
});

test('rope parameters the type needs are named when missing; unknown types list the supported ones', () => {
  expect(() => new LlamaRotaryEmbedding(configOf({ rope_type: 'dynamic', rope_theta: 1e4 }))).toThrow(/rope_type 'dynamic' needs rope parameter 'factor'/);
  expect(() => new LlamaRotaryEmbedding(configOf({ rope_type: 'longrope', rope_theta: 1e4, short_factor: [1, 2] }))).toThrow(
    /'short_factor' has 2 values; the rotary dimension 16 needs 8/,
  );
  expect(() => new LlamaRotaryEmbedding(configOf({ rope_type: 'su', rope_theta: 1e4 }))).toThrow(
    /rope_type 'su' is not supported; supported: default, linear, dynamic, yarn, longrope, llama3/,
  );
  expect(() => configOf({ rope_type: 'longrope', long_factor: 'x' })).toThrow(/'long_factor' must be a list of numbers/);
});
