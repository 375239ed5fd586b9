#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace tl {

struct SgdOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weightDecay = 0;
  bool nesterov = false;
  bool maximize = false;
};

// One torch.optim.SGD step (single-tensor path, foreach=False), in place. With momentum, buffers[i]
// is parameter i's momentum buffer: when initialized[i] is false its content is ignored and it is
// filled with this step's direction, as PyTorch does when it first clones it. Without momentum,
// buffers and initialized are empty.
void sgdStep(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
             const std::vector<at::Tensor>& buffers, const std::vector<int64_t>& initialized, const SgdOptions& o);

}  // namespace tl
