#pragma once
#include <ATen/ATen.h>
#include <string>

namespace tl {

// y = x·dequantize4bit(W)ᵀ + bias: bitsandbytes' matmul_4bit on ATen (dequantize, then linear) as one
// autograd node. The dequantized weight lives only inside the forward and, again, inside the backward:
// what is saved is the packed weight and its absmax, so a frozen 4-bit base costs 4 bits per weight
// between forward and backward (PEFT/QLoRA trains adapters through it). The weight gets no gradient.
// x [..., in] in the compute dtype; packed [(out·in+1)/2, 1] uint8; absmax float32 (already dequantized
// when double-quantized); the weight is dequantized to x's dtype; bias [out] in x's dtype.
at::Tensor matmul4bit(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                      const std::string& quantType, int64_t outFeatures, int64_t inFeatures,
                      const c10::optional<at::Tensor>& bias);

}  // namespace tl
