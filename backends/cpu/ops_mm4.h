// Fused 4-bit matmul entry points of the CPU backend (validated, threaded over N, ISA-dispatched).
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// out[M, N] (dtype) = A[M, K] (dtype) @ W.T (+ bias[N], dtype, may be null), W [N, K] decoded from the standard
// packed 4-bit layout B (b_nbytes >= (N*K + 1) / 2 bytes) with the 16-entry fp32 `code` and one fp32 absmax
// per block of `blocksize` (a power of two >= 32) consecutive elements of the flat weight.
// Nested absmax: when absmax_8bit is not null, the block scales are
// absmax_code[absmax_8bit[i]] * absmax[i / 256] + *absmax_offset (fp32), computed in a pre-pass.
// Status codes as in ops.h.
int gemm_4bit(int dtype, const void* A, int64_t M, int64_t K, const void* B, int64_t b_nbytes, int64_t N,
              const float* absmax, int64_t blocksize, const float* code, const uint8_t* absmax_8bit,
              const float* absmax_code, const float* absmax_offset, const void* bias, void* out, int nthreads);

}  // namespace bnb_cpu
