// The CLI's help and its errors: --help everywhere (exit 0), wrong flags and bad values are usage errors
// naming the flag (exit 2), missing files are errors naming the path (exit 1). One run as a real
// process, for the exit code and the streams a shell sees.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { cuda } from '../lib';
import { cli, cliProcess, makeDataFile, makeModelDir } from './helpers/cli';
import { tmpDir } from './helpers/train';

const COMMANDS = ['train', 'generate', 'merge', 'inspect', 'demo', 'info'];
let dir: string;
beforeAll(() => {
  dir = tmpDir('cli-err');
});

test('--help: the command list, and each command its options', async () => {
  const top = await cli('--help');
  expect(top.code).toBe(0);
  for (const c of COMMANDS) expect(top.out).toMatch(new RegExp(`^  ${c} `, 'm'));
  for (const c of COMMANDS) {
    const r = await cli(c, '--help');
    expect([c, r.code, r.err]).toEqual([c, 0, '']);
    expect(r.out).toMatch(new RegExp(`^Usage: torch-lora ${c} `));
    expect(r.out).toContain('-h, --help');
  }
  const train = (await cli('train', '-h')).out;
  for (const flag of ['--model DIR', '--data FILE', '--r N', '--lora-alpha X', '--target-modules', '--epochs X', '--max-steps N', '--grad-accum N', '--lr X', '--scheduler NAME', '--save-steps N', '--resume-from-checkpoint DIR', '--gradient-checkpointing', '--dtype TYPE', '--config FILE', '--bias WHICH', '--lora-bias', '--modules-to-save A,B', '--init-lora-weights INIT', '--layers-to-transform I,J', '--layers-pattern NAME', '--exclude-modules A,B', '--rank-pattern M=N,...', '--alpha-pattern M=X,...'])
    expect(train).toContain(flag);
  expect((await cli('--version')).out).toMatch(/^\d+\.\d+\.\d+\nlibtorch \d+\.\d+\S*, BLAS .+, CUDA .+, \d+ threads? \(.+\)\n$/);
});

test('no command, an unknown command', async () => {
  const none = await cli();
  expect(none.code).toBe(2);
  expect(none.err).toContain('Usage: torch-lora <command>');
  const bad = await cli('fly');
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/unknown command 'fly'\. Commands: train, generate, merge, inspect, demo, info/);
});

test('wrong flags and values are usage errors naming the flag (exit 2)', async () => {
  const cases: [string[], RegExp][] = [
    [['train', '--bogus'], /unknown option '--bogus'/],
    [['train', '--model'], /option '--model' needs a value/],
    [['train', '--model', 'm', '--data', 'd', '--lr', 'fast'], /--lr expects a number, got "fast"/],
    [['train', '--model', 'm', '--data', 'd', '--r', '2.5'], /--r expects an integer, got "2.5"/],
    [['train', '--model', 'm', '--data', 'd', '--scheduler', 'step'], /--scheduler must be one of constant, constant_with_warmup, linear, cosine, got 'step'/],
    [['train', '--data', 'd'], /missing --model DIR/],
    [['train', '--help=yes'], /option '--help' takes no value/],
    [['generate', '--model', 'm'], /missing --prompt TEXT/],
    [['merge', '--model', 'm', '--adapter', 'a'], /missing --output DIR/],
    [['inspect'], /missing ADAPTER_DIR/],
    [['inspect', 'a', 'b'], /unexpected argument 'b'/],
    [['demo', 'now'], /unexpected argument 'now'/],
    [['demo', '--steps', '0', '--report', 'none'], /--steps must be at least 1/],
  ];
  for (const [argv, msg] of cases) {
    const r = await cli(...argv);
    expect([argv, r.code]).toEqual([argv, 2]);
    expect(r.err).toMatch(msg);
    expect(r.err).toContain(`See 'torch-lora ${argv[0]} --help'.`);
  }
});

