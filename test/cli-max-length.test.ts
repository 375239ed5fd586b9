// Long records are cut as TRL cuts them: to --max-length, by default 1024 tokens and never more than the
// model's position table (max_position_embeddings), with a one-line note of how many were cut; a length
// beyond the position table is an error naming the flag, and the Trainer refuses such examples.
import * as fs from 'fs';
import * as path from 'path';
import { Dataset, Trainer } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tinyLoraModel, tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
beforeAll(() => {
  dir = tmpDir('maxlen');
  model = makeModelDir(dir); // tiny-llama: 128 positions; the demo tokenizer: a token per character
  data = makeDataFile(dir, 6);
  // One record of 300 characters (about 300 tokens), as the 35k-token record of the report was to its model.
  fs.appendFileSync(data, JSON.stringify({ prompt: 'abc ->', completion: ' ' + 'xyz '.repeat(74) }) + '\n');
});
const train = (out: string, ...extra: string[]) =>
  cli('train', '--model', model, '--data', data, '--output', path.join(dir, out), '--max-steps', '1', '--batch-size', '7', '--report', 'none', ...extra);

test("by default records are cut to the model's 128 positions, with a note", async () => {
  const r = await train('default');
  expect([r.code, r.err]).toEqual([0, '']);
  expect(r.out).toContain(`note: 1 of 7 records of '${data}' were longer than 128 tokens and were cut to 128 (the default max length: the model has 128 positions; set --max-length)`);
});

test('--max-length N cuts to N and says so; beyond the position table it is a usage error, as is --seq-len', async () => {
  const r = await train('fifty', '--max-length', '50');
  expect([r.code, r.err]).toEqual([0, '']);
  expect(r.out).toMatch(/note: \d of 7 records of '.*' were longer than 50 tokens and were cut to 50\n/);
  const big = await train('big', '--max-length', '500');
  expect([big.code, big.err]).toEqual([2, expect.stringContaining("--max-length 500 is more than the model's 128 positions (max_position_embeddings in its config.json)")]);
  const packed = await train('packed', '--packing', '--seq-len', '256');
  expect([packed.code, packed.err]).toEqual([2, expect.stringContaining("--seq-len 256 is more than the model's 128 positions")]);
  // --packing with --seq-len at its default (512): blocks of the model's 128 positions instead.
  const fitted = await train('fitted', '--packing');
  expect([fitted.code, fitted.err]).toEqual([0, '']);
  expect(JSON.parse(fs.readFileSync(path.join(dir, 'fitted', 'trainer_state.json'), 'utf8')).global_step).toBe(1);
});

test("the Trainer refuses an example longer than the model's position table", async () => {
  const m = await tinyLoraModel(0);
  const long = Int32Array.from({ length: 129 }, (_, i) => 1 + (i % 100));
  const ds = new Dataset([{ inputIds: Int32Array.from([1, 2, 3]), labels: Int32Array.from([1, 2, 3]) }, { inputIds: long, labels: long }]);
  expect(() => new Trainer({ model: m, trainDataset: ds, args: { outputDir: tmpDir('maxlen-api'), report: 'none' } })).toThrow(
    "Trainer: training example 1 has 129 tokens, more than the model's 128 positions (max_position_embeddings); cut the examples to at most that many (loadDataset's maxLength, the CLI's --max-length)",
  );
  m.dispose();
});
