#include "src/attention.h"
#include <cmath>
#include "src/torch_version.h"

namespace tl {

static void checkShapes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool enableGqa) {
  TORCH_CHECK(q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim(),
              "scaledDotProductAttention: query, key and value need the same rank (>= 2), got ", q.sizes(), ", ",
              k.sizes(), ", ", v.sizes());
  TORCH_CHECK(q.size(-1) == k.size(-1), "scaledDotProductAttention: query and key head sizes differ: ", q.sizes(),
              " vs ", k.sizes());
  TORCH_CHECK(k.size(-2) == v.size(-2), "scaledDotProductAttention: key and value lengths differ: ", k.sizes(),
              " vs ", v.sizes());
  if (q.dim() >= 3 && q.size(-3) != k.size(-3)) {
    TORCH_CHECK(enableGqa, "scaledDotProductAttention: query has ", q.size(-3), " heads but key has ", k.size(-3),
                "; pass enableGqa: true for grouped-query attention");
    TORCH_CHECK(q.size(-3) % k.size(-3) == 0, "scaledDotProductAttention: query heads (", q.size(-3),
                ") must be a multiple of key/value heads (", k.size(-3), ")");
  }
}

static at::Tensor composite(const at::Tensor& q, at::Tensor k, at::Tensor v, const c10::optional<at::Tensor>& mask,
                            double dropoutP, bool isCausal, c10::optional<double> scale) {
  if (q.dim() >= 3 && q.size(-3) != k.size(-3)) {
    int64_t groups = q.size(-3) / k.size(-3);
    k = k.repeat_interleave(groups, q.dim() - 3);
    v = v.repeat_interleave(groups, q.dim() - 3);
  }
  const int64_t L = q.size(-2), S = k.size(-2);
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(s);
  if (isCausal) {
    at::Tensor keep = at::ones({L, S}, q.options().dtype(at::kBool)).tril();
    scores.masked_fill_(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  c10::optional<at::Tensor> deadRows;
  if (mask) {
    if (mask->scalar_type() == at::kBool)
      scores.masked_fill_(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      scores.add_(*mask);
    // A query that may attend to no key gets zeros, as libtorch >= 2.5's kernels give (a plain softmax
    // would give NaN, and its backward would spread NaN into every key's gradient).
    deadRows = scores.isneginf().all(-1, /*keepdim=*/true);
    scores.masked_fill_(*deadRows, 0);
  }
  at::Tensor probs = at::softmax(scores, -1);
  if (deadRows) probs = probs.masked_fill(*deadRows, 0);
  if (dropoutP > 0) probs = at::dropout(probs, dropoutP, /*train=*/true);
  return at::matmul(probs, v);
}

at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const c10::optional<at::Tensor>& attnMask, double dropoutP, bool isCausal,
                                     c10::optional<double> scale, bool enableGqa) {
  checkShapes(q, k, v, enableGqa);
  TORCH_CHECK(!(isCausal && attnMask), "scaledDotProductAttention: give either isCausal or attnMask, not both");
#if TL_TORCH_AT_LEAST(2, 5)
  return at::scaled_dot_product_attention(q, k, v, attnMask, dropoutP, isCausal, scale, enableGqa);
#else
  return composite(q, k, v, attnMask, dropoutP, isCausal, scale);
#endif
}

}  // namespace tl
