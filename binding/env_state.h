// Per-environment state (worker threads each get their own): the handle constructor.
#pragma once
#include <napi.h>

namespace tl {

struct EnvState {
  Napi::FunctionReference tensorCtor;
};

inline EnvState& envState(Napi::Env env) { return *env.GetInstanceData<EnvState>(); }

}  // namespace tl
