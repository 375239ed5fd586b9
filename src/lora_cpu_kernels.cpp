#include "src/lora_cpu_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

// One copy of each row kernel per x86-64 level, picked at load time by the dynamic linker (ifunc). The
// row kernels are plain loops that GCC vectorizes at -O3 for the copy's vector width.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TL_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TL_CPU_CLONES
#endif
#define TL_INLINE inline __attribute__((always_inline))

namespace tl {

namespace {

std::atomic<bool> enabled{true};

// 16 floats as one value: GCC lowers it to one zmm register (x86-64-v4), two ymm (v3) or four xmm.
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));
typedef uint16_t u16x16u __attribute__((vector_size(32), aligned(2)));

// Element access in float32 for the two base dtypes (bfloat16 as its bits).
struct F32 {
  using T = float;
  static TL_INLINE float load1(float v) { return v; }
  static TL_INLINE v16 load(const float* p) { return *reinterpret_cast<const v16u*>(p); }
  static TL_INLINE void store(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }
  static TL_INLINE v16 round(v16 v) { return v; }
};
struct BF16 {
  using T = uint16_t;
  static TL_INLINE float load1(uint16_t v) {
    const uint32_t u = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static TL_INLINE v16 load(const uint16_t* p) {
    const u32x16 u = __builtin_convertvector(*reinterpret_cast<const u16x16u*>(p), u32x16) << 16;
    return reinterpret_cast<const v16&>(u);
  }
  // round to nearest even, NaN kept a quiet NaN: c10::BFloat16's conversion
  static TL_INLINE u32x16 bits(v16 f) {
    const u32x16 u = reinterpret_cast<const u32x16&>(f);
    const u32x16 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const u32x16 nan = (u32x16)(f != f);  // all ones where NaN
    return (nan & 0x7fc0u) | (~nan & rounded);
  }
  static TL_INLINE void store(uint16_t* p, v16 v) {
    *reinterpret_cast<u16x16u*>(p) = __builtin_convertvector(bits(v), u16x16);
  }
  static TL_INLINE v16 round(v16 v) {
    const u32x16 u = bits(v) << 16;
    return reinterpret_cast<const v16&>(u);
  }
};

constexpr int64_t kW = 64;  // output columns per expandAdd block: 4 vectors

// out[n0 + u, c0 + j] += Σ_k lhs[n0 + u, k] · packed[k, j] for RB rows u and the 64 columns j of one
// block: the 4·RB accumulators stay in registers over k. w < 64 only for the last, partial block.
template <class C, int RB>
TL_INLINE void expandTile(typename C::T* out, int64_t M, const float* lhs, int64_t r, const float* packed,
                          int64_t n0, int64_t c0, int64_t w, float scale, bool roundTerm) {
  v16 acc[RB][4];
  for (int u = 0; u < RB; ++u)
    for (int v = 0; v < 4; ++v) acc[u][v] = v16{};
  for (int64_t k = 0; k < r; ++k) {
    const float* bk = packed + k * kW;
    const v16 b0 = F32::load(bk), b1 = F32::load(bk + 16), b2 = F32::load(bk + 32), b3 = F32::load(bk + 48);
    for (int u = 0; u < RB; ++u) {
      const float c = lhs[(n0 + u) * r + k] * scale;
      acc[u][0] += c * b0;
      acc[u][1] += c * b1;
      acc[u][2] += c * b2;
      acc[u][3] += c * b3;
    }
  }
  for (int u = 0; u < RB; ++u) {
    typename C::T* o = out + (n0 + u) * M + c0;
    if (w == kW) {
      for (int v = 0; v < 4; ++v) {
        const v16 t = roundTerm ? C::round(acc[u][v]) : acc[u][v];
        C::store(o + 16 * v, C::load(o + 16 * v) + t);
      }
    } else {
      alignas(64) float t[kW];
      for (int v = 0; v < 4; ++v) F32::store(t + 16 * v, roundTerm ? C::round(acc[u][v]) : acc[u][v]);
      for (int64_t j = 0; j < w; ++j) {
        alignas(64) float one[16] = {C::load1(o[j]) + t[j]};
        // (scalar tail: the same rounding as the vector store)
        typename C::T tmp[16];
        C::store(tmp, F32::load(one));
        o[j] = tmp[0];
      }
    }
  }
}

// Rows [n0, n1) of out, every column block; packed is rhsT as [blocks][r][64] (zero padded).
template <class C>
TL_INLINE void expandRowsImpl(typename C::T* out, const float* lhs, const float* packed, int64_t r, int64_t M,
                              int64_t n0, int64_t n1, float scale, bool roundTerm) {
  for (int64_t c0 = 0; c0 < M; c0 += kW) {
    const float* pb = packed + (c0 / kW) * r * kW;
    const int64_t w = std::min(kW, M - c0);
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) expandTile<C, 4>(out, M, lhs, r, pb, n, c0, w, scale, roundTerm);
    for (; n < n1; ++n) expandTile<C, 1>(out, M, lhs, r, pb, n, c0, w, scale, roundTerm);
  }
}

