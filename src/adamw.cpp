#include "src/adamw.h"
#include <c10/core/GradMode.h>  // c10::NoGradGuard / GradMode: at:: no longer re-exports them in libtorch 2.x

#include <cmath>
#include <map>
#include <tuple>
#include "src/torch_version.h"

namespace tl {

// PyTorch's _single_tensor_adamw (torch 1.13, capturable=False) for one parameter.
static void adamwOne(at::Tensor param, const at::Tensor& gradIn, at::Tensor expAvg, at::Tensor expAvgSq,
                     at::Tensor maxExpAvgSq, int64_t step, const AdamWOptions& o) {
  const at::Tensor grad = o.maximize ? gradIn.neg() : gradIn;
  param.mul_(1 - o.lr * o.weightDecay);
  expAvg.mul_(o.beta1).add_(grad, 1 - o.beta1);
  expAvgSq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
  const double s = static_cast<double>(step);
  const double biasCorrection1 = 1 - std::pow(o.beta1, s);
  const double biasCorrection2 = 1 - std::pow(o.beta2, s);
  const double stepSize = o.lr / biasCorrection1;
  const double biasCorrection2Sqrt = std::sqrt(biasCorrection2);
  at::Tensor denom;
  if (maxExpAvgSq.defined()) {
    at::maximum_out(maxExpAvgSq, maxExpAvgSq, expAvgSq);
    denom = (maxExpAvgSq.sqrt() / biasCorrection2Sqrt).add_(o.eps);
  } else {
    denom = (expAvgSq.sqrt() / biasCorrection2Sqrt).add_(o.eps);
  }
  param.addcdiv_(expAvg, denom, -stepSize);
}

#if TL_TORCH_AT_LEAST(2, 1)
// What at::_fused_adamw_ accepts: CUDA, a floating dtype, and every tensor of the parameter laid out
// as the parameter itself (the kernel walks raw memory).
static bool fusable(const at::Tensor& p, const std::vector<const at::Tensor*>& others) {
  if (!p.is_cuda() || p.is_sparse() || !p.is_non_overlapping_and_dense()) return false;
  const auto st = p.scalar_type();
  if (st != at::kFloat && st != at::kHalf && st != at::kBFloat16 && st != at::kDouble) return false;
  for (const at::Tensor* t : others)
    if (t->scalar_type() != st || t->device() != p.device() || t->strides() != p.strides() || t->is_sparse())
      return false;
  return true;
}
#endif

void adamwStep(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
               const std::vector<at::Tensor>& expAvgs, const std::vector<at::Tensor>& expAvgSqs,
               const std::vector<at::Tensor>& maxExpAvgSqs, const std::vector<int64_t>& steps,
               const AdamWOptions& o) {
  const size_t n = params.size();
  TORCH_CHECK(grads.size() == n && expAvgs.size() == n && expAvgSqs.size() == n && steps.size() == n,
              "adamwStep: expected ", n, " grads, exp_avgs, exp_avg_sqs and steps, got ", grads.size(), ", ",
              expAvgs.size(), ", ", expAvgSqs.size(), " and ", steps.size());
  TORCH_CHECK(!o.amsgrad || maxExpAvgSqs.size() == n, "adamwStep: amsgrad needs ", n, " max_exp_avg_sqs, got ",
              maxExpAvgSqs.size());
  for (size_t i = 0; i < n; ++i) {
    TORCH_CHECK(grads[i].defined(), "adamwStep: parameter ", i, " has no gradient");
    TORCH_CHECK(!grads[i].is_sparse(), "AdamW does not support sparse gradients");
    TORCH_CHECK(steps[i] >= 1, "adamwStep: step numbers start at 1, got ", steps[i]);
  }
  c10::NoGradGuard noGrad;

#if TL_TORCH_AT_LEAST(2, 1)
  // Group the fusable parameters by (device, dtype); all others fall through to the composite.
  struct Group {
    std::vector<at::Tensor> p, g, m, v, vmax, steps;
    std::map<int64_t, at::Tensor> stepTensors;  // step value -> a shared scalar the kernel only reads
  };
  std::map<std::tuple<int, int, int>, Group> groups;
  std::vector<bool> done(n, false);
  for (size_t i = 0; i < n; ++i) {
    std::vector<const at::Tensor*> others{&grads[i], &expAvgs[i], &expAvgSqs[i]};
    if (o.amsgrad) others.push_back(&maxExpAvgSqs[i]);
    if (!fusable(params[i], others)) continue;
    const auto& p = params[i];
    Group& g = groups[{static_cast<int>(p.device().type()), p.device().index(), static_cast<int>(p.scalar_type())}];
    g.p.push_back(p);
    g.g.push_back(grads[i]);
    g.m.push_back(expAvgs[i]);
    g.v.push_back(expAvgSqs[i]);
    if (o.amsgrad) g.vmax.push_back(maxExpAvgSqs[i]);
    auto it = g.stepTensors.find(steps[i]);
    if (it == g.stepTensors.end())
      it = g.stepTensors
               .emplace(steps[i], at::full({}, static_cast<double>(steps[i]), p.options().dtype(at::kFloat)))
               .first;
    g.steps.push_back(it->second);
    done[i] = true;
  }
  for (auto& [key, g] : groups)
    at::_fused_adamw_(g.p, g.g, g.m, g.v, g.vmax, g.steps, o.lr, o.beta1, o.beta2, o.weightDecay, o.eps, o.amsgrad,
                      o.maximize);
  for (size_t i = 0; i < n; ++i)
    if (!done[i])
      adamwOne(params[i], grads[i], expAvgs[i], expAvgSqs[i], o.amsgrad ? maxExpAvgSqs[i] : at::Tensor(), steps[i], o);
#else
  for (size_t i = 0; i < n; ++i)
    adamwOne(params[i], grads[i], expAvgs[i], expAvgSqs[i], o.amsgrad ? maxExpAvgSqs[i] : at::Tensor(), steps[i], o);
#endif
}

}  // namespace tl
