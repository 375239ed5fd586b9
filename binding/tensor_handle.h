// The JavaScript handle of one at::Tensor (an ObjectWrap). It owns a reference to the tensor until
// dispose() or, as a safety net only, until the garbage collector finalizes it.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <atomic>

namespace tl {

struct LiveCounts {
  std::atomic<int64_t> tensors{0};
  std::atomic<int64_t> bytes{0};
};
LiveCounts& liveCounts();

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  // A new JS handle that owns `t`; an undefined tensor becomes `undefined` (PyTorch's None).
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  const at::Tensor& tensor() const { return t_; }
  bool disposed() const { return !t_.defined(); }
  void reset();

 private:
  void set(at::Tensor t);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  at::Tensor t_;
  int64_t bytes_ = 0;
};

}  // namespace tl
