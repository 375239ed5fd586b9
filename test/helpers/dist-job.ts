// A data-parallel job of N local worker processes (Gloo over 127.0.0.1, a free port) for the tests: each
// worker runs a TypeScript file under the launcher the CLI uses; the job is killed when it outlives its
// time limit, so that no test can hang on it.
import { launch, WorkerExit, WorkerFailedError } from '../../lib/distributed/launch';
import { register, ROOT } from './ts-child';
import * as path from 'path';

export interface DistJobResult {
  exits: WorkerExit[];
  /** stdout and stderr of each rank. */
  out: string[];
  err: string[];
  /** The launcher's error when a worker failed. */
  error?: WorkerFailedError;
  seconds: number;
}

export async function runDistJob(
  script: string,
  nproc: number,
  argv: string[] = [],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; onStart?: (pids: number[]) => void } = {},
): Promise<DistJobResult> {
  const out: string[] = Array.from({ length: nproc }, () => '');
  const err: string[] = Array.from({ length: nproc }, () => '');
  const pids: number[] = [];
  const t0 = Date.now();
  const job = launch({
    nprocPerNode: nproc,
    masterAddr: '127.0.0.1',
    command: [process.execPath, '-r', register(), path.join(ROOT, script), ...argv],
    env: { ...process.env, OMP_NUM_THREADS: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    killGraceMs: 2000,
    onSpawn: (local, proc) => {
      pids[local] = proc.pid!;
      proc.stdout!.on('data', (d) => (out[local] += d));
      proc.stderr!.on('data', (d) => (err[local] += d));
      if (pids.filter((p) => p !== undefined).length === nproc) opts.onStart?.(pids);
    },
  });
  const limit = setTimeout(() => job.stop('SIGKILL'), opts.timeoutMs ?? 60000);
  try {
    const exits = await job.done;
    return { exits, out, err, seconds: (Date.now() - t0) / 1000 };
  } catch (e) {
    if (!(e instanceof WorkerFailedError)) throw e;
    return { exits: e.exits, out, err, error: e, seconds: (Date.now() - t0) / 1000 };
  } finally {
    clearTimeout(limit);
  }
}
