// Process-wide state: random seed, grad mode, threads, devices, live-tensor counts, versions.
#include <ATen/Parallel.h>
#include <torch/version.h>
#include "binding/op_bridge.h"

namespace tl {

void registerRuntime(Napi::Env env, Napi::Object e) {
  def(env, e, "manualSeed", [](Args& a) { at::manual_seed(static_cast<uint64_t>(a.i64(0))); });
  def(env, e, "isGradEnabled", [](Args&) { return c10::GradMode::is_enabled(); });
  def(env, e, "setGradEnabled", [](Args& a) { c10::GradMode::set_enabled(a.b(0)); });
  def(env, e, "getNumThreads", [](Args&) { return static_cast<int64_t>(at::get_num_threads()); });
  def(env, e, "setNumThreads", [](Args& a) { at::set_num_threads(static_cast<int>(a.i64(0))); });
  def(env, e, "cudaIsAvailable", [](Args&) { return at::hasCUDA(); });
  def(env, e, "cudaDeviceCount", [](Args&) { return static_cast<int64_t>(at::hasCUDA() ? at::getNumGPUs() : 0); });
  def(env, e, "liveTensors", [](Args&) { return liveCounts().tensors.load(); });
  def(env, e, "liveBytes", [](Args&) { return liveCounts().bytes.load(); });
  def(env, e, "torchVersion", [](Args&) { return std::string(TORCH_VERSION); });
}

}  // namespace tl
