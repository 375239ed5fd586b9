#pragma once
#include <ATen/ATen.h>

namespace tl {

// A LoRA linear layer as one autograd node:
//   y = x·Wᵀ + bias + scaling·((dropout(x)·Aᵀ)·Bᵀ)
// x [..., in]; W [out, in] (or [in, out] with fanInFanOut, GPT-2's Conv1D); bias [out]; A [r, in]; B [out, r].
// ΔW = B·A is never formed: the LoRA product is accumulated into the base output in place. Saved for
// backward: x, xAᵀ [N, r], the bool dropout mask (when dropout is active), and the inputs W, A, B.
// W gets a gradient only when it requires one (a frozen base weight costs no x·gᵀ product).
// Adapters in another floating dtype than x (PEFT's float32 adapters on a bfloat16 base) run the LoRA
// path in the adapters' dtype and add it to the base output as PEFT does, then cast back.
// Dropout draws its mask with src/dropout.h (the same generator as F.dropout).
at::Tensor loraLinear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                      const at::Tensor& loraA, const at::Tensor& loraB, double scaling, double dropoutP,
                      bool training, bool fanInFanOut);

}  // namespace tl
