// Blockwise 8-bit and 4-bit (NF4/FP4) quantization kernels for the CPU.
//
// This file is compiled several times (see CMakeLists.txt) with BNB_ISA_NS set to the namespace of
// the ISA and the matching -m flags: AVX-512 (F/BW/VL/DQ), AVX2 (+FMA/F16C), NEON on AArch64
// (BNB_ISA_NEON; AArch64 always has ASIMD and fp16 conversions) and a portable scalar build. The arithmetic is exactly the one-value math of backends/common/bnb_quant_math.h (every
// vector path is bit-identical to it); compile with -ffp-contract=off.
#include <math.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <new>

#include "bnb_quant_math.h"
#include "kernels.h"

#if !defined(BNB_ISA_NS)
#error "BNB_ISA_NS must be defined"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define BNB_VEC 1
#define BNB_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && defined(__F16C__)
#define BNB_VEC 1
#define BNB_AVX2 1
#include <immintrin.h>
#elif defined(BNB_ISA_NEON)
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "BNB_ISA_NEON needs an AArch64 target"
#endif
#define BNB_VEC 1
#define BNB_NEON 1
#include <arm_neon.h>
#else
#define BNB_VEC 0
#endif

// 8-bit quantize: binary search steps look boundaries up with in-register permutes (AVX-512) instead
// of gathers (faster on CPUs with slow gathers).
#if !defined(BNB_Q8_LUT)
#if BNB_VEC && defined(BNB_AVX512)
#define BNB_Q8_LUT 1
#else
#define BNB_Q8_LUT 0
#endif
#endif

namespace bnb_cpu {
namespace BNB_ISA_NS {
namespace {

#include "simd_io.h"  // per-ISA: inside this namespace on purpose

// ============================================================ vector primitives
#if BNB_AVX512
constexpr int W = 16;
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vnan;

template <int DT>
inline vf vload(const void* p, int64_t i) { return simd_io::load<DT>(p, i); }
template <int DT, bool NT = false>
inline void vstore(void* p, int64_t i, vf v) { simd_io::store<DT, NT>(p, i, v); }
// orders the streaming stores of this task before the pool reports it done
inline void stream_fence() { _mm_sfence(); }
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float f) { return _mm512_set1_ps(f); }
inline vf vabs(vf v) { return _mm512_abs_ps(v); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
inline vnan nan_init() { return 0; }
inline vnan nan_acc(vnan a, vf v) { return (vnan)(a | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)); }
inline bool nan_any(vnan a) { return a != 0; }
inline vf vzero_nan(vf y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, y, _CMP_ORD_Q), y); }
inline vi izero() { return _mm512_setzero_si512(); }
inline vi add_i(vi a, int k) { return _mm512_add_epi32(a, _mm512_set1_epi32(k)); }
// c += (y > b)
inline vi count_gt(vi c, vf y, vf b) {
  return _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(y, b, _CMP_GT_OQ), c, _mm512_set1_epi32(1));
}
// idx += (y > t) ? step : 0
inline vi add_step_gt(vi idx, vf y, vf t, int step) {
  return _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(y, t, _CMP_GT_OQ), idx, _mm512_set1_epi32(step));
}
inline vf gather(const float* base, vi idx) { return _mm512_i32gather_ps(idx, base, 4); }
inline vi fp4_sign(vf y) {
  return _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_set1_epi32(8));
}
inline vi ior(vi a, vi b) { return _mm512_or_si512(a, b); }
// rank (0..7) -> FP4 bit pattern
inline vi fp4_rank_to_code(vi rank) {
  const vi tbl = _mm512_setr_epi32(
      bnb_formats::FP4_RANK_TO_CODE[0], bnb_formats::FP4_RANK_TO_CODE[1], bnb_formats::FP4_RANK_TO_CODE[2],
      bnb_formats::FP4_RANK_TO_CODE[3], bnb_formats::FP4_RANK_TO_CODE[4], bnb_formats::FP4_RANK_TO_CODE[5],
      bnb_formats::FP4_RANK_TO_CODE[6], bnb_formats::FP4_RANK_TO_CODE[7], 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_epi32(rank, tbl);
}
inline void store_codes8(uint8_t* out, vi c) { _mm_storeu_si128((__m128i*)out, _mm512_cvtepi32_epi8(c)); }
// W codes (elements 2k in the high nibble) -> W/2 bytes
inline void store_packed4(uint8_t* out, vi c) {
  vi r = _mm512_or_si512(_mm512_slli_epi64(c, 4), _mm512_srli_epi64(c, 32));
  _mm_storel_epi64((__m128i*)out, _mm512_cvtepi64_epi8(r));
}
inline vi load_codes8(const uint8_t* q) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q)); }
// W/2 packed bytes -> W codes
inline vi load_packed4(const uint8_t* q) {
  __m128i b = _mm_loadl_epi64((const __m128i*)q);
  __m128i m = _mm_set1_epi8(0x0F);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  __m128i lo = _mm_and_si128(b, m);
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
}
using simd_io::Lut256;  // 256-entry fp32 lookup without gathers
struct Lut16 {
  vf t;
  explicit Lut16(const float* c) : t(_mm512_loadu_ps(c)) {}
  inline vf operator()(vi idx) const { return _mm512_permutexvar_ps(idx, t); }
};

#elif BNB_AVX2
constexpr int W = 8;
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vnan;

