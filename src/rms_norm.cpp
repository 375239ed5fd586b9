#include "src/rms_norm.h"

namespace tl {

at::Tensor rmsNorm(const at::Tensor& x, const c10::optional<at::Tensor>& weight, double eps) {
  // float64 stays float64 (exact gradient checks); half types are computed in float32 as HF does.
  at::Tensor h = (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16) ? x.to(at::kFloat) : x;
  at::Tensor y = h * at::rsqrt(h.pow(2).mean({-1}, /*keepdim=*/true) + eps);
  y = y.to(x.scalar_type());
  if (weight) {
    TORCH_CHECK(weight->size(-1) == x.size(-1), "rmsNorm: weight has ", weight->size(-1),
                " features but the input's last dimension is ", x.size(-1));
    y = *weight * y;
  }
  return y;
}

}  // namespace tl
