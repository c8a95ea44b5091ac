// Fused 4-bit matrix-vector product out = A @ W.T (MPS backend), W [N, K] given as packed 4-bit codes (any
// 16-entry fp32 codebook), absmax per block of the flattened W (blocks may cross rows). Semantics:
// bnb_core/reference.py (gemv_4bit); outputs are held to the conformance bound (bnb_core/conformance.py
// _matmul_bound): weights code[q] * absmax in fp32, products and the sum in fp32, one rounding to A's dtype.
#include "bnb_quant_math.h"
#include "bnb_mps.h"

// One SIMD-group per output column r of W (a stride loop over 64-bit row indices), for every row of A: the
// lanes walk the packed bytes of W's row r (consecutive bytes: coalesced loads), decode both nibbles (a row of
// odd K starts or ends in the middle of a byte), accumulate in fp32, and simd_sum combines the lanes.
template <typename TR>
inline void gemv_4bit_body(device const typename TR::T* A, device const uchar* B, device const float* absmax,
                           device const float* code, device typename TR::T* out, long M, long N, long K, long log2_bs,
                           BnbGrid g) {
  const long per_group = (long)(g.group_size / g.simd_width);
  const long stride = (long)g.ngroups * per_group;
  for (long r = (long)g.group * per_group + (long)g.simd_id; r < N; r += stride) {
    const long e0 = r * K;                                  // flat index of W[r, 0]
    const long j0 = e0 >> 1;                                // first byte of the row
    const long j1 = K > 0 ? ((e0 + K - 1) >> 1) + 1 : j0;   // one past its last byte
    for (long m = 0; m < M; ++m) {
      device const typename TR::T* a = A + m * K;
      float acc = 0.0f;
      for (long j = j0 + (long)g.simd_lane; j < j1; j += (long)g.simd_width) {
        const uint b = B[j];
        const long k = (j << 1) - e0;  // column of the high nibble (-1 when the row starts in a low nibble)
        const float am = absmax[(j << 1) >> log2_bs];
        if (k >= 0) acc += TR::load(a[k]) * (code[b >> 4] * am);
        if (k + 1 < K) acc += TR::load(a[k + 1]) * (code[b & 15u] * am);
      }
      acc = simd_sum(acc);
      if (g.simd_lane == 0) out[m * N + r] = TR::store(acc);
    }
  }
}

#define BNB_GEMV_4BIT_KERNEL(NAME, TR)                                                                       \
  kernel void NAME(device const TR::T* A [[buffer(0)]], device const uchar* B [[buffer(1)]],                   \
                   device const float* absmax [[buffer(2)]], device const float* code [[buffer(3)]],           \
                   device TR::T* out [[buffer(4)]], constant long& M [[buffer(5)]], constant long& N [[buffer(6)]], \
                   constant long& K [[buffer(7)]], constant long& log2_bs [[buffer(8)]], BNB_GRID_ARGS) {       \
    gemv_4bit_body<TR>(A, B, absmax, code, out, M, N, K, log2_bs, BNB_GRID);                                   \
  }

BNB_GEMV_4BIT_KERNEL(bnb_gemv_4bit_f32, BnbF32)
BNB_GEMV_4BIT_KERNEL(bnb_gemv_4bit_f16, BnbF16)
BNB_GEMV_4BIT_KERNEL(bnb_gemv_4bit_bf16, BnbBF16)
