// An adapter folder is enough, as in PEFT: AutoPeftModelForCausalLM.fromPretrained(adapterDir) loads the
// base model its adapter_config.json names, PeftModel.generate() generates with the adapter, and the CLI's
// generate and merge take just --adapter (generate also --tokenizer, as train does).
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, AutoPeftModelForCausalLM, generate, PeftModel, tensor } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

let dir: string;
let model: string;
let adapter: string;
beforeAll(async () => {
  dir = tmpDir('autopeft');
  model = makeModelDir(dir);
  adapter = path.join(dir, 'adapter');
  const data = makeDataFile(dir, 8);
  const r = await cli('train', '--model', model, '--data', data, '--output', adapter, '--max-steps', '2', '--batch-size', '4', '--lr', '0.05', '--report', 'none');
  expect([r.code, r.err]).toEqual([0, '']);
});

test("AutoPeftModelForCausalLM.fromPretrained(adapterDir) and PeftModel.generate() give what the base model with the adapter gives", async () => {
  const auto = await AutoPeftModelForCausalLM.fromPretrained(adapter);
  expect(auto).toBeInstanceOf(PeftModel);
  expect(auto.getBaseModel().nameOrPath).toBe(path.resolve(model));
  const base = await AutoModelForCausalLM.fromPretrained(model);
  const manual = await PeftModel.fromPretrained(base, adapter);
  const ids = tensor([[1, 5, 6, 7]], { dtype: 'int64' });
  const a = auto.generate(ids, { maxNewTokens: 6, eosTokenId: null });
  const b = generate(manual.getBaseModel(), ids, { maxNewTokens: 6, eosTokenId: null });
  expect(Array.from(a.data() as BigInt64Array)).toEqual(Array.from(b.data() as BigInt64Array));
  expect(a.shape).toEqual([1, 10]);
  [ids, a, b].forEach((t) => t.dispose());
  auto.dispose();
  manual.dispose();
});

test('AutoPeftModelForCausalLM: a base_model_name_or_path that is not a folder here is an error saying what to do', async () => {
  const moved = path.join(dir, 'moved');
  fs.mkdirSync(moved);
  for (const f of fs.readdirSync(adapter)) if (f.startsWith('adapter_')) fs.copyFileSync(path.join(adapter, f), path.join(moved, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(moved, 'adapter_config.json'), 'utf8'));
  cfg.base_model_name_or_path = '/nowhere/llama';
  fs.writeFileSync(path.join(moved, 'adapter_config.json'), JSON.stringify(cfg));
  await expect(AutoPeftModelForCausalLM.fromPretrained(moved)).rejects.toThrow(
    /the base model '\/nowhere\/llama' that '.*adapter_config.json' names \(base_model_name_or_path\) is not a model folder here .*PeftModel.fromPretrained\(base, /,
  );
  const g = await cli('generate', '--adapter', moved, '--prompt', 'ab');
  expect(g.code).toBe(1);
  expect(g.err).toMatch(/\(the CLI: --model DIR\)/);
});

test('CLI: generate and merge with just --adapter; generate --tokenizer', async () => {
  const withModel = await cli('generate', '--model', model, '--adapter', adapter, '--prompt', 'ab ->', '--max-new-tokens', '5');
  const adapterOnly = await cli('generate', '--adapter', adapter, '--prompt', 'ab ->', '--max-new-tokens', '5');
  expect([adapterOnly.code, adapterOnly.err]).toEqual([0, '']);
  expect(adapterOnly.out).toBe(withModel.out);
  const tok = await cli('generate', '--adapter', adapter, '--tokenizer', model, '--prompt', 'ab ->', '--max-new-tokens', '5');
  expect(tok.out).toBe(withModel.out);
  const badTok = await cli('generate', '--adapter', adapter, '--tokenizer', path.join(dir, 'nope'), '--prompt', 'ab');
  expect([badTok.code, badTok.err]).toEqual([1, expect.stringContaining(`tokenizer folder '${path.join(dir, 'nope')}' does not exist`)]);
  const none = await cli('generate', '--prompt', 'ab');
  expect([none.code, none.err]).toEqual([2, expect.stringContaining('missing --model DIR (or --adapter DIR, whose adapter_config.json names its base model)')]);
  const merged = path.join(dir, 'merged');
  const m = await cli('merge', '--adapter', adapter, '--output', merged);
  expect([m.code, m.err]).toEqual([0, '']);
  expect(fs.existsSync(path.join(merged, 'model.safetensors'))).toBe(true);
});
