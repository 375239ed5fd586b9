#include "src/attention.h"
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include "src/torch_version.h"

namespace tl {

static std::array<std::atomic<int64_t>, static_cast<size_t>(AttentionCount::kSize)> counts{};
static const char* const countNames[] = {"composite", "math",   "flash",    "efficient", "cudnn",      "other",
                                         "isCausal",  "masked", "unmasked", "gqaKernel", "gqaExpanded"};
static_assert(sizeof(countNames) / sizeof(countNames[0]) == static_cast<size_t>(AttentionCount::kSize),
              "one name per AttentionCount");

// Counts one call: its kernel and how its inputs came; logs each new (kernel, inputs) pair once when
// TORCH_LORA_DEBUG is set.
static void count(AttentionCount kernel, AttentionCount inputs, c10::optional<AttentionCount> gqa) {
  bool first = counts[static_cast<size_t>(kernel)]++ == 0;
  if (counts[static_cast<size_t>(inputs)]++ == 0) first = true;
  if (gqa && counts[static_cast<size_t>(*gqa)]++ == 0) first = true;
  static const bool debug = std::getenv("TORCH_LORA_DEBUG") != nullptr;
  if (debug && first)
    std::fprintf(stderr, "torch-lora: scaledDotProductAttention ran the %s kernel (%s%s%s)\n",
                 countNames[static_cast<int>(kernel)], countNames[static_cast<int>(inputs)], gqa ? ", " : "",
                 gqa ? countNames[static_cast<int>(*gqa)] : "");
}

std::vector<int64_t> attentionCounts() {
  std::vector<int64_t> out;
  for (auto& c : counts) out.push_back(c.load());
  return out;
}

void resetAttentionCounts() {
  for (auto& c : counts) c = 0;
}

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

#if TL_TORCH_AT_LEAST(2, 5)
// at::SDPBackend's values: 0 math, 1 flash, 2 efficient, 3 cudnn (others: overrideable, error).
static AttentionCount kernelCount(int64_t backend) {
  switch (backend) {
    case 0: return AttentionCount::kMath;
    case 1: return AttentionCount::kFlash;
    case 2: return AttentionCount::kEfficient;
    case 3: return AttentionCount::kCudnn;
    default: return AttentionCount::kOther;
  }
}
#endif

at::Tensor scaledDotProductAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const c10::optional<at::Tensor>& attnMask, double dropoutP, bool isCausal,
                                     c10::optional<double> scale, bool enableGqa) {
  checkShapes(q, k, v, enableGqa);
  TORCH_CHECK(!(isCausal && attnMask), "scaledDotProductAttention: give either isCausal or attnMask, not both");
  const AttentionCount inputs =
      attnMask ? AttentionCount::kMasked : isCausal ? AttentionCount::kCausal : AttentionCount::kUnmasked;
  const bool grouped = q.dim() >= 3 && q.size(-3) != k.size(-3);
#if TL_TORCH_AT_LEAST(2, 5)
  if (grouped && attnMask) {
    // A mask with enable_gqa leaves CUDA only the math kernel (B·H·L·S scores in memory); with k/v
    // expanded to the query's heads (transformers' repeat_kv) the memory-efficient kernel takes the mask.
    const int64_t groups = q.size(-3) / k.size(-3);
    auto expand = [&](const at::Tensor& t) {
      std::vector<int64_t> wide(t.sizes().begin(), t.sizes().end());
      wide.insert(wide.end() - 2, groups);  // [.., Hk, groups, S, E]
      std::vector<int64_t> merged(t.sizes().begin(), t.sizes().end());
      merged[merged.size() - 3] *= groups;  // [.., Hk·groups, S, E]
      return t.unsqueeze(-3).expand(wide).reshape(merged);
    };
    at::Tensor k2 = expand(k), v2 = expand(v);
    const int64_t kernel = at::_fused_sdp_choice(q, k2, v2, attnMask, dropoutP, false, scale, false);
    count(kernelCount(kernel), inputs, AttentionCount::kGqaExpanded);
    return at::scaled_dot_product_attention(q, k2, v2, attnMask, dropoutP, false, scale, false);
  }
  const int64_t kernel = at::_fused_sdp_choice(q, k, v, attnMask, dropoutP, isCausal, scale, grouped);
  count(kernelCount(kernel), inputs, grouped ? c10::optional<AttentionCount>(AttentionCount::kGqaKernel) : c10::nullopt);
  return at::scaled_dot_product_attention(q, k, v, attnMask, dropoutP, isCausal, scale, grouped);
#else
  count(AttentionCount::kComposite, inputs,
        grouped ? c10::optional<AttentionCount>(AttentionCount::kGqaExpanded) : c10::nullopt);
  return composite(q, k, v, attnMask, dropoutP, isCausal, scale);
#endif
}

}  // namespace tl
