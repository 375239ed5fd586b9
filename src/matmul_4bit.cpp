#include "src/matmul_4bit.h"
#include <torch/csrc/autograd/custom_function.h>
#include "src/quant_blockwise.h"
#include "src/quant_codes.h"

namespace tl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

struct Matmul4bitFunction : public torch::autograd::Function<Matmul4bitFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& packed,
                            const at::Tensor& absmax, const c10::optional<at::Tensor>& bias, int64_t blocksize,
                            const std::string& quantType, int64_t out, int64_t in) {
    at::Tensor w = dequantize4bit(packed, absmax, blocksize, quantType, {out, in}, x.scalar_type());
    at::Tensor y = at::linear(x, w, bias);
    ctx->save_for_backward({packed, absmax});
    ctx->saved_data["blocksize"] = blocksize;
    ctx->saved_data["quantType"] = quantType;
    ctx->saved_data["out"] = out;
    ctx->saved_data["in"] = in;
    ctx->saved_data["hasBias"] = bias.has_value() && bias->defined();
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool hasBias = ctx->saved_data["hasBias"].toBool();
    const at::Tensor& g = grads[0];
    at::Tensor gradX, gradBias;
    if (ctx->needs_input_grad(0)) {
      const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
      at::Tensor w = dequantize4bit(saved[0], saved[1], ctx->saved_data["blocksize"].toInt(),
                                    ctx->saved_data["quantType"].toStringRef(),
                                    {ctx->saved_data["out"].toInt(), ctx->saved_data["in"].toInt()}, dtype);
      gradX = at::matmul(g, w);
    }
    // Edges: x, packed, absmax, [bias]
    if (hasBias && ctx->needs_input_grad(3)) gradBias = g.reshape({-1, g.size(-1)}).sum(0);
    return {gradX, at::Tensor(), at::Tensor(), gradBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor matmul4bit(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                      const std::string& quantType, int64_t outFeatures, int64_t inFeatures,
                      const c10::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == inFeatures, "matmul4bit: the input ", x.sizes(), " must end in ",
              inFeatures, " features (the weight is [", outFeatures, ", ", inFeatures, "])");
  const auto t = x.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble,
              "matmul4bit: the input must be floating point (the compute dtype), got ", t);
  TORCH_CHECK(packed.device() == x.device() && absmax.device() == x.device(),
              "matmul4bit: the input is on ", x.device(), " but the packed weight on ", packed.device(),
              " and absmax on ", absmax.device());
  if (bias && bias->defined())
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == outFeatures && bias->scalar_type() == t,
                "matmul4bit: bias must be [", outFeatures, "] of ", t, ", got ", bias->sizes(), " of ",
                bias->scalar_type());
  return Matmul4bitFunction::apply(x, packed, absmax, bias, blocksize, quantType, outFeatures, inFeatures);
}

}  // namespace tl
