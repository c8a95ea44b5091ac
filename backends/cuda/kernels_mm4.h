// Fused 4-bit matmul on CUDA (gemv_4bit / gemm_4bit), torch-free. The entry points validate their arguments
// before touching the device, launch on `stream` on `device` and return a Status (status.h); they never
// synchronize and never allocate device memory. Kernels and plan: mm4_impl.cuh.
#pragma once

#include <stdint.h>

namespace bnb_cuda {

// out[M, N] (dtype) = A[M, K] (dtype, contiguous) @ W.T (+ bias[N], dtype, may be null), W [N, K] decoded from
// the standard packed 4-bit layout B (b_nbytes >= (N*K + 1) / 2 bytes) with the 16-entry fp32 `code` (null:
// the NF4 / FP4 table of quant_type, 0 nf4, 1 fp4) and one fp32 absmax per block of `blocksize` (a power of
// two in [32, 4096]) consecutive elements of the flat weight. Nested absmax: when absmax_8bit is not null
// the block scales are absmax_code[absmax_8bit[i]] * absmax[i / 256] + *absmax_offset (fp32, device memory).
// ws: fp32 workspace of ws_floats (may be null / 0): when it holds s * M * N floats with s > 1, narrow
// outputs may split K into up to s parts (gemm_4bit_splits says how many the plan wants).
// dtype: 0 float32, 1 float16, 2 bfloat16.
int gemm_4bit(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, const void* B,
              int64_t b_nbytes, int64_t N, const float* absmax, int64_t blocksize, const float* code, int quant_type,
              const uint8_t* absmax_8bit, const float* absmax_code, const float* absmax_offset, const void* bias,
              void* out, float* ws, int64_t ws_floats);

// The number of K splits gemm_4bit's plan takes for this shape on `device` (>= 1) into *splits; a Status.
int gemm_4bit_splits(int device, int dtype, int64_t M, int64_t N, int64_t K, int* splits);

}  // namespace bnb_cuda
