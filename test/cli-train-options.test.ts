// `torch-lora train` options doing what they say, each a few steps on the small model folder next to
// one baseline run (float32, prompt-completion data, same seed): chat data trains exactly what the same
// records as prompt/completion train; --gradient-checkpointing gives the baseline's adapter; --dtype
// bfloat16 keeps the adapter in float32 and the losses near float32's; --packing trains as padding does
// (bfd) or fills every row (wrapped);
// --use-dora adds the magnitudes; --eval-data is what is evaluated; and the LoRA flags (and the same
// keys in --config) end up in adapter_config.json and the adapter's tensors.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadDataset, packDataset, PeftModel, readSafetensorsHeader, torchVersion, Trainer } from '../lib';
import { AutoTokenizer } from '../lib/data';
import { finetuneSamples, toJsonl } from '../lib/demo/synthetic-language';
import { cpuFloat16Unsupported, JsonlLog } from '../lib/train';
import { adapterFile, cli, CliResult, loggedLosses, makeDataFile, makeModelDir } from './helpers/cli';
import { maxFileDiff, tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
let baseline: string;
// Few steps, no LoRA dropout (so that runs can be compared exactly), plain output.
const COMMON = ['--r', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lr', '0.01', '--batch-size', '4', '--max-steps', '3', '--logging-steps', '1', '--seed', '1', '--report', 'none'];

async function train(name: string, ...argv: string[]): Promise<{ out: string; r: CliResult }> {
  const out = path.join(dir, name);
  const r = await cli('train', '--model', model, '--output', out, ...COMMON, ...argv);
  expect([name, r.code, r.err]).toEqual([name, 0, '']);
  return { out, r };
}
const losses = loggedLosses;
const adapterConfig = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
const trainingArgs = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'training_args.json'), 'utf8'));

beforeAll(async () => {
  dir = tmpDir('cli-opt');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 16);
  baseline = (await train('baseline', '--data', data)).out;
  expect(losses(baseline)).toHaveLength(3);
});

test('chat data ({"messages"}): the loss on the assistant turns only, the same training as prompt/completion', async () => {
  // The demo template renders [user q, assistant a] as `<s>q -> a</s>`: the prompt/completion record
  // {prompt: 'q ->', completion: ' a'} with its EOS, the loss on ' a</s>' in both.
  const chat = path.join(dir, 'chat.jsonl');
  const lines = finetuneSamples(16, 0).map((s) =>
    JSON.stringify({ messages: [{ role: 'user', content: s.prompt.slice(0, -' ->'.length) }, { role: 'assistant', content: s.completion.slice(1) }] }),
  );
  fs.writeFileSync(chat, lines.join('\n') + '\n');
  const { out, r } = await train('chat', '--data', chat);
  expect(r.out).toContain('16 training examples');
  expect(losses(out)).toEqual(losses(baseline));
  expect(maxFileDiff(adapterFile(out), adapterFile(baseline))).toBe(0);
});

test('--gradient-checkpointing trains to the same adapter', async () => {
  const { out } = await train('gc', '--data', data, '--gradient-checkpointing');
  expect(trainingArgs(out).gradient_checkpointing).toBe(true);
  expect(losses(baseline).length).toBeGreaterThan(0);
  expect(losses(out)).toHaveLength(losses(baseline).length);
  losses(out).forEach((l, i) => expect(Math.abs(l - losses(baseline)[i])).toBeLessThan(1e-5));
  expect(maxFileDiff(adapterFile(out), adapterFile(baseline))).toBeLessThan(1e-5);
});

test('--dtype bfloat16: the base in bfloat16, the adapter in float32, losses at bfloat16 resolution of float32s', async () => {
  const { out } = await train('bf16', '--data', data, '--dtype', 'bfloat16');
  expect(trainingArgs(out).dtype).toBe('bfloat16');
  expect(new Set([...readSafetensorsHeader(adapterFile(out)).tensors.values()].map((e) => e.dtype))).toEqual(new Set(['float32']));
  const [a, b] = [losses(out), losses(baseline)];
  expect(b.length).toBeGreaterThan(0);
  expect(a).toHaveLength(b.length);
  a.forEach((l, i) => expect(Math.abs(l - b[i])).toBeLessThan(0.05));
  expect(a).not.toEqual(b); // the base really ran in bfloat16
});

test('--packing (bfd): whole examples in rows of up to --seq-len, training as the padded batch of the same examples', async () => {
  // One micro-batch holds every example (padded) or every row (packed): the same label tokens, each
  // predicted from its own example only, so the same losses and (after AdamW) the same adapter.
  const padded = await train('padded-16', '--data', data, '--batch-size', '16');
  const { out, r } = await train('packed', '--data', data, '--packing', '--seq-len', '64', '--batch-size', '16');
  const tok = await AutoTokenizer.fromPretrained(model);
  const rows = packDataset(loadDataset(data, tok), { seqLen: 64, eosTokenId: tok.eosTokenId });
  expect(rows.length).toBeLessThan(16);
  expect(r.out).toContain(`packing (bfd): 16 examples in ${rows.length} rows of up to 64 tokens`);
  expect(r.out).toContain(`${rows.length} training examples`);
  losses(out).forEach((l, i) => expect(Math.abs(l - losses(padded.out)[i])).toBeLessThan(1e-5));
  expect(maxFileDiff(adapterFile(out), adapterFile(padded.out))).toBeLessThan(1e-5);
  const seen = (o: string) => JSON.parse(fs.readFileSync(path.join(o, 'trainer_state.json'), 'utf8')).num_input_tokens_seen;
  expect(seen(out)).toBe(3 * rows.toArray().reduce((n, row) => n + row.inputIds.length, 0));
  expect(seen(out)).toBe(seen(padded.out));
});

