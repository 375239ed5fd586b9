// Process-wide state: random seed, grad mode, threads, devices, live-tensor counts, versions.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x
#include <mutex>
#include <torch/version.h>
#include "binding/op_bridge.h"

namespace tl {

void registerRuntime(Napi::Env env, Napi::Object e) {
  def(env, e, "manualSeed", [](Args& a) { at::manual_seed(static_cast<uint64_t>(a.i64(0))); });
  // The default generator's state of a device (torch.get_rng_state / torch.cuda.get_rng_state): a
  // uint8 tensor on the CPU; setting it back replays the same random numbers (exact training resume,
  // dropout masks recomputed in gradient checkpointing). Device default 'cpu'.
  def(env, e, "getRngState", [](Args& a) {
    at::Generator g = at::globalContext().defaultGenerator(a.has(0) ? a.device(0) : at::Device(at::kCPU));
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
  });
  def(env, e, "setRngState", [](Args& a) {
    at::Generator g = at::globalContext().defaultGenerator(a.has(1) ? a.device(1) : at::Device(at::kCPU));
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(a.t(0));
  });
  def(env, e, "isGradEnabled", [](Args&) { return c10::GradMode::is_enabled(); });
  def(env, e, "setGradEnabled", [](Args& a) { c10::GradMode::set_enabled(a.b(0)); });
  def(env, e, "getNumThreads", [](Args&) { return static_cast<int64_t>(at::get_num_threads()); });
  def(env, e, "setNumThreads", [](Args& a) { at::set_num_threads(static_cast<int>(a.i64(0))); });
  def(env, e, "cudaIsAvailable", [](Args&) { return at::hasCUDA(); });
  def(env, e, "cudaDeviceCount", [](Args&) { return static_cast<int64_t>(at::hasCUDA() ? at::getNumGPUs() : 0); });
  def(env, e, "liveTensors", [](Args&) { return liveCounts().tensors; });
  def(env, e, "liveBytes", [](Args&) { return liveCounts().bytes; });
  def(env, e, "liveCudaBytes", [](Args&) { return liveCounts().cudaBytes; });
  def(env, e, "torchVersion", [](Args&) { return std::string(TORCH_VERSION); });
}

}  // namespace tl
