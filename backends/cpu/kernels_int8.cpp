// LLM.int8() kernels for the CPU: row/column absmax int8 quantization (with outlier columns),
// dequantization, exact int32 matmul A[M, K] @ B[N, K]^T and its fused dequantization epilogue.
//
// Compiled once per ISA (see CMakeLists.txt) into namespace bnb_cpu::<isa>:
//   avx512vnni: vpdpbusd on (B ^ 0x80) as u8 x A as s8, minus 128 * rowsum(A) (exact, wrap-around int32)
//   avx512:     vpmovsxbw + vpmaddwd on zmm
//   avx2:       vpmovsxbw + vpmaddwd on ymm
//   scalar:     plain int32 loops
// The fp32 arithmetic is exactly the reference's (bnb_core/reference.py), compiled with -ffp-contract=off:
//   scale = fp32(1 / absmax) * 127 (torch's `127 / t` is `t.reciprocal() * 127`), q = rne(x * scale),
//   non-finite q -> 0, clamp to [-127, 127]; dequant (A * stats) * fp32(1/127);
//   mm dequant float(acc) * (row * col) * fp32(1/127^2) (+ bias), one rounding to the output dtype.
#include <math.h>
#include <string.h>

#include <vector>

#include "bnb_quant_math.h"
#include "kernels_int8.h"

#if !defined(BNB_ISA_NS)
#error "BNB_ISA_NS must be defined"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define BNB_I8_AVX512 1
#include <immintrin.h>
#if defined(__AVX512VNNI__)
#define BNB_I8_VNNI 1
#endif
#elif defined(__AVX2__) && defined(__F16C__)
#define BNB_I8_AVX2 1
#include <immintrin.h>
#endif

namespace bnb_cpu {
namespace BNB_ISA_NS {
namespace {

#include "simd_io.h"  // per-ISA: inside this namespace on purpose

constexpr float kDequant = BNB_INT8_DEQUANT_SCALE;       // fp32(1/127) (formats.INT8_DEQUANT_SCALE)
constexpr float kMmDequant = BNB_INT8_MM_DEQUANT_SCALE;  // fp32(1/127^2) (formats.INT8_MM_DEQUANT_SCALE)

inline float row_scale(float absmax) { return (1.0f / absmax) * 127.0f; }

inline int8_t quant1(float x, float s) {
  float q = x * s;
  if (!(fabsf(q) < INFINITY)) return 0;
  q = nearbyintf(q);
  if (q > 127.0f) q = 127.0f;
  if (q < -127.0f) q = -127.0f;
  return (int8_t)q;
}

inline float ld1(int dt, const void* p, int64_t i) { return bnb::load_as_f32(p, i, dt); }

inline void flag_col(uint8_t* colflag, int64_t k) { __atomic_store_n(colflag + k, (uint8_t)1, __ATOMIC_RELAXED); }

// ============================================================ vector primitives
#if BNB_I8_AVX512
constexpr int VW = 16;
typedef __m512 vf;
template <int DT>
inline vf vld(const void* p, int64_t i) { return simd_io::load<DT>(p, i); }
template <int DT>
inline void vst(void* p, int64_t i, vf v) { simd_io::store<DT>(p, i, v); }
inline vf vabs(vf v) { return _mm512_abs_ps(v); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vset(float f) { return _mm512_set1_ps(f); }
inline vf vldf(const float* p) { return _mm512_loadu_ps(p); }
// NaN-propagating max
inline vf vmaxn(vf m, vf v) {
  vf r = _mm512_max_ps(m, v);
  return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(m, v, _CMP_UNORD_Q), _mm512_set1_ps(NAN));
}
inline bool any_nan(vf v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0; }
inline float hmax(vf v) { return _mm512_reduce_max_ps(v); }
// |v| >= t as a bit mask (0 when t <= 0)
inline unsigned ge_mask(vf a, float t) { return (unsigned)_mm512_cmp_ps_mask(a, _mm512_set1_ps(t), _CMP_GE_OQ); }
inline vf zero_where(vf v, unsigned m) { return _mm512_maskz_mov_ps((__mmask16)~m, v); }
// rne(q), non-finite -> 0, clamp, int8; lanes whose bit is set in zmask -> 0
inline void store_q(int8_t* out, vf q, unsigned zmask) {
  __mmask16 fin = _mm512_cmp_ps_mask(_mm512_abs_ps(q), _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
  q = _mm512_maskz_mov_ps(fin & (__mmask16)~zmask, q);
  __m512i i = _mm512_cvt_roundps_epi32(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  i = _mm512_min_epi32(_mm512_max_epi32(i, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
  _mm_storeu_si128((__m128i*)out, _mm512_cvtepi32_epi8(i));
}
inline unsigned flag_mask(const uint8_t* f) {
  __m128i v = _mm_loadu_si128((const __m128i*)f);
  return (unsigned)_mm_test_epi8_mask(v, v);
}
inline vf vld_i8(const int8_t* p) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p))); }
inline vf vld_i32(const int32_t* p, int32_t corr) {
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_loadu_si512(p), _mm512_set1_epi32(corr)));
}
inline void vst_i32(int32_t* p, const int32_t* s, int32_t corr) {
  _mm512_storeu_si512(p, _mm512_sub_epi32(_mm512_loadu_si512(s), _mm512_set1_epi32(corr)));
}
#define BNB_I8_VEC 1
#elif BNB_I8_AVX2
constexpr int VW = 8;
typedef __m256 vf;
template <int DT>
inline vf vld(const void* p, int64_t i) { return simd_io::load<DT>(p, i); }
template <int DT>
inline void vst(void* p, int64_t i, vf v) { simd_io::store<DT>(p, i, v); }
inline vf vabs(vf v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vset(float f) { return _mm256_set1_ps(f); }
inline vf vldf(const float* p) { return _mm256_loadu_ps(p); }
inline vf vmaxn(vf m, vf v) {
  vf r = _mm256_max_ps(m, v);
  return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), _mm256_cmp_ps(m, v, _CMP_UNORD_Q));
}
inline bool any_nan(vf v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0; }
inline float hmax(vf v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
inline unsigned ge_mask(vf a, float t) {
  return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(t), _CMP_GE_OQ));
}
inline __m256 lane_mask(unsigned m) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256i t = _mm256_and_si256(_mm256_set1_epi32((int)m), bits);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, bits));
}
inline vf zero_where(vf v, unsigned m) { return m ? _mm256_andnot_ps(lane_mask(m), v) : v; }
inline void store_q(int8_t* out, vf q, unsigned zmask) {
  __m256 fin = _mm256_cmp_ps(vabs(q), _mm256_set1_ps(INFINITY), _CMP_LT_OQ);
  q = _mm256_and_ps(q, fin);
  if (zmask) q = _mm256_andnot_ps(lane_mask(zmask), q);
  __m256i i = _mm256_cvtps_epi32(q);  // MXCSR default: round to nearest even
  i = _mm256_min_epi32(_mm256_max_epi32(i, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
  __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64((__m128i*)out, _mm_packs_epi16(w, w));
}
inline unsigned flag_mask(const uint8_t* f) {
  __m128i v = _mm_loadl_epi64((const __m128i*)f);
  __m128i nz = _mm_xor_si128(_mm_cmpeq_epi8(v, _mm_setzero_si128()), _mm_set1_epi8(-1));
  return (unsigned)_mm_movemask_epi8(nz) & 0xFFu;
}
inline vf vld_i8(const int8_t* p) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p))); }
inline vf vld_i32(const int32_t* p, int32_t corr) {
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_loadu_si256((const __m256i*)p), _mm256_set1_epi32(corr)));
}
inline void vst_i32(int32_t* p, const int32_t* s, int32_t corr) {
  _mm256_storeu_si256((__m256i*)p, _mm256_sub_epi32(_mm256_loadu_si256((const __m256i*)s), _mm256_set1_epi32(corr)));
}
#define BNB_I8_VEC 1
#else
#define BNB_I8_VEC 0
#endif