template <int DT>
inline vf vload(const void* p, int64_t i) { return simd_io::load<DT>(p, i); }
template <int DT, bool NT = false>
inline void vstore(void* p, int64_t i, vf v) { simd_io::store<DT, NT>(p, i, v); }
// orders the streaming stores of this task before the pool reports it done
inline void stream_fence() { _mm_sfence(); }
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float f) { return _mm256_set1_ps(f); }
inline vf vabs(vf v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline float vhmax(vf v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
inline vnan nan_init() { return _mm256_setzero_ps(); }
inline vnan nan_acc(vnan a, vf v) { return _mm256_or_ps(a, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)); }
inline bool nan_any(vnan a) { return _mm256_movemask_ps(a) != 0; }
inline vf vzero_nan(vf y) { return _mm256_and_ps(y, _mm256_cmp_ps(y, y, _CMP_ORD_Q)); }
inline vi izero() { return _mm256_setzero_si256(); }
inline vi add_i(vi a, int k) { return _mm256_add_epi32(a, _mm256_set1_epi32(k)); }
inline vi count_gt(vi c, vf y, vf b) { return _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(y, b, _CMP_GT_OQ))); }
inline vi add_step_gt(vi idx, vf y, vf t, int step) {
  vi m = _mm256_castps_si256(_mm256_cmp_ps(y, t, _CMP_GT_OQ));
  return _mm256_add_epi32(idx, _mm256_and_si256(m, _mm256_set1_epi32(step)));
}
inline vf gather(const float* base, vi idx) { return _mm256_i32gather_ps(base, idx, 4); }
inline vi fp4_sign(vf y) {
  return _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_LT_OQ)), _mm256_set1_epi32(8));
}
inline vi ior(vi a, vi b) { return _mm256_or_si256(a, b); }
inline vi fp4_rank_to_code(vi rank) {
  const vi tbl = _mm256_setr_epi32(bnb_formats::FP4_RANK_TO_CODE[0], bnb_formats::FP4_RANK_TO_CODE[1],
                                   bnb_formats::FP4_RANK_TO_CODE[2], bnb_formats::FP4_RANK_TO_CODE[3],
                                   bnb_formats::FP4_RANK_TO_CODE[4], bnb_formats::FP4_RANK_TO_CODE[5],
                                   bnb_formats::FP4_RANK_TO_CODE[6], bnb_formats::FP4_RANK_TO_CODE[7]);
  return _mm256_permutevar8x32_epi32(tbl, rank);
}
inline void store_codes8(uint8_t* out, vi c) {
  __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
  _mm_storel_epi64((__m128i*)out, _mm_packus_epi16(p, p));
}
inline void store_packed4(uint8_t* out, vi c) {
  vi r = _mm256_or_si256(_mm256_slli_epi64(c, 4), _mm256_srli_epi64(c, 32));
  // bytes 0 and 8 of each 128-bit lane
  vi s = _mm256_shuffle_epi8(r, _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 8, -1,
                                                 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  uint32_t lo = (uint32_t)_mm_cvtsi128_si32(_mm256_castsi256_si128(s)) & 0xFFFFu;
  uint32_t hi = (uint32_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1)) & 0xFFFFu;
  uint32_t v = lo | (hi << 16);
  memcpy(out, &v, 4);
}
inline vi load_codes8(const uint8_t* q) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)q)); }
inline vi load_packed4(const uint8_t* q) {
  int32_t v;
  memcpy(&v, q, 4);
  __m128i b = _mm_cvtsi32_si128(v);
  __m128i m = _mm_set1_epi8(0x0F);
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  __m128i lo = _mm_and_si128(b, m);
  return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
}
using simd_io::Lut256;  // 256-entry fp32 lookup (scalar loads: AVX2 gathers are slow)
struct Lut16 {
  vf lo, hi;
  explicit Lut16(const float* c) : lo(_mm256_loadu_ps(c)), hi(_mm256_loadu_ps(c + 8)) {}
  inline vf operator()(vi idx) const {
    vf a = _mm256_permutevar8x32_ps(lo, idx);
    vf b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
};

#elif BNB_NEON
// 16 lanes per step: floats as four float32x4_t, codes / indices as one uint8x16_t (every code and
// every binary-search index is < 256). Lane j of vf matches byte j of vi.
constexpr int W = 16;
struct vf {
  float32x4_t v[4];
};
typedef uint8x16_t vi;
typedef uint32x4_t vnan;

template <int DT>
inline vf vload(const void* p, int64_t i) {
  vf r;
  if (DT == 0) {
    const float* f = (const float*)p + i;
    for (int k = 0; k < 4; ++k) r.v[k] = vld1q_f32(f + 4 * k);
    return r;
  }
  const uint16_t* h = (const uint16_t*)p + i;
  for (int k = 0; k < 2; ++k) {
    const uint16x8_t u = vld1q_u16(h + 8 * k);
    if (DT == 1) {
      const float16x8_t f = vreinterpretq_f16_u16(u);
      r.v[2 * k] = vcvt_f32_f16(vget_low_f16(f));
      r.v[2 * k + 1] = vcvt_high_f32_f16(f);
    } else {  // bf16: the upper half of an fp32
      r.v[2 * k] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(u), 16));
      r.v[2 * k + 1] = vreinterpretq_f32_u32(vshll_high_n_u16(u, 16));
    }
  }
  return r;
}
// fp32 -> bf16, round to nearest even, NaN -> 0x7FC0 (bnb::f32_to_bf16 on 4 lanes)
inline uint16x4_t bf16_rne(float32x4_t v) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t r = vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7FFF)), vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1)));
  const uint16x4_t h = vshrn_n_u32(r, 16);
  const uint16x4_t ord = vmovn_u32(vceqq_f32(v, v));  // all-ones where not NaN
  return vbsl_u16(ord, h, vdup_n_u16(0x7FC0));
}
// NT (streaming stores) is an x86 hint; NEON stores normally
template <int DT, bool NT = false>
inline void vstore(void* p, int64_t i, vf v) {
  if (DT == 0) {
    float* f = (float*)p + i;
    for (int k = 0; k < 4; ++k) vst1q_f32(f + 4 * k, v.v[k]);
    return;
  }
  uint16_t* h = (uint16_t*)p + i;
  for (int k = 0; k < 2; ++k) {
    uint16x8_t u;
    if (DT == 1) {
      // FCVT rounds to nearest even (FPCR.RMode default), overflows to Inf, keeps subnormals
      // (FPCR.FZ/FZ16 are off) and quiets NaNs keeping sign and top payload bits, as VCVTPS2PH does.
      u = vreinterpretq_u16_f16(vcvt_high_f16_f32(vcvt_f16_f32(v.v[2 * k]), v.v[2 * k + 1]));
    } else {
      u = vcombine_u16(bf16_rne(v.v[2 * k]), bf16_rne(v.v[2 * k + 1]));
    }
    vst1q_u16(h + 8 * k, u);
  }
}
inline vf vzero() {
  vf r;
  for (int k = 0; k < 4; ++k) r.v[k] = vdupq_n_f32(0.0f);
  return r;
}
inline vf vset1(float f) {
  vf r;
  for (int k = 0; k < 4; ++k) r.v[k] = vdupq_n_f32(f);
  return r;
}
inline vf vabs(vf a) {
  for (int k = 0; k < 4; ++k) a.v[k] = vabsq_f32(a.v[k]);
  return a;
}
// NaN lanes are tracked separately (nan_acc), so FMAX's NaN propagation does not matter.
inline vf vmax(vf a, vf b) {
  for (int k = 0; k < 4; ++k) a.v[k] = vmaxq_f32(a.v[k], b.v[k]);
  return a;
}
inline vf vmul(vf a, vf b) {
  for (int k = 0; k < 4; ++k) a.v[k] = vmulq_f32(a.v[k], b.v[k]);
  return a;
}
inline float vhmax(vf a) { return vmaxvq_f32(vmaxq_f32(vmaxq_f32(a.v[0], a.v[1]), vmaxq_f32(a.v[2], a.v[3]))); }
inline vnan nan_init() { return vdupq_n_u32(0); }
inline vnan nan_acc(vnan a, vf v) {
  for (int k = 0; k < 4; ++k) a = vorrq_u32(a, vmvnq_u32(vceqq_f32(v.v[k], v.v[k])));
  return a;
}
inline bool nan_any(vnan a) { return vmaxvq_u32(a) != 0; }
inline vf vzero_nan(vf y) {
  for (int k = 0; k < 4; ++k)
    y.v[k] = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(y.v[k]), vceqq_f32(y.v[k], y.v[k])));
  return y;
}
// four 32-bit lane masks (all-ones / zero) -> 16 byte masks, lane order kept
inline uint8x16_t narrow_mask(uint32x4_t m0, uint32x4_t m1, uint32x4_t m2, uint32x4_t m3) {
  const uint16x8_t a = vuzp1q_u16(vreinterpretq_u16_u32(m0), vreinterpretq_u16_u32(m1));
  const uint16x8_t b = vuzp1q_u16(vreinterpretq_u16_u32(m2), vreinterpretq_u16_u32(m3));
  return vuzp1q_u8(vreinterpretq_u8_u16(a), vreinterpretq_u8_u16(b));
}
inline uint8x16_t gt_mask(vf y, vf b) {
  return narrow_mask(vcgtq_f32(y.v[0], b.v[0]), vcgtq_f32(y.v[1], b.v[1]), vcgtq_f32(y.v[2], b.v[2]),
                     vcgtq_f32(y.v[3], b.v[3]));
}
inline vi izero() { return vdupq_n_u8(0); }
inline vi add_i(vi a, int k) { return vaddq_u8(a, vdupq_n_u8((uint8_t)k)); }
inline vi count_gt(vi c, vf y, vf b) { return vsubq_u8(c, gt_mask(y, b)); }
inline vi add_step_gt(vi idx, vf y, vf t, int step) {
  return vaddq_u8(idx, vandq_u8(gt_mask(y, t), vdupq_n_u8((uint8_t)step)));
}
// NEON has no gather: 16 scalar loads.
inline vf gather(const float* base, vi idx) {
  alignas(16) uint8_t ix[16];
  vst1q_u8(ix, idx);
  vf r;
  for (int k = 0; k < 4; ++k) {
    float32x4_t t = vdupq_n_f32(base[ix[4 * k]]);
    t = vld1q_lane_f32(base + ix[4 * k + 1], t, 1);
    t = vld1q_lane_f32(base + ix[4 * k + 2], t, 2);
    t = vld1q_lane_f32(base + ix[4 * k + 3], t, 3);
    r.v[k] = t;
  }
  return r;
}
inline vi fp4_sign(vf y) {
  const float32x4_t z = vdupq_n_f32(0.0f);
  return vandq_u8(narrow_mask(vcltq_f32(y.v[0], z), vcltq_f32(y.v[1], z), vcltq_f32(y.v[2], z), vcltq_f32(y.v[3], z)),
                  vdupq_n_u8(8));
}
inline vi ior(vi a, vi b) { return vorrq_u8(a, b); }
inline vi fp4_rank_to_code(vi rank) {
  uint8_t t[16] = {0};
  for (int k = 0; k < 8; ++k) t[k] = bnb_formats::FP4_RANK_TO_CODE[k];
  return vqtbl1q_u8(vld1q_u8(t), rank);
}
inline void store_codes8(uint8_t* out, vi c) { vst1q_u8(out, c); }
// 16 codes (elements 2k in the high nibble) -> 8 bytes
inline void store_packed4(uint8_t* out, vi c) {
  const uint8x8_t even = vget_low_u8(vuzp1q_u8(c, c)), odd = vget_low_u8(vuzp2q_u8(c, c));
  vst1_u8(out, vsli_n_u8(odd, even, 4));
}
inline vi load_codes8(const uint8_t* q) { return vld1q_u8(q); }
// 8 packed bytes -> 16 codes
inline vi load_packed4(const uint8_t* q) {
  const uint8x8_t b = vld1_u8(q);
  const uint8x8_t hi = vshr_n_u8(b, 4), lo = vand_u8(b, vdup_n_u8(0x0F));
  return vcombine_u8(vzip1_u8(hi, lo), vzip2_u8(hi, lo));
}
// byte planes p[0..3] (byte k of each looked-up float, little endian) -> 16 floats
inline vf join_planes(uint8x16_t b0, uint8x16_t b1, uint8x16_t b2, uint8x16_t b3) {
  const uint16x8_t l01 = vreinterpretq_u16_u8(vzip1q_u8(b0, b1)), h01 = vreinterpretq_u16_u8(vzip2q_u8(b0, b1));
  const uint16x8_t l23 = vreinterpretq_u16_u8(vzip1q_u8(b2, b3)), h23 = vreinterpretq_u16_u8(vzip2q_u8(b2, b3));
  vf r;
  r.v[0] = vreinterpretq_f32_u16(vzip1q_u16(l01, l23));
  r.v[1] = vreinterpretq_f32_u16(vzip2q_u16(l01, l23));
  r.v[2] = vreinterpretq_f32_u16(vzip1q_u16(h01, h23));
  r.v[3] = vreinterpretq_f32_u16(vzip2q_u16(h01, h23));
  return r;
}
// 256-entry fp32 table: scalar loads (a 1 KiB table does not fit the 64-byte TBL reach).
struct Lut256 {
  const float* c;
  explicit Lut256(const float* c_) : c(c_) {}
  inline vf operator()(vi idx) const { return gather(c, idx); }
};
// 16-entry fp32 table as four 16-byte planes: four TBL lookups give 16 floats.
struct Lut16 {
  uint8x16_t p[4];
  explicit Lut16(const float* c) {
    alignas(16) uint8_t b[4][16];
    for (int j = 0; j < 16; ++j) {
      uint32_t u;
      memcpy(&u, c + j, 4);
      for (int k = 0; k < 4; ++k) b[k][j] = (uint8_t)(u >> (8 * k));
    }
    for (int k = 0; k < 4; ++k) p[k] = vld1q_u8(b[k]);
  }
  inline vf operator()(vi idx) const {
    return join_planes(vqtbl1q_u8(p[0], idx), vqtbl1q_u8(p[1], idx), vqtbl1q_u8(p[2], idx), vqtbl1q_u8(p[3], idx));
  }
};
inline void stream_fence() {}
#endif
#if !BNB_VEC
inline void stream_fence() {}
#endif


