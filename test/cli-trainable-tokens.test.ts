// Issue 15 in the CLI: a tokenizer with added tokens the model lacks; `train --resize-token-embeddings
// --trainable-token-indices` grows the model to the tokenizer's size and trains only the new rows (and
// LoRA); the adapter holds the resized tables and the rows as PEFT saves them; `merge` loads it on the
// unresized base (growing it first) and writes a model with the trained rows.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, PeftModel, readSafetensorsHeader } from '../lib';
import { finetuneSamples } from '../lib/demo/synthetic-language';
import { cli, makeModelDir } from './helpers/cli';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/train';

const COMMON = ['--r', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lr', '0.01', '--batch-size', '4', '--max-steps', '2', '--seed', '1', '--report', 'none', '--target-modules', 'q_proj'];
let dir: string;
let model: string;
let data: string;

beforeAll(() => {
  dir = tmpDir('cli-tt');
  model = makeModelDir(dir);
  // Two added tokens past the model's 128 rows, used in the completions.
  const tokFile = path.join(model, 'tokenizer.json');
  const tok = JSON.parse(fs.readFileSync(tokFile, 'utf8'));
  for (const [id, content] of [[128, '<tool>'], [129, '</tool>']] as const)
    tok.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  fs.writeFileSync(tokFile, JSON.stringify(tok));
  data = path.join(dir, 'data.jsonl');
  const lines = finetuneSamples(8, 0).map((s) => JSON.stringify({ prompt: s.prompt, completion: ` <tool>${s.completion}</tool>` }));
  fs.writeFileSync(data, lines.join('\n') + '\n');
});

test('train --resize-token-embeddings --trainable-token-indices: the new rows train, saved as PEFT saves them', async () => {
  const out = path.join(dir, 'out');
  const r = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, '--resize-token-embeddings', '--trainable-token-indices', '128,129');
  expect([r.code, r.err]).toEqual([0, '']);
  expect(r.out).toContain('token embeddings resized from 128 to 130 rows');
  const config = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
  expect(config.trainable_token_indices).toEqual([128, 129]);
  const header = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
  const shapes = Object.fromEntries([...header.tensors].filter(([k]) => !k.includes('lora_')).map(([k, e]) => [k, e.shape]));
  expect(shapes).toEqual({
    'base_model.model.model.embed_tokens.token_adapter.base_layer.weight': [130, 48],
    'base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta': [2, 48],
    'base_model.model.lm_head.weight': [130, 48],
  });
  // The trained rows moved away from their start (the mean of the old rows), the old rows did not.
  const saved = loadSafetensorsSync(path.join(out, 'adapter_model.safetensors'));
  const table = saved['base_model.model.model.embed_tokens.token_adapter.base_layer.weight'];
  const rows = saved['base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta'];
  const start = table.narrow(0, 128, 2);
  expect(maxAbsDiff(rows, start)).toBeGreaterThan(1e-4);
  const original = loadSafetensorsSync(path.join(model, 'model.safetensors'))['model.embed_tokens.weight'];
  const kept = table.narrow(0, 0, 128);
  expect(maxAbsDiff(kept, original)).toBe(0);

  // merge: the base is grown to the adapter's 130 rows, then the file's tables and rows replace them.
  const merged = path.join(dir, 'merged');
  const m = await cli('merge', '--model', model, '--adapter', out, '--output', merged);
  expect([m.code, m.err]).toEqual([0, '']);
  const mergedConfig = JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8'));
  expect(mergedConfig.vocab_size).toBe(130);
  const mergedWeights = loadSafetensorsSync(path.join(merged, 'model.safetensors'));
  const mergedRows = mergedWeights['model.embed_tokens.weight'].narrow(0, 128, 2);
  expect(maxAbsDiff(mergedRows, rows)).toBe(0);

  // The library the same way: load the base, give it the rows, load the adapter.
  const base = await AutoModelForCausalLM.fromPretrained(model);
  await expect(PeftModel.fromPretrained(base, out)).rejects.toThrow(/token ids 128, 129 are outside its 128 rows; resize the token embeddings first/);
  const fresh = (await AutoModelForCausalLM.fromPretrained(model)) as unknown as { resizeTokenEmbeddings(n: number): unknown } & typeof base;
  fresh.resizeTokenEmbeddings(130);
  const peft = await PeftModel.fromPretrained(fresh, out);
  const merged2 = peft.mergeAndUnload() as typeof base;
  const libRows = (merged2 as unknown as { model: { embed_tokens: { weight: import('../lib').Tensor } } }).model.embed_tokens.weight.narrow(0, 128, 2);
  expect(maxAbsDiff(libRows, rows)).toBe(0);
  libRows.dispose();
  merged2.dispose();
  for (const t of [...Object.values(saved), start, original, kept, ...Object.values(mergedWeights), mergedRows]) t.dispose();
});

test('--trainable-token-indices beyond the model without --resize-token-embeddings: an error saying to resize', async () => {
  const out = path.join(dir, 'bad');
  const r = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, '--trainable-token-indices', '128');
  expect(r.code).not.toBe(0);
  expect(r.err).toMatch(/token ids 128 are outside its 128 rows; resize the token embeddings first/);
});
