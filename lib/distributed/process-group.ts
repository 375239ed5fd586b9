// torch.distributed's default process group over libtorch's c10d: a Store (TCPStore, FileStore) and a
// backend (Gloo on CPU, NCCL on CUDA). Collectives return Promises: they are enqueued at once, in program
// order (every rank must issue the same collectives in the same order, as in PyTorch), and awaited off the
// event loop.
//
//   await dist.initProcessGroup({ backend: 'gloo' });      // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
//   await dist.allReduce(t);                               // t becomes the sum over ranks
//   dist.destroyProcessGroup();
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkOptions, OptionKeys } from '../options';
import { readTorchrunEnv } from './env';

export type Backend = 'gloo' | 'nccl';
/** ReduceOp: 'avg' is the sum divided by the world size (Gloo has no AVG of its own). */
export type ReduceOp = 'sum' | 'avg' | 'product' | 'min' | 'max';

/** PyTorch's default collective timeout (30 minutes). */
export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

export interface InitProcessGroupOptions {
  /** 'gloo' (CPU tensors) or 'nccl' (CUDA tensors, where the libtorch has NCCL). Default 'gloo'. */
  backend?: Backend;
  /**
   * Where the ranks meet: 'env://' (default: MASTER_ADDR and MASTER_PORT), 'tcp://host:port' (rank 0 hosts a
   * TCPStore there) or 'file:///path' (a FileStore on a file every rank can reach, e.g. a shared disk).
   */
  initMethod?: string;
  /** This process's rank (default: the RANK environment variable). */
  rank?: number;
  /** The number of processes (default: WORLD_SIZE). */
  worldSize?: number;
  /**
   * Milliseconds a rank waits at the rendezvous and in each collective before failing with an error that
   * names it (a peer that died or hangs). Default 30 minutes, as PyTorch.
   */
  timeout?: number;
}

const INIT_OPTIONS: OptionKeys<InitProcessGroupOptions> = { backend: true, initMethod: true, rank: true, worldSize: true, timeout: true };

function intFrom(value: number | undefined, envName: string, what: string): number {
  if (value !== undefined) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`initProcessGroup: ${what} must be a non-negative integer, got ${value}`);
    return value;
  }
  const raw = process.env[envName];
  if (raw === undefined || raw === '')
    throw new Error(`initProcessGroup: no ${what}: pass { ${what} } or set ${envName} (torchrun and torch-lora train --nproc-per-node set it)`);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`initProcessGroup: ${envName}=${raw} is not a non-negative integer`);
  return n;
}

function unavailable(): string | undefined {
  return native.distBackends().length === 0 ? native.distUnavailableReason() : undefined;
}

/** Whether this build of the addon has c10d (Gloo), and backend `backend` in particular. */
export function isAvailable(backend: Backend = 'gloo'): boolean {
  return (native.distBackends() as string[]).includes(backend);
}

/** Joins (or, on rank 0, hosts) the process group: resolves once every rank has connected. */
export async function initProcessGroup(opts: InitProcessGroupOptions = {}): Promise<void> {
  checkOptions(opts, INIT_OPTIONS, 'initProcessGroup');
  const why = unavailable();
  if (why !== undefined) throw new Error(why);
  const backend = opts.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw new Error(`initProcessGroup: backend must be 'gloo' or 'nccl', got '${backend}'`);
  if (!isAvailable(backend)) throw new Error(`initProcessGroup: backend '${backend}' is not in this build (it has: ${native.distBackends().join(', ')}); NCCL needs a CUDA libtorch`);
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout <= 0) throw new RangeError(`initProcessGroup: timeout must be a positive number of milliseconds, got ${timeout}`);
  const rank = intFrom(opts.rank, 'RANK', 'rank');
  const worldSize = intFrom(opts.worldSize, 'WORLD_SIZE', 'worldSize');
  if (worldSize < 1) throw new RangeError('initProcessGroup: worldSize must be at least 1');
  if (rank >= worldSize) throw new RangeError(`initProcessGroup: rank ${rank} is not below worldSize ${worldSize}`);
  const method = opts.initMethod ?? 'env://';
  const base = { backend, rank, worldSize, timeoutMs: timeout, ifname: process.env.GLOO_SOCKET_IFNAME ?? '' };
  if (method === 'env://') {
    const env = readTorchrunEnv();
    if (env.masterAddr === undefined || env.masterPort === undefined)
      throw new Error("initProcessGroup: initMethod 'env://' needs MASTER_ADDR and MASTER_PORT in the environment (or pass initMethod 'tcp://host:port')");
    await native.distInitAsync({ ...base, store: 'tcp', host: env.masterAddr, port: env.masterPort });
  } else if (method.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(method);
    if (!m) throw new Error(`initProcessGroup: initMethod '${method}' is not tcp://host:port`);
    await native.distInitAsync({ ...base, store: 'tcp', host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
  } else if (method.startsWith('file://')) {
    const file = method.slice('file://'.length);
    if (!file.startsWith('/')) throw new Error(`initProcessGroup: initMethod '${method}' must name an absolute path (file:///path)`);
    await native.distInitAsync({ ...base, store: 'file', path: file });
  } else {
    throw new Error(`initProcessGroup: initMethod '${method}' is not one of env://, tcp://host:port, file:///path`);
  }
}

export function isInitialized(): boolean {
  return native.distBackends().length > 0 && (native.distIsInitialized() as boolean);
}
export function getRank(): number {
  return native.distRank();
}
export function getWorldSize(): number {
  return native.distWorldSize();
}
export function getBackend(): Backend {
  return native.distBackend() as Backend; // one of distBackends(), which Backend lists
}

/** Leaves the group (a later initProcessGroup may join another). */
export function destroyProcessGroup(): void {
  native.distDestroy();
}

const list = (t: Tensor | Tensor[]): Tensor[] => (Array.isArray(t) ? t : [t]);

/** Waits until every rank has reached its barrier. */
export async function barrier(): Promise<void> {
  await native.distBarrierAsync();
}

/** Reduces each tensor in place over all ranks (PyTorch's all_reduce; several tensors: one fused call). */
export async function allReduce(tensor: Tensor | Tensor[], op: ReduceOp = 'sum'): Promise<void> {
  const ts = list(tensor);
  await native.distAllReduceAsync(ts.map((t) => t.handle), op === 'avg' ? 'sum' : op);
  if (op === 'avg') {
    const n = getWorldSize();
    for (const t of ts) t.div_(n);
  }
}

/** Copies rank `src`'s tensor into every other rank's. */
export async function broadcast(tensor: Tensor | Tensor[], src: number): Promise<void> {
  await native.distBroadcastAsync(list(tensor).map((t) => t.handle), src);
}

/** PyTorch's all_gather(tensor_list, tensor): outputs[r] receives rank r's `input`. */
export async function allGather(outputs: Tensor[], input: Tensor): Promise<void> {
  await native.distAllGatherAsync(outputs.map((t) => t.handle), input.handle);
}
