// Dropout with a fast keep mask on the CPU. ATen's CPU bernoulli_ (without MKL, as Debian's libtorch)
// draws every element from mt19937 one at a time through a double distribution: about 20 ns an element,
// a third of the demo's training step with LoRA dropout 0.05. Here one 64-bit seed is drawn from the
// default CPU generator (so manualSeed, and the state save/restore gradient checkpointing does, govern
// it) and element i's 32-bit uniform is half of SplitMix64's output number i/2 from that seed: counter
// based, so it is filled in parallel and the same for any thread count. Other devices keep ATen's
// (Philox on CUDA, already fast). setAtenDropout(true) goes back to ATen's CPU stream, seed for seed the
// masks PyTorch draws on the same libtorch build.
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace tl {

void setAtenDropout(bool on);

// Training dropout as at::native_dropout: (x·mask/(1-p), mask).
std::tuple<at::Tensor, at::Tensor> nativeDropout(const at::Tensor& x, double p);
// at::dropout: x itself when not training or p is 0; autograd flows through the multiply by mask/(1-p).
at::Tensor dropout(const at::Tensor& x, double p, bool train);

}  // namespace tl
