// The default intra-op thread count: the physical cores this process may run on, as PyTorch 2.x picks
// (c10's defaultNumThreads counts cores, not hyper-threads: two threads on one core share its FPU and
// slow a GEMM down). Debian's libtorch 1.13 starts with 1 thread on a 2-core machine, and OpenMP's own
// default counts hyper-threads. Pure Node: no addon here (lib/native.ts applies it once it is loaded).
import * as fs from 'fs';
import * as os from 'os';

/** Physical cores of the machine (distinct package/core pairs of the online CPUs); undefined if unknown. */
export function physicalCores(sysCpu = '/sys/devices/system/cpu'): number | undefined {
  try {
    const cores = new Set<string>();
    for (const d of fs.readdirSync(sysCpu)) {
      if (!/^cpu\d+$/.test(d)) continue;
      const topo = `${sysCpu}/${d}/topology`;
      if (!fs.existsSync(`${topo}/core_id`)) continue; // offline
      const pkg = fs.readFileSync(`${topo}/physical_package_id`, 'utf8').trim();
      cores.add(`${pkg}:${fs.readFileSync(`${topo}/core_id`, 'utf8').trim()}`);
    }
    return cores.size > 0 ? cores.size : undefined;
  } catch {
    return undefined;
  }
}

/** CPUs a cgroup v2 quota allows (cpu.max "200000 100000" = 2), rounded up; undefined when unlimited. */
export function cgroupCpuLimit(cpuMax = '/sys/fs/cgroup/cpu.max'): number | undefined {
  try {
    const [quota, period] = fs.readFileSync(cpuMax, 'utf8').trim().split(/\s+/);
    if (quota === 'max' || !period) return undefined;
    const n = Math.ceil(Number(quota) / Number(period));
    return Number.isFinite(n) && n >= 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The thread count torch-lora starts libtorch with: OMP_NUM_THREADS when the user set it (as PyTorch
 * honours it), else the physical cores, no more than the CPUs this process may use (its affinity mask,
 * a container's CPU quota) scaled down by the machine's hyper-threads per core.
 */
export function defaultNumThreads(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = Number(env.OMP_NUM_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  const logical = os.cpus().length || 1;
  const physical = physicalCores() ?? logical;
  const perCore = Math.max(1, Math.round(logical / physical));
  const usable = Math.min(os.availableParallelism(), cgroupCpuLimit() ?? Infinity);
  return Math.max(1, Math.min(physical, Math.floor(usable / perCore) || 1));
}

/**
 * Below this many parameters a model trains faster on the CPU with one intra-op thread: its ops are so
 * small that handing half of one to a second thread costs more than it saves (measured on 2 cores: the
 * demo's 1.1M-parameter Llama 40.6 ms a step on 1 thread, 45.5 ms on 2; a 31M Llama 787 ms on 1, 560 ms on 2).
 */
export const SMALL_MODEL_PARAMETERS = 10_000_000;

/**
 * The intra-op threads for training a model of `parameters` on the CPU when the user chose none: 1 for a
 * small model, else defaultNumThreads().
 */
export function threadsForModel(parameters: number, env: NodeJS.ProcessEnv = process.env): number {
  return parameters < SMALL_MODEL_PARAMETERS ? 1 : defaultNumThreads(env);
}
