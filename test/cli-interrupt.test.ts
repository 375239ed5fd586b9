// Ctrl-C / SIGTERM during `torch-lora train` lose nothing: the first signal finishes the step under way,
// writes a checkpoint (even with --save-steps 0), prints where it is and the exact command that resumes
// it, and exits 130; that command then finishes the run.
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, cli, makeDataFile, makeModelDir } from './helpers/cli';
import { tsSpawn } from './helpers/ts-process';
import { tmpDir } from './helpers/train';

/** Runs the CLI as a process, sends `sig` once the log shows step 2, and resolves with its exit. */
function trainAndSignal(sig: NodeJS.Signals, argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = tsSpawn(path.join(ROOT, 'lib', 'cli', 'main.ts'), argv);
    let out = '';
    let err = '';
    let sent = false;
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && /^step 2\//m.test(out)) {
        sent = true;
        child.kill(sig);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Splits the printed command (single-quoted words as shellWord writes them) into arguments. */
function words(line: string): string[] {
  return (line.match(/'(?:[^']|'\\'')*'|\S+/g) ?? []).map((w) => (w.startsWith("'") ? w.slice(1, -1).replace(/'\\''/g, "'") : w));
}

let dir: string;
let model: string;
let data: string;
beforeAll(() => {
  dir = tmpDir('interrupt');
  model = makeModelDir(dir);
  data = makeDataFile(dir, 16);
});

test.each(['SIGINT', 'SIGTERM'] as const)('%s: the step finishes, a checkpoint is written, the resume command printed, exit 130', async (sig) => {
  const out = path.join(dir, sig);
  const argv = ['train', '--model', model, '--data', data, '--output', out, '--max-steps', '400', '--batch-size', '4', '--logging-steps', '1', '--report', 'plain'];
  const r = await trainAndSignal(sig, argv);
  expect([r.code, r.err]).toEqual([130, '']);
  const m = /stopped at step (\d+) of 400; checkpoint: (.*)\nresume with: (.*)\n/.exec(r.out);
  expect(m).not.toBeNull();
  const [, step, checkpoint, command] = m!;
  expect(r.out).toContain(`${sig}: finishing this step and writing a checkpoint`);
  expect(Number(step)).toBeGreaterThanOrEqual(2);
  expect(checkpoint).toBe(path.join(out, `checkpoint-${step}`));
  for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'trainer_state.json', 'optimizer.safetensors'])
    expect([f, fs.existsSync(path.join(checkpoint, f))]).toEqual([f, true]);
  expect(JSON.parse(fs.readFileSync(path.join(checkpoint, 'trainer_state.json'), 'utf8')).global_step).toBe(Number(step));
  // No final adapter for a run that did not finish.
  expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(false);
  expect(command).toBe(`torch-lora train ${argv.slice(1).join(' ')} --resume-from-checkpoint ${checkpoint}`);
  if (sig === 'SIGINT') {
    // The printed command resumes (here with fewer steps left to run, so that the test stays short).
    const args = words(command).slice(2).map((w, i, a) => (a[i - 1] === '--max-steps' ? String(Number(step) + 2) : w));
    const resumed = await cli('train', ...args);
    expect([resumed.code, resumed.err]).toEqual([0, '']);
    expect(resumed.out).toContain(`resuming from ${checkpoint} at step ${step}`);
    expect(fs.existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
  }
}, 180000); // a child process transpiling the CLI's TypeScript on a loaded machine: ~30 s
