#include "ops_int8.h"

#include <math.h>

#include <vector>

#include "bnb_quant_math.h"
#include "kernels_int8.h"
#include "ops.h"
#include "thread_pool.h"

namespace bnb_cpu {
namespace {

constexpr int kMaxThreads = 256;
constexpr int64_t kInlineElements = 1 << 16;  // below this many elements a pass runs on the calling thread
// The amx tier: matmuls with at least kAmxMinRows rows of A use the AMX tile path. Below it the VNNI dot kernel
// streams the weight as fast or faster (2 threads, 1 / 4 rows, VNNI time / AMX time, 2026-12-06 Xeon VM, the dot
// kernel reading whole rows for one group of rows of A: 4096 x 14336 0.96 / 1.00, 8192 x 8192 0.92 / 0.97,
// 28672 x 8192 0.92 / 0.99, 8192 x 28672 0.89 / 0.99; 6 rows of 4096 x 4096: 0.39 ms AMX vs 0.44 VNNI).
constexpr int64_t kAmxMinRows = 5;
constexpr int64_t kInlineMacs = 1 << 20;      // below this many multiply-adds a matmul runs inline
constexpr int64_t kInlineQuantElements = 1 << 20;  // row quantization below this many elements runs inline

const Int8KernelTable* table() {
  switch (active_isa()) {
#if defined(BNB_HAVE_AVX512VNNI_TU)
    case IsaId::kAmx:  // the avx512vnni kernels (AMX adds tile paths where the op glue asks for them)
    case IsaId::kAvx512Vnni: return &avx512vnni::int8_table;
#endif
#if defined(BNB_HAVE_AVX512_TU)
    case IsaId::kAvx512: return &avx512::int8_table;
#endif
#if defined(BNB_HAVE_AVX2_TU)
    case IsaId::kAvx2: return &avx2::int8_table;
#endif
    default: return &scalar::int8_table;
  }
}

int clamp_threads(int n) { return n < 1 ? 1 : (n > kMaxThreads ? kMaxThreads : n); }
bool bad_dtype(int d) { return d < 0 || d > 2; }

// body(i0, i1) over [0, n) items of `per_item` elements each, in parallel when large enough.
template <class F>
void run_range(int64_t n, int64_t per_item, int nthreads, const F& body) {
  nthreads = clamp_threads(nthreads);
  if (n <= 0) return;
  if (nthreads <= 1 || n < 2 || n * per_item < kInlineElements) {
    body((int64_t)0, n);
    return;
  }
  int64_t ntasks = (int64_t)nthreads * 4;
  if (ntasks > n) ntasks = n;
  const int64_t per = (n + ntasks - 1) / ntasks;
  ntasks = (n + per - 1) / per;
  parallel_for(ntasks, nthreads, [&](int64_t t) {
    const int64_t i0 = t * per;
    body(i0, i0 + per < n ? i0 + per : n);
  });
}

int quant_rows_impl(const Int8KernelTable* k, int dtype, const void* A, int64_t M, int64_t K, float threshold,
                    int8_t* out, float* stats, int64_t* outlier_cols, int64_t* n_outliers, int nthreads) {
  if (n_outliers) *n_outliers = 0;
  // the passes are cheap next to a thread wake-up: measured no gain from 2 threads up to M*K = 2^20
  if (M * K < kInlineQuantElements) nthreads = 1;
  if (threshold > 0.0f) {
    std::vector<uint8_t> flags((size_t)K, 0);
    run_range(M, K, nthreads, [&](int64_t r0, int64_t r1) { k->row_absmax(dtype, A, K, threshold, stats, flags.data(), r0, r1); });
    int64_t n = 0;
    for (int64_t c = 0; c < K; ++c)
      if (flags[(size_t)c]) outlier_cols[n++] = c;
    if (n_outliers) *n_outliers = n;
    const uint8_t* f = n ? flags.data() : nullptr;
    run_range(M, K, nthreads, [&](int64_t r0, int64_t r1) { k->quant_rows(dtype, A, K, stats, f, out, r0, r1); });
  } else {
    run_range(M, K, nthreads, [&](int64_t r0, int64_t r1) {
      k->row_absmax(dtype, A, K, 0.0f, stats, nullptr, r0, r1);
      k->quant_rows(dtype, A, K, stats, nullptr, out, r0, r1);
    });
  }
  return kOk;
}

// bias in any float dtype -> fp32 (exact)
std::vector<float> bias_f32(int bias_dtype, const void* bias, int64_t N) {
  std::vector<float> b;
  if (bias_dtype < 0) return b;
  b.resize((size_t)N);
  for (int64_t i = 0; i < N; ++i) b[(size_t)i] = bnb::load_as_f32(bias, i, bias_dtype);
  return b;
}

void run_gemm(const Int8KernelTable* k, Int8GemmArgs& g, int nthreads) {
  std::vector<int32_t> corr;
  std::vector<int8_t> ay;
  void (*gemm)(const Int8GemmArgs&, int64_t, int64_t, int64_t, int64_t) = k->gemm;
  g.Ay = nullptr;
  if (k->gemm_amx && active_isa() == IsaId::kAmx && g.M >= kAmxMinRows && g.K > 0 &&
      g.K % 64 == 0) {
    const int64_t G = (g.M + 15) / 16;
    ay.resize((size_t)(G * 16 * g.K));
    run_range(G, 16 * g.K, nthreads, [&](int64_t g0, int64_t g1) {
      const int64_t rows = (g1 * 16 < g.M ? g1 * 16 : g.M) - g0 * 16;
      k->prep_a_amx(g.A + g0 * 16 * g.K, rows, g.K, ay.data() + g0 * 16 * g.K);
    });
    g.Ay = ay.data();
    g.a_corr = nullptr;
    gemm = k->gemm_amx;
  } else if (k->needs_a_corr) {
    corr.resize((size_t)g.M);
    run_range(g.M, g.K, nthreads, [&](int64_t r0, int64_t r1) { k->row_sums128(g.A, g.K, corr.data(), r0, r1); });
    g.a_corr = corr.data();
  } else {
    g.a_corr = nullptr;
  }
  nthreads = clamp_threads(nthreads);
  const double macs = (double)g.M * (double)g.N * (double)g.K;
  if (nthreads <= 1 || macs < (double)kInlineMacs) {
    gemm(g, 0, g.M, 0, g.N);
    return;
  }
  // tasks: row blocks of 64 x column chunks (multiples of 16 columns), at least 4 per thread
  const int64_t mblocks = (g.M + 63) / 64;
  int64_t nchunks = ((int64_t)nthreads * 4 + mblocks - 1) / mblocks;
  int64_t per = (g.N + nchunks - 1) / nchunks;
  per = (per + 15) / 16 * 16;
  if (per < 16) per = 16;
  nchunks = (g.N + per - 1) / per;
  parallel_for(mblocks * nchunks, nthreads, [&](int64_t t) {
    const int64_t mi = t / nchunks, ni = t % nchunks;
    const int64_t m0 = mi * 64, m1 = (m0 + 64 < g.M) ? m0 + 64 : g.M;
    const int64_t n0 = ni * per, n1 = (n0 + per < g.N) ? n0 + per : g.N;
    gemm(g, m0, m1, n0, n1);
  });
}

}  // namespace

int int8_vectorwise_quant(int dtype, const void* A, int64_t M, int64_t K, float threshold, int8_t* out, float* stats,
                          int64_t* outlier_cols, int64_t* n_outliers, int nthreads) {
  try {
    if (bad_dtype(dtype)) return kBadDtype;
    if (M < 0 || K < 0) return kBadSize;
    if (n_outliers) *n_outliers = 0;
    if (M == 0) return kOk;
    if (!stats || (K > 0 && (!A || !out)) || (threshold > 0.0f && K > 0 && !outlier_cols)) return kNullPointer;
    return quant_rows_impl(table(), dtype, A, M, K, threshold, out, stats, outlier_cols, n_outliers, nthreads);
  } catch (...) {
    return kInternalError;
  }
}

int int8_double_quant(int dtype, const void* A, int64_t M, int64_t K, float threshold, int8_t* out_row,
                      int8_t* out_col, float* row_stats, float* col_stats, int64_t* outlier_cols,
                      int64_t* n_outliers, int nthreads) {
  try {
    if (bad_dtype(dtype)) return kBadDtype;
    if (M < 0 || K < 0) return kBadSize;
    if (n_outliers) *n_outliers = 0;
    if ((M > 0 && !row_stats) || (K > 0 && !col_stats)) return kNullPointer;
    if (M > 0 && K > 0 && (!A || !out_row || !out_col || (threshold > 0.0f && !outlier_cols))) return kNullPointer;
    const Int8KernelTable* k = table();
    if (M > 0) {
      int st = quant_rows_impl(k, dtype, A, M, K, threshold, out_row, row_stats, outlier_cols, n_outliers, nthreads);
      if (st != kOk) return st;
    }
    if (K == 0) return kOk;
    if (M == 0) {
      for (int64_t c = 0; c < K; ++c) col_stats[c] = 0.0f;
      return kOk;
    }
    // column stats over column chunks of 256
    const int64_t nchunks = (K + 255) / 256;
    run_range(nchunks, 256 * M, nthreads, [&](int64_t c0, int64_t c1) {
      const int64_t e = c1 * 256 < K ? c1 * 256 : K;
      k->col_absmax(dtype, A, M, K, threshold, col_stats, c0 * 256, e);
    });
    std::vector<float> scale((size_t)K);
    for (int64_t c = 0; c < K; ++c) scale[(size_t)c] = (1.0f / col_stats[c]) * 127.0f;
    run_range(M, K, nthreads, [&](int64_t r0, int64_t r1) { k->quant_cols(dtype, A, K, threshold, scale.data(), out_col, r0, r1); });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int int8_vectorwise_dequant(const int8_t* A, int64_t M, int64_t K, const float* stats, float* out, int nthreads) {
  try {
    if (M < 0 || K < 0) return kBadSize;
    if (M == 0 || K == 0) return kOk;
    if (!A || !stats || !out) return kNullPointer;
    const Int8KernelTable* k = table();
    run_range(M, K, nthreads, [&](int64_t r0, int64_t r1) { k->dequant_rows(A, K, stats, out, r0, r1); });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int int8_linear_matmul(const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K, int32_t* C, int nthreads) {
  try {
    if (M < 0 || N < 0 || K < 0) return kBadSize;
    if (M == 0 || N == 0) return kOk;
    if (!C || (K > 0 && (!A || !B))) return kNullPointer;  // K == 0: the gemm writes zeros
    Int8GemmArgs g{A, B, M, N, K, C, nullptr, nullptr, nullptr, nullptr, 0, nullptr, 0, nullptr, nullptr, nullptr};
    run_gemm(table(), g, nthreads);
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int int8_mm_dequant(const int32_t* acc, int64_t M, int64_t N, const float* row_stats, const float* col_stats,
                    int bias_dtype, const void* bias, int out_dtype, void* out, int nthreads) {
  try {
    if (bad_dtype(out_dtype) || bias_dtype < -1 || bias_dtype > 2) return kBadDtype;
    if (M < 0 || N < 0) return kBadSize;
    if (M == 0 || N == 0) return kOk;
    if (!acc || !row_stats || !col_stats || !out || (bias_dtype >= 0 && !bias)) return kNullPointer;
    const std::vector<float> b = bias_f32(bias_dtype, bias, N);
    const float* bp = b.empty() ? nullptr : b.data();
    const Int8KernelTable* k = table();
    run_range(M, N, nthreads, [&](int64_t r0, int64_t r1) {
      k->mm_dequant_rows(acc, N, row_stats, col_stats, bp, out_dtype, out, r0, r1);
    });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int int8_scaled_mm(const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K, const float* row_stats,
                   const float* col_stats, int bias_dtype, const void* bias, int out_dtype, void* out, int nthreads) {
  try {
    if (bad_dtype(out_dtype) || bias_dtype < -1 || bias_dtype > 2) return kBadDtype;
    if (M < 0 || N < 0 || K < 0) return kBadSize;
    if (M == 0 || N == 0) return kOk;
    if (!row_stats || !col_stats || !out || (bias_dtype >= 0 && !bias) || (K > 0 && (!A || !B))) return kNullPointer;
    const std::vector<float> b = bias_f32(bias_dtype, bias, N);
    const float* bp = b.empty() ? nullptr : b.data();
    const Int8KernelTable* k = table();
    Int8GemmArgs g{A, B, M, N, K, nullptr, row_stats, col_stats, bp, out, out_dtype, nullptr, 0, nullptr, nullptr, nullptr};
    run_gemm(k, g, nthreads);
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

namespace {

// int8_mixed_scaled_mm after its argument checks (shared with int8_mixed_linear)
int mixed_impl(const Int8KernelTable* k, int a_dtype, const void* A, const int8_t* CA, const int8_t* CB, int64_t M,
               int64_t N, int64_t K, const float* row_stats, const float* col_stats, const int64_t* outlier_cols,
               int64_t n_outliers, int bias_dtype, const void* bias, void* out, int nthreads) {
  // outlier columns: negative indices count from the end (as torch indexing); out of range is an error
  std::vector<int64_t> cols((size_t)n_outliers);
  for (int64_t j = 0; j < n_outliers; ++j) {
    int64_t c = outlier_cols[j];
    if (c < 0) c += K;
    if (c < 0 || c >= K) return kBadSize;
    cols[(size_t)j] = c;
  }
  std::vector<float> sub_a((size_t)(M * n_outliers));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < n_outliers; ++j)
      sub_a[(size_t)(m * n_outliers + j)] = bnb::load_as_f32(A, m * K + cols[(size_t)j], a_dtype);
  const std::vector<float> b = bias_f32(bias_dtype, bias, N);
  const float* bp = b.empty() ? nullptr : b.data();
  Int8GemmArgs g{CA, CB, M, N, K, nullptr, row_stats, col_stats, bp, out, a_dtype, nullptr,
                 n_outliers, cols.data(), sub_a.data(), nullptr};
  std::vector<float> outl_b;
  if (n_outliers > kInt8MaxBlockOutliers) {  // many outliers: the weights once for all of N
    outl_b.resize((size_t)(n_outliers * N));
    run_range(N, n_outliers * 4, nthreads, [&](int64_t n0, int64_t n1) { k->outlier_weights(g, n0, n1, outl_b.data()); });
    g.outl_b = outl_b.data();
  }
  run_gemm(k, g, nthreads);
  return kOk;
}

}  // namespace

int int8_mixed_scaled_mm(int a_dtype, const void* A, const int8_t* CA, const int8_t* CB, int64_t M, int64_t N,
                         int64_t K, const float* row_stats, const float* col_stats, const int64_t* outlier_cols,
                         int64_t n_outliers, int bias_dtype, const void* bias, void* out, int nthreads) {
  try {
    if (bad_dtype(a_dtype) || bias_dtype < -1 || bias_dtype > 2) return kBadDtype;
    if (M < 0 || N < 0 || K < 0 || n_outliers < 0) return kBadSize;
    if (M == 0 || N == 0) return kOk;
    if (!row_stats || !col_stats || !out || (bias_dtype >= 0 && !bias) || (K > 0 && (!CA || !CB))) return kNullPointer;
    if (n_outliers > 0 && (!A || !outlier_cols)) return kNullPointer;
    return mixed_impl(table(), a_dtype, A, CA, CB, M, N, K, row_stats, col_stats, outlier_cols, n_outliers,
                      bias_dtype, bias, out, nthreads);
  } catch (...) {
    return kInternalError;
  }
}

int int8_mixed_linear(int a_dtype, const void* A, int64_t M, int64_t K, const int8_t* CB, int64_t N,
                      const float* SCB, float threshold, int bias_dtype, const void* bias, void* out, int nthreads) {
  try {
    if (bad_dtype(a_dtype) || bias_dtype < -1 || bias_dtype > 2) return kBadDtype;
    if (M < 0 || N < 0 || K < 0) return kBadSize;
    if (M == 0 || N == 0) return kOk;
    if (!SCB || !out || (bias_dtype >= 0 && !bias) || (K > 0 && (!A || !CB))) return kNullPointer;
    const Int8KernelTable* k = table();
    std::vector<int8_t> CA((size_t)(M * K));
    std::vector<float> SCA((size_t)M);
    std::vector<int64_t> cols(threshold > 0.0f ? (size_t)K : 0);
    int64_t n = 0;
    const int st = quant_rows_impl(k, a_dtype, A, M, K, threshold, CA.data(), SCA.data(),
                                   threshold > 0.0f ? cols.data() : nullptr, &n, nthreads);
    if (st != kOk) return st;
    return mixed_impl(k, a_dtype, A, CA.data(), CB, M, N, K, SCA.data(), SCB, cols.data(), n, bias_dtype, bias, out,
                      nthreads);
  } catch (...) {
    return kInternalError;
  }
}

}  // namespace bnb_cpu
