// The rank-r products of a LoRA layer on the CPU, for float32 adapters on a float32 or bfloat16 base.
// Every one of them has r (8-64) as its inner or outer dimension: (x·Aᵀ)·Bᵀ is a GEMM with K = r, gᵀ·xa
// one with N = r. MKL and OpenBLAS are tuned for large K; at K = 16 their packing, beta scaling and
// thread split cost more than the arithmetic (256x16 @ 16x2048: 340 us on 2 threads, against ~60 us for
// a loop that streams the output once), and a bfloat16 base adds a float32 copy of x or g and a cast back
// around each. These kernels read the base dtype directly, accumulate in float32 and write the sum into
// the base output in one pass. They are vectorized per CPU (target_clones: AVX-512, AVX2+FMA, baseline)
// and split over rows with at::parallel_for. The results differ from the BLAS ones only in summation
// order (float32 rounding).
#pragma once
#include <ATen/ATen.h>

namespace tl {

// Whether the kernels below take (x, A): a CPU x of float32 or bfloat16, adapters float32, and not
// switched off by setLoraCpuKernels(false) (the tests compare both paths).
bool loraCpuKernelsApply(const at::Tensor& x, const at::Tensor& a);
void setLoraCpuKernels(bool on);

// out[n, m] += scale · Σ_k lhs[n, k] · rhsT[k, m]; out [N, M] contiguous (float32 or bfloat16), lhs
// [N, r] and rhsT [r, M] float32. roundTerm: the term is rounded to out's dtype before the add (what
// autograd's sum of a cast-back gradient does), otherwise the sum is rounded once.
void expandAdd(at::Tensor& out, const at::Tensor& lhs, const at::Tensor& rhsT, double scale, bool roundTerm);

// scale · g · rhs: g [N, M] (float32 or bfloat16), rhs [M, r] float32 -> [N, r] float32.
at::Tensor projectRows(const at::Tensor& g, const at::Tensor& rhs, double scale);

// scale · gᵀ · h: g [N, M] (float32 or bfloat16), h [N, r] float32 -> [M, r] float32, or its transpose
// [r, M] when transposed.
at::Tensor outerSum(const at::Tensor& g, const at::Tensor& h, double scale, bool transposed);

}  // namespace tl
