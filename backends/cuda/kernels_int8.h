// LLM.int8() on CUDA (torch-free). Every entry point validates its arguments BEFORE touching the device,
// launches on `stream` on `device` and returns a Status (status.h); none synchronizes and none allocates
// device memory (workspaces come from the caller). Exact semantics: bnb_core/reference.py, docs/formats.md.
// dtype codes: 0 = float32, 1 = float16, 2 = bfloat16; bias_dtype -1 = no bias. Row-major, contiguous.
#pragma once

#include <stdint.h>

namespace bnb_cuda {

// Bytes of the workspace the threshold > 0 paths of int8_vectorwise_quant / int8_double_quant need for K
// columns (per-column outlier flags padded to 16, then a 16-byte block for the CTA completion counter).
int64_t int8_outlier_workspace_bytes(int64_t K);

// Row-wise absmax int8 quantization of A[M, K]. threshold > 0: elements with |a| >= threshold are outliers
// (left out of the row absmax); every column holding one is zeroed in `out`, and its index is written to
// `outlier_cols` (int64, capacity K, ascending) with the count in `*n_outliers_dev` (an int64 in DEVICE
// memory: reading it is the caller's one synchronization). workspace: int8_outlier_workspace_bytes(K)
// bytes (cleared here with cudaMemsetAsync). threshold == 0: workspace/outlier_cols/n_outliers_dev unused.
int int8_vectorwise_quant(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, float threshold,
                          int8_t* out, float* stats, void* workspace, int64_t* outlier_cols, int64_t* n_outliers_dev);
// The row-wise result above plus the column-wise twin (out_col with per-column absmax col_stats; outlier
// ELEMENTS are zeroed there, not whole columns).
int int8_double_quant(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, float threshold,
                      int8_t* out_row, int8_t* out_col, float* row_stats, float* col_stats, void* workspace,
                      int64_t* outlier_cols, int64_t* n_outliers_dev);
// out[M, K] fp32 = (float(A) * stats[row]) * fp32(1/127)
int int8_vectorwise_dequant(int device, void* stream, const int8_t* A, int64_t M, int64_t K, const float* stats,
                            float* out);

// Number of K splits int8_linear_matmul / int8_scaled_mm use for this problem on this device (1 = none).
// With splits > 1 int8_scaled_mm needs an int32 [M, N] workspace (and int8_linear_matmul clears C first).
int int8_gemm_splits(int device, int64_t M, int64_t N, int64_t K);
// Name of the kernel configuration int8_linear_matmul picks (for benchmarks): "tc-s", "tc-m", "tc-l" (tensor
// cores, small/medium/large M tile) or "simt"; with "+splitK<n>" when split.
const char* int8_gemm_config_name(int device, int64_t M, int64_t N, int64_t K, const void* A, const void* B);

// C[M, N] int32 = A[M, K] @ B[N, K]^T, exact (wrapping int32).
int int8_linear_matmul(int device, void* stream, const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K,
                       int32_t* C);
// out[M, N] = out_dtype(float(acc) * (row_stats[m] * col_stats[n]) * fp32(1/127^2) (+ float(bias[n])))
int int8_mm_dequant(int device, void* stream, const int32_t* acc, int64_t M, int64_t N, const float* row_stats,
                    const float* col_stats, int bias_dtype, const void* bias, int out_dtype, void* out);
// int8_mm_dequant(int8_linear_matmul(A, B)) with the dequantization fused in the matmul epilogue.
// workspace: int32 [M, N], required only when int8_gemm_splits(...) > 1 (else may be null).
int int8_scaled_mm(int device, void* stream, const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K,
                   const float* row_stats, const float* col_stats, int bias_dtype, const void* bias, int out_dtype,
                   void* out, int32_t* workspace);
// The outlier operands of int8_mixed_scaled_mm: sub_a[m, j] = A[m, cols[j]] (a_dtype, exact copy) and
// sub_b[n, j] = a_dtype((float(CB[n, cols[j]]) * SCB[n]) * fp32(1/127)) (the reference's dequantized weight
// columns), j < n_cols. Negative indices count from the end; an index outside [-K, K) yields NaN entries
// (checking it would need a synchronization).
int int8_outlier_operands(int device, void* stream, int a_dtype, const void* A, const int8_t* CB, const float* SCB,
                          int64_t M, int64_t N, int64_t K, const int64_t* cols, int64_t n_cols, void* sub_a,
                          void* sub_b);

}  // namespace bnb_cuda
