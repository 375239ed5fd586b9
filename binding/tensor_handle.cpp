#include "binding/tensor_handle.h"
#include "binding/env_state.h"

namespace tl {

LiveCounts& liveCounts() {
  static LiveCounts counts;
  return counts;
}

static int64_t bytesOf(const at::Tensor& t) {
  if (t.device().is_meta()) return 0;  // meta tensors hold no memory
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

Napi::Function TensorHandle::Define(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod<&TensorHandle::Dispose>("dispose"),
                      InstanceMethod<&TensorHandle::IsDisposed>("isDisposed")});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() { reset(); }

void TensorHandle::set(at::Tensor t) {
  reset();
  t_ = std::move(t);
  if (t_.defined()) {
    bytes_ = bytesOf(t_);
    liveCounts().tensors.fetch_add(1, std::memory_order_relaxed);
    liveCounts().bytes.fetch_add(bytes_, std::memory_order_relaxed);
  }
}

void TensorHandle::reset() {
  if (!t_.defined()) return;
  liveCounts().tensors.fetch_sub(1, std::memory_order_relaxed);
  liveCounts().bytes.fetch_sub(bytes_, std::memory_order_relaxed);
  bytes_ = 0;
  t_ = at::Tensor();
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Undefined();
  Napi::Object obj = envState(env).tensorCtor.New({});
  Unwrap(obj)->set(std::move(t));
  return obj;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  reset();
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}

}  // namespace tl
