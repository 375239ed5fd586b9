// The commands doing their jobs on a small model folder: train (flags over a config file, checkpoints,
// resuming the latest), inspect (the adapter's modules and counts), generate (with and without the
// adapter), and merge (a Hugging Face folder that loads as a plain model and computes what the base with
// the adapter computes).
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, PeftModel, readSafetensorsHeader, scope, tensor, Tensor } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
let out: string;
beforeAll(async () => {
  dir = tmpDir('cli-cmd');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 24);
  out = path.join(dir, 'out');
  const cfg = path.join(dir, 'run.json');
  // The config asks for 20 steps and rank 4; the flags override the steps.
  fs.writeFileSync(cfg, JSON.stringify({ r: 4, 'lora-alpha': 8, targetModules: 'q_proj,v_proj,o_proj', lr: 0.01, 'batch-size': 4, 'max-steps': 20, 'logging-steps': 2, report: 'plain' }));
  const r = await cli('train', '--config', cfg, '--model', model, '--data', data, '--output', out, '--max-steps', '6', '--save-steps', '3', '--eval-split', '0.25', '--seed', '1');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toContain('18 training examples, 6 for evaluation');
  expect(r.out).toMatch(/^step 6\/6 \| epoch [\d.]+ \| loss \d/m);
  expect(r.out).toMatch(/^step 6\/6 \| epoch [\d.]+ \| eval_loss \d/m);
  expect(r.out).toContain(`adapter: ${out}`);
});

test('train writes the adapter, the log, the loss curve and checkpoints; flags beat the config', () => {
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'trainer_log.jsonl', 'training_loss.svg', 'trainer_state.json', 'checkpoint-3', 'checkpoint-6'])
    expect(fs.existsSync(path.join(out, f))).toBe(true);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
  expect([cfg.r, cfg.lora_alpha, [...cfg.target_modules].sort(), cfg.task_type, cfg.peft_type]).toEqual([4, 8, ['o_proj', 'q_proj', 'v_proj'], 'CAUSAL_LM', 'LORA']);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8')).global_step).toBe(6);
});

test('train --resume-from-checkpoint latest continues to the same adapter', async () => {
  const again = path.join(dir, 'again');
  fs.cpSync(path.join(out, 'checkpoint-3'), path.join(again, 'checkpoint-3'), { recursive: true });
  const cfg = path.join(dir, 'run.json');
  const r = await cli('train', '--config', cfg, '--model', model, '--data', data, '--output', again, '--max-steps', '6', '--save-steps', '3', '--eval-split', '0.25', '--seed', '1', '--resume-from-checkpoint', 'latest');
  expect(r.code).toBe(0);
  expect(r.out).toContain(`resuming from ${path.join(again, 'checkpoint-3')} at step 3`);
  const a = fs.readFileSync(path.join(out, 'adapter_model.safetensors'));
  const b = fs.readFileSync(path.join(again, 'adapter_model.safetensors'));
  expect(b.equals(a)).toBe(true);
});

test('inspect: every adapted module with its rank, and the counts', async () => {
  const r = await cli('inspect', out, '--model', model, '--json');
  expect(r.code).toBe(0);
  const rep = JSON.parse(r.out);
  expect(rep.modules).toHaveLength(9); // 3 layers × q, v, o
  for (const m of rep.modules) expect([m.rank, m.alpha, m.scaling, m.kind]).toEqual([4, 8, 2, 'linear']);
  const q = rep.modules.find((m: { module: string }) => m.module === 'model.layers.0.self_attn.v_proj');
  expect([q.inFeatures, q.outFeatures, q.parameters]).toEqual([48, 24, 4 * 48 + 24 * 4]);
  const header = readSafetensorsHeader(path.join(out, 'adapter_model.safetensors'));
  const total = [...header.tensors.values()].reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
  expect(rep.loraParameters).toBe(total);
  expect(rep.baseParameters).toBe(74832);
  const text = await cli('inspect', out);
  expect(text.out).toMatch(/^  model\.layers\.2\.self_attn\.v_proj\s+linear\s+4\s+8\s+2\s+48\s+24\s+288$/m);
  expect(text.out).toContain('9 LoRA modules, rank 4: 3,168 parameters');
});

