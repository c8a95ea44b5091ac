// Per-ISA kernel table of the LLM.int8() family (kernels_int8.cpp is compiled once per ISA into
// namespace bnb_cpu::<isa>; ops_int8.cpp picks a table with active_isa()).
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// Inputs of one int8 matmul A[M, K] @ B[N, K]^T. Either C (int32 [M, N]) is written, or the fused
// dequantization epilogue out[m, n] = dtype(float(acc) * (row[m] * col[n]) * (1/127^2) (+ bias[n])).
struct Int8GemmArgs {
  const int8_t* A;
  const int8_t* B;
  int64_t M, N, K;
  int32_t* C;                 // int32 output, or null for the fused epilogue
  const float* row_stats;     // fused: [M]
  const float* col_stats;     // fused: [N]
  const float* bias;          // fused: fp32 [N] or null
  void* out;                  // fused: [M, N] of out_dtype
  int out_dtype;              // 0 fp32, 1 fp16, 2 bf16
  const int32_t* a_corr;      // per row of A: 128 * sum_k A[m, k] (ISAs with needs_a_corr), else null
  // fused LLM.int8() outliers (int8_mixed_scaled_mm): n_outl > 0 adds, in fp32 before the one output rounding,
  // sum_j outl_a[m * n_outl + j] * out_dtype((float(B[n, outl_cols[j]]) * col[n]) * (1/127))
  int64_t n_outl;
  const int64_t* outl_cols;   // [n_outl], each in [0, K)
  const float* outl_a;        // [M, n_outl] fp32 (exact copies of A's outlier columns)
  const float* outl_b;        // null (gemm forms the weights per block; needs n_outl <= kInt8MaxBlockOutliers)
                              // or the precomputed weights [n_outl, N] (layout j * N + n)
  const int8_t* Ay;           // gemm_amx only: A as prep_a_amx writes it
};
constexpr int64_t kInt8MaxBlockOutliers = 32;

struct Int8KernelTable {
  const char* name;
  // Row absmax of rows [r0, r1) of A[., K] (dtype 0/1/2), leaving out |a| >= threshold when threshold > 0
  // (those columns are flagged in colflag, which may be null when threshold == 0). NaN propagates.
  void (*row_absmax)(int dtype, const void* A, int64_t K, float threshold, float* stats, uint8_t* colflag,
                     int64_t r0, int64_t r1);
  // Quantize rows [r0, r1) with their stats; columns flagged in colflag (nullable) become 0.
  void (*quant_rows)(int dtype, const void* A, int64_t K, const float* stats, const uint8_t* colflag, int8_t* out,
                     int64_t r0, int64_t r1);
  // Column absmax of columns [c0, c1) over all M rows (outliers left out when threshold > 0).
  void (*col_absmax)(int dtype, const void* A, int64_t M, int64_t K, float threshold, float* stats, int64_t c0,
                     int64_t c1);
  // Column-wise quantization of rows [r0, r1) with per-column scales (fp32 (1/absmax) * 127); outliers -> 0.
  void (*quant_cols)(int dtype, const void* A, int64_t K, float threshold, const float* colscale, int8_t* out,
                     int64_t r0, int64_t r1);
  // out[r, k] = (float(A[r, k]) * stats[r]) * (1/127), rows [r0, r1).
  void (*dequant_rows)(const int8_t* A, int64_t K, const float* stats, float* out, int64_t r0, int64_t r1);
  // int8_mm_dequant of rows [r0, r1) of acc[., N]; bias fp32 or null.
  void (*mm_dequant_rows)(const int32_t* acc, int64_t N, const float* row, const float* col, const float* bias,
                          int out_dtype, void* out, int64_t r0, int64_t r1);
  // sum_k A[m, k] * 128 for rows [r0, r1) (only used when needs_a_corr).
  void (*row_sums128)(const int8_t* A, int64_t K, int32_t* out, int64_t r0, int64_t r1);
  // The matmul (int32 store or fused epilogue) of rows [m0, m1) x output columns [n0, n1).
  void (*gemm)(const Int8GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
  // outl_b[j * N + n] for n in [n0, n1) (the precomputed outlier weights of Int8GemmArgs)
  void (*outlier_weights)(const Int8GemmArgs& g, int64_t n0, int64_t n1, float* outl_b);
  bool needs_a_corr;
  // AMX tile path (amx tier only: the op glue uses it when active_isa() is kAmx and K % 64 == 0; null below the
  // avx512vnni tier). prep_a_amx writes A [M][K] as [ceil(M/16)][K/4][16][4] (rows >= M zero); gemm_amx reads it
  // from g.Ay (rows [m0, m1) with m0 % 16 == 0), computes exact sums and ignores a_corr.
  void (*prep_a_amx)(const int8_t* A, int64_t M, int64_t K, int8_t* Y);
  void (*gemm_amx)(const Int8GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
};

namespace scalar {
extern const Int8KernelTable int8_table;
}
#if defined(BNB_HAVE_AVX2_TU)
namespace avx2 {
extern const Int8KernelTable int8_table;
}
#endif
#if defined(BNB_HAVE_AVX512_TU)
namespace avx512 {
extern const Int8KernelTable int8_table;
}
#endif
#if defined(BNB_HAVE_AVX512VNNI_TU)
namespace avx512vnni {
extern const Int8KernelTable int8_table;
}
#endif

}  // namespace bnb_cpu
