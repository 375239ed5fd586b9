// Issue 15: model.resizeTokenEmbeddings against transformers 5.17's resize_token_embeddings on tiny-llama
// (test/fixtures/trainable-tokens/resize.safetensors, from make_trainable_tokens.py). transformers samples
// the new rows; from the same seed we make the same generator calls in the same order, so the rows match
// (tolerance 1e-9: the sample goes through a Cholesky factor and a matmul summed in another order; measured
// 1.5e-11, while the sampled rows differ from the plain mean by 1.9e-6, so the tolerance tells them apart).
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, manualSeed, tensor } from '../lib';
import { Embedding, Linear } from '../lib/nn';
import { DecoderOnlyLM } from '../lib/models/decoder-only-lm';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';

const TT = path.join(FIXTURES, 'trainable-tokens');
const ref = loadSafetensorsSync(path.join(TT, 'resize.safetensors'));
afterAll(() => Object.values(ref).forEach((t) => t.dispose()));

async function load(dir: string): Promise<DecoderOnlyLM<unknown>> {
  return (await AutoModelForCausalLM.fromPretrained(dir)) as unknown as DecoderOnlyLM<unknown>;
}
const embedOf = (m: DecoderOnlyLM<unknown>) => m.getInputEmbeddings() as Embedding;

test('untied, meanResizing (default): embed_tokens and lm_head rows as transformers samples them', async () => {
  const m = await load(LLAMA_DIR);
  const oldEmbed = embedOf(m).weight.clone();
  manualSeed(0);
  const out = m.resizeTokenEmbeddings(131);
  expect(out).toBe(embedOf(m));
  expect(embedOf(m).weight.shape).toEqual([131, 48]);
  expect(embedOf(m).numEmbeddings).toBe(131);
  expect(m.lm_head.weight.shape).toEqual([131, 48]);
  expect(m.lm_head.outFeatures).toBe(131);
  expect(m.config.vocabSize).toBe(131);
  expect(maxAbsDiff(embedOf(m).weight, ref['untied_mean.embed'])).toBeLessThan(1e-9);
  expect(maxAbsDiff(m.lm_head.weight, ref['untied_mean.lm_head'])).toBeLessThan(1e-9);
  // The old rows are copied exactly; the new rows sit within ~1e-4 of the old rows' mean (1e-9 covariance).
  const kept = embedOf(m).weight.narrow(0, 0, 128);
  expect(maxAbsDiff(kept, oldEmbed)).toBe(0);
  const mean = oldEmbed.mean([0], true).expand([3, 48]);
  const added = embedOf(m).weight.narrow(0, 128, 3);
  expect(maxAbsDiff(added, mean)).toBeLessThan(1e-3);
  expect(maxAbsDiff(added, mean)).toBeGreaterThan(0);
  // The embedding stays trainable (it was); the logits work with the new ids.
  const logits = m.forward({ inputIds: tensor([[1, 128, 130]], { dtype: 'int64' }) }).logits;
  expect(logits.shape).toEqual([1, 3, 131]);
  for (const t of [oldEmbed, kept, mean, added, logits]) t.dispose();
  m.dispose();
});

test('untied, meanResizing false with padToMultipleOf: 130 -> 136 rows from N(0, initializer_range²)', async () => {
  const m = await load(LLAMA_DIR);
  manualSeed(0);
  m.resizeTokenEmbeddings(130, { padToMultipleOf: 8, meanResizing: false });
  expect(m.config.vocabSize).toBe(136);
  expect(maxAbsDiff(embedOf(m).weight, ref['untied_normal.embed'])).toBeLessThan(1e-9);
  expect(maxAbsDiff(m.lm_head.weight, ref['untied_normal.lm_head'])).toBeLessThan(1e-9);
  m.dispose();
});

test('tied: one sample, lm_head keeps sharing the embedding weight', async () => {
  const m = await load(path.join(TT, 'tied-base'));
  expect(m.lm_head.weight).toBe(embedOf(m).weight);
  manualSeed(0);
  m.resizeTokenEmbeddings(131);
  expect(m.lm_head.weight).toBe(embedOf(m).weight);
  expect(m.lm_head.outFeatures).toBe(131);
  expect(maxAbsDiff(embedOf(m).weight, ref['tied_mean.embed'])).toBeLessThan(1e-9);
  m.dispose();
});

test('shrinking keeps the first rows; padToMultipleOf alone pads the current size; nothing given changes nothing', async () => {
  const m = await load(LLAMA_DIR);
  const old = m.lm_head.weight.clone();
  m.resizeTokenEmbeddings(100);
  expect(m.lm_head.weight.shape).toEqual([100, 48]);
  const head = m.lm_head.weight.clone();
  const oldHead = old.narrow(0, 0, 100);
  expect(maxAbsDiff(head, oldHead)).toBe(0);
  m.resizeTokenEmbeddings(null, { padToMultipleOf: 64 });
  expect(m.config.vocabSize).toBe(128);
  const before = embedOf(m).weight;
  m.resizeTokenEmbeddings();
  expect(embedOf(m).weight).toBe(before);
  expect(m.config.vocabSize).toBe(128);
  for (const t of [old, head, oldHead]) t.dispose();
  m.dispose();
});

test('a padding row beyond the new size is dropped; the mean is used when the covariance is singular', async () => {
  const m = await load(LLAMA_DIR);
  const e = embedOf(m);
  (e as unknown as { paddingIdx?: number }).paddingIdx = 120;
  m.resizeTokenEmbeddings(20);
  expect(e.paddingIdx).toBeUndefined();
  // 20 rows in 48 dimensions: the covariance has rank < 48, so new rows are the mean itself (transformers' fallback).
  m.resizeTokenEmbeddings(22);
  const mean = e.weight.narrow(0, 0, 20).mean([0], true).expand([2, 48]);
  const added = e.weight.narrow(0, 20, 2);
  expect(maxAbsDiff(added, mean)).toBeLessThan(1e-6);
  expect(m.lm_head).toBeInstanceOf(Linear);
  expect(m.lm_head.weight.shape).toEqual([22, 48]);
  for (const t of [mean, added]) t.dispose();
  m.dispose();
});

test('bad sizes are refused with the option named', async () => {
  const m = await load(LLAMA_DIR);
  expect(() => m.resizeTokenEmbeddings(0)).toThrow(/newNumTokens must be a positive integer, got 0/);
  expect(() => m.resizeTokenEmbeddings(1.5)).toThrow(/newNumTokens must be a positive integer/);
  expect(() => m.resizeTokenEmbeddings(130, { padToMultipleOf: 0 })).toThrow(/padToMultipleOf must be a positive integer/);
  expect(() => m.resizeTokenEmbeddings(130, { meanResizing: 'yes' as unknown as boolean })).toThrow(/meanResizing must be true or false/);
  expect(m.config.vocabSize).toBe(128);
  m.dispose();
});
