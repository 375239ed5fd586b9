// AutoModelForCausalLM: config.json spellings of transformers 4 and 5, sharded and .bin checkpoints,
// bare base-model checkpoints, building on 'meta' (Llama-2-7B's count), and the errors it gives.
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensorsSync, memory, noGrad, ones, saveSafetensorsSync, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, GPT2LMHeadModel, LlamaForCausalLM, numParameters, parseLlamaConfig, readConfig } from '../lib/models';
import { settleGarbage } from './helpers/gc';
import { LLAMA2_7B_CONFIG } from './helpers/llama2-7b';
import { expected, FIXTURES, GPT2_DIR, LLAMA_DIR } from './helpers/models';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';
import { AutoTokenizer } from '../lib/data';
import { LoraConfig, PeftModel } from '../lib/peft';

let tmp: string;
beforeAll(() => (tmp = tmpDir('models')));

/** A model folder under tmp: config (object) and files (name -> source path or tensors). */
function folder(name: string, config: object | null, files: Record<string, string | Record<string, Tensor> | object>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  if (config !== null) fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  for (const [f, src] of Object.entries(files)) {
    if (typeof src === 'string') fs.copyFileSync(src, path.join(dir, f));
    else if (f.endsWith('.json')) fs.writeFileSync(path.join(dir, f), JSON.stringify(src));
    else saveSafetensorsSync(src as Record<string, Tensor>, path.join(dir, f));
  }
  return dir;
}

/** Loads dir and checks its logits against the fixture's expect.safetensors (within 1e-4). */
async function expectFixtureLogits(dir: string, fixture: string): Promise<void> {
  const model = await AutoModelForCausalLM.fromPretrained(dir);
  const ex = expected(fixture);
  try {
    scope(() => {
      const { logits } = noGrad(() => model.forward({ inputIds: ex.inputIds }));
      expect(maxAbsDiff(logits, ex.logits)).toBeLessThan(1e-4);
    });
  } finally {
    model.dispose();
    ex.inputIds.dispose();
    ex.logits.dispose();
  }
}

const llamaRaw = () => readConfig(LLAMA_DIR);
const llamaWeights = path.join(LLAMA_DIR, 'model.safetensors');

test('transformers 4 spelling (rope_theta, torch_dtype) and 5 spelling (rope_parameters, dtype) load alike', async () => {
  const v5 = llamaRaw();
  expect(v5.rope_parameters).toBeDefined();
  const { rope_parameters: _rp, dtype: _dt, ...rest } = v5;
  const v4 = { ...rest, rope_theta: 10000.0, rope_scaling: null, torch_dtype: 'float32', transformers_version: '4.46.0' };
  const a = parseLlamaConfig(v5);
  const b = parseLlamaConfig(v4);
  // The same model; `extra` keeps what each file had besides (its transformers_version, v4's own keys).
  expect({ ...b, extra: undefined }).toEqual({ ...a, extra: undefined });
  expect(a.rope).toMatchObject({ ropeType: 'default', ropeTheta: 10000 });
  expect(a.dtype).toBe('float32');
  // A different theta in either spelling is read.
  expect(parseLlamaConfig({ ...v4, rope_theta: 500000 }).rope.ropeTheta).toBe(500000);
  expect(parseLlamaConfig({ ...v5, rope_parameters: { rope_type: 'default', rope_theta: 123 } }).rope.ropeTheta).toBe(123);
  expect(parseLlamaConfig({ ...v4, torch_dtype: 'bfloat16' }).dtype).toBe('bfloat16');
  await expectFixtureLogits(folder('v4', v4, { 'model.safetensors': llamaWeights }), LLAMA_DIR);
});

test("dtype 'auto' (the default) takes the config's dtype", async () => {
  const dir = folder('auto-dtype', { ...llamaRaw(), dtype: 'bfloat16' }, { 'model.safetensors': llamaWeights });
  const m = (await AutoModelForCausalLM.fromPretrained(dir, { dtype: 'auto' })) as LlamaForCausalLM;
  expect(m.lm_head.weight.dtype).toBe('bfloat16');
  expect(m.model.rotary_emb.inv_freq.dtype).toBe('float32');
  m.dispose();
  // 'auto' is the default, as in transformers 5; an explicit dtype wins.
  const d = (await AutoModelForCausalLM.fromPretrained(dir)) as LlamaForCausalLM;
  expect(d.lm_head.weight.dtype).toBe('bfloat16');
  d.dispose();
  const f = (await AutoModelForCausalLM.fromPretrained(dir, { dtype: 'float32' })) as LlamaForCausalLM;
  expect(f.lm_head.weight.dtype).toBe('float32');
  f.dispose();
  // Without a dtype in the config, 'auto' keeps the checkpoint's (float32 here).
  const { dtype: _d, ...noDtype } = llamaRaw();
  const k = (await AutoModelForCausalLM.fromPretrained(folder('no-dtype', noDtype, { 'model.safetensors': llamaWeights }))) as LlamaForCausalLM;
  expect(k.lm_head.weight.dtype).toBe('float32');
  k.dispose();
});

