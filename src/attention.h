#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace tl {

// torch.nn.functional.scaled_dot_product_attention: q [.., Hq, L, E], k/v [.., Hk, S, E].
// attnMask: bool (true = may attend) or float (added to the scores), broadcast to [.., Hq, L, S].
// enableGqa lets Hk divide Hq (grouped-query attention). libtorch >= 2.5 runs its fused kernels
// (flash / memory-efficient on CUDA); older ones run the same math as a composite.
at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const c10::optional<at::Tensor>& attnMask, double dropoutP, bool isCausal,
                                     c10::optional<double> scale, bool enableGqa);

// Which way each call ran, counted (a debug aid: do the training batches reach the fused kernels?).
// Kernels: libtorch's own choice (at::_fused_sdp_choice) on >= 2.5, "composite" before. Inputs: whether
// the call was isCausal without a mask, had a mask, or neither, and whether grouped-query k/v heads were
// left to the kernel (enable_gqa) or expanded first (a mask with enable_gqa sends CUDA to the math kernel).
// With TORCH_LORA_DEBUG set, the first call of each kind is logged to stderr.
enum class AttentionCount : int { kComposite, kMath, kFlash, kEfficient, kCudnn, kOther, kCausal, kMasked,
                                  kUnmasked, kGqaKernel, kGqaExpanded, kSize };
std::vector<int64_t> attentionCounts();
void resetAttentionCounts();

}  // namespace tl