// acc[u] = Σ_i g[u, i] · rhs[i, :] for RB rows of g (row stride ld); rhs is [M, 16·RV] (zero padded).
template <class C, int RV, int RB>
TL_INLINE void rowTile(const typename C::T* g, int64_t ld, const float* rhs, int64_t M, float* out, int64_t outLd,
                       int64_t r, float scale) {
  v16 acc[RB][RV];
  for (int u = 0; u < RB; ++u)
    for (int v = 0; v < RV; ++v) acc[u][v] = v16{};
  for (int64_t i = 0; i < M; ++i) {
    v16 b[RV];
    for (int v = 0; v < RV; ++v) b[v] = F32::load(rhs + i * 16 * RV + 16 * v);
    for (int u = 0; u < RB; ++u) {
      const float c = C::load1(g[u * ld + i]);
      for (int v = 0; v < RV; ++v) acc[u][v] += c * b[v];
    }
  }
  for (int u = 0; u < RB; ++u) {
    alignas(64) float t[16 * RV];
    for (int v = 0; v < RV; ++v) F32::store(t + 16 * v, acc[u][v] * scale);
    for (int64_t k = 0; k < r; ++k) out[u * outLd + k] = t[k];
  }
}

template <class C, int RV>
TL_INLINE void projectRowsImpl(const typename C::T* g, int64_t M, const float* rhs, float* out, int64_t r,
                               int64_t n0, int64_t n1, float scale) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) rowTile<C, RV, 4>(g + n * M, M, rhs, M, out + n * r, r, r, scale);
  for (; n < n1; ++n) rowTile<C, RV, 1>(g + n * M, M, rhs, M, out + n * r, r, r, scale);
}

// acc[mi] = Σ_n g[n, m0 + mi] · h[n, :] for MB columns of g; h is [N, 16·RV] (zero padded). Written to
// out[m0 + mi, k] or, transposed, out[k, m0 + mi].
template <class C, int RV, int MB>
TL_INLINE void columnTile(const typename C::T* g, int64_t M, int64_t N, int64_t m0, const float* h, float* out,
                          int64_t r, float scale, bool transposed) {
  v16 acc[MB][RV];
  for (int u = 0; u < MB; ++u)
    for (int v = 0; v < RV; ++v) acc[u][v] = v16{};
  for (int64_t n = 0; n < N; ++n) {
    v16 hv[RV];
    for (int v = 0; v < RV; ++v) hv[v] = F32::load(h + n * 16 * RV + 16 * v);
    const typename C::T* gr = g + n * M + m0;
    for (int u = 0; u < MB; ++u) {
      const float c = C::load1(gr[u]);
      for (int v = 0; v < RV; ++v) acc[u][v] += c * hv[v];
    }
  }
  for (int u = 0; u < MB; ++u) {
    alignas(64) float t[16 * RV];
    for (int v = 0; v < RV; ++v) F32::store(t + 16 * v, acc[u][v] * scale);
    for (int64_t k = 0; k < r; ++k) {
      if (transposed)
        out[k * M + m0 + u] = t[k];
      else
        out[(m0 + u) * r + k] = t[k];
    }
  }
}

template <class C, int RV>
TL_INLINE void outerSumImpl(const typename C::T* g, int64_t M, int64_t N, const float* h, float* out, int64_t r,
                            int64_t m0, int64_t m1, float scale, bool transposed) {
  constexpr int MB = RV == 1 ? 8 : RV == 2 ? 4 : 2;
  int64_t m = m0;
  for (; m + MB <= m1; m += MB) columnTile<C, RV, MB>(g, M, N, m, h, out, r, scale, transposed);
  for (; m < m1; ++m) columnTile<C, RV, 1>(g, M, N, m, h, out, r, scale, transposed);
}

TL_CPU_CLONES void expandRowsF32(float* out, const float* lhs, const float* packed, int64_t r, int64_t M, int64_t n0,
                                 int64_t n1, float scale, bool roundTerm) {
  expandRowsImpl<F32>(out, lhs, packed, r, M, n0, n1, scale, roundTerm);
}
TL_CPU_CLONES void expandRowsBF16(uint16_t* out, const float* lhs, const float* packed, int64_t r, int64_t M,
                                  int64_t n0, int64_t n1, float scale, bool roundTerm) {
  expandRowsImpl<BF16>(out, lhs, packed, r, M, n0, n1, scale, roundTerm);
}

