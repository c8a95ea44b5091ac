// Torch-free entry points of the LLM.int8() family (validated, multithreaded, ISA-dispatched).
// All return a status (ops.h Status) and never throw or abort. dtype: 0 fp32, 1 fp16, 2 bf16;
// bias_dtype -1 = no bias. Matrices are row-major and contiguous.
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// Row-wise absmax int8 quantization of A[M, K]. threshold > 0: |a| >= threshold are outliers (left out of
// the row absmax; their columns zeroed in out). outlier_cols (capacity K, may be null when threshold == 0)
// receives the sorted outlier column indices, *n_outliers their count.
int int8_vectorwise_quant(int dtype, const void* A, int64_t M, int64_t K, float threshold, int8_t* out, float* stats,
                          int64_t* outlier_cols, int64_t* n_outliers, int nthreads);
// The row-wise result above plus the column-wise twin (out_col, col_stats; outlier elements -> 0).
int int8_double_quant(int dtype, const void* A, int64_t M, int64_t K, float threshold, int8_t* out_row,
                      int8_t* out_col, float* row_stats, float* col_stats, int64_t* outlier_cols,
                      int64_t* n_outliers, int nthreads);
// out[M, K] fp32 = (A * stats[row]) * (1/127)
int int8_vectorwise_dequant(const int8_t* A, int64_t M, int64_t K, const float* stats, float* out, int nthreads);
// C[M, N] int32 = A[M, K] @ B[N, K]^T, exact (wrapping int32).
int int8_linear_matmul(const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K, int32_t* C, int nthreads);
// out[M, N] = dtype(float(acc) * (row[m] * col[n]) * (1/127^2) (+ bias[n] in fp32))
int int8_mm_dequant(const int32_t* acc, int64_t M, int64_t N, const float* row_stats, const float* col_stats,
                    int bias_dtype, const void* bias, int out_dtype, void* out, int nthreads);
// int8_mm_dequant(int8_linear_matmul(A, B)) fused (no int32 [M, N] intermediate).
int int8_scaled_mm(const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K, const float* row_stats,
                   const float* col_stats, int bias_dtype, const void* bias, int out_dtype, void* out, int nthreads);

// LLM.int8() mixed matmul: int8_scaled_mm(CA, CB, ...) (out in A's dtype a_dtype) plus, in fp32 before the one
// output rounding, the outlier columns: sum_j A[m, c_j] * a_dtype((float(CB[n, c_j]) * col[n]) * (1/127)).
// outlier_cols: n_outliers indices in [-K, K) (negative from the end).
int int8_mixed_scaled_mm(int a_dtype, const void* A, const int8_t* CA, const int8_t* CB, int64_t M, int64_t N,
                         int64_t K, const float* row_stats, const float* col_stats, const int64_t* outlier_cols,
                         int64_t n_outliers, int bias_dtype, const void* bias, void* out, int nthreads);
// LLM.int8() inference forward in one call: int8_vectorwise_quant(A, threshold) (into internal buffers), then
// int8_mixed_scaled_mm with those outputs (out[M, N] in A's dtype a_dtype).
int int8_mixed_linear(int a_dtype, const void* A, int64_t M, int64_t K, const int8_t* CB, int64_t N,
                      const float* SCB, float threshold, int bias_dtype, const void* bias, void* out, int nthreads);

}  // namespace bnb_cpu
