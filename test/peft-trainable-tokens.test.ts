// Issue 15: LoraConfig.trainableTokenIndices against PEFT 0.21's trainable_token_indices on tiny-llama
// (test/fixtures/trainable-tokens, from make_trainable_tokens.py): PEFT's adapters load here and give PEFT's
// logits, loss and the gradients of the trained rows; ours save the keys and values PEFT saved. Tolerance:
// 1e-5 on logits and gradients (float32, the same ops in another library build).
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig, memory, noGrad, PeftModel, tensor } from '../lib';
import { Embedding, Linear } from '../lib/nn';
import { TrainableTokensWrapper } from '../lib/peft/layers/trainable-tokens';
import { LlamaForCausalLM } from '../lib/models/llama';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const TT = path.join(FIXTURES, 'trainable-tokens');
const TIED_BASE = path.join(TT, 'tied-base');
const expected = loadSafetensorsSync(path.join(TT, 'expect.safetensors'));
afterAll(() => Object.values(expected).forEach((t) => t.dispose()));
type LM = LlamaForCausalLM;

/** tiny-llama resized to 131 rows (new rows random: the adapter file holds the resized tables). */
async function resizedBase(): Promise<LM> {
  const base = (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR)) as unknown as LM;
  base.resizeTokenEmbeddings(131, { meanResizing: false });
  return base;
}
async function loadPeft(which: 'untied' | 'tied', opts: { isTrainable?: boolean } = {}): Promise<PeftModel<LM>> {
  const base = which === 'untied' ? await resizedBase() : ((await AutoModelForCausalLM.fromPretrained(TIED_BASE)) as unknown as LM);
  return PeftModel.fromPretrained(base, path.join(TT, which), opts);
}

describe.each(['untied', 'tied'] as const)('PEFT-made adapter (%s)', (which) => {
  test('loads with the wrappers PEFT builds and gives PEFT logits', async () => {
    const peft = await loadPeft(which);
    const m = peft.getBaseModel();
    expect(m.model.embed_tokens).toBeInstanceOf(TrainableTokensWrapper);
    // The head: its own rows (untied, listed) or the embedding's (tied).
    expect(m.lm_head).toBeInstanceOf(TrainableTokensWrapper);
    const head = m.lm_head as unknown as TrainableTokensWrapper;
    expect(head.token_adapter.tiedAdapter !== undefined).toBe(which === 'tied');
    const logits = peft.forward({ inputIds: expected[`${which}.input_ids`] }).logits;
    expect(maxAbsDiff(logits, expected[`${which}.logits`])).toBeLessThan(1e-5);
    logits.dispose();
    peft.dispose();
  });

  test('loss and the gradients of the trained rows match PEFT; the embedding itself gets none', async () => {
    const peft = await loadPeft(which, { isTrainable: true });
    peft.train();
    const ids = expected[`${which}.input_ids`];
    const loss = peft.forward({ inputIds: ids, labels: ids }).loss!;
    expect(Math.abs((loss.item() as number) - (expected[`${which}.loss`].item() as number))).toBeLessThan(1e-5);
    loss.backward();
    const grads = Object.keys(expected).filter((k) => k.startsWith(`${which}.grad.`));
    expect(grads.length).toBe(which === 'untied' ? 2 : 1);
    const params = new Map(peft.namedParameters());
    for (const k of grads) {
      const p = params.get(k.slice(`${which}.grad.`.length))!;
      expect(p).toBeDefined();
      expect(p.requiresGrad).toBe(true);
      expect(maxAbsDiff(p.grad!, expected[k])).toBeLessThan(1e-5);
    }
    const embed = (peft.getBaseModel().model.embed_tokens as unknown as TrainableTokensWrapper).token_adapter.base_layer;
    expect(embed.weight.requiresGrad).toBe(false);
    expect(embed.weight.grad).toBeUndefined();
    // Trainable: LoRA A/B and the rows; a tied head adds no parameters of its own.
    const trainable = [...peft.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n);
    expect(trainable.filter((n) => n.includes('trainable_tokens_delta')).length).toBe(grads.length);
    expect(trainable.every((n) => n.includes('lora_') || n.includes('trainable_tokens_delta'))).toBe(true);
    loss.dispose();
    peft.dispose();
  });
});

