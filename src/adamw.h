#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace tl {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

// One torch.optim.AdamW step over a list of parameters, in place and without reading anything back
// from the device. steps[i] is parameter i's step number after this update (1 on its first), kept by
// the caller so that bias corrections are host arithmetic. maxExpAvgSqs is empty unless amsgrad.
// On CUDA with libtorch >= 2.1 eligible tensors go through at::_fused_adamw_ (one kernel per
// device/dtype group); everything else takes PyTorch's single-tensor path (foreach=False), op for op.
void adamwStep(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& expAvgs, const std::vector<at::Tensor>& expAvgSqs,
               const std::vector<at::Tensor>& maxExpAvgSqs, const std::vector<int64_t>& steps,
               const AdamWOptions& o);

}  // namespace tl