// ---------------------------------------------------------------- x86: exact 8-bit code via a bucket table
// (quant8 with an ascending boundary table). The code of y is f(y) = #{i : y > B[i]} (ties go to the lower
// code). Buckets are ranges of the float bits of y (sign, exponent and the top 7 mantissa bits, i.e. the
// bf16 value; y clamped to [-2, 2], the end buckets extend to -inf / +inf). For a bucket with smallest value
// lo and largest hi, base = #{B < lo} and f(y) = base + sum_{t < k} (y > B[base + t]) for every y in it, where
// k = #{B < hi} - base is the number of boundaries inside it; extra comparisons past those are false
// (B[base + t] >= hi >= y), so every bucket can use the same number of comparisons, maxk. For bitsandbytes'
// dynamic maps maxk = 1; a table with maxk > 2 is not used (binary search instead). With maxk <= 1 one
// gather does: each entry packs base and the low 16 bits of the candidate's key (see Q8Buckets::packed).
#if BNB_AVX512 || BNB_AVX2
constexpr uint32_t kQ8KeyLo = 0x3FFFu;  // key(-2.0f) >> 16
constexpr uint32_t kQ8KeyHi = 0xC000u;  // key(+2.0f) >> 16
constexpr int kQ8Buckets = (int)(kQ8KeyHi - kQ8KeyLo + 1);
constexpr int kQ8MaxK = 2;
constexpr int kQ8Slots = 8;  // distinct boundary tables cached per process (they are never freed)

