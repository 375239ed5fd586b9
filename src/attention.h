#pragma once
#include <ATen/ATen.h>

namespace tl {

// torch.nn.functional.scaled_dot_product_attention: q [.., Hq, L, E], k/v [.., Hk, S, E].
// attnMask: bool (true = may attend) or float (added to the scores), broadcast to [.., Hq, L, S].
// enableGqa lets Hk divide Hq (grouped-query attention). libtorch >= 2.5 runs its fused kernels
// (flash / memory-efficient on CUDA); older ones run the same math as a composite.
at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const c10::optional<at::Tensor>& attnMask, double dropoutP, bool isCausal,
                                     c10::optional<double> scale, bool enableGqa);

}  // namespace tl
