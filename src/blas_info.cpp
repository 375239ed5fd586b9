#include "src/blas_info.h"
#include <dlfcn.h>

namespace tl {
namespace {

// The addon's own handle (its dependencies, libtorch and its BLAS, are not in the global scope: Node
// loads addons RTLD_LOCAL). RTLD_NOLOAD: only a reference to what is loaded already.
void* addonHandle(const void* probe) {
  Dl_info info{};
  if (dladdr(probe, &info) == 0 || info.dli_fname == nullptr) return nullptr;
  return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
}

template <typename F>
F symbol(void* handle, const char* name) {
  return handle ? reinterpret_cast<F>(dlsym(handle, name)) : nullptr;
}

}  // namespace

BlasInfo blasInfo(const void* probe) {
  BlasInfo out;
  void* h = addonHandle(probe);
  if (h == nullptr) return out;
  if (void* gemm = dlsym(h, "sgemm_")) {
    Dl_info info{};
    if (dladdr(gemm, &info) != 0 && info.dli_fname != nullptr) out.library = info.dli_fname;
  }
  if (auto config = symbol<char* (*)()>(h, "openblas_get_config")) out.config = config();
  if (auto threads = symbol<int (*)()>(h, "openblas_get_num_threads")) out.threads = threads();
  dlclose(h);
  return out;
}

void setBlasNumThreads(const void* probe, int n) {
  void* h = addonHandle(probe);
  if (auto set = symbol<void (*)(int)>(h, "openblas_set_num_threads")) set(n);
  if (h != nullptr) dlclose(h);
}

}  // namespace tl