test('our save holds the keys and values PEFT saved (untied, resized: the tables too; tied: the rows only)', async () => {
  for (const which of ['untied', 'tied'] as const) {
    const peft = await loadPeft(which);
    // As getPeftModel would record it: the folder the base came from (PEFT compares its vocab_size).
    peft.peftConfig.get('default')!.baseModelNameOrPath = which === 'untied' ? LLAMA_DIR : TIED_BASE;
    const dir = tmpDir('tt-save');
    await peft.savePretrained(dir);
    const ours = loadSafetensorsSync(path.join(dir, 'adapter_model.safetensors'));
    const theirs = loadSafetensorsSync(path.join(TT, which, 'adapter_model.safetensors'));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    for (const k of Object.keys(theirs)) expect(maxAbsDiff(ours[k], theirs[k])).toBe(0);
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const peftConfig = JSON.parse(fs.readFileSync(path.join(TT, which, 'adapter_config.json'), 'utf8'));
    expect(config.trainable_token_indices).toEqual(peftConfig.trainable_token_indices);
    [...Object.values(ours), ...Object.values(theirs)].forEach((t) => t.dispose());
    peft.dispose();
  }
});

test('getPeftModel: rows start as the embedding rows, train alone, merge and unload as PEFT does', async () => {
  const base = (await AutoModelForCausalLM.fromPretrained(TIED_BASE)) as unknown as LM;
  const ids = tensor([[1, 3, 5, 100, 7]], { dtype: 'int64' });
  const before = base.forward({ inputIds: ids }).logits;
  const config = new LoraConfig({ r: 2, targetModules: ['q_proj'], trainableTokenIndices: [3, 100] });
  const peft = getPeftModel(base, config);
  const w = peft.getBaseModel().model.embed_tokens as unknown as TrainableTokensWrapper;
  const delta = w.token_adapter.trainable_tokens_delta.get('default')!;
  expect(delta.shape).toEqual([2, 48]);
  const start = peft.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(start, before)).toBe(0); // B = 0 and the rows are the embedding's
  // One SGD step on the rows only.
  const loss = peft.forward({ inputIds: ids, labels: ids }).loss!;
  loss.backward();
  const embedBefore = w.token_adapter.base_layer.weight.clone();
  noGrad(() => delta.sub_(delta.grad!.mul(10)));
  expect(maxAbsDiff(w.token_adapter.base_layer.weight, embedBefore)).toBe(0);
  const trained = peft.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(trained, before)).toBeGreaterThan(1e-3);
  // The tied head reads the same rows: row 3 of the head's weight is the trained row.
  peft.base_model.mergeAdapter();
  const merged = peft.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(merged, trained)).toBeLessThan(1e-5);
  peft.base_model.unmergeAdapter();
  expect(maxAbsDiff(w.token_adapter.base_layer.weight, embedBefore)).toBe(0);
  const bare = peft.mergeAndUnload() as LM;
  expect(bare.model.embed_tokens).toBeInstanceOf(Embedding);
  expect(bare.lm_head).toBeInstanceOf(Linear);
  expect(bare.lm_head.weight).toBe((bare.model.embed_tokens as Embedding).weight);
  const after = bare.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(after, trained)).toBeLessThan(1e-5);
  for (const t of [ids, before, start, loss, embedBefore, trained, merged, after]) t.dispose();
  bare.dispose();
});

test('forward and backward loops leak no tensors', async () => {
  const peft = await loadPeft('untied', { isTrainable: true });
  const ids = expected['untied.input_ids'];
  const step = () => {
    const out = peft.forward({ inputIds: ids, labels: ids });
    out.loss!.backward();
    out.loss!.dispose();
    out.logits.dispose();
  };
  step();
  const live = memory().tensors;
  for (let i = 0; i < 3; i++) step();
  expect(memory().tensors).toBe(live);
  peft.dispose();
});