test('missing files and folders are errors naming the path (exit 1)', async () => {
  const model = makeModelDir(dir);
  const data = makeDataFile(dir);
  const missing = path.join(dir, 'nope');
  // A model folder without a tokenizer: config.json only.
  const noTokenizer = path.join(dir, 'no-tokenizer');
  fs.mkdirSync(noTokenizer, { recursive: true });
  fs.copyFileSync(path.join(model, 'config.json'), path.join(noTokenizer, 'config.json'));
  const cases: [string[], string][] = [
    [['train', '--model', model, '--data', missing], `data file '${missing}' does not exist`],
    [['train', '--model', missing, '--data', data], `model folder '${missing}' does not exist`],
    [['train', '--model', dir, '--data', data], `model folder '${dir}' has no config.json`],
    [['train', '--model', noTokenizer, '--data', data], `tokenizer folder '${noTokenizer}' has no tokenizer.json`],
    [['train', '--model', model, '--tokenizer', missing, '--data', data], `tokenizer folder '${missing}' does not exist`],
    [['train', '--model', model, '--data', data, '--eval-data', missing], `evaluation data file '${missing}' does not exist`],
    [['train', '--config', missing, '--model', model, '--data', data], `config file '${missing}' does not exist`],
    [['generate', '--model', model, '--adapter', missing, '--prompt', 'hi'], `adapter folder '${missing}' does not exist`],
    [['generate', '--model', missing, '--prompt', 'hi'], `model folder '${missing}' does not exist`],
    [['merge', '--model', missing, '--adapter', model, '--output', path.join(dir, 'm3')], `model folder '${missing}' does not exist`],
    [['merge', '--model', model, '--adapter', model, '--output', path.join(dir, 'm2')], `adapter folder '${model}' has no adapter_config.json`],
    [['inspect', missing], `adapter folder '${missing}' does not exist`],
    [['demo', '--base', missing, '--report', 'none'], `demo base model folder '${missing}' does not exist`],
  ];
  for (const [argv, msg] of cases) {
    const r = await cli(...argv);
    expect([argv, r.code]).toEqual([argv, 1]);
    expect(r.err).toBe(`torch-lora ${argv[0]}: error: ${msg}\n`);
  }
  // A device that is no device is a usage error; CUDA without a GPU is an error saying so.
  const gpu = await cli('train', '--model', model, '--data', data, '--device', 'gpu');
  expect([gpu.code, gpu.err]).toEqual([2, "torch-lora train: --device must be cpu, cuda or cuda:N, got 'gpu'\nSee 'torch-lora train --help'.\n"]);
  if (!cuda.isAvailable()) {
    const c = await cli('demo', '--device', 'cuda', '--report', 'none');
    expect(c.code).toBe(1);
    expect(c.err).toContain('--device cuda: this libtorch was built without CUDA or sees no GPU');
  }
  // A malformed data line names the file and the line.
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"text": "fine"}\n{"text": 5}\n');
  const r = await cli('train', '--model', model, '--data', bad, '--report', 'none');
  expect(r.code).toBe(1);
  expect(r.err).toContain(`${bad}:2`);
});

test('a config file: unknown keys and bad values are named', async () => {
  const cfg = path.join(dir, 'run.json');
  fs.writeFileSync(cfg, JSON.stringify({ lr: 1e-3, learningRate: 2 }));
  let r = await cli('train', '--config', cfg, '--model', 'm', '--data', 'd');
  expect(r.code).toBe(2);
  expect(r.err).toContain(`unknown option 'learningRate' in config file '${cfg}'`);
  fs.writeFileSync(cfg, JSON.stringify({ 'lora-alpha': 'big' }));
  r = await cli('train', '--config', cfg, '--model', 'm', '--data', 'd');
  expect(r.code).toBe(2);
  expect(r.err).toContain(`'lora-alpha' in '${cfg}' expects a number, got "big"`);
  fs.writeFileSync(cfg, '{ not json');
  r = await cli('train', '--config', cfg, '--model', 'm', '--data', 'd');
  expect(r.code).toBe(1);
  expect(r.err).toContain(`config file '${cfg}' is not valid JSON`);
});

test('as a process: exit codes and streams', () => {
  const bad = cliProcess('train', '--epochs', 'many');
  expect(bad.code).toBe(2);
  expect(bad.out).toBe('');
  expect(bad.err).toBe("torch-lora train: --epochs expects a number, got \"many\"\nSee 'torch-lora train --help'.\n");
  const src = fs.readFileSync(path.join(__dirname, '..', 'lib', 'cli', 'main.ts'), 'utf8');
  expect(src.startsWith('#!/usr/bin/env node\n')).toBe(true);
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  expect(pkg.bin).toEqual({ 'torch-lora': 'dist/lib/cli/main.js' });
  // `npm run demo` is the CLI's demo (the product's main job), through the same entry point as the bin.
  expect(pkg.scripts.demo).toBe(`node ${pkg.bin['torch-lora']} demo`);
});

test("the README's `npx torch-lora` runs the built bin: it exists after the build and is executable", () => {
  const root = path.join(__dirname, '..');
  const bin = path.join(root, 'dist', 'lib', 'cli', 'main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: build first (npm install runs tsc, or npm run build:ts)`);
  expect(fs.statSync(bin).mode & 0o111).toBe(0o111);
  const r = spawnSync('npx', ['--no-install', 'torch-lora', '--help'], { cwd: root, encoding: 'utf8', timeout: 60000 });
  expect(r.stderr).not.toMatch(/Permission denied/);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^Usage: torch-lora <command>/m);
});
