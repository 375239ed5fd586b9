// `torch-lora train --nproc-per-node 2`: two worker processes (Gloo over 127.0.0.1) of batch 2 write the
// adapter one process of batch 4 writes; rank 0 alone prints and writes; bad distributed flags are usage
// errors before anything starts.
import * as fs from 'fs';
import * as path from 'path';
import { dist } from '../lib';
import { cli, loggedLosses, makeDataFile, makeModelDir, ROOT } from './helpers/cli';
import { spawnTs } from './helpers/ts-child';
import { maxFileDiff, tmpDir } from './helpers/train';

const maybe = dist.isAvailable('gloo') ? describe : describe.skip;
const COMMON = ['--r', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lr', '0.01', '--max-steps', '3', '--logging-steps', '1', '--seed', '1', '--report', 'plain'];
const losses = loggedLosses;

maybe('torch-lora train --nproc-per-node', () => {
  let dir: string;
  let model: string;
  let data: string;
  beforeAll(() => {
    dir = tmpDir('cli-ddp');
    model = makeModelDir(dir);
    data = makeDataFile(dir, 16);
  });

  test('2 processes x batch 2 == 1 process x batch 4; rank 0 alone reports', async () => {
    const single = path.join(dir, 'single');
    const r1 = await cli('train', '--model', model, '--data', data, '--output', single, '--batch-size', '4', ...COMMON);
    expect([r1.code, r1.err]).toEqual([0, '']);
    const ddp = path.join(dir, 'ddp');
    const child = spawnTs(path.join(ROOT, 'lib', 'cli', 'main.ts'), ['train', '--model', model, '--data', data, '--output', ddp, '--batch-size', '2', '--nproc-per-node', '2', ...COMMON]);
    const timer = setTimeout(() => child.proc.kill('SIGKILL'), 120000);
    const { code } = await child.exited;
    clearTimeout(timer);
    expect([code, child.err()]).toEqual([0, '']);
    const out = child.out();
    expect(out).toMatch(/torch-lora train: 2 worker processes \(ranks 0\.\.1 of 2\); rank 0 reports/);
    expect(out.match(/^done: 3 steps/gm)).toHaveLength(1);
    expect(out.match(/training examples/g)).toHaveLength(1);
    losses(ddp).forEach((l, i) => expect(Math.abs(l - losses(single)[i])).toBeLessThan(1e-5));
    expect(maxFileDiff(path.join(ddp, 'adapter_model.safetensors'), path.join(single, 'adapter_model.safetensors'))).toBeLessThan(1e-5);
  }, 180000);

  test('--nnodes 2: two launchers (one per "machine", here both on 127.0.0.1) make one job of 2 ranks', async () => {
    const single = path.join(dir, 'single');
    const out = path.join(dir, 'nodes');
    const port = await dist.freePort();
    const node = (rank: number) =>
      spawnTs(path.join(ROOT, 'lib', 'cli', 'main.ts'), [
        'train', '--model', model, '--data', data, '--output', out, '--batch-size', '2', ...COMMON,
        '--nproc-per-node', '1', '--nnodes', '2', '--node-rank', String(rank), '--master-addr', '127.0.0.1', '--master-port', String(port),
      ]); // prettier-ignore
    const nodes = [node(0), node(1)];
    const timer = setTimeout(() => nodes.forEach((n) => n.proc.kill('SIGKILL')), 120000);
    const exits = await Promise.all(nodes.map((n) => n.exited));
    clearTimeout(timer);
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    expect(nodes[0].out()).toMatch(/1 worker process \(ranks 0\.\.0 of 2\)/);
    expect(nodes[1].out()).toMatch(/1 worker process \(ranks 1\.\.1 of 2\)/);
    expect(nodes[1].out()).not.toMatch(/done:/);
    expect(maxFileDiff(path.join(out, 'adapter_model.safetensors'), path.join(single, 'adapter_model.safetensors'))).toBeLessThan(1e-5);
  }, 180000);

  test('Ctrl-C (SIGINT to the launcher): every rank stops after the same step, rank 0 writes the checkpoint, exit 130', async () => {
    const out = path.join(dir, 'interrupted');
    const child = spawnTs(path.join(ROOT, 'lib', 'cli', 'main.ts'), [
      'train', '--model', model, '--data', data, '--output', out, '--batch-size', '2', '--nproc-per-node', '2', ...COMMON, '--max-steps', '400',
    ]); // prettier-ignore
    const timer = setTimeout(() => child.proc.kill('SIGKILL'), 120000);
    await child.waitFor('step 2/');
    child.proc.kill('SIGINT');
    const { code } = await child.exited;
    clearTimeout(timer);
    expect([code, child.err()]).toEqual([130, '']);
    const m = [...child.out().matchAll(/stopped at step (\d+) of 400; checkpoint: (.*)\n/g)];
    expect(m).toHaveLength(1);
    expect(child.out().match(/SIGINT: finishing this step/g)).toHaveLength(1);
    expect(child.out()).toMatch(/resume with: torch-lora train .*--nproc-per-node 2.* --resume-from-checkpoint /);
    const state = JSON.parse(fs.readFileSync(path.join(m[0][2], 'trainer_state.json'), 'utf8'));
    expect([state.global_step, state.world_size]).toEqual([Number(m[0][1]), 2]);
    expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(false);
  }, 180000);

  test.each([
    [['--nproc-per-node', '0'], /--nproc-per-node must be at least 1, got 0/],
    [['--nnodes', '2', '--nproc-per-node', '1'], /--nnodes > 1 needs --master-addr/],
    [['--nnodes', '2', '--node-rank', '2', '--master-addr', '127.0.0.1'], /--node-rank must be in \[0, --nnodes 2\), got 2/],
    [['--nproc-per-node', '2', '--master-port', '70000'], /--master-port must be a port in 1\.\.65535, got 70000/],
    [['--nproc-per-node', '2', '--dist-timeout', '0'], /--dist-timeout must be a positive number of seconds, got 0/],
  ])('%j is a usage error', async (flags, message) => {
    const r = await cli('train', '--model', model, '--data', data, '--output', path.join(dir, 'bad'), ...(flags as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message as RegExp);
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
  });
});