test('generate: greedy continuations, the adapter changes them', async () => {
  const base = await cli('generate', '--model', model, '--prompt', 'shift cat ->', '--prompt', 'copy ab ->', '--max-new-tokens', '5');
  const tuned = await cli('generate', '--model', model, '--adapter', out, '--prompt', 'shift cat ->', '--prompt', 'copy ab ->', '--max-new-tokens', '5');
  for (const r of [base, tuned]) {
    expect(r.code).toBe(0);
    const parts = r.out.split('\n\n');
    expect(parts).toHaveLength(2);
    expect(parts[0].startsWith('shift cat ->')).toBe(true);
    expect(parts[1].startsWith('copy ab ->')).toBe(true);
  }
  // The same call twice gives the same text (greedy); sampling with a seed is repeatable too.
  expect(tuned.out).not.toBe(base.out);
  expect((await cli('generate', '--model', model, '--prompt', 'shift cat ->', '--prompt', 'copy ab ->', '--max-new-tokens', '5')).out).toBe(base.out);
  const s1 = await cli('generate', '--model', model, '--prompt', 'x', '--do-sample', '--seed', '3', '--only-new', '--max-new-tokens', '8');
  const s2 = await cli('generate', '--model', model, '--prompt', 'x', '--do-sample', '--seed', '3', '--only-new', '--max-new-tokens', '8');
  expect(s1.code).toBe(0);
  expect(s1.out).toBe(s2.out);
});

/** A copy of the model folder with config.json / generation_config.json edited. */
function variant(name: string, edit: { config?: Record<string, unknown>; generation?: Record<string, unknown> }): string {
  const v = path.join(dir, name);
  fs.mkdirSync(v, { recursive: true });
  for (const f of fs.readdirSync(model)) fs.copyFileSync(path.join(model, f), path.join(v, f));
  for (const [file, extra] of [['config.json', edit.config], ['generation_config.json', edit.generation]] as const) {
    if (extra === undefined) continue;
    const j = JSON.parse(fs.readFileSync(path.join(v, file), 'utf8'));
    fs.writeFileSync(path.join(v, file), JSON.stringify({ ...j, ...extra }));
  }
  return v;
}

test("generate: what the command line leaves out comes from generation_config.json (eos list, sampling)", async () => {
  const args = ['--prompt', 'shift cat ->', '--only-new', '--max-new-tokens', '6'];
  const greedy = await cli('generate', '--model', model, ...args);
  // The second greedy token as an extra end token in generation_config.json: the text stops before it.
  const lib = await import('../lib');
  const tok = await lib.AutoTokenizer.fromPretrained(model);
  const m = await lib.AutoModelForCausalLM.fromPretrained(model);
  const prompt = tok.encode('shift cat ->');
  const newIds = lib.scope(() => (m.generate(lib.tensor([prompt], { dtype: 'int64' }), { maxNewTokens: 6, eosTokenId: null }).tolist() as number[][])[0].slice(prompt.length));
  m.dispose();
  expect(tok.decode(newIds, { skipSpecialTokens: true })).toBe(greedy.out.replace(/\n$/, ''));
  const stopAt = variant('gen-eos', { generation: { eos_token_id: [2, newIds[1]] } });
  const stopped = await cli('generate', '--model', stopAt, ...args);
  expect(stopped.code).toBe(0);
  expect(stopped.out.length).toBeLessThan(greedy.out.length);
  expect(greedy.out.startsWith(stopped.out.trim())).toBe(true);
  // do_sample with top_k 1 from the file: sampling that can only take the greedy token; the flags still win.
  const sampled = await cli('generate', '--model', variant('gen-sample', { generation: { do_sample: true, top_k: 1 } }), ...args, '--seed', '1');
  expect(sampled.out).toBe(greedy.out);
  const wide = await cli('generate', '--model', variant('gen-sample2', { generation: { do_sample: true, top_k: 1 } }), ...args, '--seed', '1', '--top-k', '0');
  expect(wide.code).toBe(0);
  expect(wide.out).not.toBe(greedy.out); // --top-k 0 overrides the file's top_k 1 (a random tiny model is nearly uniform)
});

