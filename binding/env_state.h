// Per-environment state (worker threads each get their own): the table of tensors JS holds handles to.
#pragma once
#include <napi.h>
#include "binding/tensor_handle.h"

namespace tl {

struct EnvState {
  explicit EnvState(napi_env env) : tensors(env) {}
  TensorTable tensors;
};

inline EnvState& envState(Napi::Env env) { return *env.GetInstanceData<EnvState>(); }

}  // namespace tl
