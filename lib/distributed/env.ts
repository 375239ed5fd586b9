// The variables torchrun sets for each worker (and `torch-lora train --nproc-per-node` sets the same way).
export interface TorchrunEnv {
  rank?: number;
  worldSize?: number;
  localRank?: number;
  localWorldSize?: number;
  masterAddr?: string;
  masterPort?: number;
}

function int(name: string, env: NodeJS.ProcessEnv): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative integer`);
  return n;
}

/** RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT as numbers (undefined when unset). */
export function readTorchrunEnv(env: NodeJS.ProcessEnv = process.env): TorchrunEnv {
  const masterPort = int('MASTER_PORT', env);
  if (masterPort !== undefined && (masterPort < 1 || masterPort > 65535)) throw new Error(`MASTER_PORT=${masterPort} is not a port (1..65535)`);
  return {
    rank: int('RANK', env),
    worldSize: int('WORLD_SIZE', env),
    localRank: int('LOCAL_RANK', env),
    localWorldSize: int('LOCAL_WORLD_SIZE', env),
    masterAddr: env.MASTER_ADDR || undefined,
    masterPort,
  };
}

/** Whether this process was started as one rank of a job with more than one (WORLD_SIZE > 1). */
export function launchedDistributed(env: NodeJS.ProcessEnv = process.env): boolean {
  const w = int('WORLD_SIZE', env);
  return w !== undefined && w > 1;
}
