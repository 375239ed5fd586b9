// Run by worker-threads.test.ts as a process of its own: a worker thread that the addon aborted takes its
// whole process down (SIGABRT), so each check runs here and the test reads the exit status. Mode
// `load N`: N workers each load the addon and are terminated while they load it or just after; mode
// `ops N`: N workers each run tensor ops in a loop and are terminated in the middle of it.
import * as path from 'path';
import { Worker } from 'worker_threads';

const ROOT = path.join(__dirname, '..', '..');
// How the package loads its addon (lib/native.ts), in the worker.
const LOAD = `const native = require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(ROOT)});`;
const OPS =
  LOAD +
  "const { parentPort } = require('worker_threads');" +
  'parentPort.postMessage("running");' +
  'for (;;) {' +
  '  const a = native.ones([64, 64]), b = native.matmul(a, a), c = native.add(b, a);' +
  '  native.dispose(a); native.dispose(b);' + // c is left to the table: freed with the environment
  '}';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(mode: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const worker = new Worker(mode === 'ops' ? OPS : LOAD, { eval: true });
    const errors: unknown[] = [];
    worker.on('error', (e) => errors.push(e));
    // Terminate at a different moment each time: before it is online, while the addon loads, after.
    if (mode === 'ops') await new Promise((resolve) => worker.once('message', resolve));
    else if (i % 3 !== 0) await new Promise((resolve) => worker.once('online', resolve));
    await sleep((i * 7) % 23);
    await worker.terminate();
    if (errors.length) throw new Error(`worker ${i}: ${String(errors[0])}`);
  }
  process.stdout.write(`${mode} ${n} ok\n`);
}

const [mode, n] = process.argv.slice(2);
run(mode, Number(n)).catch((e) => {
  process.stderr.write(String(e));
  process.exit(1);
});