test('--packing-strategy wrapped: blocks of --seq-len tokens, every row full (no padding)', async () => {
  const { out, r } = await train('wrapped', '--data', data, '--packing', '--packing-strategy', 'wrapped', '--seq-len', '32');
  const tok = await AutoTokenizer.fromPretrained(model);
  const blocks = packDataset(loadDataset(data, tok), { seqLen: 32, eosTokenId: tok.eosTokenId, strategy: 'wrapped' });
  expect(r.out).toContain(`${blocks.length} training examples`);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  // 3 steps of 4 rows (the last batch of an epoch fewer), each row 32 real tokens.
  const perEpoch = Array.from({ length: Math.ceil(blocks.length / 4) }, (_, i) => Math.min(4, blocks.length - 4 * i));
  const rows = [0, 1, 2].reduce((n, step) => n + perEpoch[step % perEpoch.length], 0);
  expect(state.num_input_tokens_seen).toBe(rows * 32);
});

test('--packing-strategy and --seq-len without --packing, or an unknown strategy: usage errors naming the flag', async () => {
  const out = path.join(dir, 'never');
  for (const [argv, msg] of [
    [['--packing-strategy', 'wrapped'], '--packing-strategy is for --packing; add --packing or leave it out'],
    [['--seq-len', '64'], '--seq-len is for --packing; add --packing or leave it out'],
    [['--packing', '--packing-strategy', 'ffd'], "--packing-strategy must be one of bfd, wrapped, got 'ffd'"],
  ]) {
    const r = await cli('train', '--model', model, '--data', data, '--output', out, ...argv);
    expect([r.code, r.err]).toEqual([2, expect.stringContaining(msg as string)]);
  }
  expect(fs.existsSync(out)).toBe(false);
});

test('--use-dora: a DoRA adapter (magnitude vectors) in PEFT format', async () => {
  const { out } = await train('dora', '--data', data, '--use-dora', '--target-modules', 'q_proj,v_proj');
  expect(adapterConfig(out).use_dora).toBe(true);
  const keys = [...readSafetensorsHeader(adapterFile(out)).tensors.keys()];
  expect(keys.filter((k) => k.endsWith('lora_magnitude_vector')).length).toBe(6); // 3 layers × q, v
});

test('--eval-data: that file is evaluated (the logged eval_loss is its loss under the trained adapter)', async () => {
  const evalFile = path.join(dir, 'eval.jsonl');
  fs.writeFileSync(evalFile, toJsonl(finetuneSamples(22, 0).slice(16))); // 6 records after the 16 of --data
  const { out, r } = await train('eval', '--data', data, '--eval-data', evalFile);
  expect(r.out).toContain('16 training examples, 6 for evaluation');
  const logged = JsonlLog.read(path.join(out, 'trainer_log.jsonl')).filter((e) => e.eval_loss !== undefined);
  expect(logged.map((e) => e.step)).toEqual([3]);
  const tok = await AutoTokenizer.fromPretrained(model);
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out, { isTrainable: true });
  const t = new Trainer({ model: peft, trainDataset: loadDataset(data, tok), evalDataset: loadDataset(evalFile, tok), tokenizer: tok, args: { outputDir: path.join(dir, 'unused'), perDeviceEvalBatchSize: 4, report: 'none' } });
  expect(Math.abs(t.evaluate().eval_loss - logged[0].eval_loss!)).toBeLessThan(1e-6);
  peft.dispose();
});

