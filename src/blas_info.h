// Which BLAS the loaded libtorch calls, read from the process (not from how libtorch was built: Debian's
// libtorch calls whatever libblas.so.3 resolves to), and its own thread count.
#pragma once
#include <string>

namespace tl {

struct BlasInfo {
  std::string library;  // the file that defines sgemm_ as libtorch finds it; "" when none is visible
  std::string config;   // OpenBLAS's openblas_get_config() (version, kernel); "" for other BLAS
  int threads = -1;     // OpenBLAS's own thread count; -1 when not OpenBLAS
};

/** `probe` is any address inside the addon: its library's dependencies are searched as it resolves them. */
BlasInfo blasInfo(const void* probe);

/**
 * OpenBLAS keeps its own thread pool beside libtorch's OpenMP one (at::set_num_threads sets only MKL's);
 * sets it too, so that a thread count the user chose holds for matrix products. No-op on other BLAS.
 */
void setBlasNumThreads(const void* probe, int n);

}  // namespace tl