// ============================================================ quantization

template <int DT>
void row_absmax_t(const void* A, int64_t K, float thr, float* stats, uint8_t* colflag, int64_t r0, int64_t r1) {
  const bool outl = thr > 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * K;
    float m = 0.0f;
    bool nan = false;
    int64_t k = 0;
#if BNB_I8_VEC
    vf vm = vset(0.0f);
    for (; k + VW <= K; k += VW) {
      vf a = vabs(vld<DT>(A, base + k));
      if (outl) {
        unsigned om = ge_mask(a, thr);
        if (om) {
          for (int j = 0; j < VW; ++j)
            if (om >> j & 1u) flag_col(colflag, k + j);
          a = zero_where(a, om);
        }
      }
      vm = vmaxn(vm, a);
    }
    nan = any_nan(vm);
    if (!nan) m = hmax(vm);
#endif
    for (; k < K; ++k) {
      const float a = fabsf(ld1(DT, A, base + k));
      if (a != a) {
        nan = true;
      } else if (outl && a >= thr) {
        flag_col(colflag, k);
      } else if (a > m) {
        m = a;
      }
    }
    stats[r] = nan ? NAN : m;
  }
}

void row_absmax(int dtype, const void* A, int64_t K, float thr, float* stats, uint8_t* colflag, int64_t r0,
                int64_t r1) {
  if (dtype == 0) row_absmax_t<0>(A, K, thr, stats, colflag, r0, r1);
  else if (dtype == 1) row_absmax_t<1>(A, K, thr, stats, colflag, r0, r1);
  else row_absmax_t<2>(A, K, thr, stats, colflag, r0, r1);
}

template <int DT>
void quant_rows_t(const void* A, int64_t K, const float* stats, const uint8_t* colflag, int8_t* out, int64_t r0,
                  int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * K;
    const float s = row_scale(stats[r]);
    int64_t k = 0;
#if BNB_I8_VEC
    const vf vs = vset(s);
    for (; k + VW <= K; k += VW) store_q(out + base + k, vmul(vld<DT>(A, base + k), vs), colflag ? flag_mask(colflag + k) : 0u);
#endif
    for (; k < K; ++k) out[base + k] = (colflag && colflag[k]) ? (int8_t)0 : quant1(ld1(DT, A, base + k), s);
  }
}

void quant_rows(int dtype, const void* A, int64_t K, const float* stats, const uint8_t* colflag, int8_t* out,
                int64_t r0, int64_t r1) {
  if (dtype == 0) quant_rows_t<0>(A, K, stats, colflag, out, r0, r1);
  else if (dtype == 1) quant_rows_t<1>(A, K, stats, colflag, out, r0, r1);
  else quant_rows_t<2>(A, K, stats, colflag, out, r0, r1);
}

template <int DT>
void col_absmax_t(const void* A, int64_t M, int64_t K, float thr, float* stats, int64_t c0, int64_t c1) {
  const bool outl = thr > 0.0f;
  for (int64_t c = c0; c < c1; ++c) stats[c] = 0.0f;
  for (int64_t r = 0; r < M; ++r) {
    const int64_t base = r * K;
    int64_t c = c0;
#if BNB_I8_VEC
    for (; c + VW <= c1; c += VW) {
      vf a = vabs(vld<DT>(A, base + c));
      if (outl) a = zero_where(a, ge_mask(a, thr));
      vf m = vmaxn(vldf(stats + c), a);
      vst<0>(stats, c, m);
    }
#endif
    for (; c < c1; ++c) {
      float a = fabsf(ld1(DT, A, base + c));
      if (outl && a >= thr) a = 0.0f;
      const float m = stats[c];
      stats[c] = (a != a || m != m) ? NAN : (a > m ? a : m);
    }
  }
}

