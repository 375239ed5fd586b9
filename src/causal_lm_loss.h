#pragma once
#include <ATen/ATen.h>

namespace tl {

// transformers' causal-LM loss on the LM head's input, without the [tokens, vocab] logits:
// position t of hidden [B, S, H] is scored against labels[:, t+1] (the last position and labels equal to
// ignoreIndex are ignored), logits = hidden·Wᵀ (W [V, H]) in the hidden dtype, cross-entropy in float32
// (float64 stays float64), reduced by 'mean' over the scored positions or 'sum'.
// Tokens are processed chunkSize at a time (0: about 128 MiB of float32 logits per chunk). When autograd
// will want gradients, by default the forward computes them while each chunk's logits are at hand (the
// gradient of hidden [N, H], and of W [V, H] only when W requires one) and the backward scales them by
// the upstream gradient: two LM-head products per chunk, as the unfused loss. With recompute, the
// forward keeps only each token's logsumexp and the backward recomputes each chunk's logits (three
// products, nothing of size N·H held in between).
at::Tensor causalLmLoss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                        int64_t ignoreIndex, int64_t chunkSize, bool meanReduction, bool recompute);

}  // namespace tl
