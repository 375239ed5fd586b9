#include "src/quant_blockwise.h"
#include <cstdlib>
#include <cstring>
#include "src/dequantize_4bit_cpu.h"
#include "src/quant_codes.h"

namespace tl {

void check4bitBlocksize(int64_t blocksize, const char* op) {
  const bool ok = blocksize >= 32 && blocksize <= 4096 && (blocksize & (blocksize - 1)) == 0;
  TORCH_CHECK(ok, op, ": blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096 (bitsandbytes' sizes), got ",
              blocksize);
}

namespace {

void checkFloatInput(const at::Tensor& a, const char* op) {
  const auto t = a.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kHalf || t == at::kBFloat16, op,
              ": quantizes float32, bfloat16 or float16 tensors, got ", t);
  TORCH_CHECK(a.numel() > 0, op, ": the tensor is empty (shape ", a.sizes(), ")");
  TORCH_CHECK(!a.is_meta(), op, ": a meta tensor has no values to quantize");
  // A NaN or infinity would make its whole block's absmax meaningless without a word.
  TORCH_CHECK(at::isfinite(a).all().item<bool>(), op, ": the tensor (shape ", a.sizes(),
              ") holds NaN or infinite values, which cannot be quantized");
}

void checkDequantDtype(at::ScalarType dtype, const char* op) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kDouble, op,
              ": dequantizes to float32, bfloat16, float16 or float64, got ", dtype);
}

// The flattened float32 values scaled into [-1, 1] block by block, and the absmax of each block. Full blocks
// multiply by the reciprocal of their absmax (clamped to 1e-38, so an all-zero block gives zeros), the short
// last block divides by it: bitsandbytes' arithmetic exactly, so that the codes are byte-identical.
std::tuple<at::Tensor, at::Tensor> scaleBlocks(const at::Tensor& a, int64_t blocksize) {
  const at::Tensor flat = a.reshape(-1).to(at::kFloat);
  const int64_t n = flat.numel();
  const int64_t rem = n % blocksize;
  const int64_t full = n - rem;
  std::vector<at::Tensor> absmaxes, scaled;
  if (full > 0) {
    at::Tensor blocks = flat.slice(0, 0, full).view({full / blocksize, blocksize});
    at::Tensor absmax = blocks.abs().amax(-1);
    at::Tensor inv = at::reciprocal(absmax.clamp_min(1e-38)).view({-1, 1});
    scaled.push_back(at::clamp(blocks * inv, -1, 1).reshape(-1));
    absmaxes.push_back(absmax);
  }
  if (rem > 0) {
    at::Tensor tail = flat.slice(0, full, n);
    at::Tensor am = tail.abs().max().clamp_min(1e-38);
    scaled.push_back(at::clamp(tail / am, -1, 1));
    absmaxes.push_back(am.unsqueeze(0));
  }
  return {at::cat(scaled), at::cat(absmaxes)};
}

