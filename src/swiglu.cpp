#include "src/swiglu.h"
#include <torch/csrc/autograd/custom_function.h>

namespace tl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

struct SwigluFunction : public torch::autograd::Function<SwigluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    at::Tensor out = at::silu(gate);
    out.mul_(up);
    ctx->save_for_backward({gate, up});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& gate = saved[0];
    const at::Tensor& up = saved[1];
    const at::Tensor& g = grads[0];
    at::Tensor gradGate, gradUp;
    if (ctx->needs_input_grad(1)) gradUp = g.mul(at::silu(gate));
    if (ctx->needs_input_grad(0)) gradGate = at::silu_backward(g.mul(up), gate);
    return {gradGate, gradUp};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  TORCH_CHECK(gate.sizes() == up.sizes(), "swiglu: gate ", gate.sizes(), " and up ", up.sizes(),
              " must have one shape");
  TORCH_CHECK(gate.scalar_type() == up.scalar_type() && at::isFloatingType(gate.scalar_type()),
              "swiglu: gate and up need one floating dtype, got ", gate.scalar_type(), " and ", up.scalar_type());
  return SwigluFunction::apply(gate, up);
}

}  // namespace tl
