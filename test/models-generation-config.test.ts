// generation_config.json: read by fromPretrained, its defaults used by generate() where the call says
// nothing (as transformers' generate), written back by savePretrained; bad values name the file.
import * as fs from 'fs';
import * as path from 'path';
import { manualSeed, scope, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM, generate } from '../lib/models';
import { expected, LLAMA_DIR } from './helpers/models';
import { tmpDir } from './helpers/tmp-dir';

let prompt: Tensor;
let plain: CausalLM;
let free: number[][];

beforeAll(async () => {
  const ex = expected(LLAMA_DIR);
  prompt = ex.inputIds;
  ex.logits.dispose();
  plain = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  free = scope(() => generate(plain, prompt, { maxNewTokens: 8, eosTokenId: null }).tolist() as number[][]);
});
afterAll(() => {
  prompt.dispose();
  plain.dispose();
});

/** A copy of the tiny-llama folder with generation_config.json replaced by `gen` (or removed when null). */
function withGenerationConfig(gen: Record<string, unknown> | null): string {
  const dir = tmpDir('gencfg');
  for (const f of fs.readdirSync(LLAMA_DIR)) if (f !== 'generation_config.json') fs.copyFileSync(path.join(LLAMA_DIR, f), path.join(dir, f));
  if (gen !== null) fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify(gen));
  return dir;
}

test('fromPretrained reads generation_config.json and records the folder', () => {
  expect(plain.generationConfig?.eosTokenId).toBe(2);
  expect(plain.generationConfig?.bosTokenId).toBe(1);
  expect(plain.generationConfig?.raw.transformers_version).toBe('5.17.0');
  expect(plain.nameOrPath).toBe(LLAMA_DIR);
});

test("generate() ends at generation_config's eos tokens (a list), not only config.json's", async () => {
  // Row 0's third new token as a second end token: row 0 stops there; padding is the file's pad_token_id.
  const stop = free[0][7 + 2];
  const model = await AutoModelForCausalLM.fromPretrained(withGenerationConfig({ eos_token_id: [2, stop], pad_token_id: 0, max_new_tokens: 8 }));
  try {
    const out = scope(() => generate(model, prompt).tolist() as number[][]);
    expect(out[0].slice(0, 10)).toEqual(free[0].slice(0, 10));
    expect(out[0]).not.toEqual(free[0]);
    expect(out[0].slice(10).every((t) => t === 0)).toBe(true);
    // The call's own options still win over the file.
    const forced = scope(() => generate(model, prompt, { eosTokenId: null, maxNewTokens: 8 }).tolist() as number[][]);
    expect(forced).toEqual(free);
  } finally {
    model.dispose();
  }
});

test("generate() samples when the file says do_sample, with its top_k and temperature", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(withGenerationConfig({ do_sample: true, top_k: 1, temperature: 0.7 }));
  try {
    // top_k 1 from the file: sampling that can only pick the greedy token.
    const out = scope(() => generate(model, prompt, { maxNewTokens: 8, eosTokenId: null }).tolist());
    expect(out).toEqual(free);
    expect(model.generationConfig?.doSample).toBe(true);
    // Without top_k 1 the file's do_sample leaves the greedy path (a random tiny model is nearly uniform).
    const wide = await AutoModelForCausalLM.fromPretrained(withGenerationConfig({ do_sample: true, top_k: 0 }));
    manualSeed(3);
    const sampled = scope(() => generate(wide, prompt, { maxNewTokens: 8, eosTokenId: null }).tolist());
    expect(sampled).not.toEqual(free);
    wide.dispose();
  } finally {
    model.dispose();
  }
});

test('no generation_config.json: config.json decides, as before', async () => {
  const model = await AutoModelForCausalLM.fromPretrained(withGenerationConfig(null));
  try {
    expect(model.generationConfig).toBeUndefined();
    expect(scope(() => generate(model, prompt, { maxNewTokens: 8, eosTokenId: null }).tolist())).toEqual(free);
  } finally {
    model.dispose();
  }
});

test.each([
  [{ top_p: 2 }, /generation_config\.json: "top_p" must be a number in \(0, 1\], got 2/],
  [{ eos_token_id: 'x' }, /"eos_token_id" must be a token id or a list of token ids, got "x"/],
  [{ do_sample: 1 }, /"do_sample" must be true or false, got 1/],
])('a bad value %j names the file, the key and what was expected', async (gen, message) => {
  await expect(AutoModelForCausalLM.fromPretrained(withGenerationConfig(gen))).rejects.toThrow(message);
});

test('a generation_config.json that is not JSON is a clear error', async () => {
  const dir = withGenerationConfig(null);
  fs.writeFileSync(path.join(dir, 'generation_config.json'), '{ nope');
  await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow(/generation_config\.json' is not valid JSON/);
});
