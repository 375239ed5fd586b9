// Mistakes are named the way the user made them: a CLI flag by the flag typed (--epochs, not
// numTrainEpochs), before anything is loaded; a negative value is a value (--lr -1), not a flag; the
// adapter records --model as an absolute path; and a misspelt key of a JavaScript options object is an
// error, not a default silently used.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, DataLoader, generate, loadDataset, packDataset, PeftModel, tensor, Trainer } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { randomExamples, tinyLoraModel, TINY_LLAMA, tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
beforeAll(() => {
  dir = tmpDir('flags');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 8);
});

test.each([
  [['--epochs', '0'], '--epochs must be a positive number, got 0'],
  [['--lr', '-1'], '--lr must be a non-negative number, got -1'],
  [['--lr', '-.5'], '--lr must be a non-negative number, got -0.5'],
  [['--batch-size', '0'], '--batch-size must be a positive integer, got 0'],
  [['--grad-accum', '0'], '--grad-accum must be a positive integer, got 0'],
  [['--max-steps', '-3'], '--max-steps must be a positive integer (or -1), got -3'],
  [['--warmup-ratio', '2'], '--warmup-ratio must be a number in [0, 1], got 2'],
  [['--r', '0'], '--r must be a positive integer, got 0'],
  [['--lora-dropout', '2'], '--lora-dropout must be a probability in [0, 1), got 2'],
])('train %j: "%s", before the model is loaded', async (argv, message) => {
  const r = await cli('train', '--model', model, '--data', data, '--output', path.join(dir, 'never'), '--report', 'none', ...argv);
  expect([r.code, r.err]).toEqual([2, `torch-lora train: ${message}\nSee 'torch-lora train --help'.\n`]);
  expect(r.out).toBe('');
});

test("train records --model as an absolute path in adapter_config.json's base_model_name_or_path", async () => {
  const out = path.join(dir, 'abs');
  const relative = path.relative(process.cwd(), model);
  expect(path.isAbsolute(relative)).toBe(false);
  const r = await cli('train', '--model', relative, '--data', data, '--output', out, '--max-steps', '1', '--batch-size', '4', '--report', 'none');
  expect([r.code, r.err]).toEqual([0, '']);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe(path.resolve(model));
});

test('a misspelt key of an options object is an error naming it', async () => {
  const m = await tinyLoraModel(0);
  const ds = randomExamples(4, 1);
  const js = <T>(x: unknown) => x as T; // what a JavaScript caller, without types, can pass
  expect(() => new Trainer(js({ model: m, trainDataset: ds, args: { outputDir: tmpDir('o') }, evalDataSet: ds }))).toThrow(
    "Trainer: unknown option 'evalDataSet' (options: model, args, trainDataset, evalDataset, tokenizer, padTokenId, callbacks, packing, stream, optimizers, computeMetrics, preprocessLogitsForMetrics)",
  );
  const t = new Trainer({ model: m, trainDataset: ds, args: { outputDir: tmpDir('o'), report: 'none' } });
  await expect(t.train(js({ resumeFromCheckpoints: true }))).rejects.toThrow("Trainer.train: unknown option 'resumeFromCheckpoints'");
  expect(() => new DataLoader(ds, js({ batchsize: 2 }))).toThrow("DataLoader: unknown option 'batchsize'");
  expect(() => packDataset(ds, js({ seqLen: 8, eosTokenId: 2, seq_len: 4 }))).toThrow("packDataset: unknown option 'seq_len'");
  expect(() => loadDataset(data, js({}), js({ max_length: 8 }))).toThrow("loadDataset: unknown option 'max_length'");
  expect(() => generate(m.getBaseModel() as never, tensor([[1, 2]], { dtype: 'int64' }), js({ maxNewToken: 2 }))).toThrow("generate: unknown option 'maxNewToken'");
  await expect(AutoModelForCausalLM.fromPretrained(TINY_LLAMA, js({ dtyp: 'bfloat16' }))).rejects.toThrow("AutoModelForCausalLM.fromPretrained: unknown option 'dtyp'");
  await expect(m.savePretrained(tmpDir('o'), js({ safe_serialization: false }))).rejects.toThrow("PeftModel.savePretrained: unknown option 'safe_serialization'");
  const base = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA);
  await expect(PeftModel.fromPretrained(base, tmpDir('o'), js({ istrainable: true }))).rejects.toThrow("PeftModel.fromPretrained: unknown option 'istrainable'");
  base.dispose();
  m.dispose();
});