void col_absmax(int dtype, const void* A, int64_t M, int64_t K, float thr, float* stats, int64_t c0, int64_t c1) {
  if (dtype == 0) col_absmax_t<0>(A, M, K, thr, stats, c0, c1);
  else if (dtype == 1) col_absmax_t<1>(A, M, K, thr, stats, c0, c1);
  else col_absmax_t<2>(A, M, K, thr, stats, c0, c1);
}

template <int DT>
void quant_cols_t(const void* A, int64_t K, float thr, const float* colscale, int8_t* out, int64_t r0, int64_t r1) {
  const bool outl = thr > 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * K;
    int64_t k = 0;
#if BNB_I8_VEC
    for (; k + VW <= K; k += VW) {
      vf x = vld<DT>(A, base + k);
      const unsigned om = outl ? ge_mask(vabs(x), thr) : 0u;
      store_q(out + base + k, vmul(x, vldf(colscale + k)), om);
    }
#endif
    for (; k < K; ++k) {
      const float x = ld1(DT, A, base + k);
      out[base + k] = (outl && fabsf(x) >= thr) ? (int8_t)0 : quant1(x, colscale[k]);
    }
  }
}

void quant_cols(int dtype, const void* A, int64_t K, float thr, const float* colscale, int8_t* out, int64_t r0,
                int64_t r1) {
  if (dtype == 0) quant_cols_t<0>(A, K, thr, colscale, out, r0, r1);
  else if (dtype == 1) quant_cols_t<1>(A, K, thr, colscale, out, r0, r1);
  else quant_cols_t<2>(A, K, thr, colscale, out, r0, r1);
}

void dequant_rows(const int8_t* A, int64_t K, const float* stats, float* out, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t base = r * K;
    const float s = stats[r];
    int64_t k = 0;
#if BNB_I8_VEC
    const vf vs = vset(s), vd = vset(kDequant);
    for (; k + VW <= K; k += VW) vst<0>(out, base + k, vmul(vmul(vld_i8(A + base + k), vs), vd));
#endif
    for (; k < K; ++k) out[base + k] = ((float)A[base + k] * s) * kDequant;
  }
}

// ============================================================ int32 -> dtype epilogue

template <int DT>
void epilogue_row_t(const int32_t* acc, int32_t corr, int64_t n, float rs, const float* col, const float* bias,
                    const float* extra, void* out, int64_t off) {
  int64_t j = 0;
#if BNB_I8_VEC
  const vf vr = vset(rs), vk = vset(kMmDequant);
  for (; j + VW <= n; j += VW) {
    vf v = vmul(vmul(vld_i32(acc + j, corr), vmul(vr, vldf(col + j))), vk);
    if (bias) v = vadd(v, vldf(bias + j));
    if (extra) v = vadd(v, vldf(extra + j));
    vst<DT>(out, off + j, v);
  }
#endif
  for (; j < n; ++j) {
    const int32_t a = (int32_t)((uint32_t)acc[j] - (uint32_t)corr);
    float v = ((float)a * (rs * col[j])) * kMmDequant;
    if (bias) v = v + bias[j];
    if (extra) v = v + extra[j];
    bnb::store_from_f32(out, off + j, DT, v);
  }
}

// out[off + j] = dtype(float(acc[j] - corr) * (rs * col[j]) * (1/127^2) (+ bias[j]) (+ extra[j])), j < n
void epilogue_row(int dt, const int32_t* acc, int32_t corr, int64_t n, float rs, const float* col, const float* bias,
                  const float* extra, void* out, int64_t off) {
  if (dt == 0) epilogue_row_t<0>(acc, corr, n, rs, col, bias, extra, out, off);
  else if (dt == 1) epilogue_row_t<1>(acc, corr, n, rs, col, bias, extra, out, off);
  else epilogue_row_t<2>(acc, corr, n, rs, col, bias, extra, out, off);
}

void store_i32_row(const int32_t* acc, int32_t corr, int64_t n, int32_t* out) {
  int64_t j = 0;
#if BNB_I8_VEC
  for (; j + VW <= n; j += VW) vst_i32(out + j, acc + j, corr);
#endif
  for (; j < n; ++j) out[j] = (int32_t)((uint32_t)acc[j] - (uint32_t)corr);
}

void mm_dequant_rows(const int32_t* acc, int64_t N, const float* row, const float* col, const float* bias, int dt,
                     void* out, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) epilogue_row(dt, acc + r * N, 0, N, row[r], col, bias, nullptr, out, r * N);
}

void row_sums128(const int8_t* A, int64_t K, int32_t* out, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* a = A + r * K;
    int64_t s = 0;
    int64_t k = 0;
#if BNB_I8_AVX512
    __m512i acc = _mm512_setzero_si512();
    for (; k + 32 <= K; k += 32)
      acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(a + k))),
                                                    _mm512_set1_epi16(1)));
    s = _mm512_reduce_add_epi32(acc);
#endif
    for (; k < K; ++k) s += a[k];
    out[r] = (int32_t)(uint32_t)((uint64_t)s * 128u);
  }
}

// ============================================================ int8 matmul microkernels
// mk<mr, nr>(A, lda, B, ldb, kc, buf, ldbuf): buf[i * ldbuf + j] += dot(A[i, :kc], B[j, :kc]) (int32, wrapping;
// on the VNNI path the dot is offset by 128 * sum(A[i, :kc]), removed in the epilogue).

