// torch-lora train --loraplus-lr-ratio / --loraplus-lr-embedding (LoRA+): the flags reach the Trainer
// (the four groups' rates in the checkpoint's optimizer.json, training_args.json), LoRA+ with every rate
// equal is plain AdamW to the byte (an identity: AdamW updates each parameter on its own), bad values and
// combinations are usage errors, and resuming a LoRA+ checkpoint without the flag says why it cannot.
import * as fs from 'fs';
import * as path from 'path';
import { adapterFile, cli, CliResult, loggedLosses, makeDataFile, makeModelDir } from './helpers/cli';
import { maxFileDiff, tmpDir } from './helpers/train';

let dir: string;
let model: string;
let data: string;
const COMMON = ['--r', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lr', '0.01', '--batch-size', '4', '--max-steps', '3', '--logging-steps', '1', '--seed', '1', '--report', 'none', '--target-modules', 'q_proj,v_proj,embed_tokens'];

async function train(name: string, ...argv: string[]): Promise<{ out: string; r: CliResult }> {
  const out = path.join(dir, name);
  const r = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, ...argv);
  expect([name, r.code, r.err]).toEqual([name, 0, '']);
  return { out, r };
}
const losses = loggedLosses;

beforeAll(() => {
  dir = tmpDir('cli-loraplus');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 16);
});

test('--loraplus-lr-ratio 16: lora_B at 16 × --lr, embeddings at 1e-6 by default, in the saved optimizer; ratio 1 with --loraplus-lr-embedding = --lr is plain AdamW', async () => {
  const plain = (await train('plain')).out;
  const same = (await train('ratio-1', '--loraplus-lr-ratio', '1', '--loraplus-lr-embedding', '0.01')).out;
  expect(losses(same)).toEqual(losses(plain));
  expect(maxFileDiff(adapterFile(same), adapterFile(plain))).toBe(0);

  const { out } = await train('ratio-16', '--loraplus-lr-ratio', '16', '--save-steps', '2');
  const args = JSON.parse(fs.readFileSync(path.join(out, 'training_args.json'), 'utf8'));
  expect([args.loraplus_lr_ratio, args.loraplus_lr_embedding]).toEqual([16, null]);
  const groups = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint-2', 'optimizer.json'), 'utf8')).paramGroups;
  expect(groups.map((g: { initialLr: number; params: number[] }) => [g.initialLr, g.params.length])).toEqual([
    [0.01, 6], // lora_A of q_proj and v_proj in 3 layers
    [1e-6, 2], // the embedding's A and B
    [0.16, 6], // lora_B
    [0.16, 0],
  ]);
  expect(maxFileDiff(adapterFile(out), adapterFile(plain))).toBeGreaterThan(1e-3);
});

test('LoRA+ flags: bad values and combinations are usage errors; a LoRA+ checkpoint resumed without them is refused with the reason', async () => {
  const cases: [string[], string][] = [
    [['--loraplus-lr-embedding', '1e-4'], '--loraplus-lr-embedding is the embedding rate of LoRA+, which needs --loraplus-lr-ratio too'],
    [['--loraplus-lr-ratio', '0'], '--loraplus-lr-ratio must be a positive number, got 0'],
    [['--loraplus-lr-ratio', '16', '--loraplus-lr-embedding', '-1'], '--loraplus-lr-embedding must be a non-negative number, got -1'],
    [['--loraplus-lr-ratio', 'x'], '--loraplus-lr-ratio expects a number, got "x"'],
  ];
  for (const [argv, msg] of cases) {
    const r = await cli('train', '--model', model, '--data', data, '--output', path.join(dir, 'never'), '--report', 'none', ...argv);
    expect([argv, r.code]).toEqual([argv, 2]);
    expect(r.err).toContain(msg);
  }
  expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);

  const out = path.join(dir, 'resume');
  const first = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, '--save-steps', '2', '--loraplus-lr-ratio', '4');
  expect(first.code).toBe(0);
  const before = losses(out);
  const again = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, '--max-steps', '4', '--resume-from-checkpoint', 'latest');
  expect(again.code).toBe(1);
  expect(again.err).toContain("does not fit this run's optimizer: AdamW.loadStateDict: the state dict has 4 parameter groups, the optimizer 1");
  expect(again.err).toContain("the CLI's --loraplus-lr-ratio");
  const resumed = await cli('train', '--model', model, '--data', data, '--output', out, ...COMMON, '--max-steps', '4', '--loraplus-lr-ratio', '4', '--resume-from-checkpoint', 'latest');
  expect([resumed.code, resumed.err]).toEqual([0, '']);
  // With the flag it resumes (the refusal above shows the checkpoint is read): 4 steps, the first two logged as before.
  const after = losses(out);
  expect(after).toHaveLength(4);
  expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
  const state = JSON.parse(fs.readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
  expect(state.global_step).toBe(4);
});
