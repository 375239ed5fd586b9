#include "src/causal_lm_loss.h"
#include <algorithm>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

namespace tl {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// Half types compute their loss in float32 (transformers' logits.float()); float64 stays exact.
at::ScalarType lossDtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// One chunk's logits [C, V] in the loss dtype: the product in the hidden dtype, then upcast.
at::Tensor chunkLogits(const at::Tensor& h, const at::Tensor& w) {
  at::Tensor logits = at::mm(h, w.t());
  const at::ScalarType dt = lossDtype(h.scalar_type());
  return logits.scalar_type() == dt ? logits : logits.to(dt);
}

// The gradient of one chunk's logits, softmax - onehot(target) scaled per token (0 on ignored tokens),
// in the hidden dtype; turns `logits` (the loss dtype) into it in place.
at::Tensor logitsGrad(at::Tensor& logits, const at::Tensor& lse, const at::Tensor& safe, const at::Tensor& minusValid,
                      const at::Tensor& rowScale, at::ScalarType hiddenType) {
  logits.sub_(lse.unsqueeze(1)).exp_();
  logits.scatter_add_(1, safe.unsqueeze(1), minusValid);
  logits.mul_(rowScale.unsqueeze(1));
  return logits.scalar_type() == hiddenType ? logits : logits.to(hiddenType);
}

// Accumulates the gradients of hidden and W chunk by chunk. W's gradient sums over every chunk: half
// types accumulate in float32 (one rounding at the end).
struct GradAccumulator {
  at::Tensor gradH, gradW;
  bool oneChunk, halfW;
  GradAccumulator(const at::Tensor& hidden, const at::Tensor& weight, int64_t chunk, bool needH, bool needW) {
    const int64_t n = hidden.size(0);
    oneChunk = chunk >= n;
    halfW = weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kBFloat16;
    if (needH) gradH = at::empty_like(hidden, at::MemoryFormat::Contiguous);
    if (needW && !oneChunk)
      gradW = at::zeros(weight.sizes(), weight.options().dtype(halfW ? at::kFloat : weight.scalar_type()));
    needW_ = needW;
  }
  void add(const at::Tensor& dl, const at::Tensor& h, const at::Tensor& weight, int64_t c0) {
    if (gradH.defined()) {
      at::Tensor out = gradH.narrow(0, c0, h.size(0));
      at::mm_out(out, dl, weight);
    }
    if (needW_) {
      if (oneChunk)
        gradW = at::mm(dl.t(), h);
      else if (halfW)
        gradW.add_(at::mm(dl.t(), h));
      else
        gradW.addmm_(dl.t(), h);
    }
  }
  void finish(const at::Tensor& weight) {
    if (needW_ && !gradW.defined()) gradW = at::zeros_like(weight);  // no tokens at all
    if (needW_ && gradW.scalar_type() != weight.scalar_type()) gradW = gradW.to(weight.scalar_type());
  }

 private:
  bool needW_;
};

struct CausalLmLossFunction : public torch::autograd::Function<CausalLmLossFunction> {
  // hidden [N, H], weight [V, H], target [N] (already shifted; ignoreIndex where not scored).
  // eager: the gradients (of the inputs needH/needW name) are computed here, while each chunk's logits
  // are at hand, and the backward only scales them: one LM-head product fewer than recomputing.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& target, int64_t ignoreIndex, int64_t chunk, bool mean, bool eager,
                            bool needH, bool needW) {
    const int64_t n = hidden.size(0);
    const at::ScalarType dt = lossDtype(hidden.scalar_type());
    const at::Tensor valid = target.ne(ignoreIndex);
    const at::Tensor safe = target.masked_fill(valid.logical_not(), 0);  // gather-able index everywhere
    const at::Tensor count = valid.sum().to(dt);
    // float16 (not bfloat16, whose exponent range is float32's): the eager gradients are taken for an upstream
    // gradient of 1, before a GradScaler's loss scale reaches them, and (softmax - onehot)/count of a large
    // batch underflows float16 to zero there. Recompute in backward instead, where the scale is in rowScale.
    eager = eager && (needH || needW) && hidden.scalar_type() != at::kHalf;
    at::Tensor lse = at::empty({n}, hidden.options().dtype(dt));
    at::Tensor total = at::zeros({}, hidden.options().dtype(dt));
    c10::optional<GradAccumulator> acc;
    at::Tensor rowScale, minusValid;
    if (eager) {
      acc.emplace(hidden, weight, chunk, needH, needW);
      const at::Tensor validF = valid.to(dt);
      rowScale = mean ? validF.div(count) : validF;
      minusValid = validF.neg().unsqueeze(1);
    }
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t len = std::min(chunk, n - c0);
      const at::Tensor h = hidden.narrow(0, c0, len);
      at::Tensor logits = chunkLogits(h, weight);
      const at::Tensor l = at::logsumexp(logits, {1});
      const at::Tensor picked = logits.gather(1, safe.narrow(0, c0, len).unsqueeze(1)).squeeze(1);
      total.add_(at::where(valid.narrow(0, c0, len), l - picked, 0).sum());
      if (eager) {
        const at::Tensor dl = logitsGrad(logits, l, safe.narrow(0, c0, len), minusValid.narrow(0, c0, len),
                                         rowScale.narrow(0, c0, len), hidden.scalar_type());
        acc->add(dl, h, weight, c0);
      } else {
        lse.narrow(0, c0, len).copy_(l);
      }
    }
    if (eager) {
      acc->finish(weight);
      ctx->save_for_backward({acc->gradH, acc->gradW});
    } else {
      ctx->save_for_backward({hidden, weight, safe, valid, lse, count});
    }
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["mean"] = mean;
    ctx->saved_data["eager"] = eager;
    return mean ? total.div_(count) : total;
  }

  // The gradients of forward's inputs: hidden and weight, none for the other seven.
  static variable_list inputGrads(at::Tensor gradH, at::Tensor gradW) {
    variable_list out(9);
    out[0] = std::move(gradH);
    out[1] = std::move(gradW);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const bool needH = ctx->needs_input_grad(0);
    const bool needW = ctx->needs_input_grad(1);
    if (ctx->saved_data["eager"].toBool()) {
      // d loss/d input = (what the forward computed for an upstream gradient of 1) · upstream gradient
      const at::Tensor& go = grads[0];
      at::Tensor gradH = needH && saved[0].defined() ? saved[0].mul(go.to(saved[0].scalar_type())) : at::Tensor();
      at::Tensor gradW = needW && saved[1].defined() ? saved[1].mul(go.to(saved[1].scalar_type())) : at::Tensor();
      return inputGrads(gradH, gradW);
    }
    if (!needH && !needW) return inputGrads(at::Tensor(), at::Tensor());
    const at::Tensor& hidden = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& safe = saved[2];
    const at::Tensor& valid = saved[3];
    const at::Tensor& lse = saved[4];
    const at::Tensor& count = saved[5];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const bool mean = ctx->saved_data["mean"].toBool();
    const int64_t n = hidden.size(0);
    const at::ScalarType dt = lossDtype(hidden.scalar_type());
    const at::Tensor perToken = mean ? grads[0].to(dt).div(count) : grads[0].to(dt);  // d loss / d token loss
    const at::Tensor validF = valid.to(dt);
    const at::Tensor rowScale = validF.mul(perToken);
    const at::Tensor minusValid = validF.neg().unsqueeze(1);
    GradAccumulator acc(hidden, weight, chunk, needH, needW);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t len = std::min(chunk, n - c0);
      const at::Tensor h = hidden.narrow(0, c0, len);
      at::Tensor logits = chunkLogits(h, weight);  // recomputed: the forward kept only the logsumexp
      const at::Tensor dl = logitsGrad(logits, lse.narrow(0, c0, len), safe.narrow(0, c0, len),
                                       minusValid.narrow(0, c0, len), rowScale.narrow(0, c0, len),
                                       hidden.scalar_type());
      acc.add(dl, h, weight, c0);
    }
    acc.finish(weight);
    return inputGrads(acc.gradH, acc.gradW);
  }
};

}  // namespace

