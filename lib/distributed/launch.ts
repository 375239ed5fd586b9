// torchrun's job for one machine: starts nprocPerNode worker processes with RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (ranks nodeRank·nprocPerNode + LOCAL_RANK), waits for
// them, and when one fails (a non-zero exit, a signal) stops the others and reports which rank failed, so
// that a job never hangs on a dead rank. No restarts (torchrun's max_restarts=0).
import { ChildProcess, spawn, StdioOptions } from 'child_process';
import * as net from 'net';
import { defaultNumThreads } from '../threads';

export interface LaunchOptions {
  /** Worker processes on this machine. */
  nprocPerNode: number;
  /** Machines in the job (default 1). */
  nnodes?: number;
  /** This machine's index in [0, nnodes) (default 0). */
  nodeRank?: number;
  /** Where rank 0 hosts the rendezvous store (default 127.0.0.1; every machine must reach it). */
  masterAddr?: string;
  /** Its port (default: a free port when nnodes is 1, else 29500 as torchrun's). */
  masterPort?: number;
  /** The command each worker runs: [executable, ...args] (default: this Node with the same script). */
  command: string[];
  /** The workers' environment (default process.env) to which the rank variables are added. */
  env?: NodeJS.ProcessEnv;
  /** stdio of the workers (default 'inherit'). */
  stdio?: StdioOptions;
  /** Milliseconds between SIGTERM and SIGKILL when stopping the other workers (default 5000). */
  killGraceMs?: number;
  /**
   * Start the workers in a process group of their own (default true), so that a Ctrl-C in the terminal
   * reaches the launcher alone, which passes it on once with stop() (a worker that got it twice would take
   * the second as "quit now"). Each worker gets TORCH_LORA_LAUNCHER_PID to notice a launcher that died.
   */
  ownProcessGroup?: boolean;
  /** Called with each worker as it starts (to read piped output). */
  onSpawn?: (localRank: number, proc: ChildProcess) => void;
}

/**
 * In a worker: exits with code 1 once the launcher that started it is gone (killed with SIGKILL, say), so
 * that no rank is left training alone. A no-op outside a launched worker.
 */
export function exitWithLauncher(env: NodeJS.ProcessEnv = process.env): void {
  const pid = Number(env.TORCH_LORA_LAUNCHER_PID);
  if (!Number.isInteger(pid) || pid <= 0 || process.ppid !== pid) return;
  const t = setInterval(() => {
    if (process.ppid !== pid) {
      process.stderr.write(`torch-lora: rank ${env.RANK}: the launcher (pid ${pid}) is gone; stopping\n`);
      process.exit(1);
    }
  }, 1000);
  t.unref();
}

