#include "src/malloc_tuning.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tl {

namespace {

std::string apply() {
#if defined(__GLIBC__)
  const char* mode = std::getenv("TORCH_LORA_MALLOC");
  if (mode != nullptr && std::strcmp(mode, "default") == 0) return "glibc defaults (TORCH_LORA_MALLOC=default)";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return "glibc, as GLIBC_TUNABLES sets it";
  constexpr int kMmapThreshold = 64 << 20;
  constexpr int kTrimThreshold = 256 << 20;
  if (mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 || mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1)
    return "glibc defaults (mallopt refused the setting)";
  return "glibc, freed buffers kept for reuse (mmap threshold 64 MiB, trim threshold 256 MiB; TORCH_LORA_MALLOC=default for glibc's defaults)";
#else
  return "the C library's defaults";
#endif
}

}  // namespace

const std::string& tuneMallocForTensors() {
  static const std::string state = apply();
  return state;
}

}  // namespace tl