at::Tensor causalLmLoss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& labels,
                        int64_t ignoreIndex, int64_t chunkSize, bool meanReduction, bool recompute) {
  TORCH_CHECK(hidden.dim() == 3, "causalLmLoss: hidden must be [batch, seq, hidden], got ", hidden.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(2), "causalLmLoss: the LM head weight must be [vocab, ",
              hidden.size(2), "] for hidden ", hidden.sizes(), ", got ", weight.sizes());
  TORCH_CHECK(labels.dim() == 2 && labels.size(0) == hidden.size(0) && labels.size(1) == hidden.size(1),
              "causalLmLoss: labels must be [batch, seq] = [", hidden.size(0), ", ", hidden.size(1), "], got ",
              labels.sizes());
  TORCH_CHECK(!at::isFloatingType(labels.scalar_type()) && labels.scalar_type() != at::kBool,
              "causalLmLoss: labels must be integer token ids, got ", labels.scalar_type());
  TORCH_CHECK(at::isFloatingType(hidden.scalar_type()) && weight.scalar_type() == hidden.scalar_type(),
              "causalLmLoss: hidden and the LM head weight need one floating dtype, got ", hidden.scalar_type(),
              " and ", weight.scalar_type());
  TORCH_CHECK(weight.device() == hidden.device(), "causalLmLoss: hidden is on ", hidden.device(),
              " but the LM head weight on ", weight.device());
  TORCH_CHECK(chunkSize >= 0, "causalLmLoss: chunkSize must be positive (0: automatic), got ", chunkSize);
  const int64_t b = hidden.size(0), s = hidden.size(1), vocab = weight.size(0);
  // Shift the labels, not the hidden states: position t is scored against token t+1, the last one never.
  at::Tensor target = at::full({b, s}, ignoreIndex, labels.options().dtype(at::kLong).device(hidden.device()));
  if (s > 1) target.narrow(1, 0, s - 1).copy_(labels.narrow(1, 1, s - 1));
  target = target.view({-1});
  // On the CPU a wrong token id is a clear error here (on CUDA it would cost a host sync per step).
  if (target.device().is_cpu()) {
    const at::Tensor bad = target.ne(ignoreIndex).logical_and(target.lt(0).logical_or(target.ge(vocab)));
    if (bad.any().item<bool>()) {
      const int64_t at = bad.nonzero().select(1, 0)[0].item<int64_t>();
      TORCH_CHECK(false, "causalLmLoss: label ", target[at].item<int64_t>(), " (batch ", at / s, ", position ",
                  at % s + 1, ") is outside the vocabulary [0, ", vocab, ") and is not ignoreIndex ", ignoreIndex);
    }
  }
  int64_t chunk = chunkSize;
  if (chunk == 0) chunk = std::max<int64_t>(1, (int64_t{128} << 20) / (4 * std::max<int64_t>(vocab, 1)));
  // Which gradients autograd will ask for is known now (inside the forward, grad mode is off).
  const bool grad = at::GradMode::is_enabled();
  const bool needH = grad && hidden.requires_grad();
  const bool needW = grad && weight.requires_grad();
  return CausalLmLossFunction::apply(hidden.reshape({b * s, hidden.size(2)}), weight, target, ignoreIndex, chunk,
                                     meanReduction, !recompute, needH, needW);
}

}  // namespace tl
