// One-value quantize / dequantize math shared by every native backend (torch-free).
//
// These inline functions define the exact fp32 arithmetic of bnb-core's blockwise quantization
// (see FORMATS.md and bnb_core/reference.py); vectorized kernels must give bit-identical results.
// Compile the code that uses them WITHOUT floating-point contraction (-ffp-contract=off / fmad=false).
//
// Metal: with BNB_METAL defined this header is Metal Shading Language (C++14-based). The MPS backend
// (bnb_core/backends/mps.py) inlines it into the shader source it compiles at run time, after the tables
// generated from formats.py (formats.render_metal_tables()); tests/test_mps_kernels.py compiles the same
// assembled source with g++ through tests/mps_compat/bnb_metal_compat.h. Metal has no <string.h> (bit casts
// are as_type) and no pointers without an address space (the pointer helpers at the end are C++ only).
#pragma once

#if !defined(BNB_METAL)
#include <stdint.h>
#include <string.h>

#include "bnb_formats.h"
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define BNB_HOST_DEVICE __host__ __device__
#else
#define BNB_HOST_DEVICE
#endif

// Internal linkage on purpose: the CPU backend compiles this header into several translation units
// with different ISA flags (-mavx512f, -mavx2, baseline); a shared (comdat) inline definition could
// let the linker pick an AVX-512 body for the scalar path. (Metal: one translation unit, plain inline.)
#if defined(BNB_METAL)
#define BNB_QFN inline
#else
#define BNB_QFN BNB_HOST_DEVICE static inline
#endif

#define BNB_FLT_MIN 1.17549435e-38f  // smallest normal fp32
#define BNB_TINY_SCALE 18446744073709551616.0f  // 2^64: rescales blocks whose absmax is denormal (or 0)

