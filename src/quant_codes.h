#pragma once
#include <ATen/ATen.h>
#include <string>

namespace tl {

// bitsandbytes' code books (float32, on the CPU), built as its functional.py builds them:
// - fourBitCode("nf4"): NormalFloat4, the 16 quantiles of N(0, 1) QLoRA defines, ascending;
// - fourBitCode("fp4"): 1 sign, 2 exponent, 1 mantissa bit, in bit-pattern order, divided by its max (12);
// - dynamicMap(): create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted: the 8-bit
//   map double quantization stores the absmax with.
at::Tensor fourBitCode(const std::string& quantType);
at::Tensor dynamicMap();

// "nf4" or "fp4", else an error naming the value.
void checkQuantType(const std::string& quantType, const char* op);

}  // namespace tl
