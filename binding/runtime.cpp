// Process-wide state: random seed, grad mode, threads, devices, live-tensor counts, versions.
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x
#include <mutex>
#include <torch/version.h>
#include "binding/op_bridge.h"
#include "src/malloc_tuning.h"
#include "src/blas_info.h"

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
  def(env, e, "setNumThreads", [](Args& a) {
    const int64_t n = a.i64(0);
    TORCH_CHECK(n >= 1 && n <= 4096, "setNumThreads: the thread count must be an integer from 1 to 4096, got ", n);
    at::set_num_threads(static_cast<int>(n));
    setBlasNumThreads(reinterpret_cast<const void*>(&registerRuntime), static_cast<int>(n));
  });
  // What torch-lora runs with (torch-lora info): libtorch's own report of its threading and build.
  def(env, e, "mallocInfo", [](Args&) -> std::string { return tuneMallocForTensors(); });
  def(env, e, "parallelInfo", [](Args&) { return at::get_parallel_info(); });
  def(env, e, "showConfig", [](Args&) { return at::show_config(); });
  def(env, e, "blasInfo", [](Args& a) {
    const BlasInfo b = blasInfo(reinterpret_cast<const void*>(&registerRuntime));
    Napi::Object o = Napi::Object::New(a.env());
    o.Set("library", b.library);
    o.Set("config", b.config);
    o.Set("threads", Napi::Number::New(a.env(), b.threads));
    return static_cast<Napi::Value>(o);
  });
  def(env, e, "cudaIsAvailable", [](Args&) { return at::hasCUDA(); });
  def(env, e, "cudaDeviceCount", [](Args&) { return static_cast<int64_t>(at::hasCUDA() ? at::getNumGPUs() : 0); });
  def(env, e, "liveTensors", [](Args&) { return liveCounts().tensors; });
  def(env, e, "liveBytes", [](Args&) { return liveCounts().bytes; });
  def(env, e, "liveCudaBytes", [](Args&) { return liveCounts().cudaBytes; });
  def(env, e, "torchVersion", [](Args&) { return std::string(TORCH_VERSION); });
}

}  // namespace tl
