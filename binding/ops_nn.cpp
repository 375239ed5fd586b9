// Neural-network functions (torch.nn.functional), some composed in src/.
#include "binding/op_bridge.h"
#include "src/attention.h"
#include "src/dropout.h"
#include "src/lora_cpu_kernels.h"
#include "src/rms_norm.h"

namespace tl {

static int64_t reduction(const std::string& r) {
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw ArgError("reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

void registerNnOps(Napi::Env env, Napi::Object e) {
  def(env, e, "softmax", [](Args& a) { return at::softmax(a.t(0), a.i64(1), a.optDtype(2)); });
  def(env, e, "logSoftmax", [](Args& a) { return at::log_softmax(a.t(0), a.i64(1), a.optDtype(2)); });
  // (t, p, training)
  // (on): ATen's CPU dropout masks (PyTorch's stream) instead of the counter-based ones
  def(env, e, "setAtenDropout", [](Args& a) { setAtenDropout(a.b(0)); });
  // (on): loraLinear's rank-r products on the CPU by src/lora_cpu_kernels (default) or by ATen's BLAS
  def(env, e, "setLoraCpuKernels", [](Args& a) { setLoraCpuKernels(a.b(0)); });
  def(env, e, "dropout", [](Args& a) -> at::Tensor { return tl::dropout(a.t(0), a.f64(1), a.b(2)); });
  // (weight, indices, paddingIdx)
  def(env, e, "embedding", [](Args& a) { return at::embedding(a.t(0), a.t(1), a.i64(2, -1)); });
  // (x, normalizedShape, weight?, bias?, eps)
  def(env, e, "layerNorm", [](Args& a) {
    auto s = a.dims(1);
    return at::layer_norm(a.t(0), at::IntArrayRef(s), a.optT(2), a.optT(3), a.f64(4, 1e-5));
  });
  def(env, e, "rmsNorm", [](Args& a) { return rmsNorm(a.t(0), a.optT(1), a.f64(2, 1e-6)); });
  // (input [N, C] or [N, C, d..], target, weight?, reduction, ignoreIndex, labelSmoothing)
  def(env, e, "crossEntropy", [](Args& a) {
    return at::cross_entropy_loss(a.t(0), a.t(1), a.optT(2), reduction(a.str(3, "mean")), a.i64(4, -100),
                                  a.f64(5, 0.0));
  });
  def(env, e, "nllLoss", [](Args& a) {
    return at::nll_loss_nd(a.t(0), a.t(1), a.optT(2), reduction(a.str(3, "mean")), a.i64(4, -100));
  });
  def(env, e, "mseLoss", [](Args& a) { return at::mse_loss(a.t(0), a.t(1), reduction(a.str(2, "mean"))); });
  // (q, k, v, attnMask?, dropoutP, isCausal, scale?, enableGqa)
  def(env, e, "scaledDotProductAttention", [](Args& a) {
    return scaledDotProductAttention(a.t(0), a.t(1), a.t(2), a.optT(3), a.f64(4, 0.0), a.b(5), a.optF64(6), a.b(7));
  });
  // () -> the counts of AttentionCount (src/attention.h), in its order
  def(env, e, "attentionCounts", [](Args&) { return attentionCounts(); });
  def(env, e, "resetAttentionCounts", [](Args&) { resetAttentionCounts(); });
}

}  // namespace tl