test('generate: a float16 checkpoint on a CPU libtorch without float16 matmul loads as float32, with a note; --dtype float16 is a usage error', async () => {
  const { cpuFloat16Unsupported } = await import('../lib/train/precision');
  const half = variant('half', { config: { dtype: 'float16', torch_dtype: 'float16' } });
  const args = ['--prompt', 'shift cat ->', '--only-new', '--max-new-tokens', '4'];
  const r = await cli('generate', '--model', half, ...args);
  expect(r.code).toBe(0);
  const forced = await cli('generate', '--model', half, ...args, '--dtype', 'float16');
  if (cpuFloat16Unsupported() !== undefined) {
    expect(r.out).toMatch(/^note: the checkpoint is float16, which libtorch [\d.]+ cannot run on the CPU; loading it as float32$/m);
    const f32 = await cli('generate', '--model', half, ...args, '--dtype', 'float32');
    expect(r.out.split('\n').slice(1).join('\n')).toBe(f32.out);
    expect(forced.code).toBe(2);
    expect(forced.err).toMatch(/--dtype float16: libtorch [\d.]+ cannot multiply float16 matrices on the CPU .*use --dtype bfloat16 or float32, or --device cuda/);
  } else {
    expect(r.out).not.toContain('note:');
    expect(forced.code).toBe(0);
  }
});

test('merge: a plain Hugging Face folder computing what base + adapter compute', async () => {
  const merged = path.join(dir, 'merged');
  const r = await cli('merge', '--model', model, '--adapter', out, '--output', merged);
  expect(r.code).toBe(0);
  expect(r.out).toContain('merged 9 LoRA modules');
  expect(fs.readdirSync(merged).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const keys = Object.keys(loadSafetensorsSync(path.join(model, 'model.safetensors'))).sort();
  const mergedTensors = loadSafetensorsSync(path.join(merged, 'model.safetensors'));
  expect(Object.keys(mergedTensors).sort()).toEqual(keys); // the base's names, no lora_ keys
  Object.values(mergedTensors).forEach((t) => t.dispose());

  const ids = tensor([[1, 5, 9, 33, 17, 64, 101, 7]], { dtype: 'int64' });
  const plain = await AutoModelForCausalLM.fromPretrained(merged);
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
  const diff = scope(() => {
    const a = plain.forward({ inputIds: ids }).logits;
    const b = (peft.forward({ inputIds: ids }) as { logits: typeof a }).logits;
    return a.sub(b).abs().max().item() as number;
  });
  expect(diff).toBeLessThan(1e-5);
  const base = await AutoModelForCausalLM.fromPretrained(model);
  const changed = scope(() => plain.forward({ inputIds: ids }).logits.sub(base.forward({ inputIds: ids }).logits).abs().max().item() as number);
  expect(changed).toBeGreaterThan(1e-3); // the adapter did something
  [plain, peft, base, ids].forEach((m) => m.dispose());

  const again = await cli('merge', '--model', model, '--adapter', out, '--output', merged);
  expect(again.code).toBe(2);
  expect(again.err).toContain('already holds a model.safetensors; pass --force');
});

test('merge --max-shard-size: shards with an index computing the same; --force replaces them; a bad size is a usage error', async () => {
  const sharded = path.join(dir, 'merged-sharded');
  const r = await cli('merge', '--model', model, '--adapter', out, '--output', sharded, '--max-shard-size', '100KB');
  expect(r.code).toBe(0);
  const shards = fs.readdirSync(sharded).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  expect(shards.length).toBeGreaterThan(1);
  expect(r.out).toContain(`model.safetensors.index.json + ${shards.length} shards`);
  expect(fs.readdirSync(sharded).sort()).toEqual(['config.json', 'generation_config.json', ...shards, 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json'].sort());
  const ids = tensor([[1, 5, 9, 33, 17, 64, 101, 7]], { dtype: 'int64' });
  const plain = await AutoModelForCausalLM.fromPretrained(sharded);
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
  const diff = scope(() => plain.forward({ inputIds: ids }).logits.sub((peft.forward({ inputIds: ids }) as { logits: Tensor }).logits).abs().max().item() as number);
  expect(diff).toBeLessThan(1e-5);
  [plain, peft, ids].forEach((m) => m.dispose());

  const again = await cli('merge', '--model', model, '--adapter', out, '--output', sharded);
  expect(again.code).toBe(2);
  expect(again.err).toContain('already holds a model.safetensors.index.json; pass --force');
  const forced = await cli('merge', '--model', model, '--adapter', out, '--output', sharded, '--force');
  expect(forced.code).toBe(0);
  expect(fs.readdirSync(sharded).filter((f) => f.startsWith('model'))).toEqual(['model.safetensors']);

  const bad = await cli('merge', '--model', model, '--adapter', out, '--output', path.join(dir, 'never'), '--max-shard-size', '5GiB');
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("--max-shard-size: '5GiB' is not a size: expected a number and a unit KB, MB, GB or TB");
  expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
});