// One function per (dtype, padded rank in vectors), chosen at run time.
#define TL_RANK_KERNELS(RV)                                                                                      \
  TL_CPU_CLONES void projectRowsF32_##RV(const float* g, int64_t M, const float* rhs, float* out, int64_t r,      \
                                         int64_t n0, int64_t n1, float scale) {                                 \
    projectRowsImpl<F32, RV>(g, M, rhs, out, r, n0, n1, scale);                                               \
  }                                                                                                             \
  TL_CPU_CLONES void projectRowsBF16_##RV(const uint16_t* g, int64_t M, const float* rhs, float* out, int64_t r, \
                                          int64_t n0, int64_t n1, float scale) {                                \
    projectRowsImpl<BF16, RV>(g, M, rhs, out, r, n0, n1, scale);                                              \
  }                                                                                                             \
  TL_CPU_CLONES void outerSumF32_##RV(const float* g, int64_t M, int64_t N, const float* h, float* out,          \
                                      int64_t r, int64_t m0, int64_t m1, float scale, bool transposed) {        \
    outerSumImpl<F32, RV>(g, M, N, h, out, r, m0, m1, scale, transposed);                                     \
  }                                                                                                             \
  TL_CPU_CLONES void outerSumBF16_##RV(const uint16_t* g, int64_t M, int64_t N, const float* h, float* out,     \
                                       int64_t r, int64_t m0, int64_t m1, float scale, bool transposed) {       \
    outerSumImpl<BF16, RV>(g, M, N, h, out, r, m0, m1, scale, transposed);                                    \
  }
TL_RANK_KERNELS(1)
TL_RANK_KERNELS(2)
TL_RANK_KERNELS(3)
TL_RANK_KERNELS(4)
#undef TL_RANK_KERNELS

using ProjectF32 = void (*)(const float*, int64_t, const float*, float*, int64_t, int64_t, int64_t, float);
using ProjectBF16 = void (*)(const uint16_t*, int64_t, const float*, float*, int64_t, int64_t, int64_t, float);
using OuterF32 = void (*)(const float*, int64_t, int64_t, const float*, float*, int64_t, int64_t, int64_t, float, bool);
using OuterBF16 = void (*)(const uint16_t*, int64_t, int64_t, const float*, float*, int64_t, int64_t, int64_t, float,
                           bool);
const ProjectF32 kProjectF32[] = {projectRowsF32_1, projectRowsF32_2, projectRowsF32_3, projectRowsF32_4};
const ProjectBF16 kProjectBF16[] = {projectRowsBF16_1, projectRowsBF16_2, projectRowsBF16_3, projectRowsBF16_4};
const OuterF32 kOuterF32[] = {outerSumF32_1, outerSumF32_2, outerSumF32_3, outerSumF32_4};
const OuterBF16 kOuterBF16[] = {outerSumBF16_1, outerSumBF16_2, outerSumBF16_3, outerSumBF16_4};

constexpr int64_t kMaxRank = 64;
int64_t rankVectors(int64_t r) { return (r + 15) / 16; }

// t [rows, r] float32 as [rows, 16·rankVectors(r)], zero padded (t may be any 2-D float32 view).
at::Tensor padRank(const at::Tensor& t) {
  const int64_t r = t.size(1), rp = 16 * rankVectors(r);
  at::Tensor p = at::zeros({t.size(0), rp}, t.options().memory_format(at::MemoryFormat::Contiguous));
  p.narrow(1, 0, r).copy_(t);
  return p;
}

bool isBf16(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; }

void checkArgs(const char* op, const at::Tensor& g, const at::Tensor& f, int64_t rows, int64_t cols) {
  TORCH_CHECK(g.device().is_cpu() && f.device().is_cpu(), op, ": CPU tensors only");
  TORCH_CHECK(g.dim() == 2 && (g.scalar_type() == at::kFloat || isBf16(g)), op,
              ": needs a 2-D float32 or bfloat16 tensor, got ", g.sizes(), " of ", g.scalar_type());
  TORCH_CHECK(f.dim() == 2 && f.scalar_type() == at::kFloat && f.size(0) == rows && f.size(1) == cols, op,
              ": needs a float32 [", rows, ", ", cols, "] tensor, got ", f.sizes(), " of ", f.scalar_type());
}

// Enough multiply-adds per task (~1M: some 100 us on one core) that waking a thread pays for itself:
// with OMP_WAIT_POLICY=PASSIVE (1.x builds) a wake-up costs tens of us, and the demo-shape products
// (512 x 16 x 128) ran slower split in two.
constexpr int64_t kWorkPerTask = 1 << 20;
int64_t grainFor(int64_t workPerItem) { return std::max<int64_t>(1, kWorkPerTask / std::max<int64_t>(1, workPerItem)); }

}  // namespace

