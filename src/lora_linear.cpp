#include "src/lora_linear.h"
#include "src/dropout.h"
#include "src/lora_cpu_kernels.h"
#include <torch/csrc/autograd/custom_function.h>

namespace tl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// 1 / (1 - p): the scale of the kept elements (0 when everything is dropped, as native_dropout does).
double keptScale(double p) { return p >= 1 ? 0.0 : 1.0 / (1.0 - p); }

struct LoraLinearFunction : public torch::autograd::Function<LoraLinearFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const c10::optional<at::Tensor>& bias, const at::Tensor& a, const at::Tensor& b,
                            double scaling, double p, bool training, bool fanInFanOut) {
    const int64_t in = x.size(-1);
    const int64_t out = fanInFanOut ? w.size(1) : w.size(0);
    const at::Tensor x2 = x.reshape({-1, in});
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out;
    // The output is allocated at its final shape and filled through a 2-D view, so that the returned
    // tensor is not a view of an intermediate.
    at::Tensor y = at::empty(shape, x.options().memory_format(at::MemoryFormat::Contiguous));
    at::Tensor y2 = y.view({-1, out});
    const at::Tensor wt = fanInFanOut ? w : w.t();
    if (bias && bias->defined())
      at::addmm_out(y2, *bias, x2, wt);
    else
      at::mm_out(y2, x2, wt);

    // Adapters in another dtype: x is cast first and dropout applied in the adapters' dtype, as PEFT
    // (lora_A(dropout(x.to(A.dtype)))), so the kept values are scaled without the base dtype's rounding.
    const bool mixed = a.scalar_type() != x.scalar_type();
    const bool cpuKernels = loraCpuKernelsApply(x, a);
    at::Tensor mask;  // bool, only when dropout is active
    at::Tensor xl = x2;
    if (training && p > 0) {
      auto dropped = nativeDropout(mixed ? x2.to(a.scalar_type()) : x2, p);
      xl = std::get<0>(dropped);
      mask = std::get<1>(dropped);
      if (mask.scalar_type() != at::kBool) mask = mask.to(at::kBool);
    }
    at::Tensor xa;  // [N, r], kept for backward
    if (cpuKernels) {
      // reads a bfloat16 x as it is (no float32 copy), sums in float32
      xa = projectRows(xl, a.t(), 1.0);
      expandAdd(y2, xa, b.t(), scaling, /*roundTerm=*/false);
    } else if (!mixed) {
      xa = at::mm(xl, a.t());
      y2.addmm_(xa, b.t(), /*beta=*/1, /*alpha=*/scaling);  // y += s·(xAᵀ)Bᵀ, no [N, out] temporary
    } else {
      // PEFT: result + lora_B(lora_A(x)) * scaling summed in the adapters' dtype, then cast back.
      if (!mask.defined()) xl = x2.to(a.scalar_type());
      xa = at::mm(xl, a.t());
      at::Tensor lo = at::mm(xa, b.t()).mul_(scaling);
      lo.add_(y2);
      y2.copy_(lo);
    }

    ctx->save_for_backward({x, w, a, b, xa, mask});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["p"] = p;
    ctx->saved_data["fanInFanOut"] = fanInFanOut;
    ctx->saved_data["hasBias"] = bias.has_value() && bias->defined();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& a = saved[2];
    const at::Tensor& b = saved[3];
    const at::Tensor& xa = saved[4];
    const at::Tensor& mask = saved[5];
    const double s = ctx->saved_data["scaling"].toDouble();
    const double keep = keptScale(ctx->saved_data["p"].toDouble());
    const bool fanInFanOut = ctx->saved_data["fanInFanOut"].toBool();
    const bool hasBias = ctx->saved_data["hasBias"].toBool();

    // Edges are numbered over the tensor inputs that were given: x, W, [bias], A, B.
    const size_t iA = hasBias ? 3 : 2;
    const bool needX = ctx->needs_input_grad(0);
    const bool needW = ctx->needs_input_grad(1);
    const bool needBias = hasBias && ctx->needs_input_grad(2);
    const bool needA = ctx->needs_input_grad(iA);
    const bool needB = ctx->needs_input_grad(iA + 1);

    const int64_t in = x.size(-1);
    const at::Tensor g2 = grads[0].reshape({-1, grads[0].size(-1)});
    const at::Tensor x2 = x.reshape({-1, in});
    const bool mixed = a.scalar_type() != x.scalar_type();

    at::Tensor gradX, gradW, gradBias, gradA, gradB;
    if (loraCpuKernelsApply(x, a)) {
      // the same products as below, reading g and x in their dtype (see lora_cpu_kernels.h)
      at::Tensor gB;  // s·g·B [N, r]
      if (needX || needA) gB = projectRows(g2, b, s);
      if (needB) gradB = outerSum(g2, xa, s, /*transposed=*/false);
      if (needA) {
        at::Tensor xd = x2;
        if (mask.defined()) xd = (mixed ? x2.to(a.scalar_type()) : x2).mul(mask).mul_(keep);
        gradA = outerSum(xd, gB, 1.0, /*transposed=*/true);
      }
      if (needX) {
        at::Tensor gx = at::mm(g2, fanInFanOut ? w.t() : w);  // [N, in]
        if (!mask.defined()) {
          // a bfloat16 base: PEFT's x.grad is the base's plus the LoRA path's cast back, two roundings
          expandAdd(gx, gB, a, 1.0, /*roundTerm=*/mixed);
        } else {
          at::Tensor t = at::mm(gB, a).mul_(mask).mul_(keep);
          gx.add_(mixed ? t.to(x.scalar_type()) : t);
        }
        gradX = gx.view(x.sizes());
      }
      if (needW) gradW = fanInFanOut ? at::mm(x2.t(), g2) : at::mm(g2.t(), x2);
      if (needBias) gradBias = g2.sum(0);
      return {gradX, gradW, gradBias, gradA, gradB, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const at::Tensor gl = mixed ? g2.to(a.scalar_type()) : g2;
    at::Tensor gB;  // s·g·B [N, r]
    if (needX || needA) gB = at::mm(gl, b).mul_(s);
    if (needB) gradB = at::mm(gl.t(), xa).mul_(s);
    if (needA) {
      at::Tensor xd = mixed ? x2.to(a.scalar_type()) : x2;
      if (mask.defined()) xd = xd.mul(mask).mul_(keep);
      gradA = at::mm(gB.t(), xd);
    }
    if (needX) {
      at::Tensor gx = at::mm(g2, fanInFanOut ? w.t() : w);  // [N, in]
      if (!mask.defined() && !mixed) {
        gx.addmm_(gB, a);  // += s·(gB)A without a second [N, in] tensor
      } else {
        at::Tensor t = at::mm(gB, a);
        if (mask.defined()) t.mul_(mask).mul_(keep);  // through dropout in the adapters' dtype, then cast
        gx.add_(mixed ? t.to(x.scalar_type()) : t);
      }
      gradX = gx.view(x.sizes());
    }
    if (needW) gradW = fanInFanOut ? at::mm(x2.t(), g2) : at::mm(g2.t(), x2);
    if (needBias) gradBias = g2.sum(0);
    return {gradX, gradW, gradBias, gradA, gradB, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor loraLinear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                      const at::Tensor& loraA, const at::Tensor& loraB, double scaling, double dropoutP,
                      bool training, bool fanInFanOut) {
  TORCH_CHECK(x.dim() >= 1, "loraLinear: the input needs at least one dimension, got ", x.sizes());
  TORCH_CHECK(weight.dim() == 2, "loraLinear: weight must be 2-D, got ", weight.sizes());
  const int64_t in = x.size(-1);
  const int64_t wIn = fanInFanOut ? weight.size(0) : weight.size(1);
  const int64_t out = fanInFanOut ? weight.size(1) : weight.size(0);
  TORCH_CHECK(wIn == in, "loraLinear: the input ", x.sizes(), " has ", in, " features but weight ", weight.sizes(),
              fanInFanOut ? " ([in, out], fanInFanOut)" : " ([out, in])", " takes ", wIn);
  TORCH_CHECK(loraA.dim() == 2 && loraA.size(1) == in, "loraLinear: loraA must be [r, ", in, "], got ",
              loraA.sizes());
  const int64_t r = loraA.size(0);
  TORCH_CHECK(loraB.dim() == 2 && loraB.size(0) == out && loraB.size(1) == r, "loraLinear: loraB must be [", out,
              ", ", r, "] for weight ", weight.sizes(), " and loraA ", loraA.sizes(), ", got ", loraB.sizes());
  if (bias && bias->defined())
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == out && bias->scalar_type() == x.scalar_type(),
                "loraLinear: bias must be [", out, "] of ", x.scalar_type(), ", got ", bias->sizes(), " of ",
                bias->scalar_type());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "loraLinear: the input is ", x.scalar_type(),
              " but weight is ", weight.scalar_type());
  TORCH_CHECK(loraA.scalar_type() == loraB.scalar_type(), "loraLinear: loraA is ", loraA.scalar_type(),
              " but loraB is ", loraB.scalar_type());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()) && at::isFloatingType(loraA.scalar_type()),
              "loraLinear: needs floating-point tensors, got input ", x.scalar_type(), " and adapters ",
              loraA.scalar_type());
  TORCH_CHECK(weight.device() == x.device() && loraA.device() == x.device() && loraB.device() == x.device(),
              "loraLinear: all tensors must be on one device: input ", x.device(), ", weight ", weight.device(),
              ", loraA ", loraA.device(), ", loraB ", loraB.device());
  TORCH_CHECK(dropoutP >= 0 && dropoutP <= 1, "loraLinear: dropout p must be in [0, 1], got ", dropoutP);
  return LoraLinearFunction::apply(x, weight, bias, loraA, loraB, scaling, dropoutP, training, fanInFanOut);
}

}  // namespace tl
