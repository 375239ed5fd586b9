#include "src/sgd.h"
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x

namespace tl {

void sgdStep(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
             const std::vector<at::Tensor>& buffers, const std::vector<int64_t>& initialized, const SgdOptions& o) {
  const size_t n = params.size();
  const bool useMomentum = o.momentum != 0;
  TORCH_CHECK(grads.size() == n, "sgdStep: expected ", n, " grads, got ", grads.size());
  TORCH_CHECK(!useMomentum || (buffers.size() == n && initialized.size() == n), "sgdStep: momentum needs ", n,
              " buffers and flags, got ", buffers.size(), " and ", initialized.size());
  for (size_t i = 0; i < n; ++i) TORCH_CHECK(grads[i].defined(), "sgdStep: parameter ", i, " has no gradient");
  c10::NoGradGuard noGrad;
  for (size_t i = 0; i < n; ++i) {
    at::Tensor param = params[i];
    at::Tensor d = o.maximize ? grads[i].neg() : grads[i];
    if (o.weightDecay != 0) d = d.add(param, o.weightDecay);
    if (useMomentum) {
      at::Tensor buf = buffers[i];
      if (initialized[i] == 0)
        buf.copy_(d);  // PyTorch: buf = torch.clone(d_p).detach()
      else
        buf.mul_(o.momentum).add_(d, 1 - o.dampening);
      d = o.nesterov ? d.add(buf, o.momentum) : buf;
    }
    param.add_(d, -o.lr);
  }
}

}  // namespace tl
