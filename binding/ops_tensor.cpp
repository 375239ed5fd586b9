// What a Tensor is (shape, dtype, device), conversions, and autograd.
#include <torch/csrc/autograd/function.h>
#include "binding/op_bridge.h"

namespace tl {

void registerTensorOps(Napi::Env env, Napi::Object e) {
  def(env, e, "shape", [](Args& a) { return a.t(0).sizes().vec(); });
  def(env, e, "stride", [](Args& a) { return a.t(0).strides().vec(); });
  def(env, e, "dtype", [](Args& a) { return static_cast<int64_t>(a.t(0).scalar_type()); });
  def(env, e, "device", [](Args& a) { return a.t(0).device().str(); });
  def(env, e, "numel", [](Args& a) { return static_cast<int64_t>(a.t(0).numel()); });
  def(env, e, "isContiguous", [](Args& a) { return a.t(0).is_contiguous(); });
  def(env, e, "item", [](Args& a) -> Napi::Value {
    const at::Tensor& t = a.t(0);
    if (t.numel() != 1)
      throw ArgError("item() needs a tensor of one element, got shape " + c10::str(t.sizes()));
    at::Scalar s = t.item();
    if (s.isBoolean()) return Napi::Boolean::New(a.env(), s.toBool());
    if (s.isIntegral(false)) return Napi::Number::New(a.env(), static_cast<double>(s.toLong()));
    return Napi::Number::New(a.env(), s.toDouble());
  });
  // (t, dtype?, device?, copy?)
  def(env, e, "to", [](Args& a) {
    const at::Tensor& t = a.t(0);
    auto dt = a.has(1) ? a.dtype(1) : t.scalar_type();
    auto dev = a.has(2) ? a.device(2) : t.device();
    return t.to(dev, dt, /*non_blocking=*/false, /*copy=*/a.b(3));
  });
  def(env, e, "clone", [](Args& a) { return a.t(0).clone(); });
  def(env, e, "detach", [](Args& a) { return a.t(0).detach(); });
  def(env, e, "setData", [](Args& a) {
    a.allowMetaMix();  // loading real data into a parameter made on meta
    at::Tensor t = a.t(0);
    t.set_data(a.t(1));
  });
  def(env, e, "sameStorage", [](Args& a) {
    a.allowMetaMix();
    return a.t(0).is_same(a.t(1));
  });

  // Autograd.
  def(env, e, "requiresGrad", [](Args& a) { return a.t(0).requires_grad(); });
  def(env, e, "setRequiresGrad", [](Args& a) { a.t(0).requires_grad_(a.b(1, true)); });
  def(env, e, "isLeaf", [](Args& a) { return a.t(0).is_leaf(); });
  def(env, e, "retainGrad", [](Args& a) { a.t(0).retain_grad(); });
  def(env, e, "gradFnName", [](Args& a) -> Napi::Value {
    const auto& fn = a.t(0).grad_fn();
    if (!fn) return a.env().Null();
    return Napi::String::New(a.env(), fn->name());
  });
  def(env, e, "grad", [](Args& a) { return a.t(0).grad(); });
  def(env, e, "setGrad", [](Args& a) {
    at::Tensor t = a.t(0);
    if (!a.has(1)) {
      t.mutable_grad().reset();
      return;
    }
    const at::Tensor& g = a.t(1);
    // The checks PyTorch's `x.grad = g` makes; a mismatched .grad would fail later, far from here.
    TORCH_CHECK(g.sizes() == t.sizes(), "assigned grad has shape ", g.sizes(), " but the tensor has shape ", t.sizes());
    TORCH_CHECK(g.scalar_type() == t.scalar_type(), "assigned grad has dtype ", g.scalar_type(),
                " but the tensor has dtype ", t.scalar_type());
    TORCH_CHECK(g.device() == t.device(), "assigned grad is on ", g.device(), " but the tensor is on ", t.device());
    t.mutable_grad() = g;
  });
  // (t, gradient?, retainGraph, createGraph)
  def(env, e, "backward", [](Args& a) {
    const at::Tensor& t = a.t(0);
    if (!a.has(1) && t.numel() != 1)
      throw ArgError("backward() without a gradient needs a scalar (one-element) tensor, got shape " +
                     c10::str(t.sizes()) + "; pass a gradient of the same shape");
    c10::optional<bool> retain;
    if (a.has(2)) retain = a.b(2);
    t.backward(a.has(1) ? a.t(1) : at::Tensor(), retain, a.b(3));
  });
}

}  // namespace tl
