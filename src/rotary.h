#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace tl {

// transformers' apply_rotary_pos_emb (rotate_half convention, unsqueeze_dim = 1) for q and k at once:
//   q' = q·cos + rotate_half(q)·sin,  k' = k·cos + rotate_half(k)·sin,  rotate_half(x) = [-x2, x1].
// q [B, Hq, S, D], k [B, Hk, S, D], cos/sin [B or 1, S, D]. One autograd node that saves only cos and
// sin (and q, k when cos or sin need a gradient); the forward rounds exactly as the composite does.
std::vector<at::Tensor> applyRotaryPosEmb(const at::Tensor& q, const at::Tensor& k, const at::Tensor& cos,
                                          const at::Tensor& sin);

}  // namespace tl