test('a sharded checkpoint (model.safetensors.index.json) loads', async () => {
  const all = loadSafetensorsSync(llamaWeights);
  const names = Object.keys(all).sort();
  const half = Math.ceil(names.length / 2);
  const shard1 = Object.fromEntries(names.slice(0, half).map((k) => [k, all[k]]));
  const shard2 = Object.fromEntries(names.slice(half).map((k) => [k, all[k]]));
  const weightMap = Object.fromEntries(names.map((k, i) => [k, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
  const dir = folder('sharded', llamaRaw(), {
    'model-00001-of-00002.safetensors': shard1,
    'model-00002-of-00002.safetensors': shard2,
    'model.safetensors.index.json': { metadata: { total_size: 0 }, weight_map: weightMap },
  });
  for (const t of Object.values(all)) t.dispose();
  await expectFixtureLogits(dir, LLAMA_DIR);
  // A shard the index names must exist.
  fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
  await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow(/shard 'model-00002-of-00002.safetensors' .* does not exist/);
});

test('a bare GPT2Model checkpoint (keys without "transformer.", old attn.bias buffers) loads', async () => {
  const all = loadSafetensorsSync(path.join(GPT2_DIR, 'model.safetensors'));
  const bare: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(all)) bare[k.replace(/^transformer\./, '')] = t;
  // the causal-mask buffers old GPT-2 checkpoints carry (transformers ignores them)
  const made: Tensor[] = [];
  for (const i of [0, 1]) {
    const causal = ones([64, 64]).tril().bool().view(1, 1, 64, 64);
    const maskedBias = tensor(-1e4);
    bare[`h.${i}.attn.bias`] = causal;
    bare[`h.${i}.attn.masked_bias`] = maskedBias;
    made.push(causal, maskedBias);
  }
  const dir = folder('gpt2-bare', readConfig(GPT2_DIR), { 'model.safetensors': bare });
  for (const t of [...Object.values(all), ...made]) t.dispose();
  await expectFixtureLogits(dir, GPT2_DIR);
});

test('pytorch_model.bin (torch.save zip, written by PyTorch 1.13) loads, on meta too', async () => {
  const dir = path.join(FIXTURES, 'tiny-llama-bin');
  await expectFixtureLogits(dir, LLAMA_DIR);
  const meta = await AutoModelForCausalLM.fromPretrained(dir, { device: 'meta' });
  expect(numParameters(meta)).toBe(74832);
  meta.dispose();
});

test("Llama-2-7B's config built on 'meta' has 6,738,415,616 parameters and allocates nothing", async () => {
  await settleGarbage();
  const bytes = memory().bytes;
  const model = AutoModelForCausalLM.fromConfig(LLAMA2_7B_CONFIG, { device: 'meta' });
  expect(numParameters(model)).toBe(6738415616);
  expect(memory().bytes).toBe(bytes);
  expect([...model.parameters()].every((p) => p.device === 'meta')).toBe(true);
  expect([...model.parameters()][0].dtype).toBe('float32');
  model.dispose();
  // fromPretrained on meta reads only the headers (and still checks them).
  const meta = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { device: 'meta' });
  expect(memory().bytes).toBe(bytes);
  expect(numParameters(meta)).toBe(74832);
  meta.dispose();
});

test('fromConfig: random init as transformers (std initializer_range), untied or tied', () => {
  const m = AutoModelForCausalLM.fromConfig({ ...llamaRaw(), initializer_range: 0.5, tie_word_embeddings: true }) as LlamaForCausalLM;
  expect(m.lm_head.weight).toBe(m.model.embed_tokens.weight);
  expect(numParameters(m)).toBe(74832 - 128 * 48);
  const std = scope(() => m.model.layers.at(0).mlp.up_proj.weight.std().item() as number);
  expect(std).toBeGreaterThan(0.45);
  expect(std).toBeLessThan(0.55);
  expect(scope(() => m.model.norm.weight.eq(1).all().item())).toBe(true);
  m.dispose();
  const g = AutoModelForCausalLM.fromConfig(readConfig(GPT2_DIR));
  expect(g).toBeInstanceOf(GPT2LMHeadModel);
  g.dispose();
});

test('clear errors: unknown architecture, missing config or weights, shape mismatch, missing and unexpected keys', async () => {
  await expect(AutoModelForCausalLM.fromPretrained(path.join(tmp, 'nowhere'))).rejects.toThrow(/model folder '.*nowhere' does not exist/);
  await expect(AutoModelForCausalLM.fromPretrained(folder('no-config', null, { 'model.safetensors': llamaWeights }))).rejects.toThrow(
    /no config.json: '.*config.json' does not exist/,
  );
  const mamba = folder('mamba', { architectures: ['MambaForCausalLM'], model_type: 'mamba' }, {});
  await expect(AutoModelForCausalLM.fromPretrained(mamba)).rejects.toThrow(
    /unsupported architecture \(model_type 'mamba', architectures \["MambaForCausalLM"\]\); AutoModelForCausalLM supports LlamaForCausalLM/,
  );
  expect(() => AutoModelForCausalLM.fromConfig({ model_type: 'bert' })).toThrow(/unsupported architecture \(model_type 'bert'/);
  await expect(AutoModelForCausalLM.fromPretrained(folder('no-weights', llamaRaw(), {}))).rejects.toThrow(
    /no model weights in '.*no-weights': expected model.safetensors, model.safetensors.index.json, pytorch_model.bin/,
  );
  const wide = folder('wide', { ...llamaRaw(), intermediate_size: 64 }, { 'model.safetensors': llamaWeights });
  await expect(AutoModelForCausalLM.fromPretrained(wide)).rejects.toThrow(
    /model.layers.0.mlp.gate_proj.weight: 'model.safetensors' has shape \[96, 48\], the model expects \[64, 48\]/,
  );
  const all = loadSafetensorsSync(llamaWeights);
  const { 'model.norm.weight': norm, ...lacking } = all;
  const missing = folder('missing', llamaRaw(), { 'model.safetensors': lacking });
  await expect(AutoModelForCausalLM.fromPretrained(missing)).rejects.toThrow(/lacks weights of LlamaForCausalLM: missing keys: model.norm.weight/);
  const extra = folder('extra', llamaRaw(), { 'model.safetensors': { ...all, 'model.extra.weight': norm } });
  await expect(AutoModelForCausalLM.fromPretrained(extra)).rejects.toThrow(/unexpected keys \(not in LlamaForCausalLM\): model.extra.weight/);
  const lenient = await AutoModelForCausalLM.fromPretrained(extra, { strict: false });
  lenient.dispose();
  for (const t of Object.values(all)) t.dispose();
  // A failed load frees what it had loaded.
  await settleGarbage();
  const before = memory().tensors;
  await expect(AutoModelForCausalLM.fromPretrained(missing)).rejects.toThrow(/missing keys/);
  expect(memory().tensors).toBe(before);
});

test('architectures is the fallback for a model_type we do not know; the error lists what is supported', async () => {
  // A fine-tune that renamed model_type but kept transformers' class name is built by its class.
  const renamed = folder('renamed', { ...llamaRaw(), model_type: 'my-llama' }, { 'model.safetensors': llamaWeights });
  const m = await AutoModelForCausalLM.fromPretrained(renamed);
  expect(m).toBeInstanceOf(LlamaForCausalLM);
  expect(m.config.modelType).toBe('llama');
  m.dispose();
  expect(() => AutoModelForCausalLM.fromConfig({ model_type: 'mamba', architectures: ['MambaForCausalLM'] })).toThrow(
    /unsupported architecture \(model_type 'mamba', architectures \["MambaForCausalLM"\]\); AutoModelForCausalLM supports LlamaForCausalLM \(model_type 'llama'\), .*Qwen2ForCausalLM \(model_type 'qwen2'\), .*GPT2LMHeadModel \(model_type 'gpt2'\)/,
  );
});

test('a Hub id given for a model, tokenizer or adapter folder: only local folders are read, and how to download one', async () => {
  const hint = /'meta-llama\/Llama-3\.2-1B' is not a local folder: torch-lora reads only local folders and does not download from the Hugging Face Hub\. Download it first with `hf download meta-llama\/Llama-3\.2-1B --local-dir \.\/Llama-3\.2-1B` \(or `huggingface-cli download/;
  await expect(AutoModelForCausalLM.fromPretrained('meta-llama/Llama-3.2-1B')).rejects.toThrow(hint);
  expect(() => AutoTokenizer.fromPretrainedSync('meta-llama/Llama-3.2-1B')).toThrow(hint);
  const base = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR);
  await expect(PeftModel.fromPretrained(base, 'meta-llama/Llama-3.2-1B')).rejects.toThrow(/adapter folder 'meta-llama\/Llama-3\.2-1B' is not a local folder/);
  expect(() => LoraConfig.fromPretrained('tloen/alpaca-lora-7b')).toThrow(/adapter folder 'tloen\/alpaca-lora-7b' is not a local folder/);
  base.dispose();
  // A path (absolute, or with ./) that does not exist is just missing.
  await expect(AutoModelForCausalLM.fromPretrained('./no/such/dir')).rejects.toThrow(/model folder '.\/no\/such\/dir' does not exist/);
});