struct Q8Buckets {
  float bnd[256];  // the padded boundaries this table was built for
  int maxk;        // comparisons per value (0..kQ8MaxK); > kQ8MaxK: unusable
  bool packed_ok;  // maxk <= 1 and no boundary in the two end buckets: `packed` is valid
  uint8_t base[kQ8Buckets + 4];  // + 4: read as 32-bit gathers
  // base << 16 | the low 16 bits of key(B[base] + 0) when that key lies in the bucket, else 0xFFFF: with
  // y normalized by + 0 (-0 -> +0), y > B[base] <=> low16(key(y)) > low16 (same bucket, no NaN).
  uint32_t packed[kQ8Buckets];
};

inline uint32_t q8_key(uint32_t u) { return u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u); }
inline float q8_from_key(uint32_t k) {
  return bnb::f32_from_bits((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}

void q8_build(Q8Buckets* t, const float* padded) {
  memcpy(t->bnd, padded, sizeof(t->bnd));
  int maxk = 0, p = 0, q = 0;  // p = #{B < lo}, q = #{B < hi}; both only grow with the bucket
  bool ok = true;
  for (int j = 0; j < kQ8Buckets; ++j) {
    const uint32_t k0 = (kQ8KeyLo + (uint32_t)j) << 16;
    const float lo = (j == 0) ? -INFINITY : q8_from_key(k0);
    const float hi = (j == kQ8Buckets - 1) ? INFINITY : q8_from_key(k0 | 0xFFFFu);
    while (p < 255 && padded[p] < lo) ++p;
    if (q < p) q = p;
    while (q < 255 && padded[q] < hi) ++q;
    t->base[j] = (uint8_t)p;
    if (q - p > maxk) maxk = q - p;
    uint32_t low = 0xFFFFu;
    if (q > p) {
      const uint32_t kb = q8_key(bnb::f32_bits(padded[p] + 0.0f));
      if ((kb >> 16) == (kQ8KeyLo + (uint32_t)j)) low = kb & 0xFFFFu;
      if (j == 0 || j == kQ8Buckets - 1) ok = false;  // clamped buckets: low bits of y's key say nothing
    }
    t->packed[j] = ((uint32_t)p << 16) | low;
  }
  memset(t->base + kQ8Buckets, 0, 4);
  t->maxk = maxk;
  t->packed_ok = ok && maxk <= 1;
}

std::atomic<Q8Buckets*> g_q8_slots[kQ8Slots];
std::mutex g_q8_mu;

// The cached table for these (ascending) boundaries, built on first use; nullptr when every slot holds
// another table or the allocation fails (the caller then uses the binary search).
const Q8Buckets* q8_buckets(const float* padded) {
  for (int i = 0; i < kQ8Slots; ++i) {
    const Q8Buckets* t = g_q8_slots[i].load(std::memory_order_acquire);
    if (t == nullptr) break;
    if (memcmp(t->bnd, padded, sizeof(t->bnd)) == 0) return t;
  }
  std::lock_guard<std::mutex> g(g_q8_mu);
  for (int i = 0; i < kQ8Slots; ++i) {
    Q8Buckets* t = g_q8_slots[i].load(std::memory_order_acquire);
    if (t != nullptr) {
      if (memcmp(t->bnd, padded, sizeof(t->bnd)) == 0) return t;
      continue;
    }
    t = new (std::nothrow) Q8Buckets;
    if (t == nullptr) return nullptr;
    q8_build(t, padded);
    g_q8_slots[i].store(t, std::memory_order_release);
    return t;
  }
  return nullptr;
}
#endif

#if BNB_AVX512
// bucket index of y (no NaN)
inline vi q8_bucket(vf y) {
  vi u = _mm512_castps_si512(y);
  vi k = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32((int)0x80000000u)));
  k = _mm512_srli_epi32(k, 16);
  k = _mm512_min_epu32(_mm512_max_epu32(k, _mm512_set1_epi32((int)kQ8KeyLo)), _mm512_set1_epi32((int)kQ8KeyHi));
  return _mm512_sub_epi32(k, _mm512_set1_epi32((int)kQ8KeyLo));
}
inline vi gather_u8(const uint8_t* base, vi idx) {
  return _mm512_and_si512(_mm512_i32gather_epi32(idx, (const void*)base, 1), _mm512_set1_epi32(0xFF));
}
inline vi min_i(vi a, int k) { return _mm512_min_epi32(a, _mm512_set1_epi32(k)); }
// c += (y > b)
inline vi add_gt(vi c, vf y, vf b) { return count_gt(c, y, b); }
// code of y (no NaN) from the packed table: one gather
inline vi q8_packed_code(const uint32_t* packed, vf y) {
  y = _mm512_add_ps(y, _mm512_setzero_ps());  // -0 -> +0
  vi u = _mm512_castps_si512(y);
  vi k = _mm512_xor_si512(u, _mm512_or_si512(_mm512_srai_epi32(u, 31), _mm512_set1_epi32((int)0x80000000u)));
  vi j = _mm512_srli_epi32(k, 16);
  j = _mm512_min_epu32(_mm512_max_epu32(j, _mm512_set1_epi32((int)kQ8KeyLo)), _mm512_set1_epi32((int)kQ8KeyHi));
  vi e = _mm512_i32gather_epi32(_mm512_sub_epi32(j, _mm512_set1_epi32((int)kQ8KeyLo)), (const void*)packed, 4);
  const vi m16 = _mm512_set1_epi32(0xFFFF);
  __mmask16 gt = _mm512_cmpgt_epi32_mask(_mm512_and_si512(k, m16), _mm512_and_si512(e, m16));
  vi c = _mm512_srli_epi32(e, 16);
  return _mm512_mask_add_epi32(c, gt, c, _mm512_set1_epi32(1));
}
#elif BNB_AVX2
inline vi q8_bucket(vf y) {
  vi u = _mm256_castps_si256(y);
  vi k = _mm256_xor_si256(u, _mm256_or_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32((int)0x80000000u)));
  k = _mm256_srli_epi32(k, 16);
  k = _mm256_min_epu32(_mm256_max_epu32(k, _mm256_set1_epi32((int)kQ8KeyLo)), _mm256_set1_epi32((int)kQ8KeyHi));
  return _mm256_sub_epi32(k, _mm256_set1_epi32((int)kQ8KeyLo));
}
inline vi gather_u8(const uint8_t* base, vi idx) {
  return _mm256_and_si256(_mm256_i32gather_epi32((const int*)base, idx, 1), _mm256_set1_epi32(0xFF));
}
inline vi min_i(vi a, int k) { return _mm256_min_epi32(a, _mm256_set1_epi32(k)); }
inline vi add_gt(vi c, vf y, vf b) { return count_gt(c, y, b); }
inline vi q8_packed_code(const uint32_t* packed, vf y) {
  y = _mm256_add_ps(y, _mm256_setzero_ps());  // -0 -> +0
  vi u = _mm256_castps_si256(y);
  vi k = _mm256_xor_si256(u, _mm256_or_si256(_mm256_srai_epi32(u, 31), _mm256_set1_epi32((int)0x80000000u)));
  vi j = _mm256_srli_epi32(k, 16);
  j = _mm256_min_epu32(_mm256_max_epu32(j, _mm256_set1_epi32((int)kQ8KeyLo)), _mm256_set1_epi32((int)kQ8KeyHi));
  vi e = _mm256_i32gather_epi32((const int*)packed, _mm256_sub_epi32(j, _mm256_set1_epi32((int)kQ8KeyLo)), 4);
  const vi m16 = _mm256_set1_epi32(0xFFFF);
  vi gt = _mm256_cmpgt_epi32(_mm256_and_si256(k, m16), _mm256_and_si256(e, m16));
  return _mm256_sub_epi32(_mm256_srli_epi32(e, 16), gt);
}
#endif