namespace bnb {

#if defined(BNB_METAL)
BNB_QFN uint32_t f32_bits(float f) { return as_type<uint32_t>(f); }
BNB_QFN float f32_from_bits(uint32_t u) { return as_type<float>(u); }
// On the bits: stays right even if a shader is compiled with fast math (PYTORCH_MPS_FAST_MATH=1).
BNB_QFN bool is_nan(float f) { return (f32_bits(f) & 0x7FFFFFFFu) > 0x7F800000u; }
#else
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
#endif

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

// Value of 4-bit code q (0..15); the dequantized element is code_value_4bit(q, quant_type) * absmax in fp32.
BNB_QFN float code_value_4bit(int q, int quant_type) {
  return quant_type == 0 ? bnb_formats::NF4_CODE[q] : bnb_formats::FP4_CODE[q];
}

#if !defined(BNB_METAL)
BNB_QFN const float* codebook_4bit(int quant_type) {
  return quant_type == 0 ? bnb_formats::NF4_CODE : bnb_formats::FP4_CODE;
}
#endif

// 8-bit: boundaries are fp32 midpoints of an ascending 256-entry code.
BNB_QFN float midpoint(float a, float b) {
  float s = a + b;
  return s * 0.5f;
}

// The boundary tables may live in any memory (Metal: threadgroup or device), hence the pointer type P.
// Counting form: exact for any boundary table (also unsorted or NaN-holding ones).
template <typename P>
BNB_QFN int code_8bit_count(float y, P boundaries255) {
  int c = 0;
  for (int i = 0; i < 255; ++i) c += (y > boundaries255[i]) ? 1 : 0;
  return c;
}

// Branchless binary search; `padded256` holds the 255 ascending boundaries followed by +Inf.
// Equal to code_8bit_count when the boundaries are ascending.
template <typename P>
BNB_QFN int code_8bit_search(float y, P padded256) {
  int idx = 0;
  for (int step = 128; step >= 1; step >>= 1) idx += (y > padded256[idx + step - 1]) ? step : 0;
  return idx;
}

// ---------------------------------------------------------------- exact where fp32 subnormals flush to zero
// Hardware that flushes fp32 subnormals to zero (Apple GPUs do; x86 with FTZ/DAZ) would break the subnormal
// policies above: a block of subnormals would get absmax 0 instead of its value, and dequantizing with a
// subnormal absmax would give 0. These forms compute the same bits as the plain ones under IEEE gradual
// underflow, with integer operations where a subnormal is involved. The MPS kernels use them; the CPU test of
// those kernels (tests/test_mps_kernels.py) runs them with the CPU in FTZ+DAZ mode. One thing they do not
// change: a scaled value y = x / absmax in the subnormal range still compares as zero there, which changes a code
// only for a code table with a decision boundary at zero or among the subnormals (none of bitsandbytes' maps).
#if defined(BNB_METAL)
typedef ulong bnb_u64;
#else
typedef uint64_t bnb_u64;
#endif

// |x| as an integer that orders like |x| (NaN above +Inf): max reductions on these need no float compare.
BNB_QFN uint32_t abs_bits(float x) { return f32_bits(x) & 0x7FFFFFFFu; }

// The absmax whose abs_bits is m (a NaN becomes the canonical NaN).
BNB_QFN float absmax_from_bits(uint32_t m) { return m > 0x7F800000u ? canonical_nan() : f32_from_bits(m); }

BNB_QFN int bit_length64(bnb_u64 v) {
  int n = 0;
  while (n < 64 && (v >> n) != 0) ++n;
  return n;
}

// c * a rounded to nearest even with gradual underflow, from the integer significands: the IEEE product.
BNB_QFN float mul_exact(float c, float a) {
  const uint32_t cb = f32_bits(c), ab = f32_bits(a);
  const uint32_t sign = (cb ^ ab) & 0x80000000u;
  const uint32_t cm = cb & 0x7FFFFFFFu, am = ab & 0x7FFFFFFFu;
  if (cm > 0x7F800000u || am > 0x7F800000u) return canonical_nan();
  if (cm == 0x7F800000u || am == 0x7F800000u)
    return (cm == 0u || am == 0u) ? canonical_nan() : f32_from_bits(sign | 0x7F800000u);
  if (cm == 0u || am == 0u) return f32_from_bits(sign);
  const uint32_t ce = cm >> 23, ae = am >> 23;
  const bnb_u64 P = (bnb_u64)(ce ? ((cm & 0x7FFFFFu) | 0x800000u) : cm) *
                    (bnb_u64)(ae ? ((am & 0x7FFFFFu) | 0x800000u) : am);
  const int E = (ce ? (int)ce : 1) + (ae ? (int)ae : 1) - 300;  // |c * a| = P * 2^E exactly
  int lsb = E + bit_length64(P) - 24;                            // ulp of the (normal) result
  if (lsb < -149) lsb = -149;                                     // subnormal results: the 2^-149 grid
  const int sh = lsb - E;
  bnb_u64 q;
  if (sh <= 0) {
    q = P << (-sh);
  } else if (sh > 48) {
    q = 0;  // P < 2^48 <= half a unit: rounds to zero
  } else {
    q = P >> sh;
    const bnb_u64 rem = P & ((((bnb_u64)1) << sh) - 1), half = ((bnb_u64)1) << (sh - 1);
    if (rem > half || (rem == half && (q & 1) != 0)) ++q;
  }
  if (q >= 0x1000000u) {  // the rounding carried into a new binade
    q >>= 1;
    ++lsb;
  }
  if (q < 0x800000u) return f32_from_bits(sign | (uint32_t)q);  // subnormal or zero (lsb == -149)
  const int field = lsb + 150;
  if (field >= 255) return f32_from_bits(sign | 0x7F800000u);
  return f32_from_bits(sign | ((uint32_t)field << 23) | ((uint32_t)q & 0x7FFFFFu));
}

// c * a: the hardware product when operands and result are normal (or the result overflows), else mul_exact.
BNB_QFN float mul_gradual(float c, float a) {
  const float p = c * a;
  if (abs_bits(p) >= 0x00800000u && abs_bits(c) >= 0x00800000u && abs_bits(a) >= 0x00800000u) return p;
  return mul_exact(c, a);
}

// block_scale / scale_value with the subnormal rescaling done exactly.
BNB_QFN BlockScale block_scale_ftz(float absmax) {
  BlockScale r;
  r.s = abs_bits(absmax) < 0x00800000u ? BNB_TINY_SCALE : 1.0f;  // absmax >= 0 or NaN
  r.inv = 1.0f / mul_gradual(absmax, r.s);
  return r;
}

BNB_QFN float scale_value_ftz(float x, BlockScale sc) {
  const float y = mul_gradual(mul_gradual(x, sc.s), sc.inv);  // a subnormal x in a block of normal absmax too
  return is_nan(y) ? 0.0f : y;
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

#if !defined(BNB_METAL)
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
#endif  // !BNB_METAL

}  // namespace bnb
