// The addon's entry point: the per-environment tensor table, its handles, and every op group.
#include "binding/env_state.h"
#include "binding/op_bridge.h"
#include "src/malloc_tuning.h"

namespace tl {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tuneMallocForTensors();
  env.SetInstanceData<EnvState>(new EnvState(env));
  registerTensorHandles(env, exports);
  registerCreationOps(env, exports);
  registerMathOps(env, exports);
  registerShapeOps(env, exports);
  registerTensorOps(env, exports);
  registerNnOps(env, exports);
  registerRuntime(env, exports);
  registerCuda(env, exports);
  registerIo(env, exports);
  registerTorchLoad(env, exports);
  registerOptimOps(env, exports);
  registerLinalgOps(env, exports);
  registerFusedOps(env, exports);
  registerQuantOps(env, exports);
  registerDistributed(env, exports);
  return exports;
}

}  // namespace tl

// Nothing may be thrown out of registration: node-addon-api turns a Napi::Error into a JS exception, and
// when a worker thread is terminated while it loads the addon that throw fails too and the rethrow reached
// std::terminate (SIGABRT of the whole process). A JS exception already pending (or an environment that is
// going away) is left as it is; any other C++ error becomes a JS Error when one can still be thrown.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  try {
    return tl::Init(env, exports);
  } catch (const Napi::Error&) {
    // its JS value is pending already, or the environment is terminating
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("torch-lora: cannot register the addon: ") + e.what()).c_str());
  } catch (...) {
    napi_throw_error(env, nullptr, "torch-lora: cannot register the addon");
  }
  return exports;
}
NODE_API_MODULE(torch_lora, InitAddon)
