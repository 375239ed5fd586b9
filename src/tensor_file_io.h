#pragma once
#include <ATen/ATen.h>
#include <string>
#include <vector>

namespace tl {

// Where one tensor's bytes lie in a file (offsets from the file's start, little-endian, row-major).
struct TensorSpec {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t offset;
  uint64_t nbytes;
};

// Reads each tensor straight into fresh CPU memory (no intermediate buffer), checking every range
// against the file's size. Then moves them to `device` when it is not the CPU.
std::vector<at::Tensor> readTensors(const std::string& path, const std::vector<TensorSpec>& specs,
                                    const at::Device& device);

// Writes `prefix` and then each tensor's bytes (CPU, contiguous) to a temporary file beside `path`,
// flushes it to disk and renames it over `path`: a crash leaves either the old file or the new one.
void writeFileAtomic(const std::string& path, const std::string& prefix, const std::vector<at::Tensor>& tensors);

}  // namespace tl
