// Fused 4-bit matmul kernel (gemv_4bit / gemm_4bit; SYCL functor, see common.h):
//   out[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]),   W[n, k] = code[nibble(n*K + k)] * absmax(block)
// with the weight decoded on the fly (never materialized) from the standard packed layout (element e of
// the flat [N*K] weight in byte e/2, even e in the high nibble; blocks of `blocksize` consecutive elements
// may cross rows). absmax(block) is the fp32 absmax, or with double quantization
// absmax_code[absmax_8bit[block]] * absmax2[block / 256] + offset in fp32, in that order (the reference's
// arithmetic). Products and sums in fp32 (no contraction), one rounding of the result to A's dtype.
//
// Work split: one work-group per (weight row n, tile of MT rows of A), grid-stride; the work-items stride
// over K, each decodes its weights once for the MT rows and the group reduces the MT sums.
#pragma once

#include "common.h"

namespace bnb_xpu {

struct Mm4Family {
  static constexpr const char* kHeader = "kernels_mm4.h";
  template <class V>
  static void for_each(V& v);
};

template <int DT, int MT>
struct Mm4 {
  using Family = Mm4Family;
  static constexpr const char* kName = "bnb_xpu::Mm4";
  static constexpr int kLocalFloats = 0;
  const void* A;  // [M, K] of DT
  int64_t M, K, N;
  const uint8_t* B;
  const float* absmax;  // per block, or the second-level absmax2 (per 256 blocks) when absmax_8bit is set
  int bshift;           // log2(blocksize)
  const float* code;    // 16 fp32 values
  const uint8_t* absmax_8bit;  // nested: first-level absmax codes (null when not nested)
  const float* absmax_code;    // nested: 256 fp32 values
  const float* absmax_offset;  // nested: 1 fp32 value
  const void* bias;            // [N] of DT, or null
  void* out;                   // [M, N] of DT

  float block_absmax(int64_t blk) const {
    if (absmax_8bit == nullptr) return absmax[blk];
    const float v = absmax_code[absmax_8bit[blk]] * absmax[blk >> 8];
    return v + absmax_offset[0];
  }

  void operator()(sycl::nd_item<1> it) const {
    const auto g = it.get_group();
    const int64_t lid = it.get_local_id(0), L = it.get_local_range(0);
    const int64_t mtiles = (M + MT - 1) / MT;
    const int64_t units = N * mtiles;
    for (int64_t u = it.get_group(0); u < units; u += it.get_group_range(0)) {
      const int64_t n = u / mtiles, m0 = (u % mtiles) * MT;
      const int64_t rows = min64(MT, M - m0);
      float acc[MT];
      for (int r = 0; r < MT; ++r) acc[r] = 0.0f;
      const int64_t base = n * K;
      for (int64_t k = lid; k < K; k += L) {
        const int64_t e = base + k;
        const int byte = B[e >> 1];
        const float w = code[(e & 1) ? (byte & 15) : (byte >> 4)] * block_absmax(e >> bshift);
        for (int r = 0; r < MT; ++r)
          if (r < rows) acc[r] = acc[r] + bnb::load_as_f32(A, (m0 + r) * K + k, DT) * w;
      }
      for (int r = 0; r < MT; ++r) {
        float s = sycl::reduce_over_group(g, acc[r], sycl::plus<float>());
        if (lid == 0 && r < rows) {
          if (bias != nullptr) s = s + bnb::load_as_f32(bias, n, DT);
          bnb::store_from_f32(out, (m0 + r) * N + n, DT, s);
        }
      }
    }
  }
};

template <class V>
void Mm4Family::for_each(V& v) {
  v.template add<Mm4<0, 1>>();
  v.template add<Mm4<1, 1>>();
  v.template add<Mm4<2, 1>>();
  v.template add<Mm4<0, 4>>();
  v.template add<Mm4<1, 4>>();
  v.template add<Mm4<2, 4>>();
}

}  // namespace bnb_xpu
