// DistributedDataParallel's reducer: the gradients of a fixed list of parameters, in buckets, all-reduced
// while backward is still running. A hook after each parameter's gradient accumulation marks it ready; a
// bucket whose parameters are all ready is flattened and its all-reduce issued, buckets strictly in their
// order (every rank must issue the same collectives in the same order, whatever order its backward
// finished them in). finish() issues the buckets backward did not complete (a parameter without a
// gradient counts as zeros) and hands back a wait that copies the sums into the parameters' .grad.
#pragma once
#include <ATen/ATen.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "src/distributed.h"

namespace tl {

class GradReducer {
 public:
  // buckets: leaf tensors that require grad; each bucket one dtype and device.
  explicit GradReducer(std::vector<std::vector<at::Tensor>> buckets);
  ~GradReducer();  // removes its hooks
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before a backward: sync true for the step's last one (its gradients are reduced as they come), false
  // for the others (DDP's no_sync: they only accumulate locally).
  void prepare(bool sync);
  // Issues what is left; wait() of the result completes every bucket and writes the sums into .grad.
  std::unique_ptr<DistWork> finish();
  // How many buckets the last synced backward issued itself, before finish() (overlap, for tests/bench).
  int64_t issuedDuringBackward() const;
  int64_t numBuckets() const;

  struct State;

 private:
  std::shared_ptr<State> s_;
  // Per parameter: removes its hook. Each holds the parameter's gradient accumulator, which is thus kept
  // alive (a leaf's is otherwise made anew for each graph, without the hook). (A closure, because the
  // accumulator's pointer type differs between libtorch versions.)
  std::vector<std::function<void()>> unhook_;
};

}  // namespace tl
