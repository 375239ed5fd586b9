// Optimizer steps and gradient utilities: each is one call over a whole list of parameters, reading
// the gradients here (no JavaScript handle per gradient) and never syncing with the device.
#include "binding/op_bridge.h"
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x
#include "src/adamw.h"
#include "src/clip_grad.h"
#include "src/sgd.h"

namespace tl {

static std::vector<at::Tensor> gradsOf(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> out;
  out.reserve(params.size());
  for (const auto& p : params) out.push_back(p.grad());
  return out;
}

void registerOptimOps(Napi::Env env, Napi::Object e) {
  // (params) -> boolean[]: which parameters have a gradient (p.grad is not None).
  def(env, e, "gradsDefined", [](Args& a) -> Napi::Value {
    a.allowMetaMix();  // bookkeeping, no math: parameters may sit on any devices
    auto params = a.tensors(0);
    Napi::Array out = Napi::Array::New(a.env(), params.size());
    for (uint32_t i = 0; i < params.size(); ++i) out.Set(i, Napi::Boolean::New(a.env(), params[i].grad().defined()));
    return out;
  });
  // (params, setToNone): optimizer.zero_grad(set_to_none)
  def(env, e, "zeroGrads", [](Args& a) {
    a.allowMetaMix();
    auto params = a.tensors(0);
    const bool setToNone = a.b(1, true);
    c10::NoGradGuard noGrad;
    for (auto& p : params) {
      at::Tensor& g = p.mutable_grad();
      if (!g.defined()) continue;
      if (setToNone) {
        g.reset();
      } else {
        if (g.grad_fn()) g = g.detach(); else g.requires_grad_(false);
        g.zero_();
      }
    }
  });
  // (params, expAvgs, expAvgSqs, maxExpAvgSqs, steps, lr, beta1, beta2, eps, weightDecay, amsgrad, maximize)
  def(env, e, "adamwStep", [](Args& a) {
    auto params = a.tensors(0);
    AdamWOptions o;
    o.lr = a.f64(5);
    o.beta1 = a.f64(6);
    o.beta2 = a.f64(7);
    o.eps = a.f64(8);
    o.weightDecay = a.f64(9);
    o.amsgrad = a.b(10);
    o.maximize = a.b(11);
    adamwStep(params, gradsOf(params), a.tensors(1), a.tensors(2), a.tensors(3), a.dims(4), o);
  });
  // (params, buffers, initialized (0/1 each), lr, momentum, dampening, weightDecay, nesterov, maximize)
  def(env, e, "sgdStep", [](Args& a) {
    auto params = a.tensors(0);
    SgdOptions o;
    o.lr = a.f64(3);
    o.momentum = a.f64(4);
    o.dampening = a.f64(5);
    o.weightDecay = a.f64(6);
    o.nesterov = a.b(7);
    o.maximize = a.b(8);
    sgdStep(params, gradsOf(params), a.tensors(1), a.dims(2), o);
  });
  // (params, maxNorm, normType, errorIfNonfinite) -> total norm
  def(env, e, "clipGradNorm", [](Args& a) { return clipGradNorm(a.tensors(0), a.f64(1), a.f64(2, 2.0), a.b(3)); });
}

}  // namespace tl
