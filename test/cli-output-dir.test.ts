// `torch-lora train` into an --output that holds an earlier run: refused (the adapter would be replaced and
// `latest` would resume the old run's checkpoints), unless the run resumes from it or --overwrite-output-dir
// clears it first; a folder holding files no run writes is never cleared.
import * as fs from 'fs';
import * as path from 'path';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
const args = (out: string, ...extra: string[]) => ['train', '--model', model, '--data', data, '--output', out, '--batch-size', '4', '--report', 'none', ...extra];

beforeAll(() => {
  dir = tmpDir('outdir');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 8);
});

test('a second run into the same --output is refused; --overwrite-output-dir clears the old run first; resuming is allowed', async () => {
  const out = path.join(dir, 'run');
  expect((await cli(...args(out, '--max-steps', '2', '--save-steps', '1'))).code).toBe(0);
  expect(fs.readdirSync(out)).toEqual(expect.arrayContaining(['checkpoint-1', 'checkpoint-2', 'adapter_model.safetensors']));
  const adapter = fs.readFileSync(path.join(out, 'adapter_model.safetensors'));

  const again = await cli(...args(out, '--max-steps', '1'));
  expect(again.code).toBe(2);
  expect(again.err).toContain(`--output '${out}' already holds a run (`);
  expect(again.err).toContain('continue it with --resume-from-checkpoint latest, replace it with --overwrite-output-dir, or give another --output');
  expect(fs.readFileSync(path.join(out, 'adapter_model.safetensors'))).toEqual(adapter);

  // Resuming into it is what it is for.
  const resumed = await cli(...args(out, '--max-steps', '3', '--save-steps', '1', '--resume-from-checkpoint', 'latest'));
  expect([resumed.code, resumed.err]).toEqual([0, '']);
  expect(fs.readdirSync(out)).toEqual(expect.arrayContaining(['checkpoint-1', 'checkpoint-2', 'checkpoint-3']));

  // --overwrite-output-dir: the old checkpoints are gone, so `latest` can only be this run's.
  const fresh = await cli(...args(out, '--max-steps', '1', '--overwrite-output-dir'));
  expect([fresh.code, fresh.err]).toEqual([0, '']);
  expect(fs.readdirSync(out).filter((f) => f.startsWith('checkpoint-'))).toEqual([]);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8')).global_step).toBe(1);

  const both = await cli(...args(out, '--overwrite-output-dir', '--resume-from-checkpoint', 'latest'));
  expect([both.code, both.err]).toEqual([2, expect.stringContaining('give --resume-from-checkpoint or --overwrite-output-dir, not both')]);
});

test('--overwrite-output-dir never deletes files a run does not write, nor the model folder', async () => {
  const out = path.join(dir, 'mine');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'notes.txt'), 'keep me');
  const r = await cli(...args(out, '--max-steps', '1', '--overwrite-output-dir'));
  expect(r.code).toBe(2);
  expect(r.err).toContain(`--overwrite-output-dir: '${out}' holds files a training run does not write (notes.txt)`);
  expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('keep me');
  const m = await cli(...args(model, '--max-steps', '1', '--overwrite-output-dir'));
  expect([m.code, m.err]).toEqual([2, expect.stringContaining('--output must not be the --model folder')]);
  expect(fs.existsSync(path.join(model, 'model.safetensors'))).toBe(true);
  // An empty existing folder is fine.
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  expect((await cli(...args(empty, '--max-steps', '1'))).code).toBe(0);
});