#if BNB_I8_VNNI
constexpr int MR = 4, NR = 4;
// acc += dot4(u8 b, s8 a) per int32 lane. Inline asm ties the accumulator to one register: GCC's register
// allocation of the intrinsic in this unrolled loop copied (and spilled) every accumulator every step.
inline void dp(__m512i& acc, __m512i b, __m512i a) {
#if defined(__GNUC__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(b), "v"(a));
#else
  acc = _mm512_dpbusd_epi32(acc, b, a);
#endif
}
// Accumulators are named locals (c<i><j>), not an array: with an array GCC kept them in memory.
#define BNB_I8_FOR_IJ(X) X(0, 0) X(0, 1) X(0, 2) X(0, 3) X(1, 0) X(1, 1) X(1, 2) X(1, 3) \
                         X(2, 0) X(2, 1) X(2, 2) X(2, 3) X(3, 0) X(3, 1) X(3, 2) X(3, 3)
template <int mr, int nr>
void mk(const int8_t* A, int64_t lda, const int8_t* B, int64_t ldb, int64_t kc, int32_t* buf, int64_t ldbuf,
        const int8_t* pf) {
#define BNB_I8_DECL(i, j) __m512i c##i##j = _mm512_setzero_si512();
  BNB_I8_FOR_IJ(BNB_I8_DECL)
#undef BNB_I8_DECL
  const __m512i off = _mm512_set1_epi8((char)0x80);
  const int8_t* B0 = B;
  const int8_t* B1 = B + (nr > 1 ? ldb : 0);
  const int8_t* B2 = B + (nr > 2 ? 2 * ldb : 0);
  const int8_t* B3 = B + (nr > 3 ? 3 * ldb : 0);
  const int8_t* A0 = A;
  const int8_t* A1 = A + (mr > 1 ? lda : 0);
  const int8_t* A2 = A + (mr > 2 ? 2 * lda : 0);
  const int8_t* A3 = A + (mr > 3 ? 3 * lda : 0);
  int64_t k = 0;
#define BNB_I8_STEP(LOADB, LOADA)                                                  \
  {                                                                                \
    __m512i b0, b1, b2, b3, a;                                                     \
    b0 = _mm512_xor_si512(LOADB(B0), off);                                         \
    if (nr > 1) b1 = _mm512_xor_si512(LOADB(B1), off);                             \
    if (nr > 2) b2 = _mm512_xor_si512(LOADB(B2), off);                             \
    if (nr > 3) b3 = _mm512_xor_si512(LOADB(B3), off);                             \
    a = LOADA(A0);                                                                 \
    dp(c00, b0, a);                                                                \
    if (nr > 1) dp(c01, b1, a);                                                    \
    if (nr > 2) dp(c02, b2, a);                                                    \
    if (nr > 3) dp(c03, b3, a);                                                    \
    if (mr > 1) {                                                                  \
      a = LOADA(A1);                                                               \
      dp(c10, b0, a);                                                              \
      if (nr > 1) dp(c11, b1, a);                                                  \
      if (nr > 2) dp(c12, b2, a);                                                  \
      if (nr > 3) dp(c13, b3, a);                                                  \
    }                                                                              \
    if (mr > 2) {                                                                  \
      a = LOADA(A2);                                                               \
      dp(c20, b0, a);                                                              \
      if (nr > 1) dp(c21, b1, a);                                                  \
      if (nr > 2) dp(c22, b2, a);                                                  \
      if (nr > 3) dp(c23, b3, a);                                                  \
    }                                                                              \
    if (mr > 3) {                                                                  \
      a = LOADA(A3);                                                               \
      dp(c30, b0, a);                                                              \
      if (nr > 1) dp(c31, b1, a);                                                  \
      if (nr > 2) dp(c32, b2, a);                                                  \
      if (nr > 3) dp(c33, b3, a);                                                  \
    }                                                                              \
  }
#define BNB_I8_LD(p) _mm512_loadu_si512((p) + k)
  if (pf) {
    for (; k + 64 <= kc; k += 64) {
      for (int j = 0; j < NR; ++j) _mm_prefetch((const char*)(pf + j * ldb + k), _MM_HINT_T1);
      BNB_I8_STEP(BNB_I8_LD, BNB_I8_LD)
    }
  } else {
    for (; k + 64 <= kc; k += 64) BNB_I8_STEP(BNB_I8_LD, BNB_I8_LD)
  }
#undef BNB_I8_LD
  if (k < kc) {
    const __mmask64 m = (__mmask64)(~0ULL >> (64 - (kc - k)));
    // zero A lanes: (b + 128) * 0 = 0
#define BNB_I8_LDM(p) _mm512_maskz_loadu_epi8(m, (p) + k)
    BNB_I8_STEP(BNB_I8_LDM, BNB_I8_LDM)
#undef BNB_I8_LDM
  }
#undef BNB_I8_STEP
#define BNB_I8_RED(i, j)                                                                           \
  if (i < mr && j < nr)                                                                            \
    buf[i * ldbuf + j] = (int32_t)((uint32_t)buf[i * ldbuf + j] + (uint32_t)_mm512_reduce_add_epi32(c##i##j));
  BNB_I8_FOR_IJ(BNB_I8_RED)
#undef BNB_I8_RED
}
#elif BNB_I8_AVX512
constexpr int MR = 4, NR = 4;
template <int mr, int nr>
void mk(const int8_t* A, int64_t lda, const int8_t* B, int64_t ldb, int64_t kc, int32_t* buf, int64_t ldbuf,
        const int8_t* pf) {
  __m512i acc[mr][nr];
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) acc[i][j] = _mm512_setzero_si512();
  int64_t k = 0;
  for (; k + 32 <= kc; k += 32) {
    __m512i b[nr];
    for (int j = 0; j < nr; ++j) b[j] = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(B + j * ldb + k)));
    for (int i = 0; i < mr; ++i) {
      const __m512i a = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)(A + i * lda + k)));
      for (int j = 0; j < nr; ++j) acc[i][j] = _mm512_add_epi32(acc[i][j], _mm512_madd_epi16(a, b[j]));
    }
  }
  if (k < kc) {
    const __mmask32 m = (__mmask32)(0xFFFFFFFFu >> (32 - (kc - k)));
    __m512i b[nr];
    for (int j = 0; j < nr; ++j) b[j] = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, B + j * ldb + k));
    for (int i = 0; i < mr; ++i) {
      const __m512i a = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, A + i * lda + k));
      for (int j = 0; j < nr; ++j) acc[i][j] = _mm512_add_epi32(acc[i][j], _mm512_madd_epi16(a, b[j]));
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j)
      buf[i * ldbuf + j] = (int32_t)((uint32_t)buf[i * ldbuf + j] + (uint32_t)_mm512_reduce_add_epi32(acc[i][j]));
}
#elif BNB_I8_AVX2
constexpr int MR = 2, NR = 4;
inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
template <int mr, int nr>
void mk(const int8_t* A, int64_t lda, const int8_t* B, int64_t ldb, int64_t kc, int32_t* buf, int64_t ldbuf,
        const int8_t* pf) {
  __m256i acc[mr][nr];
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) acc[i][j] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m256i b[nr];
    for (int j = 0; j < nr; ++j) b[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(B + j * ldb + k)));
    for (int i = 0; i < mr; ++i) {
      const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(A + i * lda + k)));
      for (int j = 0; j < nr; ++j) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(a, b[j]));
    }
  }
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      uint32_t s = (uint32_t)hsum8(acc[i][j]);
      for (int64_t t = k; t < kc; ++t) s += (uint32_t)((int32_t)A[i * lda + t] * (int32_t)B[j * ldb + t]);
      buf[i * ldbuf + j] = (int32_t)((uint32_t)buf[i * ldbuf + j] + s);
    }
}
#else
constexpr int MR = 2, NR = 4;
template <int mr, int nr>
void mk(const int8_t* A, int64_t lda, const int8_t* B, int64_t ldb, int64_t kc, int32_t* buf, int64_t ldbuf,
        const int8_t* pf) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      const int8_t* a = A + i * lda;
      const int8_t* b = B + j * ldb;
      int32_t s = 0;  // |a * b| <= 2^14: exact while kc <= 2^17 (kc is at most kKc)
      for (int64_t t = 0; t < kc; ++t) s += (int32_t)a[t] * (int32_t)b[t];
      buf[i * ldbuf + j] = (int32_t)((uint32_t)buf[i * ldbuf + j] + (uint32_t)s);
    }
}
#endif