test('bad trainableTokenIndices are refused, naming the option', async () => {
  expect(() => new LoraConfig({ trainableTokenIndices: [] })).toThrow(/trainableTokenIndices must be a non-empty list of token ids/);
  expect(() => new LoraConfig({ trainableTokenIndices: [1, -2] })).toThrow(/trainableTokenIndices must be/);
  expect(() => new LoraConfig({ trainableTokenIndices: { embed_tokens: [1.5] } })).toThrow(/trainableTokenIndices must be/);
  expect(() => new LoraConfig({ trainableTokenIndices: { embed_tokens: [1] }, modulesToSave: ['embed_tokens'] })).toThrow(/both modulesToSave .* and trainableTokenIndices/);
  // getPeftModel changes the model in place (as PEFT): a fresh base for each.
  const refused = async (tt: number[] | Record<string, number[]>, message: RegExp) => {
    const base = (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR)) as unknown as LM;
    expect(() => getPeftModel(base, new LoraConfig({ targetModules: ['q_proj'], trainableTokenIndices: tt }))).toThrow(message);
    base.dispose();
  };
  await refused([5, 128], /trainable_token_indices for 'model.embed_tokens': token ids 128 are outside its 128 rows; resize the token embeddings first/);
  await refused({ wte: [1] }, /'wte'.* not found/);
  await refused({ 'layers.0.self_attn': [1] }, /cannot be applied to 'model.layers.0.self_attn', a LlamaAttention/);
});

test('adapter_config.json: trainable_token_indices round-trips (list and object)', () => {
  const text = fs.readFileSync(path.join(TT, 'untied', 'adapter_config.json'), 'utf8');
  const c = LoraConfig.fromJSON(text);
  expect(c.trainableTokenIndices).toEqual({ embed_tokens: [128, 130, 5], lm_head: [129, 3] });
  expect(JSON.parse(c.toJSONString()).trainable_token_indices).toEqual({ embed_tokens: [128, 130, 5], lm_head: [129, 3] });
  const l = new LoraConfig({ trainableTokenIndices: [3, 7] });
  expect(JSON.parse(l.toJSONString()).trainable_token_indices).toEqual([3, 7]);
});

test('disableAdapter gives the base model back; a bfloat16 base keeps the trained rows in float32 (autocast)', async () => {
  const peft = await loadPeft('untied');
  const ids = expected['untied.input_ids'];
  const withRows = peft.forward({ inputIds: ids }).logits;
  const bare = peft.disableAdapter(() => peft.forward({ inputIds: ids }).logits);
  expect(maxAbsDiff(bare, withRows)).toBeGreaterThan(1e-3);
  // The base alone: the file's resized tables, without the rows or LoRA.
  const m = peft.unload() as LM;
  const base = m.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(bare, base)).toBe(0);
  for (const t of [withRows, bare, base]) t.dispose();
  m.dispose();

  const half = (await AutoModelForCausalLM.fromPretrained(TIED_BASE, { dtype: 'bfloat16' })) as unknown as LM;
  const model = getPeftModel(half, new LoraConfig({ targetModules: ['q_proj'], trainableTokenIndices: [3] }));
  const w = model.getBaseModel().model.embed_tokens as unknown as TrainableTokensWrapper;
  expect(w.token_adapter.trainable_tokens_delta.get('default')!.dtype).toBe('float32');
  expect(w.token_adapter.base_layer.weight.dtype).toBe('bfloat16');
  const logits = model.forward({ inputIds: tensor([[1, 3, 5]], { dtype: 'int64' }) }).logits;
  expect(logits.dtype).toBe('bfloat16');
  logits.dispose();
  model.dispose();
});

test('Gemma (scaled, tied embedding): untrained rows give the base logits, the scale applied as the embedding does', async () => {
  const base = (await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, 'gemma', 'base'))) as unknown as LM;
  const ids = tensor([[1, 3, 5, 7, 9]], { dtype: 'int64' });
  const before = base.forward({ inputIds: ids }).logits;
  const peft = getPeftModel(base, new LoraConfig({ targetModules: ['q_proj'], trainableTokenIndices: [3, 7] }));
  expect(peft.getBaseModel().lm_head).toBeInstanceOf(TrainableTokensWrapper);
  const after = peft.forward({ inputIds: ids }).logits;
  expect(maxAbsDiff(after, before)).toBeLessThan(1e-6);
  for (const t of [ids, before, after]) t.dispose();
  peft.dispose();
});

test('mergeAndUnload of the PEFT-made untied adapter: plain tables with the rows written in, PEFT logits', async () => {
  const peft = await loadPeft('untied');
  const m = peft.mergeAndUnload() as LM;
  expect(m.model.embed_tokens).toBeInstanceOf(Embedding);
  expect(m.lm_head).toBeInstanceOf(Linear);
  const logits = m.forward({ inputIds: expected['untied.input_ids'] }).logits;
  expect(maxAbsDiff(logits, expected['untied.logits'])).toBeLessThan(1e-5);
  logits.dispose();
  m.dispose();
});