// Multiplies float32 values by their block's absmax (float32), the short last block by the last absmax.
at::Tensor scaleBack(const at::Tensor& values, const at::Tensor& absmax, int64_t blocksize) {
  const int64_t n = values.numel();
  const int64_t rem = n % blocksize;
  const int64_t full = n - rem;
  const int64_t blocks = full / blocksize;
  TORCH_CHECK(absmax.numel() == blocks + (rem ? 1 : 0), "dequantize: ", n, " values in blocks of ", blocksize,
              " need ", blocks + (rem ? 1 : 0), " absmax values, got ", absmax.numel());
  at::Tensor am = absmax.reshape(-1).to(at::kFloat);
  if (rem == 0) return (values.view({blocks, blocksize}) * am.view({-1, 1})).reshape(-1);
  at::Tensor out = at::empty({n}, values.options());
  if (full > 0)
    out.slice(0, 0, full).copy_((values.slice(0, 0, full).view({blocks, blocksize}) *
                                 am.slice(0, 0, blocks).view({-1, 1})).reshape(-1));
  out.slice(0, full, n).copy_(values.slice(0, full, n) * am[blocks]);
  return out;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> quantizeBlockwise(const at::Tensor& a, const at::Tensor& code, int64_t blocksize) {
  TORCH_CHECK(blocksize > 0, "quantizeBlockwise: blocksize must be positive, got ", blocksize);
  checkFloatInput(a, "quantizeBlockwise");
  TORCH_CHECK(code.dim() == 1 && code.numel() == 256 && code.scalar_type() == at::kFloat,
              "quantizeBlockwise: code must be a float32 book of 256 values, got ", code.sizes(), " of ",
              code.scalar_type());
  auto [scaled, absmax] = scaleBlocks(a, blocksize);
  const at::Tensor c = code.to(a.device());
  const at::Tensor bounds = (c.slice(0, 0, 255) + c.slice(0, 1, 256)) / 2;  // the book is sorted
  at::Tensor q = at::bucketize(scaled, bounds, /*out_int32=*/true).to(at::kByte);
  return {q.reshape(a.sizes()), absmax};
}

at::Tensor dequantizeBlockwise(const at::Tensor& q, const at::Tensor& absmax, const at::Tensor& code,
                               int64_t blocksize, at::ScalarType dtype) {
  TORCH_CHECK(blocksize > 0, "dequantizeBlockwise: blocksize must be positive, got ", blocksize);
  TORCH_CHECK(q.scalar_type() == at::kByte, "dequantizeBlockwise: codes must be uint8, got ", q.scalar_type());
  TORCH_CHECK(code.dim() == 1 && code.numel() == 256, "dequantizeBlockwise: code must hold 256 values, got ",
              code.sizes());
  checkDequantDtype(dtype, "dequantizeBlockwise");
  at::Tensor values = code.to(q.device(), at::kFloat).index_select(0, q.reshape(-1).to(at::kLong));
  return scaleBack(values, absmax.to(q.device()), blocksize).to(dtype).reshape(q.sizes());
}

std::tuple<at::Tensor, at::Tensor> quantize4bit(const at::Tensor& a, int64_t blocksize, const std::string& quantType) {
  check4bitBlocksize(blocksize, "quantize4bit");
  checkQuantType(quantType, "quantize4bit");
  checkFloatInput(a, "quantize4bit");
  auto [scaled, absmax] = scaleBlocks(a, blocksize);
  if (scaled.numel() % 2) scaled = at::constant_pad_nd(scaled, {0, 1}, 0);
  // The nearest code by the midpoints of the sorted book; FP4's book is in bit-pattern order, so the
  // sorted position maps back through the (stable) sort order (+0 before -0, as bitsandbytes' argsort).
  const at::Tensor code = fourBitCode(quantType).to(a.device());
  auto sorted = at::sort(code, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const at::Tensor& values = std::get<0>(sorted);
  const at::Tensor& order = std::get<1>(sorted);
  const at::Tensor bounds = (values.slice(0, 0, 15) + values.slice(0, 1, 16)) / 2;
  at::Tensor q = at::bucketize(scaled, bounds, /*out_int32=*/false);
  if (quantType != "nf4") q = order.index_select(0, q);
  at::Tensor q8 = q.to(at::kByte).view({-1, 2});
  // First value of each pair in the high nibble.
  at::Tensor packed = at::bitwise_or(at::bitwise_left_shift(q8.select(1, 0), 4), q8.select(1, 1));
  return {packed.unsqueeze(1).contiguous(), absmax};
}

namespace {

// The checks of dequantize4bit and dequantize4bitGeneric; returns the number of values.
int64_t checkDequantize4bit(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                            const std::string& quantType, at::IntArrayRef shape, at::ScalarType dtype, const char* op) {
  check4bitBlocksize(blocksize, op);
  checkQuantType(quantType, op);
  checkDequantDtype(dtype, op);
  TORCH_CHECK(packed.scalar_type() == at::kByte, op, ": the packed weight must be uint8, got ", packed.scalar_type());
  int64_t n = 1;
  for (int64_t d : shape) {
    TORCH_CHECK(d >= 0, op, ": shape ", shape, " has a negative size");
    n *= d;
  }
  TORCH_CHECK(packed.numel() == (n + 1) / 2, op, ": shape ", shape, " holds ", n, " values, which pack into ",
              (n + 1) / 2, " bytes, but the packed weight has ", packed.numel(), " (shape ", packed.sizes(), ")");
  TORCH_CHECK(absmax.scalar_type() == at::kFloat, op, ": absmax must be float32, got ", absmax.scalar_type(),
              " (dequantize a double-quantized absmax first)");
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  TORCH_CHECK(absmax.numel() == blocks, op, ": ", n, " values in blocks of ", blocksize, " need ", blocks,
              " absmax values, got ", absmax.numel());
  return n;
}

}  // namespace

bool genericDequant4bitRequested() {
  const char* v = std::getenv("TORCH_LORA_DEQUANT4BIT");
  return v != nullptr && std::strcmp(v, "generic") == 0;
}

at::Tensor dequantize4bit(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                          const std::string& quantType, at::IntArrayRef shape, at::ScalarType dtype) {
  const int64_t n = checkDequantize4bit(packed, absmax, blocksize, quantType, shape, dtype, "dequantize4bit");
  // The CPU takes the fused decode loop (the generic ops below cost 5-7x a float32 forward: int64 indices,
  // a gather, several temporaries); other devices (CUDA) take the ATen ops, as does the CPU when
  // TORCH_LORA_DEQUANT4BIT=generic (the benchmark's 'before').
  if (packed.is_cpu() && absmax.is_cpu() && !genericDequant4bitRequested())
    return dequantize4bitCpu(packed, absmax, fourBitCode(quantType), blocksize, n, dtype).reshape(shape);
  return dequantize4bitGeneric(packed, absmax, blocksize, quantType, shape, dtype);
}

at::Tensor dequantize4bitGeneric(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                                 const std::string& quantType, at::IntArrayRef shape, at::ScalarType dtype) {
  const int64_t n = checkDequantize4bit(packed, absmax, blocksize, quantType, shape, dtype, "dequantize4bitGeneric");
  const at::Tensor flat = packed.reshape(-1);
  at::Tensor idx = at::stack({at::bitwise_right_shift(flat, 4), at::bitwise_and(flat, 0xF)}, 1).reshape(-1);
  idx = idx.slice(0, 0, n).to(at::kLong);
  at::Tensor values = fourBitCode(quantType).to(packed.device()).index_select(0, idx);
  return scaleBack(values, absmax.to(packed.device()), blocksize).to(dtype).reshape(shape);
}

at::Tensor dequantizeNestedAbsmax(const at::Tensor& qabsmax, const at::Tensor& nestedAbsmax,
                                  const at::Tensor& nestedCode, int64_t nestedBlocksize, double offset) {
  at::Tensor absmax = dequantizeBlockwise(qabsmax, nestedAbsmax, nestedCode, nestedBlocksize, at::kFloat);
  // The offset is a float32 scalar in bitsandbytes (a 0-d tensor added in float32).
  return absmax.add_(at::scalar_tensor(offset, absmax.options()));
}

std::tuple<at::Tensor, at::Tensor, double> quantizeNestedAbsmax(const at::Tensor& absmax) {
  TORCH_CHECK(absmax.scalar_type() == at::kFloat, "quantizeNestedAbsmax: absmax must be float32, got ",
              absmax.scalar_type());
  const at::Tensor offset = absmax.mean();
  auto [q, nested] = quantizeBlockwise(absmax - offset, dynamicMap().to(absmax.device()), 256);
  return {q, nested, static_cast<double>(offset.item<float>())};
}

}  // namespace tl
