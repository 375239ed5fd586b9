#include "src/rotary.h"
#include <torch/csrc/autograd/custom_function.h>

namespace tl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// [-x2, x1] written into one new tensor (no cat of a negated temporary).
at::Tensor rotateHalf(const at::Tensor& x) {
  const int64_t d = x.size(-1) / 2;
  at::Tensor r = at::empty_like(x, at::MemoryFormat::Contiguous);
  at::Tensor lo = r.narrow(-1, 0, d);
  at::neg_out(lo, x.narrow(-1, d, d));
  r.narrow(-1, d, d).copy_(x.narrow(-1, 0, d));
  return r;
}

// x·c + rotate_half(x)·s, each product rounded before the sum, as the composite does.
at::Tensor rotate(const at::Tensor& x, const at::Tensor& c, const at::Tensor& s) {
  at::Tensor out = x.mul(c);
  at::Tensor rot = rotateHalf(x);
  if (rot.sizes() == out.sizes())
    rot.mul_(s);
  else
    rot = rot.mul(s);
  return out.add_(rot);
}

// The adjoint of rotate for the input: g·c + rotate_half_transposed(g·s), rotate_half_transposed(y) = [y2, -y1].
at::Tensor rotateBackward(const at::Tensor& g, const at::Tensor& c, const at::Tensor& s, at::IntArrayRef shape) {
  const int64_t d = g.size(-1) / 2;
  at::Tensor t = g.mul(s);
  at::Tensor r = g.mul(c);
  r.narrow(-1, 0, d).add_(t.narrow(-1, d, d));
  r.narrow(-1, d, d).sub_(t.narrow(-1, 0, d));
  return r.sizes() == shape ? r : r.sum_to_size(shape);
}

struct RotaryFunction : public torch::autograd::Function<RotaryFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& cos,
                               const at::Tensor& sin) {
    const at::Tensor c = cos.unsqueeze(1);
    const at::Tensor s = sin.unsqueeze(1);
    at::Tensor qe = rotate(q, c, s);
    at::Tensor ke = rotate(k, c, s);
    const bool tablesNeedGrad = cos.requires_grad() || sin.requires_grad();
    ctx->save_for_backward({cos, sin, tablesNeedGrad ? q : at::Tensor(), tablesNeedGrad ? k : at::Tensor()});
    ctx->saved_data["qShape"] = q.sizes().vec();
    ctx->saved_data["kShape"] = k.sizes().vec();
    return {qe, ke};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& cos = saved[0];
    const at::Tensor& sin = saved[1];
    const at::Tensor c = cos.unsqueeze(1);
    const at::Tensor s = sin.unsqueeze(1);
    const at::Tensor& gq = grads[0];
    const at::Tensor& gk = grads[1];
    at::Tensor gradQ, gradK, gradCos, gradSin;
    if (ctx->needs_input_grad(0)) gradQ = rotateBackward(gq, c, s, ctx->saved_data["qShape"].toIntVector());
    if (ctx->needs_input_grad(1)) gradK = rotateBackward(gk, c, s, ctx->saved_data["kShape"].toIntVector());
    const at::Tensor& q = saved[2];
    const at::Tensor& k = saved[3];
    if (ctx->needs_input_grad(2))
      gradCos = (gq.mul(q).sum_to_size(c.sizes()) + gk.mul(k).sum_to_size(c.sizes())).view(cos.sizes());
    if (ctx->needs_input_grad(3))
      gradSin = (gq.mul(rotateHalf(q)).sum_to_size(s.sizes()) + gk.mul(rotateHalf(k)).sum_to_size(s.sizes()))
                    .view(sin.sizes());
    return {gradQ, gradK, gradCos, gradSin};
  }
};

}  // namespace

std::vector<at::Tensor> applyRotaryPosEmb(const at::Tensor& q, const at::Tensor& k, const at::Tensor& cos,
                                          const at::Tensor& sin) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4, "applyRotaryPosEmb: q and k must be [batch, heads, seq, headDim], got ",
              q.sizes(), " and ", k.sizes());
  TORCH_CHECK(cos.dim() == 3 && cos.sizes() == sin.sizes(),
              "applyRotaryPosEmb: cos and sin must be [batch, seq, headDim] of one shape, got ", cos.sizes(), " and ",
              sin.sizes());
  const int64_t d = q.size(-1);
  TORCH_CHECK(d % 2 == 0 && k.size(-1) == d && cos.size(-1) == d,
              "applyRotaryPosEmb: q ", q.sizes(), ", k ", k.sizes(), " and cos ", cos.sizes(),
              " need one even head size in the last dimension");
  const bool fits = q.size(2) == cos.size(1) && k.size(2) == cos.size(1) &&
                    (cos.size(0) == 1 || (cos.size(0) == q.size(0) && cos.size(0) == k.size(0)) ||
                     (q.size(0) == 1 && k.size(0) == 1));
  TORCH_CHECK(fits, "applyRotaryPosEmb: cos/sin ", cos.sizes(), " do not match the batch and sequence of q ",
              q.sizes(), " and k ", k.sizes());
  TORCH_CHECK(q.scalar_type() == k.scalar_type() && cos.scalar_type() == q.scalar_type() &&
                  sin.scalar_type() == q.scalar_type(),
              "applyRotaryPosEmb: q, k, cos and sin need one dtype, got ", q.scalar_type(), ", ", k.scalar_type(), ", ",
              cos.scalar_type(), ", ", sin.scalar_type());
  return RotaryFunction::apply(q, k, cos, sin);
}

}  // namespace tl
