#include "src/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace tl {

struct GradReducer::State {
  std::mutex mu;
  std::vector<std::vector<at::Tensor>> buckets;
  std::vector<std::vector<bool>> ready;  // this synced backward: which parameters accumulated already
  std::vector<size_t> pending;           // per bucket: parameters not ready yet
  std::vector<at::Tensor> flats;         // per issued bucket: its flattened gradients, summed in place
  std::vector<std::unique_ptr<DistWork>> works;
  size_t next = 0;  // the first bucket not issued yet
  bool sync = false;
  int64_t issuedInBackward = 0;
  std::string error;  // the first failure inside a hook, thrown by finish()

  void reset(bool s) {
    sync = s;
    next = 0;
    issuedInBackward = 0;
    error.clear();
    flats.assign(buckets.size(), at::Tensor());
    works.clear();
    works.resize(buckets.size());
    ready.clear();
    pending.clear();
    for (auto& b : buckets) {
      ready.emplace_back(b.size(), false);
      pending.push_back(b.size());
    }
  }

  // Under mu: bucket `b` flattened (zeros for a parameter without a gradient) and its all-reduce issued.
  void issue(size_t b) {
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> parts;
    parts.reserve(buckets[b].size());
    for (auto& p : buckets[b]) {
      const at::Tensor& g = p.grad();
      parts.push_back(g.defined() ? g.reshape(-1) : at::zeros({p.numel()}, p.options()));
    }
    flats[b] = at::cat(parts);
    works[b] = distAllReduce({flats[b]}, "sum");
  }

  void markReady(size_t b, size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!sync || !error.empty()) return;
    if (ready[b][i]) {
      // Only a parameter whose gradient comes from several backward passes of one micro-batch (gradient
      // checkpointing run segment by segment) gets here; its bucket may have gone out with a part.
      error = "GradientSync: a parameter's gradient was accumulated twice in the synced backward (several backward "
              "passes per micro-batch, as gradient checkpointing makes): create the GradientSync with overlap: false";
      return;
    }
    ready[b][i] = true;
    --pending[b];
    while (next < buckets.size() && pending[next] == 0) {
      try {
        issue(next);
      } catch (const std::exception& e) {
        error = errorText(e);
        return;
      }
      ++next;
      ++issuedInBackward;
    }
  }
};

namespace {

// Runs after AccumulateGrad has written the parameter's .grad: the parameter is ready.
struct ReadyHook : torch::autograd::FunctionPostHook {
  ReadyHook(std::weak_ptr<GradReducer::State> s, size_t b, size_t i) : s_(std::move(s)), b_(b), i_(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto s = s_.lock()) s->markReady(b_, i_);
    return outputs;
  }
  std::weak_ptr<GradReducer::State> s_;  // weak: the hook lives in the accumulator, which the reducer keeps
  size_t b_, i_;
};

// Waits for every bucket, then copies each sum into its parameters' .grad.
class ReduceWork : public DistWork {
 public:
  ReduceWork(std::shared_ptr<GradReducer::State> s, std::vector<at::Tensor> flats, std::vector<std::unique_ptr<DistWork>> works)
      : s_(std::move(s)), flats_(std::move(flats)), works_(std::move(works)) {}
  void wait() override {
    for (auto& w : works_) w->wait();
    at::NoGradGuard noGrad;
    for (size_t b = 0; b < flats_.size(); ++b) {
      int64_t at = 0;
      for (auto& p : s_->buckets[b]) {
        int64_t n = p.numel();
        at::Tensor piece = flats_[b].narrow(0, at, n).view(p.sizes());
        at::Tensor& g = p.mutable_grad();
        if (g.defined()) g.copy_(piece);
        else g = piece.clone();
        at += n;
      }
    }
  }

 private:
  std::shared_ptr<GradReducer::State> s_;
  std::vector<at::Tensor> flats_;
  std::vector<std::unique_ptr<DistWork>> works_;
};

}  // namespace

GradReducer::GradReducer(std::vector<std::vector<at::Tensor>> buckets) : s_(std::make_shared<State>()) {
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b].empty()) throw std::runtime_error("GradientSync: bucket " + std::to_string(b) + " is empty");
    for (size_t i = 0; i < buckets[b].size(); ++i) {
      const at::Tensor& p = buckets[b][i];
      if (!p.defined() || !p.requires_grad() || !p.is_leaf())
        throw std::runtime_error("GradientSync: parameter " + std::to_string(i) + " of bucket " + std::to_string(b) +
                                 " is not a leaf tensor that requires grad");
      if (p.scalar_type() != buckets[b][0].scalar_type() || p.device() != buckets[b][0].device())
        throw std::runtime_error("GradientSync: bucket " + std::to_string(b) + " mixes dtypes or devices");
    }
  }
  s_->buckets = std::move(buckets);
  s_->reset(false);
  for (size_t b = 0; b < s_->buckets.size(); ++b)
    for (size_t i = 0; i < s_->buckets[b].size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(s_->buckets[b][i]);
      uintptr_t key = acc->add_post_hook(std::make_unique<ReadyHook>(s_, b, i));
      unhook_.emplace_back([acc, key] { acc->del_post_hook(key); });
    }
}

GradReducer::~GradReducer() {
  for (auto& unhook : unhook_) unhook();
}

void GradReducer::prepare(bool sync) {
  std::lock_guard<std::mutex> lock(s_->mu);
  s_->reset(sync);
}

std::unique_ptr<DistWork> GradReducer::finish() {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (!s_->error.empty()) {
    std::string e = s_->error;
    s_->reset(false);
    throw std::runtime_error(e);
  }
  s_->sync = false;  // a later backward (evaluation, a user's) is not this step's
  for (; s_->next < s_->buckets.size(); ++s_->next) s_->issue(s_->next);
  auto work = std::make_unique<ReduceWork>(s_, std::move(s_->flats), std::move(s_->works));
  int64_t overlapped = s_->issuedInBackward;
  s_->reset(false);
  s_->issuedInBackward = overlapped;
  return work;
}

int64_t GradReducer::issuedDuringBackward() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  return s_->issuedInBackward;
}

int64_t GradReducer::numBuckets() const { return static_cast<int64_t>(s_->buckets.size()); }

}  // namespace tl