// AVX-512: exact search over <= 16 ascending boundaries padded with +Inf to 16 (NF4: 15, FP4 magnitudes: 7 + 8
// Inf) held in registers: idx += (y > T[idx + step - 1]) ? step : 0 for step = 8, 4, 2, 1, i.e. the number of
// boundaries strictly below y (same result as counting them).
#if BNB_AVX512
struct Search16 {
  vf t;
  explicit Search16(const float* b16) : t(_mm512_loadu_ps(b16)) {}
  template <int NSTEPS>
  inline vi operator()(vf y) const {
    vi idx = izero();
    for (int step = 1 << (NSTEPS - 1); step >= 1; step >>= 1)
      idx = add_step_gt(idx, y, _mm512_permutexvar_ps(add_i(idx, step - 1), t), step);
    return idx;
  }
};

// #{k : y > B[k]} for y in [lo, lo + NB / 16] (values outside count as the nearest end) with NB = 16 or 32
// buckets of width 1/16: bucket j = [lo + j/16, lo + (j+1)/16) holds at most one boundary, so the count is
// base[j] + (y > bnd[j]) (bnd = +Inf for a bucket without one): one multiply-add, a truncation, two table
// permutes and a compare, against the binary search's four dependent permute + compare steps. Exact when every
// boundary is at least 2^-16 away from every bucket edge (then rounding in y * 16 - lo * 16 cannot move y across
// an edge next to a boundary); `ok` says whether the tables allow it (else callers use Search16).
template <int NB>
struct Bucket16 {
  vf blo, bhi;  // bnd[0..15], bnd[16..31]
  vi clo, chi;  // base[0..15], base[16..31]
  float off;
  bool ok;
  Bucket16(const float* B, int nb_bounds, float lo) : off(-lo * 16.0f), ok(true) {
    alignas(64) float bnd[32];
    alignas(64) int32_t base[32];
    for (int j = 0; j < 32; ++j) {
      const float e0 = lo + (float)j / 16.0f, e1 = lo + (float)(j + 1) / 16.0f;
      bnd[j] = INFINITY;
      base[j] = 0;
      int inside = 0;
      for (int k = 0; k < nb_bounds; ++k) {
        if (B[k] < e0) base[j]++;
        if (B[k] >= e0 && B[k] < e1) {
          bnd[j] = B[k];
          ++inside;
        }
        if (fabsf(B[k] - e0) < 0x1p-16f || fabsf(B[k] - e1) < 0x1p-16f) ok = false;
      }
      if (inside > 1) ok = false;
      if (j >= NB) bnd[j] = INFINITY, base[j] = base[NB - 1];
    }
    blo = _mm512_load_ps(bnd), bhi = _mm512_load_ps(bnd + 16);
    clo = _mm512_load_si512((const void*)base), chi = _mm512_load_si512((const void*)(base + 16));
  }
  inline vi operator()(vf y) const {
    // y * 16 + off >= 0 for y >= lo - 1/16 (truncation toward zero gives bucket 0 down to there); clamp above
    vi j = _mm512_cvttps_epi32(_mm512_fmadd_ps(y, _mm512_set1_ps(16.0f), _mm512_set1_ps(off)));
    j = _mm512_min_epi32(_mm512_max_epi32(j, _mm512_setzero_si512()), _mm512_set1_epi32(NB - 1));
    const vf b = NB == 16 ? _mm512_permutexvar_ps(j, blo) : _mm512_permutex2var_ps(blo, j, bhi);
    const vi c = NB == 16 ? _mm512_permutexvar_epi32(j, clo) : _mm512_permutex2var_epi32(clo, j, chi);
    return _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(y, b, _CMP_GT_OQ), c, _mm512_set1_epi32(1));
  }
};
#endif

