#pragma once
#include <ATen/ATen.h>

namespace tl {

// RMSNorm as Hugging Face's LlamaRMSNorm computes it: the mean of squares in float32, then the
// weight applied after casting back to the input's dtype.
at::Tensor rmsNorm(const at::Tensor& x, const c10::optional<at::Tensor>& weight, double eps);

}  // namespace tl
