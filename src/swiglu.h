#pragma once
#include <ATen/ATen.h>

namespace tl {

// silu(gate)·up (Llama's MLP activation) as one autograd node. The composite saves silu(gate) for the
// product's backward, a third [tokens, intermediate] tensor; this node saves only its inputs (which the
// projections that made them keep anyway) and recomputes silu in the backward. The forward rounds as
// the composite does.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace tl
