#include "src/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <mutex>

namespace tl {

namespace {

std::atomic<bool> useAten{false};

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t drawSeed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

double keptScale(double p) { return p >= 1 ? 0.0 : 1.0 / (1.0 - p); }

// Calls keep(i, kept) for every element i of n, kept with probability 1 - p, in parallel.
template <class F>
void forEachKeep(int64_t n, double p, F&& keep) {
  if (n == 0) return;
  // kept when u < threshold, u uniform on [0, 2^32): P = threshold / 2^32 = 1 - p (to 2^-32)
  const uint64_t threshold = static_cast<uint64_t>(std::llround((1.0 - p) * 4294967296.0));
  const uint64_t seed = drawSeed();
  at::parallel_for(0, (n + 1) / 2, 8192, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t h = splitmix64(seed + static_cast<uint64_t>(i + 1) * 0x9e3779b97f4a7c15ULL);
      keep(2 * i, (h & 0xffffffffULL) < threshold);
      if (2 * i + 1 < n) keep(2 * i + 1, (h >> 32) < threshold);
    }
  });
}

void checkP(double p) { TORCH_CHECK(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got ", p); }

}  // namespace

void setAtenDropout(bool on) { useAten = on; }

std::tuple<at::Tensor, at::Tensor> nativeDropout(const at::Tensor& x, double p) {
  checkP(p);
  if (!x.device().is_cpu() || !x.is_floating_point() || useAten) return at::native_dropout(x, p, true);
  // one pass: the mask and x·mask/(1-p) together
  const at::Tensor xc = x.contiguous();
  at::Tensor out = at::empty_like(xc, xc.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kBool).memory_format(at::MemoryFormat::Contiguous));
  bool* m = mask.data_ptr<bool>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, xc.scalar_type(), "dropout", [&] {
    const scalar_t* in = xc.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t scale = static_cast<acc_t>(keptScale(p));
    forEachKeep(xc.numel(), p, [&](int64_t i, bool k) {
      m[i] = k;
      o[i] = static_cast<scalar_t>(static_cast<acc_t>(in[i]) * (scale * static_cast<acc_t>(k)));  // (no branch: k is a coin flip)
    });
  });
  return {out, mask};
}

at::Tensor dropout(const at::Tensor& x, double p, bool train) {
  checkP(p);
  if (!train || p == 0) return x;
  if (!x.device().is_cpu() || !x.is_floating_point() || useAten) return at::dropout(x, p, train);
  // mask/(1-p) in x's dtype in one pass, then x times it: autograd sees a multiply by a constant
  at::Tensor scaled = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous).requires_grad(false));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "dropout", [&] {
    scalar_t* s = scaled.data_ptr<scalar_t>();
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t kept = static_cast<acc_t>(keptScale(p));
    forEachKeep(scaled.numel(), p, [&](int64_t i, bool k) { s[i] = static_cast<scalar_t>(kept * static_cast<acc_t>(k)); });
  });
  return x.mul(scaled);
}

}  // namespace tl
