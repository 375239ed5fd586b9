// torch.cuda's questions: is there a GPU, how much memory the caching allocator holds, synchronize.
import { native } from './native';

function deviceIndex(device?: number | string): number | undefined {
  if (device === undefined || typeof device === 'number') return device;
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`expected a CUDA device such as 'cuda' or 'cuda:0', got '${device}'`);
  return m[1] === undefined ? undefined : Number(m[1]);
}

export const cuda = {
  /** Whether libtorch was built with CUDA and sees at least one GPU. */
  isAvailable(): boolean {
    return native.cudaIsAvailable();
  },
  deviceCount(): number {
    return native.cudaDeviceCount();
  },
  /** Waits for every kernel queued on the device (the one host sync a timing needs). */
  synchronize(): void {
    native.cudaSynchronize();
  },
  /** Bytes held by tensors now (torch.cuda.memory_allocated). */
  memoryAllocated(device?: number | string): number {
    return native.cudaMemoryStats(deviceIndex(device))[0];
  },
  /** Peak bytes held by tensors since start or the last reset (torch.cuda.max_memory_allocated). */
  maxMemoryAllocated(device?: number | string): number {
    return native.cudaMemoryStats(deviceIndex(device))[1];
  },
  /** Bytes the caching allocator has reserved from the driver (torch.cuda.memory_reserved). */
  memoryReserved(device?: number | string): number {
    return native.cudaMemoryStats(deviceIndex(device))[2];
  },
  maxMemoryReserved(device?: number | string): number {
    return native.cudaMemoryStats(deviceIndex(device))[3];
  },
  resetPeakMemoryStats(device?: number | string): void {
    native.cudaResetPeakMemoryStats(deviceIndex(device));
  },
  /** Returns cached, unused blocks to the driver (torch.cuda.empty_cache). */
  emptyCache(): void {
    native.cudaEmptyCache();
  },
};
