// Data-parallel training over libtorch's c10d: the process group and its collectives (PyTorch's
// torch.distributed shape), torchrun's environment, and DDP's gradient synchronization.
export {
  allGather,
  allReduce,
  barrier,
  broadcast,
  DEFAULT_TIMEOUT_MS,
  destroyProcessGroup,
  getBackend,
  getRank,
  getWorldSize,
  initProcessGroup,
  isAvailable,
  isInitialized,
} from './process-group';
export type { Backend, InitProcessGroupOptions, ReduceOp } from './process-group';
export { launchedDistributed, readTorchrunEnv } from './env';
export type { TorchrunEnv } from './env';
export { DEFAULT_BUCKET_CAP_MB, GradientSync } from './gradient-sync';
export type { GradientSyncOptions } from './gradient-sync';
export { exitWithLauncher, freePort, INTERRUPTED_EXIT_CODE, launch, WorkerFailedError } from './launch';
export type { LaunchOptions, WorkerExit } from './launch';