// ============================================================ block kernels
template <int DT>
inline float load1(const void* x, int64_t i) {
  return bnb::load_as_f32(x, i, DT);
}
template <int DT>
inline void store1(void* p, int64_t i, float v) {
  bnb::store_from_f32(p, i, DT, v);
}

template <int DT>
float block_absmax(const void* x, int64_t s, int64_t e) {
  float m = 0.0f;
  bool nan = false;
  int64_t i = s;
#if BNB_VEC
  if (e - s >= W) {
    vf vm = vzero();
    vnan na = nan_init();
    for (; i + W <= e; i += W) {
      vf v = vload<DT>(x, i);
      na = nan_acc(na, v);
      vm = vmax(vm, vabs(v));
    }
    nan = nan_any(na);
    m = vhmax(vm);
  }
#endif
  for (; i < e; ++i) {
    float v = fabsf(load1<DT>(x, i));
    if (v != v)
      nan = true;
    else if (v > m)
      m = v;
  }
  return nan ? bnb::canonical_nan() : m;
}

// ---------------------------------------------------------------- 8-bit
template <int DT>
void quant8_t(const void* x, int64_t n, const float* padded, bool sorted, int64_t bs, uint8_t* out, float* absmax,
              int64_t b0, int64_t b1) {
#if BNB_Q8_LUT
  const Lut256 blut(padded);
#endif
#if BNB_AVX512 || BNB_AVX2
  // x86: bucket table (see Q8Buckets) when the chunk is large enough to amortize the lookup of the table
  const Q8Buckets* bk = (sorted && (b1 - b0) * bs >= 4096) ? q8_buckets(padded) : nullptr;
  if (bk != nullptr && bk->maxk > kQ8MaxK) bk = nullptr;
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t s = b * bs, e = (s + bs < n) ? s + bs : n;
    const float am = block_absmax<DT>(x, s, e);
    absmax[b] = am;
    const bnb::BlockScale sc = bnb::block_scale(am);
    int64_t i = s;
#if BNB_AVX512 || BNB_AVX2
    if (bk != nullptr) {
      const vf vs = vset1(sc.s), vinv = vset1(sc.inv);
      if (bk->packed_ok) {
        for (; i + W <= e; i += W)
          store_codes8(out + i, q8_packed_code(bk->packed, vzero_nan(vmul(vmul(vload<DT>(x, i), vs), vinv))));
      } else if (bk->maxk <= 1) {
        for (; i + W <= e; i += W) {
          vf y = vzero_nan(vmul(vmul(vload<DT>(x, i), vs), vinv));
          vi c = gather_u8(bk->base, q8_bucket(y));
          c = add_gt(c, y, gather(padded, c));  // c <= 255: padded[255] = +Inf
          store_codes8(out + i, c);
        }
      } else {
        for (; i + W <= e; i += W) {
          vf y = vzero_nan(vmul(vmul(vload<DT>(x, i), vs), vinv));
          vi c0 = gather_u8(bk->base, q8_bucket(y));
          vi c = add_gt(c0, y, gather(padded, c0));
          c = add_gt(c, y, gather(padded, min_i(add_i(c0, 1), 255)));
          store_codes8(out + i, c);
        }
      }
    }
#endif
    if (sorted) {
#if BNB_VEC
      const vf vs = vset1(sc.s), vinv = vset1(sc.inv);
      for (; i + W <= e; i += W) {
        vf y = vzero_nan(vmul(vmul(vload<DT>(x, i), vs), vinv));
        vi idx = izero();
#if BNB_Q8_LUT
        idx = add_step_gt(idx, y, vset1(padded[127]), 128);
        for (int step = 64; step >= 1; step >>= 1) idx = add_step_gt(idx, y, blut(add_i(idx, step - 1)), step);
#else
        for (int step = 128; step >= 1; step >>= 1) idx = add_step_gt(idx, y, gather(padded + (step - 1), idx), step);
#endif
        store_codes8(out + i, idx);
      }
#endif
      for (; i < e; ++i) out[i] = (uint8_t)bnb::code_8bit_search(bnb::scale_value(load1<DT>(x, i), sc), padded);
    } else {
      for (; i < e; ++i) out[i] = (uint8_t)bnb::code_8bit_count(bnb::scale_value(load1<DT>(x, i), sc), padded);
    }
  }
}