// pf: null, or the next B tile (same ldb): the VNNI kernel prefetches it to L2 (each B row of a 4096-K
// weight is one page, where the hardware prefetchers start cold)
typedef void (*MkFn)(const int8_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*, int64_t, const int8_t*);

template <int mr, int nr>
struct MkTab {
  static void fill(MkFn (*t)[NR + 1]) {
    t[mr][nr] = &mk<mr, nr>;
    if constexpr (nr > 1) MkTab<mr, nr - 1>::fill(t);
    else if constexpr (mr > 1) MkTab<mr - 1, NR>::fill(t);
  }
};

struct MkTable {
  MkFn t[MR + 1][NR + 1];
  MkTable() {
    memset(t, 0, sizeof(t));
    MkTab<MR, NR>::fill(t);
  }
};
const MkTable kMk;

constexpr int64_t kMb = 64;    // rows of A per block (A block kMb x kKc stays in L2)
constexpr int64_t kNb = 256;   // output columns per block (int32 block buffer kMb x kNb = 64 KiB)
constexpr int64_t kKc = 4096;  // K per chunk (B tile NR x kKc stays in L1)
constexpr int64_t kKcOne = 1 << 17;  // K per chunk with one group of rows of A (the exactness bound of mk)

// sb[j * ld + n] = out_dtype((float(B[nb + n, col_j]) * col[nb + n]) * (1/127)) (the reference's subB), for
// the outlier columns col_j in [c0, c1)
void outlier_weights_ld(const Int8GemmArgs& g, int64_t nb, int64_t nlen, float* sb, int64_t ld, int64_t c0 = 0,
                        int64_t c1 = INT64_MAX) {
  for (int64_t j = 0; j < g.n_outl; ++j) {
    const int64_t c = g.outl_cols[j];
    if (c < c0 || c >= c1) continue;
    float* d = sb + j * ld;
    for (int64_t n = 0; n < nlen; ++n) {
      float v = ((float)g.B[(nb + n) * g.K + c] * g.col_stats[nb + n]) * kDequant;
      if (g.out_dtype != 0) {  // round through the output dtype
        uint16_t h;
        bnb::store_from_f32(&h, 0, g.out_dtype, v);
        v = bnb::load_as_f32(&h, 0, g.out_dtype);
      }
      d[n] = v;
    }
  }
}

void outlier_weights_all(const Int8GemmArgs& g, int64_t n0, int64_t n1, float* outl_b) {
  outlier_weights_ld(g, n0, n1 - n0, outl_b + n0, g.N);
}

// ext[n] = sum_j a[j] * sb[j * ld + n] (fp32, j in order)
void outlier_row(const float* a, int64_t no, const float* sb, int64_t ld, int64_t nlen, float* ext) {
  int64_t n = 0;
#if BNB_I8_VEC
  for (; n + VW <= nlen; n += VW) {
    vf v = vmul(vset(a[0]), vldf(sb + n));
    for (int64_t j = 1; j < no; ++j) v = vadd(v, vmul(vset(a[j]), vldf(sb + j * ld + n)));
    vst<0>(ext, n, v);
  }
#endif
  for (; n < nlen; ++n) {
    float v = a[0] * sb[n];
    for (int64_t j = 1; j < no; ++j) v = v + a[j] * sb[j * ld + n];
    ext[n] = v;
  }
}

