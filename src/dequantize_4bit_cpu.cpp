#include "src/dequantize_4bit_cpu.h"
#include <ATen/Parallel.h>
#include <algorithm>

namespace tl {

namespace {

template <typename T>
void decodeBlocks(const uint8_t* bytes, const float* absmax, const float* code, int64_t blocksize, int64_t n,
                  T* out) {
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  // ~16K values a task: enough to pay for a thread, small enough to spread a 64x64 weight's blocks.
  const int64_t grain = std::max<int64_t>(1, 16384 / blocksize);
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    T table[16];
    for (int64_t b = begin; b < end; ++b) {
      // The block's 16 possible values, each the float32 product the generic path computes, then cast.
      const float scale = absmax[b];
      for (int k = 0; k < 16; ++k) table[k] = static_cast<T>(code[k] * scale);
      const int64_t first = b * blocksize;  // even: a block starts on a byte boundary
      const int64_t last = std::min(n, first + blocksize);
      const uint8_t* src = bytes + first / 2;
      T* dst = out + first;
      const int64_t pairs = (last - first) / 2;
      for (int64_t j = 0; j < pairs; ++j) {
        const uint8_t v = src[j];
        dst[2 * j] = table[v >> 4];
        dst[2 * j + 1] = table[v & 0xF];
      }
      // An odd n ends on a high nibble; the low one is padding.
      if ((last - first) % 2) dst[2 * pairs] = table[src[pairs] >> 4];
    }
  });
}

}  // namespace

at::Tensor dequantize4bitCpu(const at::Tensor& packed, const at::Tensor& absmax, const at::Tensor& code,
                             int64_t blocksize, int64_t n, at::ScalarType dtype) {
  const at::Tensor bytes = packed.reshape(-1).contiguous();
  const at::Tensor scales = absmax.reshape(-1).contiguous();
  const at::Tensor book = code.contiguous();
  at::Tensor out = at::empty({n}, at::TensorOptions().dtype(dtype).device(at::kCPU));
  if (n == 0) return out;
  const uint8_t* b = bytes.data_ptr<uint8_t>();
  const float* s = scales.data_ptr<float>();
  const float* c = book.data_ptr<float>();
  switch (dtype) {
    case at::kFloat: decodeBlocks(b, s, c, blocksize, n, out.data_ptr<float>()); break;
    case at::kDouble: decodeBlocks(b, s, c, blocksize, n, out.data_ptr<double>()); break;
    case at::kBFloat16: decodeBlocks(b, s, c, blocksize, n, out.data_ptr<at::BFloat16>()); break;
    case at::kHalf: decodeBlocks(b, s, c, blocksize, n, out.data_ptr<at::Half>()); break;
    default: TORCH_CHECK(false, "dequantize4bit: dequantizes to float32, bfloat16, float16 or float64, got ", dtype);
  }
  return out;
}

}  // namespace tl
