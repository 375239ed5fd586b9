#pragma once
#include <ATen/ATen.h>
#include <string>
#include <tuple>

namespace tl {

// Blockwise quantization as bitsandbytes defines it (its default/CPU backend): the flattened tensor is cut
// into blocks of `blocksize` values (the last may be shorter); each block is scaled by 1/absmax (absmax kept
// in float32, one per block) and each value takes the nearest entry of a sorted code book (the midpoints
// decide; a value on a midpoint takes the lower entry, as torch.bucketize does).

// 8-bit: one code index per value, uint8 of A's shape; `code` a sorted float32 book of 256 (dynamicMap()).
std::tuple<at::Tensor, at::Tensor> quantizeBlockwise(const at::Tensor& a, const at::Tensor& code, int64_t blocksize);
// code[q]·absmax[block] in float32, then cast to dtype; the shape of q.
at::Tensor dequantizeBlockwise(const at::Tensor& q, const at::Tensor& absmax, const at::Tensor& code,
                               int64_t blocksize, at::ScalarType dtype);

// 4-bit NF4/FP4: two codes per byte, the first value in the high nibble; returns the packed [(n+1)/2, 1]
// uint8 tensor and the float32 absmax [ceil(n/blocksize)]. blocksize: 32, 64, ..., 4096.
std::tuple<at::Tensor, at::Tensor> quantize4bit(const at::Tensor& a, int64_t blocksize, const std::string& quantType);
// The inverse: `shape` is the original tensor's; float32 products, cast to dtype (float32/bfloat16/float16).
at::Tensor dequantize4bit(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                          const std::string& quantType, at::IntArrayRef shape, at::ScalarType dtype);

// The same through generic ATen ops on any device (the path CUDA takes; the CPU takes a fused loop,
// src/dequantize_4bit_cpu.h, bit-identical to this). The checks are dequantize4bit's.
at::Tensor dequantize4bitGeneric(const at::Tensor& packed, const at::Tensor& absmax, int64_t blocksize,
                                 const std::string& quantType, at::IntArrayRef shape, at::ScalarType dtype);
// Whether TORCH_LORA_DEQUANT4BIT=generic asks the CPU to take dequantize4bitGeneric too (benchmarks).
bool genericDequant4bitRequested();

// Double quantization's inverse: absmax = dequantizeBlockwise(qabsmax, nestedAbsmax, nestedCode, nestedBlocksize,
// float32) + offset.
at::Tensor dequantizeNestedAbsmax(const at::Tensor& qabsmax, const at::Tensor& nestedAbsmax,
                                  const at::Tensor& nestedCode, int64_t nestedBlocksize, double offset);

// Double quantization (compress_statistics): offset = mean(absmax) (float32), then the centred absmax in
// 8-bit blocks of 256 with the dynamic map. Returns (qabsmax uint8, nestedAbsmax float32, offset).
std::tuple<at::Tensor, at::Tensor, double> quantizeNestedAbsmax(const at::Tensor& absmax);

void check4bitBlocksize(int64_t blocksize, const char* op);

}  // namespace tl