// The int32 sums of rows [mb, mb + mlen) x columns [nb, nb + nlen) in buf (row stride ld) -> C, or through the
// fused epilogue with the outlier columns (their weights in sbuf, row stride ld, unless g.outl_b holds them)
void finish_block(const Int8GemmArgs& g, const int32_t* buf, int64_t ld, const float* sbuf, float* ext, int64_t mb,
                  int64_t mlen, int64_t nb, int64_t nlen) {
  const int64_t no = g.C ? 0 : g.n_outl;
  const float* sb = g.outl_b ? g.outl_b + nb : sbuf;
  const int64_t ldsb = g.outl_b ? g.N : ld;
  for (int64_t i = 0; i < mlen; ++i) {
    const int64_t m = mb + i;
    const int32_t corr = g.a_corr ? g.a_corr[m] : 0;
    if (g.C) {
      store_i32_row(buf + i * ld, corr, nlen, g.C + m * g.N + nb);
    } else {
      const float* extra = nullptr;
      if (no > 0) {
        outlier_row(g.outl_a + m * no, no, sb, ldsb, nlen, ext);
        extra = ext;
      }
      epilogue_row(g.out_dtype, buf + i * ld, corr, nlen, g.row_stats[m], g.col_stats + nb,
                   g.bias ? g.bias + nb : nullptr, extra, g.out, m * g.N + nb);
    }
  }
}

#if BNB_I8_VNNI
// ------------------------------------------------------------ packed path (VNNI, many rows of A, K % 64 == 0)
// The dot-product kernel above loads a vector of A and of B for every 4 x 4 vpdpbusd and sums each output
// horizontally. Here kPn weight rows x kPc columns are repacked once per block into a panel of int8 quads,
// panel[q * kPn + r] = dword (bytes 4q..4q+3 of weight row r) ^ 0x80808080 (vpdpbusd's unsigned operand, as
// above), by 16 x 16 dword transposes; every quad of a row of A is then broadcast and multiplied into a
// 6 x 64 register tile of int32 sums (one output per lane): 4 panel loads and 6 broadcasts per 24 vpdpbusd, no
// horizontal sums. Same int32 sums (wrapping) as the dot kernel, so outputs are identical.
#include "simd_transpose.h"  // transpose16 (per-ISA: inside this namespace on purpose)

constexpr int64_t kPackMinRows = 24;  // rows of A per task from which the packed path is used (measured: parity at 16)
constexpr int kPn = 64;               // weight rows per panel: 4 vectors of 16 outputs
constexpr int64_t kPc = 256;          // columns per panel: 64 quads x 64 rows x 4 B = 16 KiB
constexpr int kPmr = 6;               // rows of A per register tile

// rows [n, n + nr) (nr <= kPn; the last group's missing rows repeat row n + nr - 1), columns [k0, k0 + kc)
// (kc % 64 == 0) -> panel. pf: the same bytes of the next panel's rows (pf_nr of them), prefetched: the 64
// rows are 64 streams at a K-byte stride, more than the hardware prefetchers follow.
inline void pack_panel(const int8_t* B, int64_t K, int64_t n, int nr, int64_t k0, int64_t kc, uint32_t* panel,
                       const int8_t* pf, int pf_nr) {
  const __m512i off = _mm512_set1_epi8((char)0x80);
  for (int j = 0; j * 16 < nr; ++j) {
    const int8_t* rows[16];
    for (int i = 0; i < 16; ++i) {
      const int r = (j * 16 + i < nr) ? j * 16 + i : nr - 1;
      rows[i] = B + (n + r) * K + k0;
    }
    for (int64_t c = 0; c < kc; c += 64) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_xor_si512(_mm512_loadu_si512((const void*)(rows[i] + c)), off);
      if (pf)
        for (int i = 0; i < 16 && j * 16 + i < pf_nr; ++i) _mm_prefetch((const char*)(pf + (j * 16 + i) * K + c), _MM_HINT_T0);
      transpose16(r);  // r[q] lane i = quad q of row i
      uint32_t* dst = panel + (c / 4) * kPn + j * 16;
      for (int q = 0; q < 16; ++q) _mm512_store_si512((void*)(dst + q * kPn), r[q]);
    }
  }
}

// C[i * kPn + 16 v + l] += sum over quads q < nq of dot4(panel[q * kPn + 16 v + l], A[i * lda + 4q .. 4q + 3])
template <int MR, int NV>
inline void micro_packed(const int8_t* A, int64_t lda, const uint32_t* panel, int64_t nq, int32_t* C) {
  __m512i acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_load_si512((const void*)(C + i * kPn + v * 16));
  for (int64_t q = 0; q < nq; ++q) {
    __m512i b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_load_si512((const void*)(panel + q * kPn + v * 16));
    for (int i = 0; i < MR; ++i) {
      int32_t aq;
      memcpy(&aq, A + i * lda + 4 * q, 4);
      const __m512i a = _mm512_set1_epi32(aq);
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], b[v], a);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) _mm512_store_si512((void*)(C + i * kPn + v * 16), acc[i][v]);
}

template <int NV>
void micro_packed_m(int mr, const int8_t* A, int64_t lda, const uint32_t* panel, int64_t nq, int32_t* C) {
  switch (mr) {
    case 6: micro_packed<6, NV>(A, lda, panel, nq, C); break;
    case 5: micro_packed<5, NV>(A, lda, panel, nq, C); break;
    case 4: micro_packed<4, NV>(A, lda, panel, nq, C); break;
    case 3: micro_packed<3, NV>(A, lda, panel, nq, C); break;
    case 2: micro_packed<2, NV>(A, lda, panel, nq, C); break;
    default: micro_packed<1, NV>(A, lda, panel, nq, C); break;
  }
}

