#pragma once
#include <ATen/ATen.h>

namespace tl {

// The CPU kernel of dequantize4bit: decodes two 4-bit codes per byte (high nibble first) through the
// 16-entry code book times the block's float32 absmax, straight into a new [n] tensor of `dtype`
// (float32, float64, bfloat16, float16), blocks spread over at::parallel_for's threads. Each value is
// the same float32 product code[q]·absmax[block] cast to dtype as the generic ATen path computes, so
// the result is bit-identical to it. packed: CPU uint8 holding (n+1)/2 bytes; absmax: CPU float32 of
// ceil(n/blocksize) values; code: CPU float32 [16]; blocksize even. Checks are the caller's.
at::Tensor dequantize4bitCpu(const at::Tensor& packed, const at::Tensor& absmax, const at::Tensor& code,
                             int64_t blocksize, int64_t n, at::ScalarType dtype);

}  // namespace tl
