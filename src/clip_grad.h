#pragma once
#include <ATen/ATen.h>
#include <vector>

namespace tl {

// torch.nn.utils.clip_grad_norm_ (torch 1.13): the normType-norm of all gradients together, then
// every gradient scaled in place by min(1, maxNorm / (total + 1e-6)). Returns the total norm as a
// tensor on the first gradient's device; nothing is read back unless errorIfNonfinite asks for it.
// Parameters without a gradient are skipped; with none at all the result is tensor(0.).
at::Tensor clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm, double normType,
                        bool errorIfNonfinite);

}  // namespace tl
