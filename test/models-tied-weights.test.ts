// Issue 10: tie_word_embeddings: true over a checkpoint whose embed_tokens and lm_head differ. transformers 5
// keeps them apart and warns (test/fixtures/tied-distinct/reference.json, made by make_tied_distinct.py);
// the embedding used to take lm_head's values silently.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, noGrad, saveSafetensorsSync, Tensor } from '../lib';
import { savePretrained } from '../lib/models/save-pretrained';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const REF_DIR = path.join(FIXTURES, 'tied-distinct');
const reference = JSON.parse(fs.readFileSync(path.join(REF_DIR, 'reference.json'), 'utf8'));

/** tiny-llama (distinct embed_tokens and lm_head) with config.json saying tie_word_embeddings: true, as the generator made it. */
function tiedConfigDir(): string {
  const dir = tmpDir('tied');
  for (const f of fs.readdirSync(LLAMA_DIR)) fs.copyFileSync(path.join(LLAMA_DIR, f), path.join(dir, f));
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...c, tie_word_embeddings: true }));
  return dir;
}

afterEach(() => jest.restoreAllMocks());

test('the reference: transformers warned and kept both weights as the checkpoint has them', () => {
  expect(reference).toEqual(
    expect.objectContaining({ warned: true, same_tensor: false, embed_equals_checkpoint_embed: true, lm_head_equals_checkpoint_lm_head: true }),
  );
});

test('distinct weights under a tying config stay untied, with a warning, and give transformers logits', async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  const dir = tiedConfigDir();
  const model = await AutoModelForCausalLM.fromPretrained(dir);
  try {
    const ckpt = loadSafetensorsSync(path.join(dir, 'model.safetensors'));
    const m = model as unknown as { model: { embed_tokens: { weight: Tensor } }; lm_head: { weight: Tensor } };
    expect(m.lm_head.weight).not.toBe(m.model.embed_tokens.weight);
    expect(m.model.embed_tokens.weight.equal(ckpt['model.embed_tokens.weight'])).toBe(true);
    expect(m.lm_head.weight.equal(ckpt['lm_head.weight'])).toBe(true);
    for (const t of Object.values(ckpt)) t.dispose();
    const messages = warn.mock.calls.map((c) => String(c[0]));
    expect(messages.some((s) => /ties .*embed_tokens\.weight.* but the checkpoint holds both with different values: they are not tied/.test(s))).toBe(true);
    const ex = loadSafetensorsSync(path.join(REF_DIR, 'expect.safetensors'));
    noGrad(() => {
      const { logits } = model.forward({ inputIds: ex.input_ids });
      // float32 on the CPU, as test/models-llama.test.ts compares the same model.
      expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(1e-4);
      logits.dispose();
    });
    for (const t of Object.values(ex)) t.dispose();
    // A save writes both (they are distinct tensors), so the folder loads the same again.
    const out = tmpDir('tied-out');
    await savePretrained(model, out);
    const saved = loadSafetensorsSync(path.join(out, 'model.safetensors'));
    expect(Object.keys(saved)).toEqual(expect.arrayContaining(['lm_head.weight', 'model.embed_tokens.weight']));
    for (const t of Object.values(saved)) t.dispose();
  } finally {
    model.dispose();
  }
});

test('equal weights under a tying config are tied (one tensor), without a warning', async () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  const dir = tiedConfigDir();
  const file = path.join(dir, 'model.safetensors');
  const w = loadSafetensorsSync(file);
  const copy = { ...w, 'lm_head.weight': w['model.embed_tokens.weight'] };
  saveSafetensorsSync(copy, file);
  for (const t of Object.values(w)) t.dispose();
  const model = await AutoModelForCausalLM.fromPretrained(dir);
  const m = model as unknown as { model: { embed_tokens: { weight: Tensor } }; lm_head: { weight: Tensor } };
  expect(m.lm_head.weight).toBe(m.model.embed_tokens.weight);
  expect(warn.mock.calls.some((c) => String(c[0]).includes('not tied'))).toBe(false);
  model.dispose();
});