void gemm_packed(const Int8GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  alignas(64) int32_t buf[kMb * kPn];
  alignas(64) uint32_t panel[(kPc / 4) * kPn];
  alignas(64) float ext[kPn];
  alignas(64) float sbuf[kInt8MaxBlockOutliers * kPn];
  const int64_t K = g.K;
  const bool make_sb = !g.C && g.n_outl > 0 && !g.outl_b;
  for (int64_t mb = m0; mb < m1; mb += kMb) {
    const int64_t mlen = (m1 - mb < kMb) ? m1 - mb : kMb;
    for (int64_t nb = n0; nb < n1; nb += kPn) {
      const int nlen = (int)((n1 - nb < kPn) ? n1 - nb : kPn);
      const int nv = (nlen + 15) / 16;
      memset(buf, 0, (size_t)(mlen * kPn) * sizeof(int32_t));
      for (int64_t k0 = 0; k0 < K; k0 += kPc) {
        const int64_t kc = (K - k0 < kPc) ? K - k0 : kPc;
        // the next panel: the next columns of these rows, or the first columns of the next rows
        const int64_t pn = (k0 + kc < K) ? nb : nb + kPn, pk = (k0 + kc < K) ? k0 + kc : 0;
        const int pf_nr = (int)((n1 - pn < kPn) ? n1 - pn : kPn);
        pack_panel(g.B, K, nb, nlen, k0, kc, panel, pf_nr > 0 ? g.B + pn * K + pk : nullptr, pf_nr);
        // the outlier weights of these rows in this K chunk while the rows are in L1 (see gemm)
        if (make_sb) outlier_weights_ld(g, nb, nlen, sbuf, kPn, k0, k0 + kc);
        for (int64_t m = 0; m < mlen; m += kPmr) {
          const int mr = (int)((mlen - m < kPmr) ? mlen - m : kPmr);
          const int8_t* Ap = g.A + (mb + m) * K + k0;
          int32_t* Cp = buf + m * kPn;
          switch (nv) {
            case 4: micro_packed_m<4>(mr, Ap, K, panel, kc / 4, Cp); break;
            case 3: micro_packed_m<3>(mr, Ap, K, panel, kc / 4, Cp); break;
            case 2: micro_packed_m<2>(mr, Ap, K, panel, kc / 4, Cp); break;
            default: micro_packed_m<1>(mr, Ap, K, panel, kc / 4, Cp); break;
          }
        }
      }
      finish_block(g, buf, kPn, sbuf, ext, mb, mlen, nb, nlen);
    }
  }
}

// ------------------------------------------------------------ AMX path (amx tier, K % 64 == 0)
// The tile unit computes C[16][16] += X[16][64 s8] . Y[16 quads][16][4 s8] (signed x signed, int32, wrapping).
// X = 16 weight rows x 64 columns, loaded straight from B (row stride K: no packing; rows past N through a
// zero-padded copy); Y = A as [ceil(M/16)][K/4][16 rows of A][4] (prep_a_amx, rows past M zero); C tiles are
// C^T (16 outputs x 16 rows of A) and are transposed into the block buffer that finish_block reads. Exact sums
// (no 128 offset: a_corr is not used), so the outputs equal the other paths'.
#include "amx_tiles.h"  // AmxConfig, amx_config_16x64 (per-ISA: inside this namespace on purpose)

constexpr int kXn = 64;  // weight rows per step: 4 C tiles

void prep_a_amx(const int8_t* A, int64_t M, int64_t K, int8_t* Y) {
  const int64_t G = (M + 15) / 16;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t u = 0; u < K; u += 64) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t m = g * 16 + i;
        r[i] = m < M ? _mm512_loadu_si512((const void*)(A + m * K + u)) : _mm512_setzero_si512();
      }
      transpose16(r);  // r[q] lane i = quad q of row i
      int8_t* y = Y + g * 16 * K + u * 16;
      for (int q = 0; q < 16; ++q) _mm512_storeu_si512((void*)(y + q * 64), r[q]);
    }
  }
}

