// Blockwise 8-bit and 4-bit (NF4 / FP4) quantization kernels (SYCL functors; see common.h).
//
// Semantics: bnb_core/reference.py and docs/formats.md, bit-exact: absmax per block (NaN when the block
// holds a NaN), y = (x * s) * (1 / (absmax * s)) (bnb::block_scale / scale_value), nearest code with ties
// to the lower code, two 4-bit codes per byte (element 2i in the high nibble, odd tail padded with the
// zero code), dequantization code[q] * absmax in fp32 and one rounding to the output dtype.
//
// Quantize: one work-group per block (grid-stride over blocks); the group reduces the block's absmax,
// then every work-item codes its elements. Dequantize: one work-item per element (8-bit) or per packed
// byte (4-bit), grid-stride.
#pragma once

#include "common.h"

namespace bnb_xpu {

struct QuantFamily {
  static constexpr const char* kHeader = "kernels_quant.h";
  template <class V>
  static void for_each(V& v);
};

// quantize_blockwise: any ascending 256-entry code (exact binary search over the fp32 midpoints held in
// local memory; a code whose midpoints are not ascending counts every boundary, as the CPU backend does).
template <int DT>
struct Quant8 {
  using Family = QuantFamily;
  static constexpr const char* kName = "bnb_xpu::Quant8";
  static constexpr int kLocalFloats = 256;
  const void* x;
  int64_t n;
  const float* code;
  int64_t blocksize;
  uint8_t* out;
  float* absmax;

  void operator()(sycl::nd_item<1> it, float* padded) const {
    const auto g = it.get_group();
    const int64_t lid = it.get_local_id(0), L = it.get_local_range(0);
    const bool sorted = group_boundaries(g, lid, L, code, padded);
    const int64_t nb = (n + blocksize - 1) / blocksize;
    for (int64_t b = it.get_group(0); b < nb; b += it.get_group_range(0)) {
      const int64_t s = b * blocksize, e = min64(s + blocksize, n);
      float m = 0.0f;
      bool nan = false;
      for (int64_t i = s + lid; i < e; i += L) absmax_acc(bnb::load_as_f32(x, i, DT), m, nan);
      const float am = group_absmax(g, m, nan);
      if (lid == 0) absmax[b] = am;
      const bnb::BlockScale sc = bnb::block_scale(am);
      for (int64_t i = s + lid; i < e; i += L)
        out[i] = (uint8_t)code_8bit(bnb::scale_value(bnb::load_as_f32(x, i, DT), sc), padded, sorted);
    }
  }
};

// dequantize_blockwise: out[i] = code[q[i]] * absmax[i >> bshift]
template <int DT>
struct Dequant8 {
  using Family = QuantFamily;
  static constexpr const char* kName = "bnb_xpu::Dequant8";
  static constexpr int kLocalFloats = 0;
  const uint8_t* q;
  int64_t n;
  const float* code;
  const float* absmax;
  int bshift;
  void* out;

  void operator()(sycl::nd_item<1> it) const {
    const int64_t stride = (int64_t)it.get_global_range(0);
    for (int64_t i = (int64_t)it.get_global_id(0); i < n; i += stride)
      bnb::store_from_f32(out, i, DT, code[q[i]] * absmax[i >> bshift]);
  }
};

// quantize_4bit: each work-item codes pairs of elements into one byte (blocks hold an even number of
// elements, so a pair never crosses a block). The bytes past the packed codes up to out_nbytes (rounded-up
// quant_storage) get the zero code in both nibbles.
template <int DT, int QT>
struct Quant4 {
  using Family = QuantFamily;
  static constexpr const char* kName = "bnb_xpu::Quant4";
  static constexpr int kLocalFloats = 0;
  const void* x;
  int64_t n;
  int64_t blocksize;
  uint8_t* out;
  int64_t out_nbytes;
  float* absmax;

  void operator()(sycl::nd_item<1> it) const {
    const auto g = it.get_group();
    const int64_t lid = it.get_local_id(0), L = it.get_local_range(0);
    const int64_t nb = (n + blocksize - 1) / blocksize;
    const int zero = bnb::zero_code_4bit(QT);
    for (int64_t b = it.get_group(0); b < nb; b += it.get_group_range(0)) {
      const int64_t s = b * blocksize, e = min64(s + blocksize, n);
      float m = 0.0f;
      bool nan = false;
      for (int64_t i = s + lid; i < e; i += L) absmax_acc(bnb::load_as_f32(x, i, DT), m, nan);
      const float am = group_absmax(g, m, nan);
      if (lid == 0) absmax[b] = am;
      const bnb::BlockScale sc = bnb::block_scale(am);
      for (int64_t j = s + 2 * lid; j < e; j += 2 * L) {
        const int hi = bnb::code_4bit(bnb::scale_value(bnb::load_as_f32(x, j, DT), sc), QT);
        const int lo = j + 1 < e ? bnb::code_4bit(bnb::scale_value(bnb::load_as_f32(x, j + 1, DT), sc), QT) : zero;
        out[j >> 1] = (uint8_t)((hi << 4) | lo);
      }
    }
    if (it.get_global_id(0) == 0)
      for (int64_t k = (n + 1) / 2; k < out_nbytes; ++k) out[k] = (uint8_t)((zero << 4) | zero);
  }
};

// dequantize_4bit: one work-item per packed byte (elements 2j and 2j + 1)
template <int DT, int QT>
struct Dequant4 {
  using Family = QuantFamily;
  static constexpr const char* kName = "bnb_xpu::Dequant4";
  static constexpr int kLocalFloats = 0;
  const uint8_t* q;
  int64_t n;
  const float* absmax;
  int bshift;
  void* out;

  void operator()(sycl::nd_item<1> it) const {
    const float* code = bnb::codebook_4bit(QT);
    const int64_t nbytes = (n + 1) / 2, stride = (int64_t)it.get_global_range(0);
    for (int64_t j = (int64_t)it.get_global_id(0); j < nbytes; j += stride) {
      const int b = q[j];
      const int64_t e = 2 * j;
      bnb::store_from_f32(out, e, DT, code[b >> 4] * absmax[e >> bshift]);
      if (e + 1 < n) bnb::store_from_f32(out, e + 1, DT, code[b & 15] * absmax[(e + 1) >> bshift]);
    }
  }
};

template <class V>
void QuantFamily::for_each(V& v) {
  v.template add<Quant8<0>>();
  v.template add<Quant8<1>>();
  v.template add<Quant8<2>>();
  v.template add<Dequant8<0>>();
  v.template add<Dequant8<1>>();
  v.template add<Dequant8<2>>();
  v.template add<Quant4<0, 0>>();
  v.template add<Quant4<0, 1>>();
  v.template add<Quant4<1, 0>>();
  v.template add<Quant4<1, 1>>();
  v.template add<Quant4<2, 0>>();
  v.template add<Quant4<2, 1>>();
  v.template add<Dequant4<0, 0>>();
  v.template add<Dequant4<0, 1>>();
  v.template add<Dequant4<1, 0>>();
  v.template add<Dequant4<1, 1>>();
  v.template add<Dequant4<2, 0>>();
  v.template add<Dequant4<2, 1>>();
}

}  // namespace bnb_xpu
