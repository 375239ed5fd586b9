// The addon's entry point: the per-environment tensor table, its handles, and every op group.
#include "binding/env_state.h"
#include "binding/op_bridge.h"

namespace tl {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<EnvState>(new EnvState());
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
  return exports;
}

}  // namespace tl

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return tl::Init(env, exports); }
NODE_API_MODULE(torch_lora, InitAddon)
