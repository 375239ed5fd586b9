// torch.cuda's memory statistics and synchronization. Compiled with CUDA calls only when libtorch
// has CUDA (TL_WITH_CUDA, set by CMakeLists.txt); elsewhere the same functions answer as PyTorch's do
// on a machine without a GPU.
#include "binding/op_bridge.h"
#ifdef TL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace tl {

#ifdef TL_WITH_CUDA
static c10::DeviceIndex deviceIndex(const Args& a, size_t i) {
  return static_cast<c10::DeviceIndex>(a.has(i) ? a.i64(i) : c10::cuda::current_device());
}
#endif

static void requireCuda(const char* what) {
  if (!at::hasCUDA())
    throw ArgError(std::string(what) + " needs CUDA, but this libtorch has no CUDA or sees no GPU");
}

void registerCuda(Napi::Env env, Napi::Object e) {
  def(env, e, "cudaSynchronize", [](Args& a) {
    requireCuda("cuda.synchronize()");
#ifdef TL_WITH_CUDA
    c10::cuda::device_synchronize();
#endif
    (void)a;
  });
  // (device?) -> [allocated, peakAllocated, reserved, peakReserved] bytes of the caching allocator
  def(env, e, "cudaMemoryStats", [](Args& a) -> std::vector<int64_t> {
    requireCuda("cuda.memoryStats()");
#ifdef TL_WITH_CUDA
    auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(deviceIndex(a, 0));
    // index 0 is StatType::AGGREGATE (all pools)
    return {s.allocated_bytes[0].current, s.allocated_bytes[0].peak, s.reserved_bytes[0].current,
            s.reserved_bytes[0].peak};
#else
    (void)a;
    return {0, 0, 0, 0};
#endif
  });
  def(env, e, "cudaResetPeakMemoryStats", [](Args& a) {
    requireCuda("cuda.resetPeakMemoryStats()");
#ifdef TL_WITH_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(deviceIndex(a, 0));
#endif
    (void)a;
  });
  def(env, e, "cudaEmptyCache", [](Args& a) {
    requireCuda("cuda.emptyCache()");
#ifdef TL_WITH_CUDA
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    (void)a;
  });
}

}  // namespace tl