// g.Ay = prep_a_amx's Y of all M rows; m0 % 16 == 0
__attribute__((target("amx-tile,amx-int8"))) void gemm_amx(const Int8GemmArgs& args, int64_t m0, int64_t m1,
                                                           int64_t n0, int64_t n1) {
  Int8GemmArgs g = args;
  g.a_corr = nullptr;  // exact sums
  alignas(64) int32_t buf[kMb * kXn];
  alignas(64) int32_t ct[4 * 256];  // C tile j at ct + 256 j
  alignas(64) float ext[kXn];
  alignas(64) float sbuf[kInt8MaxBlockOutliers * kXn];
  const int64_t K = g.K, N = g.N;
  const bool make_sb = !g.C && g.n_outl > 0 && !g.outl_b;
  std::vector<int8_t> pad;  // the rows past N of the last group, as zeros
  amx_config_16x64(7);
  for (int64_t mb = m0; mb < m1; mb += kMb) {
    const int64_t mlen = (m1 - mb < kMb) ? m1 - mb : kMb;
    for (int64_t nb = n0; nb < n1; nb += kXn) {
      const int nlen = (int)((n1 - nb < kXn) ? n1 - nb : kXn);
      const int nv = (nlen + 15) / 16;
      const int8_t* xp[4];
      for (int j = 0; j < nv; ++j) {
        const int64_t r0 = nb + 16 * j;
        if (r0 + 16 <= N) {
          xp[j] = g.B + r0 * K;
        } else {
          pad.assign((size_t)(16 * K), 0);
          memcpy(pad.data(), g.B + r0 * K, (size_t)((N - r0) * K));
          xp[j] = pad.data();
        }
      }
      BNB_AMX_BARRIER();
      for (int64_t i0 = 0; i0 < mlen; i0 += 16) {
        const int8_t* y = g.Ay + (mb + i0) * K;  // group (mb + i0) / 16: 16 * K bytes per group
        // two weight groups (32 rows) at a time over all of K: 32 sequential streams, which the hardware
        // prefetchers follow (all 64 rows per 64-column step, 64 streams, were 15-20% slower at 8-16 rows of A
        // although every line was prefetched in software)
        for (int j = 0; j < nv; j += 2) {
          const int8_t* x0 = xp[j];
          const int8_t* x1 = xp[j + 1 < nv ? j + 1 : j];
          _tile_zero(0);
          _tile_zero(1);
          for (int64_t k = 0; k < K; k += 64) {
            _tile_loadd(4, y + k * 16, 64);
            _tile_loadd(5, x0 + k, K);
            _tile_dpbssd(0, 5, 4);
            _tile_loadd(6, x1 + k, K);
            _tile_dpbssd(1, 6, 4);
            // the outlier weights of these rows and columns while the lines are cached
            if (make_sb && i0 == 0) outlier_weights_ld(g, nb + 16 * j, (nlen - 16 * j) < 32 ? nlen - 16 * j : 32,
                                                       sbuf + 16 * j, kXn, k, k + 64);
          }
          _tile_stored(0, ct + j * 256, 64);
          if (j + 1 < nv) _tile_stored(1, ct + (j + 1) * 256, 64);
        }
        BNB_AMX_BARRIER();
        const int rows = (int)((mlen - i0) < 16 ? (mlen - i0) : 16);
        for (int j = 0; j < nv; ++j) {
          __m512i r[16];
          for (int q = 0; q < 16; ++q) r[q] = _mm512_load_si512((const void*)(ct + j * 256 + q * 16));
          transpose16(r);  // r[i] = outputs 16 j .. 16 j + 15 of row i0 + i
          for (int i = 0; i < rows; ++i) _mm512_store_si512((void*)(buf + (i0 + i) * kXn + 16 * j), r[i]);
        }
      }
      finish_block(g, buf, kXn, sbuf, ext, mb, mlen, nb, nlen);
    }
  }
  _tile_release();
}
#endif

void gemm(const Int8GemmArgs& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
#if BNB_I8_VNNI
  if (m1 - m0 >= kPackMinRows && g.K % 64 == 0 && g.K > 0) {
    gemm_packed(g, m0, m1, n0, n1);
    return;
  }
#endif
  alignas(64) int32_t buf[kMb * kNb];
  alignas(64) float ext[kNb];
  alignas(64) float sbuf[kInt8MaxBlockOutliers * kNb];
  const int64_t K = g.K;
  for (int64_t mb = m0; mb < m1; mb += kMb) {
    const int64_t mlen = (m1 - mb < kMb) ? m1 - mb : kMb;
    for (int64_t nb = n0; nb < n1; nb += kNb) {
      const int64_t nlen = (n1 - nb < kNb) ? n1 - nb : kNb;
      for (int64_t i = 0; i < mlen; ++i) memset(buf + i * kNb, 0, (size_t)nlen * sizeof(int32_t));
      const int64_t no = g.C ? 0 : g.n_outl;
      const bool make_sb = no > 0 && !g.outl_b;
      // K chunks keep a B tile in L1 for the next rows of A; one group of rows has no next: whole rows then
      // (streamed from memory or L3, a 4096 x 14336 weight at 1 row: 1.31 -> 1.17 ms)
      const int64_t kcmax = mlen <= MR ? kKcOne : kKc;
      for (int64_t k0 = 0; k0 < K; k0 += kcmax) {
        const int64_t kc = (K - k0 < kcmax) ? K - k0 : kcmax;
        for (int64_t n = 0; n < nlen; n += NR) {
          const int nr = (int)((nlen - n < NR) ? nlen - n : NR);
          const int8_t* Bp = g.B + (nb + n) * K + k0;
          for (int64_t m = 0; m < mlen; m += MR) {
            const int mr = (int)((mlen - m < MR) ? mlen - m : MR);
            // prefetch the next full B tile once (with the first row block)
            const int8_t* pf = (m == 0 && n + 2 * NR <= nlen) ? Bp + NR * K : nullptr;
            kMk.t[mr][nr](g.A + (mb + m) * K + k0, K, Bp, K, kc, buf + m * kNb + n, kNb, pf);
          }
          // the outlier weights of these rows in this K chunk while the rows are in L1 (read afterwards, the
          // bytes of 256 rows at a 4 KiB stride missed to L3: ~25% of a batch-1 call)
          if (make_sb) outlier_weights_ld(g, nb + n, nr, sbuf + n, kNb, k0, k0 + kc);
        }
      }
      finish_block(g, buf, kNb, sbuf, ext, mb, mlen, nb, nlen);
    }
  }
}

}  // namespace

#define BNB_I8_STR2(x) #x
#define BNB_I8_STR(x) BNB_I8_STR2(x)
extern const Int8KernelTable int8_table = {
    BNB_I8_STR(BNB_ISA_NS),
    row_absmax,
    quant_rows,
    col_absmax,
    quant_cols,
    dequant_rows,
    mm_dequant_rows,
    row_sums128,
    gemm,
    outlier_weights_all,
#if BNB_I8_VNNI
    true,
    prep_a_amx,
    gemm_amx,
#else
    false,
    nullptr,
    nullptr,
#endif
};

}  // namespace BNB_ISA_NS
}  // namespace bnb_cpu