// NT: streaming stores (the caller checked the alignment: out 64-byte aligned, blocks whole multiples of 64 bytes)
template <int DT, bool NT>
void dequant8_t(const uint8_t* q, int64_t n, const float* code, const float* absmax, int64_t bs, void* out,
                int64_t b0, int64_t b1) {
#if BNB_VEC
  const Lut256 lut(code);
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t s = b * bs, e = (s + bs < n) ? s + bs : n;
    const float am = absmax[b];
    int64_t i = s;
#if BNB_VEC
    const vf va = vset1(am);
    for (; i + W <= e; i += W) vstore<DT, NT>(out, i, vmul(lut(load_codes8(q + i)), va));
#endif
    for (; i < e; ++i) store1<DT>(out, i, code[q[i]] * am);
  }
  if (NT) stream_fence();
}

// ---------------------------------------------------------------- 4-bit
inline void put_nibble(uint8_t* out, int64_t j, int c, int zero) {
  if ((j & 1) == 0)
    out[j >> 1] = (uint8_t)((c << 4) | zero);
  else
    out[j >> 1] = (uint8_t)((out[j >> 1] & 0xF0) | c);
}

template <int DT, int QT>
void quant4_t(const void* x, int64_t n, int64_t bs, uint8_t* out, float* absmax, int64_t b0, int64_t b1) {
  const int zero = bnb::zero_code_4bit(QT);
#if BNB_AVX512
  // boundaries padded with +Inf to 16 entries: NF4 4 search steps, FP4 magnitudes 3 (AVX2 keeps counting:
  // its 16-entry lookup needs two permutes and a blend per step, measured slower than 15 independent compares)
  float b16[16];
  for (int k = 0; k < 16; ++k) b16[k] = INFINITY;
  if (QT == 0) {
    for (int k = 0; k < 15; ++k) b16[k] = bnb_formats::NF4_BOUNDARIES[k];
  } else {
    for (int k = 0; k < 7; ++k) b16[k] = bnb_formats::FP4_MAGNITUDE_BOUNDARIES[k];
  }
  const Search16 search(b16);
  // NF4: 32 buckets over [-1, 1); FP4 magnitudes: 16 over [0, 1)
  const Bucket16<QT == 0 ? 32 : 16> bucket(QT == 0 ? bnb_formats::NF4_BOUNDARIES : bnb_formats::FP4_MAGNITUDE_BOUNDARIES,
                                          QT == 0 ? 15 : 7, QT == 0 ? -1.0f : 0.0f);
#elif BNB_VEC
  vf bnd[15];
  if (QT == 0) {
    for (int k = 0; k < 15; ++k) bnd[k] = vset1(bnb_formats::NF4_BOUNDARIES[k]);
  } else {
    for (int k = 0; k < 7; ++k) bnd[k] = vset1(bnb_formats::FP4_MAGNITUDE_BOUNDARIES[k]);
  }
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t s = b * bs, e = (s + bs < n) ? s + bs : n;
    const float am = block_absmax<DT>(x, s, e);
    absmax[b] = am;
    const bnb::BlockScale sc = bnb::block_scale(am);
    int64_t i = s;
#if BNB_VEC
    if ((s & 1) == 0) {
      const vf vs = vset1(sc.s), vinv = vset1(sc.inv);
      for (; i + W <= e; i += W) {
        vf y = vzero_nan(vmul(vmul(vload<DT>(x, i), vs), vinv));
#if BNB_AVX512
        vi c;
        if (QT == 0) {
          c = bucket.ok ? bucket(y) : search.template operator()<4>(y);
        } else {
          c = bucket.ok ? bucket(vabs(y)) : search.template operator()<3>(vabs(y));
          c = ior(fp4_rank_to_code(c), fp4_sign(y));
        }
#else
        vi c = izero();
        if (QT == 0) {
          for (int k = 0; k < 15; ++k) c = count_gt(c, y, bnd[k]);
        } else {
          vf m = vabs(y);
          for (int k = 0; k < 7; ++k) c = count_gt(c, m, bnd[k]);
          c = ior(fp4_rank_to_code(c), fp4_sign(y));
        }
#endif
        store_packed4(out + (i >> 1), c);
      }
    }
#endif
    for (; i < e; ++i) put_nibble(out, i, bnb::code_4bit(bnb::scale_value(load1<DT>(x, i), sc), QT), zero);
  }
}

