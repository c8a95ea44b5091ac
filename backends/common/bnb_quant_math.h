// One-value quantize / dequantize math shared by every native backend (torch-free).
//
// These inline functions define the exact fp32 arithmetic of bnb-core's blockwise quantization
// (see FORMATS.md and bnb_core/reference.py); vectorized kernels must give bit-identical results.
// Compile the code that uses them WITHOUT floating-point contraction (-ffp-contract=off / fmad=false).
#pragma once

#include <stdint.h>
#include <string.h>

#include "bnb_formats.h"

#if defined(__CUDACC__) || defined(__HIPCC__)
#define BNB_HOST_DEVICE __host__ __device__
#else
#define BNB_HOST_DEVICE
#endif

// Internal linkage on purpose: the CPU backend compiles this header into several translation units
// with different ISA flags (-mavx512f, -mavx2, baseline); a shared (comdat) inline definition could
// let the linker pick an AVX-512 body for the scalar path.
#define BNB_QFN BNB_HOST_DEVICE static inline

#define BNB_FLT_MIN 1.17549435e-38f  // smallest normal fp32
#define BNB_TINY_SCALE 18446744073709551616.0f  // 2^64: rescales blocks whose absmax is denormal (or 0)

namespace bnb {

BNB_QFN uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
BNB_QFN float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
BNB_QFN bool is_nan(float f) { return f != f; }

// Quiet NaN that a block's absmax is set to when the block holds a NaN.
BNB_QFN float canonical_nan() { return f32_from_bits(0x7FC00000u); }

// ---------------------------------------------------------------- block scale
// s = 2^64 for blocks whose absmax is below the smallest normal (keeps denormal blocks accurate),
// inv = 1 / (absmax * s). For absmax 0, NaN or Inf the scaled value is NaN or 0 and scale_value()
// maps NaN to 0.
struct BlockScale {
  float s;
  float inv;
};

BNB_QFN BlockScale block_scale(float absmax) {
  BlockScale r;
  r.s = (absmax < BNB_FLT_MIN) ? BNB_TINY_SCALE : 1.0f;
  r.inv = 1.0f / (absmax * r.s);
  return r;
}

// y = (x * s) * inv in fp32; NaN -> 0.
BNB_QFN float scale_value(float x, BlockScale sc) {
  float t = x * sc.s;
  float y = t * sc.inv;
  return is_nan(y) ? 0.0f : y;
}

// ---------------------------------------------------------------- code selection
// Index = number of boundaries strictly below y (a value on a boundary goes to the lower code).
BNB_QFN int nf4_code(float y) {
  int c = 0;
  for (int i = 0; i < 15; ++i) c += (y > bnb_formats::NF4_BOUNDARIES[i]) ? 1 : 0;
  return c;
}

BNB_QFN int fp4_code(float y) {
  int sign = (y < 0.0f) ? 8 : 0;
  float m = y < 0.0f ? -y : y;
  int rank = 0;
  for (int i = 0; i < 7; ++i) rank += (m > bnb_formats::FP4_MAGNITUDE_BOUNDARIES[i]) ? 1 : 0;
  return sign | (int)bnb_formats::FP4_RANK_TO_CODE[rank];
}

// quant_type: 0 = nf4, 1 = fp4
BNB_QFN int code_4bit(float y, int quant_type) {
  return quant_type == 0 ? nf4_code(y) : fp4_code(y);
}

BNB_QFN int zero_code_4bit(int quant_type) {
  return quant_type == 0 ? BNB_NF4_ZERO_CODE : BNB_FP4_ZERO_CODE;
}

BNB_QFN const float* codebook_4bit(int quant_type) {
  return quant_type == 0 ? bnb_formats::NF4_CODE : bnb_formats::FP4_CODE;
}

// 8-bit: boundaries are fp32 midpoints of an ascending 256-entry code.
BNB_QFN float midpoint(float a, float b) {
  float s = a + b;
  return s * 0.5f;
}

// Counting form: exact for any boundary table (also unsorted or NaN-holding ones).
BNB_QFN int code_8bit_count(float y, const float* boundaries255) {
  int c = 0;
  for (int i = 0; i < 255; ++i) c += (y > boundaries255[i]) ? 1 : 0;
  return c;
}

// Branchless binary search; `padded256` holds the 255 ascending boundaries followed by +Inf.
// Equal to code_8bit_count when the boundaries are ascending.
BNB_QFN int code_8bit_search(float y, const float* padded256) {
  int idx = 0;
  for (int step = 128; step >= 1; step >>= 1) idx += (y > padded256[idx + step - 1]) ? step : 0;
  return idx;
}

// ---------------------------------------------------------------- dtype conversion
BNB_QFN float bf16_to_f32(uint16_t h) { return f32_from_bits(((uint32_t)h) << 16); }

// Round to nearest even; NaN -> 0x7FC0 (as torch does).
BNB_QFN uint16_t f32_to_bf16(float f) {
  if (is_nan(f)) return 0x7FC0;
  uint32_t u = f32_bits(f);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

BNB_QFN float f16_to_f32(uint16_t h) {
  uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  uint32_t u;
  if (exp == 0x1F) {
    u = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else {
    // subnormal: man * 2^-24, exact in fp32
    float v = (float)man * 5.9604644775390625e-08f;
    u = sign | f32_bits(v);
  }
  return f32_from_bits(u);
}

// IEEE round-to-nearest-even with overflow to Inf and subnormals (the FP16 library algorithm that
// c10::Half uses). NaN keeps its sign and top payload bits, quieted, as x86 VCVTPS2PH does.
BNB_QFN uint16_t f32_to_f16(float f) {
  const float scale_to_inf = 5.192296858534828e+33f;   // 2^112
  const float scale_to_zero = 7.703719777548943e-34f;  // 2^-110
  uint32_t w = f32_bits(f);
  uint32_t shl1_w = w + w;
  uint32_t sign = w & 0x80000000u;
  if (shl1_w > 0xFF000000u) return (uint16_t)((sign >> 16) | 0x7E00u | ((w >> 13) & 0x3FFu));
  float base = ((f < 0.0f ? -f : f) * scale_to_inf) * scale_to_zero;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
  uint32_t bits = f32_bits(base);
  uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  uint32_t mantissa_bits = bits & 0x00000FFFu;
  uint32_t nonsign = exp_bits + mantissa_bits;
  return (uint16_t)((sign >> 16) | nonsign);
}

// dtype codes: 0 = float32, 1 = float16, 2 = bfloat16
BNB_QFN float load_as_f32(const void* p, int64_t i, int dtype) {
  if (dtype == 0) return ((const float*)p)[i];
  if (dtype == 1) return f16_to_f32(((const uint16_t*)p)[i]);
  return bf16_to_f32(((const uint16_t*)p)[i]);
}

BNB_QFN void store_from_f32(void* p, int64_t i, int dtype, float v) {
  if (dtype == 0)
    ((float*)p)[i] = v;
  else if (dtype == 1)
    ((uint16_t*)p)[i] = f32_to_f16(v);
  else
    ((uint16_t*)p)[i] = f32_to_bf16(v);
}

}  // namespace bnb
