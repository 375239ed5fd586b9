#include "src/clip_grad.h"
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x

#include <cmath>

namespace tl {

at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm, double normType,
                        bool errorIfNonfinite) {
  c10::NoGradGuard noGrad;
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return at::scalar_tensor(0.0, at::kFloat);
  const at::Device device = grads[0].device();
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  at::Tensor total;
  if (std::isinf(normType) && normType > 0) {
    for (const auto& g : grads) norms.push_back(g.detach().abs().max().to(device));
    total = norms.size() == 1 ? norms[0] : at::stack(norms).max();
  } else {
    for (const auto& g : grads) norms.push_back(at::norm(g.detach(), normType).to(device));
    total = at::norm(at::stack(norms), normType);
  }
  if (errorIfNonfinite && (total.isnan().item<bool>() || total.isinf().item<bool>()))
    TORCH_CHECK(false, "The total norm of order ", normType,
                " for gradients is non-finite, so it cannot be clipped. To scale the gradients by the "
                "non-finite norm anyway, set errorIfNonfinite to false");
  // Python's `max_norm / (total + 1e-6)` is Tensor.__rdiv__: reciprocal() * max_norm.
  const at::Tensor coef = ((total + 1e-6).reciprocal() * maxNorm).clamp_max(1.0);
  for (auto& g : grads) g.detach().mul_(coef.to(g.device()));
  return total;
}

}  // namespace tl