template <int DT, int QT, bool NT>
void dequant4_t(const uint8_t* q, int64_t n, const float* absmax, int64_t bs, void* out, int64_t b0, int64_t b1) {
  const float* cb = bnb::codebook_4bit(QT);
#if BNB_VEC
  const Lut16 lut(cb);
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t s = b * bs, e = (s + bs < n) ? s + bs : n;
    const float am = absmax[b];
    int64_t i = s;
#if BNB_VEC
    if ((s & 1) == 0) {
      const vf va = vset1(am);
      for (; i + W <= e; i += W) vstore<DT, NT>(out, i, vmul(lut(load_packed4(q + (i >> 1))), va));
    }
#endif
    for (; i < e; ++i) {
      const uint8_t byte = q[i >> 1];
      const int c = (i & 1) ? (byte & 0x0F) : (byte >> 4);
      store1<DT>(out, i, cb[c] * am);
    }
  }
  if (NT) stream_fence();
}

// ============================================================ dtype dispatch
void quant8(int dtype, const void* x, int64_t n, const float* padded, bool sorted, int64_t bs, uint8_t* out,
            float* absmax, int64_t b0, int64_t b1) {
  switch (dtype) {
    case 0: return quant8_t<0>(x, n, padded, sorted, bs, out, absmax, b0, b1);
    case 1: return quant8_t<1>(x, n, padded, sorted, bs, out, absmax, b0, b1);
    default: return quant8_t<2>(x, n, padded, sorted, bs, out, absmax, b0, b1);
  }
}
template <bool NT>
void dequant8_nt(int dtype, const uint8_t* q, int64_t n, const float* code, const float* absmax, int64_t bs, void* out,
                 int64_t b0, int64_t b1) {
  switch (dtype) {
    case 0: return dequant8_t<0, NT>(q, n, code, absmax, bs, out, b0, b1);
    case 1: return dequant8_t<1, NT>(q, n, code, absmax, bs, out, b0, b1);
    default: return dequant8_t<2, NT>(q, n, code, absmax, bs, out, b0, b1);
  }
}
void dequant8(int dtype, const uint8_t* q, int64_t n, const float* code, const float* absmax, int64_t bs, void* out,
              bool stream, int64_t b0, int64_t b1) {
  if (stream)
    dequant8_nt<true>(dtype, q, n, code, absmax, bs, out, b0, b1);
  else
    dequant8_nt<false>(dtype, q, n, code, absmax, bs, out, b0, b1);
}
void quant4(int dtype, const void* x, int64_t n, int64_t bs, int qt, uint8_t* out, float* absmax, int64_t b0,
            int64_t b1) {
  if (qt == 0) {
    switch (dtype) {
      case 0: return quant4_t<0, 0>(x, n, bs, out, absmax, b0, b1);
      case 1: return quant4_t<1, 0>(x, n, bs, out, absmax, b0, b1);
      default: return quant4_t<2, 0>(x, n, bs, out, absmax, b0, b1);
    }
  }
  switch (dtype) {
    case 0: return quant4_t<0, 1>(x, n, bs, out, absmax, b0, b1);
    case 1: return quant4_t<1, 1>(x, n, bs, out, absmax, b0, b1);
    default: return quant4_t<2, 1>(x, n, bs, out, absmax, b0, b1);
  }
}
template <bool NT>
void dequant4_nt(int dtype, const uint8_t* q, int64_t n, const float* absmax, int64_t bs, int qt, void* out, int64_t b0,
                 int64_t b1) {
  if (qt == 0) {
    switch (dtype) {
      case 0: return dequant4_t<0, 0, NT>(q, n, absmax, bs, out, b0, b1);
      case 1: return dequant4_t<1, 0, NT>(q, n, absmax, bs, out, b0, b1);
      default: return dequant4_t<2, 0, NT>(q, n, absmax, bs, out, b0, b1);
    }
  }
  switch (dtype) {
    case 0: return dequant4_t<0, 1, NT>(q, n, absmax, bs, out, b0, b1);
    case 1: return dequant4_t<1, 1, NT>(q, n, absmax, bs, out, b0, b1);
    default: return dequant4_t<2, 1, NT>(q, n, absmax, bs, out, b0, b1);
  }
}
void dequant4(int dtype, const uint8_t* q, int64_t n, const float* absmax, int64_t bs, int qt, void* out, bool stream,
              int64_t b0, int64_t b1) {
  if (stream)
    dequant4_nt<true>(dtype, q, n, absmax, bs, qt, out, b0, b1);
  else
    dequant4_nt<false>(dtype, q, n, absmax, bs, qt, out, b0, b1);
}

}  // namespace

#define BNB_STR2(x) #x
#define BNB_STR(x) BNB_STR2(x)
extern const KernelTable table = {BNB_STR(BNB_ISA_NS), quant8, dequant8, quant4, dequant4};

}  // namespace BNB_ISA_NS
}  // namespace bnb_cpu