export interface WorkerExit {
  rank: number;
  localRank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A worker failed: the first failure, and how every worker ended. */
export class WorkerFailedError extends Error {
  constructor(
    message: string,
    readonly failed: WorkerExit,
    readonly exits: WorkerExit[],
  ) {
    super(message);
    this.name = 'WorkerFailedError';
  }
}

/** A TCP port nobody listens on now on `host` (the OS's pick). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function checkInt(v: number, what: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${what} must be an integer >= ${min}, got ${v}`);
}

/**
 * Exit code 130 is a worker that was interrupted (Ctrl-C, SIGTERM) and stopped cleanly after a step, as the
 * others do after the same step (the Trainer agrees on it across ranks): not a failure to stop the job for.
 */
export const INTERRUPTED_EXIT_CODE = 130;
function isFailure(e: WorkerExit): boolean {
  return (e.code !== 0 && e.code !== INTERRUPTED_EXIT_CODE) || e.signal !== null;
}

function describe(e: WorkerExit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/**
 * Runs the workers; resolves with their exits when all exit 0 (or 130, interrupted), rejects with a WorkerFailedError naming the
 * first rank that failed once the others are stopped. `stop(signal)` passes a signal (default SIGINT) on to them.
 */
export function launch(opts: LaunchOptions): { done: Promise<WorkerExit[]>; stop: (signal?: NodeJS.Signals) => void } {
  const nnodes = opts.nnodes ?? 1;
  const nodeRank = opts.nodeRank ?? 0;
  checkInt(opts.nprocPerNode, '--nproc-per-node', 1);
  checkInt(nnodes, '--nnodes', 1);
  checkInt(nodeRank, '--node-rank', 0);
  if (nodeRank >= nnodes) throw new RangeError(`--node-rank ${nodeRank} must be below --nnodes ${nnodes}`);
  if (opts.masterPort !== undefined && (!Number.isInteger(opts.masterPort) || opts.masterPort < 1 || opts.masterPort > 65535))
    throw new RangeError(`--master-port must be a port in 1..65535, got ${opts.masterPort}`);
  if (nnodes > 1 && opts.masterAddr === undefined) throw new Error('--nnodes > 1 needs --master-addr: the address of the node with --node-rank 0, which every node can reach');
  const worldSize = nnodes * opts.nprocPerNode;
  const masterAddr = opts.masterAddr ?? '127.0.0.1';
  const grace = opts.killGraceMs ?? 5000;
  const procs: ChildProcess[] = [];
  const exits: (WorkerExit | undefined)[] = [];
  let failed: WorkerExit | undefined;
  let stopping = false;
  let running: number[] = [];

  const stopAll = (signal: NodeJS.Signals) => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill(signal);
    const t = setTimeout(() => {
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }, grace);
    t.unref();
  };

  const done = (async () => {
    const port = opts.masterPort ?? (nnodes === 1 ? await freePort(masterAddr === 'localhost' ? '127.0.0.1' : masterAddr) : 29500);
    return new Promise<WorkerExit[]>((resolve, reject) => {
      let left = opts.nprocPerNode;
      for (let local = 0; local < opts.nprocPerNode; local++) {
        const rank = nodeRank * opts.nprocPerNode + local;
        const env: NodeJS.ProcessEnv = {
          ...(opts.env ?? process.env),
          RANK: String(rank),
          WORLD_SIZE: String(worldSize),
          LOCAL_RANK: String(local),
          LOCAL_WORLD_SIZE: String(opts.nprocPerNode),
          GROUP_RANK: String(nodeRank),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(port),
          TORCH_LORA_LAUNCHER_PID: String(process.pid),
        };
        // The machine's cores shared among its workers (torchrun sets OMP_NUM_THREADS=1 for the same reason:
        // N workers each taking every core run slower than one), unless the caller chose.
        if (!env.OMP_NUM_THREADS) env.OMP_NUM_THREADS = String(Math.max(1, Math.floor(defaultNumThreads() / opts.nprocPerNode)));
        const [exe, ...args] = opts.command;
        const proc = spawn(exe, args, { env, stdio: opts.stdio ?? 'inherit', detached: opts.ownProcessGroup ?? true });
        procs.push(proc);
        opts.onSpawn?.(local, proc);
        const settle = (code: number | null, signal: NodeJS.Signals | null) => {
          if (exits[local] !== undefined) return;
          const e: WorkerExit = { rank, localRank: local, pid: proc.pid ?? -1, code, signal };
          exits[local] = e;
          if (isFailure(e) && failed === undefined && !stopping) {
            failed = e;
            stopping = true;
            running = procs.flatMap((p, i) => (p.exitCode === null && p.signalCode === null && i !== local ? [nodeRank * opts.nprocPerNode + i] : []));
            stopAll('SIGTERM');
          }
          if (--left === 0) {
            const all = exits as WorkerExit[];
            if (failed !== undefined)
              reject(
                new WorkerFailedError(
                  `rank ${failed.rank} (local rank ${failed.localRank}, pid ${failed.pid}) ${describe(failed)}; the other ranks were stopped` +
                    (running.length ? ` (still running then: rank${running.length > 1 ? 's' : ''} ${running.join(', ')})` : ''),
                  failed,
                  all,
                ),
              );
            else if (all.some(isFailure)) {
              const bad = all.find(isFailure)!;
              reject(new WorkerFailedError(`rank ${bad.rank} ${describe(bad)} (the job was stopped)`, bad, all));
            } else resolve(all);
          }
        };
        proc.on('exit', settle);
        proc.on('error', () => settle(127, null)); // (could not start: ENOENT, EACCES)
      }
    });
  })();
  return {
    done,
    stop: (signal: NodeJS.Signals = 'SIGINT') => {
      stopping = true;
      for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill(signal);
    },
  };
}