test('LoRA flags and the same keys in --config: adapter_config.json and the tensors follow them', async () => {
  const flags = {
    'target-modules': 'q_proj,v_proj,o_proj',
    'exclude-modules': 'model.layers.1.self_attn.o_proj',
    'layers-to-transform': '1,2',
    'layers-pattern': 'layers',
    'rank-pattern': 'v_proj=2',
    'alpha-pattern': 'v_proj=4',
    bias: 'all',
    'modules-to-save': 'lm_head',
    'init-lora-weights': 'false',
  };
  const argv = Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);
  // PEFT warns that a lora_B bias on a Linear without a bias cannot be merged; it is expected here.
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  const { out } = await train('lora-flags', '--data', data, ...argv, '--lora-bias');
  expect(warn.mock.calls.some(([m]) => String(m).includes('`lora_bias=True` was passed but the targeted layer of type Linear has no bias'))).toBe(true);
  const cfg = adapterConfig(out);
  expect([[...cfg.target_modules].sort(), cfg.exclude_modules, cfg.layers_to_transform, cfg.layers_pattern]).toEqual([
    ['o_proj', 'q_proj', 'v_proj'],
    ['model.layers.1.self_attn.o_proj'],
    [1, 2],
    'layers',
  ]);
  expect([cfg.rank_pattern, cfg.alpha_pattern, cfg.bias, cfg.lora_bias, cfg.modules_to_save, cfg.init_lora_weights]).toEqual([{ v_proj: 2 }, { v_proj: 4 }, 'all', true, ['lm_head'], false]);
  const tensors = readSafetensorsHeader(adapterFile(out)).tensors;
  const adapted = [...new Set([...tensors.keys()].filter((k) => k.includes('.lora_A.')).map((k) => k.replace(/^base_model\.model\./, '').replace(/\.lora_A\..*$/, '')))].sort();
  // Layers 1 and 2 only, and not the excluded o_proj.
  expect(adapted).toEqual(['model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj', 'model.layers.2.self_attn.o_proj', 'model.layers.2.self_attn.q_proj', 'model.layers.2.self_attn.v_proj']);
  expect(tensors.get('base_model.model.model.layers.2.self_attn.v_proj.lora_A.weight')!.shape).toEqual([2, 48]); // rank-pattern
  expect(tensors.get('base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 48]);
  expect([...tensors.keys()].filter((k) => k.endsWith('lora_B.bias')).length).toBe(5); // lora-bias
  expect([...tensors.keys()].some((k) => k.includes('lm_head'))).toBe(true); // modules-to-save

  // The same settings from a config file (kebab-case and camelCase keys, JSON types) give the same adapter.
  const cfgFile = path.join(dir, 'lora.json');
  fs.writeFileSync(
    cfgFile,
    JSON.stringify({
      targetModules: ['q_proj', 'v_proj', 'o_proj'],
      'exclude-modules': ['model.layers.1.self_attn.o_proj'],
      layersToTransform: [1, 2],
      'layers-pattern': 'layers',
      'rank-pattern': { v_proj: 2 },
      alphaPattern: { v_proj: 4 },
      bias: 'all',
      modulesToSave: ['lm_head'],
      'init-lora-weights': false,
      'lora-bias': true,
    }),
  );
  const viaConfig = (await train('lora-config', '--data', data, '--config', cfgFile)).out;
  warn.mockRestore();
  expect(adapterConfig(viaConfig)).toEqual(cfg);
  expect(maxFileDiff(adapterFile(viaConfig), adapterFile(out))).toBe(0);
});

test('LoRA flags: bad combinations and values are usage errors; they cannot be given with --adapter', async () => {
  const cases: [string[], string][] = [
    [['--lora-bias', '--init-lora-weights', 'gaussian'], '--lora-bias is only supported with --init-lora-weights true or false, got "gaussian"'],
    [['--init-lora-weights', 'eva'], "--init-lora-weights must be one of true, false, gaussian, pissa, olora, got 'eva'"],
    [['--layers-to-transform', '1,x'], '--layers-to-transform expects a comma-separated list of integers, got "1,x"'],
    [['--rank-pattern', 'q_proj'], '--rank-pattern expects NAME=NUMBER pairs separated by commas, got "q_proj"'],
    [['--bias', 'some'], "--bias must be one of none, all, lora_only, got 'some'"],
    [['--adapter', baseline, '--r', '2', '--use-dora'], '--r, --use-dora: the adapter given with --adapter has its own LoRA settings'],
  ];
  for (const [argv, msg] of cases) {
    const r = await cli('train', '--model', model, '--data', data, '--output', path.join(dir, 'never'), '--report', 'none', ...argv);
    expect([argv, r.code]).toEqual([argv, 2]);
    expect(r.err).toContain(msg);
  }
  expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
});

test('--dtype float16 --device cpu: a usage error before the model is loaded where this libtorch has no CPU float16 matmul, else it trains', async () => {
  const why = cpuFloat16Unsupported();
  const out = path.join(dir, 'f16');
  const args = ['--output', out, ...COMMON, '--data', data, '--dtype', 'float16', '--device', 'cpu'];
  if (why !== undefined) {
    // A model folder whose weights cannot be read: refused before loading, the error is the dtype's, not the file's.
    const noWeights = path.join(dir, 'f16-model');
    fs.mkdirSync(noWeights, { recursive: true });
    for (const f of fs.readdirSync(model)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(model, f), path.join(noWeights, f));
    fs.writeFileSync(path.join(noWeights, 'model.safetensors'), 'not safetensors');
    const r = await cli('train', '--model', noWeights, ...args);
    expect([r.code, r.out]).toEqual([2, '']);
    expect(r.err).toContain(`--dtype float16: float16 weights cannot be trained on the CPU with libtorch ${torchVersion} (${why}); use --dtype bfloat16 or float32, or --device cuda`);
    expect(fs.existsSync(out)).toBe(false);
  } else {
    const r = await cli('train', '--model', model, ...args);
    expect([r.code, r.err]).toEqual([0, '']);
    expect(losses(out).length).toBeGreaterThan(0);
    expect(losses(out).every(Number.isFinite)).toBe(true);
  }
});
