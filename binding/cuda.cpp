// torch.cuda's memory statistics and synchronization. Compiled with CUDA calls only when libtorch
// has CUDA (TL_WITH_CUDA, set by CMakeLists.txt); elsewhere the same functions answer as PyTorch's do
// on a machine without a GPU.
#include "binding/op_bridge.h"
#include "src/torch_version.h"
#ifdef TL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#ifdef TL_TORCH_HAS_CUDA
// Nothing here calls libtorch_cuda by name (its kernels register themselves when it loads), so linkers
// with --as-needed drop it and CUDA tensors then fail at run time. This reference keeps it (tch-rs does
// the same); scripts/cmake/check-cuda-link.cmake checks the result after each build. Never called.
namespace at::cuda {
int warp_size();
}
extern "C" __attribute__((visibility("default"), used)) int tl_keep_libtorch_cuda() { return at::cuda::warp_size(); }
#endif

namespace tl {

#ifdef TL_WITH_CUDA
static c10::DeviceIndex deviceIndex(const Args& a, size_t i) {
  if (!a.has(i)) return c10::cuda::current_device();
  int64_t d = a.i64(i);
  int64_t n = c10::cuda::device_count();
  if (d < 0 || d >= n)
    throw ArgError("CUDA device " + std::to_string(d) + " does not exist (this machine has " + std::to_string(n) +
                   " GPU" + (n == 1 ? "" : "s") + ")");
  return static_cast<c10::DeviceIndex>(d);
}

// Whether the caching allocator has been set up (by the first CUDA tensor). Before that its statistics
// calls fail ("did you call init?"); PyTorch answers 0 then, without starting CUDA just to ask.
static bool allocatorInitialized() {
#if TL_TORCH_AT_LEAST(2, 1)
  return c10::cuda::CUDACachingAllocator::get()->initialized();
#else
  // 1.x has no such question: set CUDA up (idempotent) so that the statistics exist.
  at::globalContext().lazyInitCUDA();
  return true;
#endif
}
#endif

// torch.cuda's statistics on a machine without CUDA, or before CUDA is used, answer 0 and do nothing,
// as PyTorch's do: code that logs memory runs on the CPU unchanged.
static bool statsAvailable() {
#ifdef TL_WITH_CUDA
  return at::hasCUDA() && allocatorInitialized();
#else
  return false;
#endif
}

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
#ifdef TL_WITH_CUDA
    if (statsAvailable()) {
      auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(deviceIndex(a, 0));
      // index 0 is StatType::AGGREGATE (all pools)
      return {s.allocated_bytes[0].current, s.allocated_bytes[0].peak, s.reserved_bytes[0].current,
              s.reserved_bytes[0].peak};
    }
#endif
    (void)a;
    return {0, 0, 0, 0};
  });
  def(env, e, "cudaResetPeakMemoryStats", [](Args& a) {
#ifdef TL_WITH_CUDA
    if (statsAvailable()) c10::cuda::CUDACachingAllocator::resetPeakStats(deviceIndex(a, 0));
#endif
    (void)a;
  });
  def(env, e, "cudaEmptyCache", [](Args& a) {
#ifdef TL_WITH_CUDA
    if (statsAvailable()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    (void)a;
  });
}

}  // namespace tl