bool loraCpuKernelsApply(const at::Tensor& x, const at::Tensor& a) {
  return enabled.load(std::memory_order_relaxed) && x.device().is_cpu() && a.device().is_cpu() &&
         a.scalar_type() == at::kFloat && (x.scalar_type() == at::kFloat || isBf16(x)) && a.dim() == 2 &&
         a.size(0) >= 1 && a.size(0) <= kMaxRank;
}

void setLoraCpuKernels(bool on) { enabled = on; }

void expandAdd(at::Tensor& out, const at::Tensor& lhs, const at::Tensor& rhsT, double scale, bool roundTerm) {
  TORCH_CHECK(out.dim() == 2 && out.is_contiguous(), "expandAdd: out must be a contiguous 2-D tensor, got ",
              out.sizes());
  const at::Tensor l = lhs.contiguous();
  const int64_t N = out.size(0), M = out.size(1), r = l.size(-1);
  checkArgs("expandAdd", out, l, N, r);
  checkArgs("expandAdd", out, rhsT, r, M);
  // rhsT as [column blocks][r][64], the last block zero padded: each tile reads one contiguous 4·r KB
  // block (rows of a [r, 2048] float32 matrix are 8 KB apart, which maps them all onto the same L1 sets)
  const int64_t blocks = (M + kW - 1) / kW;
  at::Tensor packed = at::zeros({blocks * kW, r}, rhsT.options());
  packed.narrow(0, 0, M).copy_(rhsT.t());
  packed = packed.view({blocks, kW, r}).transpose(1, 2).contiguous();
  const float* lp = l.data_ptr<float>();
  const float* bp = packed.data_ptr<float>();
  const float s = static_cast<float>(scale);
  if (isBf16(out)) {
    auto* o = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
    at::parallel_for(0, N, grainFor(r * M), [&](int64_t n0, int64_t n1) { expandRowsBF16(o, lp, bp, r, M, n0, n1, s, roundTerm); });
  } else {
    float* o = out.data_ptr<float>();
    at::parallel_for(0, N, grainFor(r * M), [&](int64_t n0, int64_t n1) { expandRowsF32(o, lp, bp, r, M, n0, n1, s, roundTerm); });
  }
}

at::Tensor projectRows(const at::Tensor& g, const at::Tensor& rhs, double scale) {
  const at::Tensor gc = g.contiguous();
  const int64_t N = gc.size(0), M = gc.size(1), r = rhs.size(-1);
  checkArgs("projectRows", gc, rhs, M, r);
  TORCH_CHECK(r >= 1 && r <= kMaxRank, "projectRows: rank ", r, " outside [1, ", kMaxRank, "]");
  const at::Tensor b = padRank(rhs);
  at::Tensor out = at::empty({N, r}, b.options());
  float* o = out.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const float s = static_cast<float>(scale);
  const int64_t rv = rankVectors(r) - 1;
  at::parallel_for(0, N, grainFor(M * r), [&](int64_t n0, int64_t n1) {
    if (isBf16(gc))
      kProjectBF16[rv](reinterpret_cast<const uint16_t*>(gc.data_ptr<at::BFloat16>()), M, bp, o, r, n0, n1, s);
    else
      kProjectF32[rv](gc.data_ptr<float>(), M, bp, o, r, n0, n1, s);
  });
  return out;
}

at::Tensor outerSum(const at::Tensor& g, const at::Tensor& h, double scale, bool transposed) {
  const at::Tensor gc = g.contiguous();
  const int64_t N = gc.size(0), M = gc.size(1), r = h.size(-1);
  checkArgs("outerSum", gc, h, N, r);
  TORCH_CHECK(r >= 1 && r <= kMaxRank, "outerSum: rank ", r, " outside [1, ", kMaxRank, "]");
  const at::Tensor hp = padRank(h);
  at::Tensor out = transposed ? at::empty({r, M}, hp.options()) : at::empty({M, r}, hp.options());
  float* o = out.data_ptr<float>();
  const float* hd = hp.data_ptr<float>();
  const float s = static_cast<float>(scale);
  const int64_t rv = rankVectors(r) - 1;
  // tasks of 16 columns of g, so that a task's tiles read whole cache lines of g's rows
  constexpr int64_t kCols = 16;
  const int64_t blocks = (M + kCols - 1) / kCols;
  at::parallel_for(0, blocks, grainFor(kCols * N * r), [&](int64_t b0, int64_t b1) {
    const int64_t m0 = b0 * kCols, m1 = std::min(M, b1 * kCols);
    if (isBf16(gc))
      kOuterBF16[rv](reinterpret_cast<const uint16_t*>(gc.data_ptr<at::BFloat16>()), M, N, hd, o, r, m0, m1, s,
                     transposed);
    else
      kOuterF32[rv](gc.data_ptr<float>(), M, N, hd, o, r, m0, m1, s, transposed);
  });
  return out;
}

}  // namespace tl
