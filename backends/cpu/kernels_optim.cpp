// Optimizer update kernels (32-bit state and fused blockwise 8-bit state) for the CPU.
//
// Compiled once per ISA (see CMakeLists.txt BNB_CPU_ISA_SOURCES) into namespace BNB_ISA_NS. The update
// rule is written once as a template over the value type: a W-lane vector (AVX-512: 16, AVX2: 8) for the
// body of a range and a plain float for tails and the scalar build. Every operation is a correctly
// rounded IEEE op (+ - * / sqrt, compares, selects), so both give identical results, and they follow the
// reference's fp32 expression order (bnb_core/reference.py `_optimizer_step_fp32`); compile with
// -ffp-contract=off. 8-bit requantization is the exact arithmetic of quantize_blockwise
// (backends/common/bnb_quant_math.h: block scale, scaled value, nearest code, ties to the lower code).
#include <math.h>
#include <string.h>

#include "bnb_quant_math.h"
#include "kernels_optim.h"

// Vector types are template arguments here (K<vf>, Deq<vf>); their alignment attribute is irrelevant there.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

#if !defined(BNB_ISA_NS)
#error "BNB_ISA_NS must be defined"
#endif

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>
#define BNB_X86 1
#else
#define BNB_X86 0
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define BNB_OVEC 1
#define BNB_OAVX512 1
#elif defined(__AVX2__) && defined(__F16C__)
#define BNB_OVEC 1
#define BNB_OAVX2 1
#else
#define BNB_OVEC 0
#endif

namespace bnb_cpu {
namespace BNB_ISA_NS {
namespace {

#include "simd_io.h"  // per-ISA: inside this namespace on purpose

constexpr int64_t BS = BNB_OPTIMIZER_BLOCKSIZE;

// ============================================================ scalar primitives (tails, scalar build)
typedef bool smask;
inline float bc(float f, float) { return f; }
inline float vsqrt(float x) {
#if BNB_X86
  return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x)));  // no errno path
#else
  return sqrtf(x);
#endif
}
inline bool m_finite(float x) { return (x - x) == 0.0f; }
inline bool m_ne0(float x) { return x != 0.0f; }
inline bool m_gt(float a, float b) { return a > b; }
inline bool m_lt(float a, float b) { return a < b; }
inline bool m_and(bool a, bool b) { return a && b; }
inline float sel(bool m, float a, float b) { return m ? a : b; }
template <int DT>
inline float ldv(const void* p, int64_t i, float) {
  return bnb::load_as_f32(p, i, DT);
}
template <int DT>
inline void stv(void* p, int64_t i, float v) {
  bnb::store_from_f32(p, i, DT, v);
}
inline float ldf(const float* p, int64_t i, float) { return p[i]; }
inline void stf(float* p, int64_t i, float v) { p[i] = v; }
inline float ldq(const uint8_t* q, int64_t i, const float* qmap, float am, float) { return qmap[q[i]] * am; }

// ============================================================ vector primitives
#if BNB_OAVX512
constexpr int W = 16;
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;
inline vf bc(float f, vf) { return _mm512_set1_ps(f); }
inline vf vsqrt(vf x) { return _mm512_sqrt_ps(x); }
inline vmask m_finite(vf x) { return _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_EQ_OQ); }
inline vmask m_ne0(vf x) { return _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NEQ_OQ); }
inline vmask m_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline vmask m_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline vmask m_and(vmask a, vmask b) { return (vmask)(a & b); }
inline vf sel(vmask m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
template <int DT>
inline vf ldv(const void* p, int64_t i, vf) { return simd_io::load<DT>(p, i); }
template <int DT>
inline void stv(void* p, int64_t i, vf v) { simd_io::store<DT>(p, i, v); }
inline vf ldf(const float* p, int64_t i, vf) { return _mm512_loadu_ps(p + i); }
inline void stf(float* p, int64_t i, vf v) { _mm512_storeu_ps(p + i, v); }
inline vf vabs(vf v) { return _mm512_abs_ps(v); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
inline bool any_nan(vf v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0; }
inline float vhsum(vf v) { return _mm512_reduce_add_ps(v); }
inline vi load_codes8(const uint8_t* q) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q)); }
inline void store_codes8(uint8_t* out, vi c) { _mm_storeu_si128((__m128i*)out, _mm512_cvtepi32_epi8(c)); }
inline vi iset1(int k) { return _mm512_set1_epi32(k); }
inline vi iadd(vi a, vi b) { return _mm512_add_epi32(a, b); }
inline vi isel(vmask m, vi a, vi b) { return _mm512_mask_blend_epi32(m, b, a); }
inline vi imin(vi a, vi b) { return _mm512_min_epi32(a, b); }
inline vi imax(vi a, vi b) { return _mm512_max_epi32(a, b); }
inline vmask m_le(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
inline vmask i_le(vi a, int k) { return _mm512_cmple_epi32_mask(a, _mm512_set1_epi32(k)); }
inline vmask i_ge(vi a, int k) { return _mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(k)); }
inline vmask m_ge(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
inline vf vzero_nan(vf y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, y, _CMP_ORD_Q), y); }
inline vi add_step_gt(vi idx, vf y, vf t, int step) {
  return _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(y, t, _CMP_GT_OQ), idx, _mm512_set1_epi32(step));
}
using simd_io::Lut256;  // 256-entry fp32 lookup without gathers
// Nearest code of y (ascending padded boundaries): branchless binary search. At the level with step s the
// index is a multiple of 2s, so that level only needs the boundaries padded[j * 2s + s - 1]: levels with up
// to 16 of them use one in-register permute, the last three 2, 4 and 8 two-table permutes (instead of a full
// 256-entry lookup per level).
struct CodeSearch {
  vf top;       // padded[127]
  vf l16[4];    // steps 64, 32, 16, 8: 2, 4, 8, 16 boundaries
  vf l4[2];     // step 4: 32 boundaries
  vf l2[4];     // step 2: 64
  vf l1[8];     // step 1: 128
  explicit CodeSearch(const float* padded) {
    top = _mm512_set1_ps(padded[127]);
    alignas(64) float t[128];
    for (int lv = 0; lv < 4; ++lv) {
      const int step = 64 >> lv, cnt = 256 / (2 * step);
      for (int j = 0; j < 16; ++j) t[j] = j < cnt ? padded[j * 2 * step + step - 1] : 0.0f;
      l16[lv] = _mm512_load_ps(t);
    }
    for (int j = 0; j < 32; ++j) t[j] = padded[j * 8 + 3];
    for (int k = 0; k < 2; ++k) l4[k] = _mm512_load_ps(t + 16 * k);
    for (int j = 0; j < 64; ++j) t[j] = padded[j * 4 + 1];
    for (int k = 0; k < 4; ++k) l2[k] = _mm512_load_ps(t + 16 * k);
    for (int j = 0; j < 128; ++j) t[j] = padded[j * 2];
    for (int k = 0; k < 8; ++k) l1[k] = _mm512_load_ps(t + 16 * k);
  }
  inline vi operator()(vf y) const {
    vi idx = add_step_gt(_mm512_setzero_si512(), y, top, 128);
    for (int lv = 0; lv < 4; ++lv) {
      const int step = 64 >> lv;
      const vi j = _mm512_srli_epi32(idx, 7 - lv);  // idx / (2 * step)
      idx = add_step_gt(idx, y, _mm512_permutexvar_ps(j, l16[lv]), step);
    }
    {  // step 4: j = idx >> 3 in [0, 32)
      const vi j = _mm512_srli_epi32(idx, 3);
      idx = add_step_gt(idx, y, _mm512_permutex2var_ps(l4[0], j, l4[1]), 4);
    }
    {  // step 2: j = idx >> 2 in [0, 64)
      const vi j = _mm512_srli_epi32(idx, 2);
      const __mmask16 m = _mm512_test_epi32_mask(j, _mm512_set1_epi32(32));
      vf b = _mm512_mask_blend_ps(m, _mm512_permutex2var_ps(l2[0], j, l2[1]), _mm512_permutex2var_ps(l2[2], j, l2[3]));
      idx = add_step_gt(idx, y, b, 2);
    }
    {  // step 1: j = idx >> 1 in [0, 128)
      const vi j = _mm512_srli_epi32(idx, 1);
      const __mmask16 m5 = _mm512_test_epi32_mask(j, _mm512_set1_epi32(32));
      const __mmask16 m6 = _mm512_test_epi32_mask(j, _mm512_set1_epi32(64));
      vf a0 = _mm512_mask_blend_ps(m5, _mm512_permutex2var_ps(l1[0], j, l1[1]), _mm512_permutex2var_ps(l1[2], j, l1[3]));
      vf a1 = _mm512_mask_blend_ps(m5, _mm512_permutex2var_ps(l1[4], j, l1[5]), _mm512_permutex2var_ps(l1[6], j, l1[7]));
      idx = add_step_gt(idx, y, _mm512_mask_blend_ps(m6, a0, a1), 1);
    }
    return idx;
  }
};

#elif BNB_OAVX2
constexpr int W = 8;
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;
inline vf bc(float f, vf) { return _mm256_set1_ps(f); }
inline vf vsqrt(vf x) { return _mm256_sqrt_ps(x); }
inline vmask m_finite(vf x) { return _mm256_cmp_ps(_mm256_sub_ps(x, x), _mm256_setzero_ps(), _CMP_EQ_OQ); }
inline vmask m_ne0(vf x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_OQ); }
inline vmask m_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline vmask m_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline vmask m_and(vmask a, vmask b) { return _mm256_and_ps(a, b); }
inline vf sel(vmask m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
template <int DT>
inline vf ldv(const void* p, int64_t i, vf) { return simd_io::load<DT>(p, i); }
template <int DT>
inline void stv(void* p, int64_t i, vf v) { simd_io::store<DT>(p, i, v); }
inline vf ldf(const float* p, int64_t i, vf) { return _mm256_loadu_ps(p + i); }
inline void stf(float* p, int64_t i, vf v) { _mm256_storeu_ps(p + i, v); }
inline vf vabs(vf v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline float vhmax(vf v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
inline bool any_nan(vf v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0; }
inline float vhsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline vi load_codes8(const uint8_t* q) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)q)); }
inline void store_codes8(uint8_t* out, vi c) {
  __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
  _mm_storel_epi64((__m128i*)out, _mm_packus_epi16(p, p));
}
inline vi iset1(int k) { return _mm256_set1_epi32(k); }
inline vi iadd(vi a, vi b) { return _mm256_add_epi32(a, b); }
inline vi isel(vmask m, vi a, vi b) { return _mm256_blendv_epi8(b, a, _mm256_castps_si256(m)); }
inline vi imin(vi a, vi b) { return _mm256_min_epi32(a, b); }
inline vi imax(vi a, vi b) { return _mm256_max_epi32(a, b); }
inline vmask m_le(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
inline vmask i_le(vi a, int k) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(k + 1), a)); }
inline vmask i_ge(vi a, int k) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(k - 1))); }
inline vmask m_ge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
inline vf vzero_nan(vf y) { return _mm256_and_ps(y, _mm256_cmp_ps(y, y, _CMP_ORD_Q)); }
inline vi add_step_gt(vi idx, vf y, vf t, int step) {
  vi m = _mm256_castps_si256(_mm256_cmp_ps(y, t, _CMP_GT_OQ));
  return _mm256_add_epi32(idx, _mm256_and_si256(m, _mm256_set1_epi32(step)));
}
using simd_io::Lut256;  // 256-entry fp32 lookup (scalar loads: AVX2 gathers are slow)
// Binary search as quant8: the first levels (up to 8 boundaries each) with in-register permutes, the last
// four with gathers.
struct CodeSearch {
  const float* padded;
  vf top;
  vf l8[3];  // steps 64, 32, 16: 2, 4, 8 boundaries
  explicit CodeSearch(const float* p) : padded(p) {
    top = _mm256_set1_ps(p[127]);
    alignas(32) float t[8];
    for (int lv = 0; lv < 3; ++lv) {
      const int step = 64 >> lv, cnt = 256 / (2 * step);
      for (int j = 0; j < 8; ++j) t[j] = j < cnt ? p[j * 2 * step + step - 1] : 0.0f;
      l8[lv] = _mm256_load_ps(t);
    }
  }
  inline vi operator()(vf y) const {
    vi idx = add_step_gt(_mm256_setzero_si256(), y, top, 128);
    for (int lv = 0; lv < 3; ++lv) {
      const vi j = _mm256_srli_epi32(idx, 7 - lv);
      idx = add_step_gt(idx, y, _mm256_permutevar8x32_ps(l8[lv], j), 64 >> lv);
    }
    for (int step = 8; step >= 1; step >>= 1)
      idx = add_step_gt(idx, y, _mm256_i32gather_ps(padded + (step - 1), idx, 4), step);
    return idx;
  }
};
#endif

// ============================================================ the update rule
// Constants broadcast to the value type T.
template <class T>
struct K {
  T beta1, beta2, beta3, omb1, omb2, omb3, wd, decay, c1, c2, c2sq, eps, eps_c2, step_scale, neg_lr, alpha;
  T gscale, zero, one, mone;
  bool coupled, decoupled, first, skip_zeros;
  explicit K(const OptimConsts& k)
      : beta1(bc(k.beta1, T())), beta2(bc(k.beta2, T())), beta3(bc(k.beta3, T())), omb1(bc(k.omb1, T())),
        omb2(bc(k.omb2, T())), omb3(bc(k.omb3, T())), wd(bc(k.wd, T())), decay(bc(k.decay, T())),
        c1(bc(k.c1, T())), c2(bc(k.c2, T())), c2sq(bc(k.c2sq, T())), eps(bc(k.eps, T())),
        eps_c2(bc(k.eps_c2, T())), step_scale(bc(k.step_scale, T())), neg_lr(bc(k.neg_lr, T())),
        alpha(bc(k.alpha, T())), gscale(bc(k.gnorm_scale, T())), zero(bc(0.0f, T())), one(bc(1.0f, T())),
        mone(bc(-1.0f, T())), coupled(k.coupled_wd), decoupled(k.decoupled_wd), first(k.first_step),
        skip_zeros(k.skip_zeros) {}
};

// g (already masked) and p, s1, s1b, s2 in; p (after decoupled decay), s1, s1b, s2 updated in place;
// returns the step direction; with UPD also the update direction whose norm gives the trust ratio.
// Expression order = reference.py `_optimizer_step_fp32`.
template <int NAME, bool UPD, class T>
inline T rule(const K<T>& c, T g, T& p, T& s1, T& s1b, T& s2, T& upd) {
  if (c.coupled) g = g + p * c.wd;
  if (c.decoupled) p = p * c.decay;
  T sd;
  if (NAME == kOptAdam || NAME == kOptLamb) {
    s1 = s1 * c.beta1 + c.omb1 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    if (UPD) upd = (s1 / c.c1) / (vsqrt(s2 / c.c2sq) + c.eps);
    sd = c.step_scale * (s1 / (vsqrt(s2) + c.eps_c2));
  } else if (NAME == kOptAdemamix) {
    T m1 = s1 * c.beta1 + c.omb1 * g;
    T m2 = s1b * c.beta3 + c.omb3 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    s1 = m1;
    s1b = m2;
    T u = (m1 / c.c1 + c.alpha * m2) / (vsqrt(s2) / c.c2 + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  } else if (NAME == kOptMomentum || NAME == kOptLars) {
    s1 = c.first ? g : s1 * c.beta1 + g;
    if (UPD) upd = s1;
    sd = c.neg_lr * s1;
  } else if (NAME == kOptLion) {
    T x = s1 * c.beta1 + c.omb1 * g;
    T sign = sel(m_gt(x, c.zero), c.one, sel(m_lt(x, c.zero), c.mone, c.zero));
    sd = c.neg_lr * sign;
    s1 = s1 * c.beta2 + c.omb2 * g;
    if (UPD) upd = s1;
  } else if (NAME == kOptRmsprop) {
    s1 = s1 * c.beta1 + (c.omb1 * g) * g;
    T u = g / (vsqrt(s1) + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  } else {  // adagrad
    s1 = s1 + g * g;
    T u = g / (vsqrt(s1) + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  }
  return sd;
}

constexpr bool two_states(int name) { return name == kOptAdam || name == kOptLamb || name == kOptAdemamix; }

// scaled gradient and the keep mask (finite, and nonzero with skip_zeros); g is zeroed where not kept
template <class T, class M>
inline T masked_grad(const K<T>& c, T graw, M& keep) {
  T g = graw * c.gscale;
  keep = m_finite(g);
  if (c.skip_zeros) keep = m_and(keep, m_ne0(g));
  return sel(keep, g, c.zero);
}

// ============================================================ 32-bit
template <int DT, int NAME, class T>
inline T norm32_one(const Optim32Args& a, const K<T>& c, int64_t i) {
  auto keep = m_finite(T());
  T g = masked_grad(c, ldv<DT>(a.g, i, T()), keep);
  T p = ldv<DT>(a.p, i, T());
  T s1 = ldf(a.s1, i, T()), s1b = c.zero, s2 = c.zero, upd = c.zero;
  if (NAME == kOptAdemamix) s1b = ldf(a.s1 + a.n, i, T());
  if (two_states(NAME)) s2 = ldf(a.s2, i, T());
  rule<NAME, true>(c, g, p, s1, s1b, s2, upd);
  return upd * upd;
}

template <int DT, int NAME>
double norm32_t(const Optim32Args& a, int64_t i0, int64_t i1) {
  const K<float> cs(a.k);
  double total = 0.0;
  int64_t i = i0;
#if BNB_OVEC
  const K<vf> cv(a.k);
  while (i + W <= i1) {  // fp32 partial sums over up to 256 elements, accumulated in double
    vf acc = cv.zero;
    const int64_t stop = (i + BS < i1) ? i + BS : i1;
    for (; i + W <= stop; i += W) acc = acc + norm32_one<DT, NAME>(a, cv, i);
    total += (double)vhsum(acc);
  }
#endif
  float acc = 0.0f;
  for (; i < i1; ++i) acc += norm32_one<DT, NAME>(a, cs, i);
  return total + (double)acc;
}

template <int DT, int NAME, class T>
inline void update32_one(const Optim32Args& a, const K<T>& c, T scale, int64_t i) {
  auto keep = m_finite(T());
  T g = masked_grad(c, ldv<DT>(a.g, i, T()), keep);
  const T p0 = ldv<DT>(a.p, i, T());
  const T s1o = ldf(a.s1, i, T());
  T p = p0, s1 = s1o, s1b = c.zero, s2 = c.zero, s1bo = c.zero, s2o = c.zero, upd = c.zero;
  if (NAME == kOptAdemamix) s1b = s1bo = ldf(a.s1 + a.n, i, T());
  if (two_states(NAME)) s2 = s2o = ldf(a.s2, i, T());
  T sd = rule<NAME, false>(c, g, p, s1, s1b, s2, upd) * scale;
  stv<DT>(a.p, i, sel(keep, p + sd, p0));
  stf(a.s1, i, sel(keep, s1, s1o));
  if (NAME == kOptAdemamix) stf(a.s1 + a.n, i, sel(keep, s1b, s1bo));
  if (two_states(NAME)) stf(a.s2, i, sel(keep, s2, s2o));
}

template <int DT, int NAME>
void update32_t(const Optim32Args& a, float scale, int64_t i0, int64_t i1) {
  const K<float> cs(a.k);
  int64_t i = i0;
#if BNB_OVEC
  const K<vf> cv(a.k);
  const vf vscale = bc(scale, vf());
  for (; i + W <= i1; i += W) update32_one<DT, NAME>(a, cv, vscale, i);
#endif
  for (; i < i1; ++i) update32_one<DT, NAME>(a, cs, scale, i);
}

// ============================================================ 8-bit (fused, one 256-element block at a time)
// absmax of a block in the local buffer (NaN if it holds a NaN), as quantize_blockwise computes it.
inline float buf_absmax(const float* x, int64_t len) {
  float m = 0.0f;
  bool nan = false;
  int64_t i = 0;
#if BNB_OVEC
  if (len >= W) {
    vf vm = bc(0.0f, vf());
    for (; i + W <= len; i += W) {
      vf v = ldf(x, i, vf());
      nan = nan || any_nan(v);
      vm = vmax(vm, vabs(v));
    }
    m = vhmax(vm);
  }
#endif
  for (; i < len; ++i) {
    float v = fabsf(x[i]);
    if (v != v)
      nan = true;
    else if (v > m)
      m = v;
  }
  return nan ? bnb::canonical_nan() : m;
}

// keep_sign: a nonzero value whose code would be zero or of the other sign moves one code (reference
// `_requantize_state`).
inline int fix_sign(int q, float x, const float* qmap) {
  const float v = qmap[q];
  if (x > 0.0f && v <= 0.0f) return q < 255 ? q + 1 : 255;
  if (x < 0.0f && v >= 0.0f) return q > 0 ? q - 1 : 0;
  return q;
}

struct QuantCtx {
  const float* qmap;
  const float* bnd;
  bool sorted;
  // qmap ascending: qmap[q] <= 0 exactly for q <= last_le0, qmap[q] >= 0 exactly for q >= first_ge0
  bool ascending;
  int last_le0, first_ge0;
#if BNB_OVEC
  Lut256 qlut;
  CodeSearch search;
  QuantCtx(const float* q, const float* b, bool s) : qmap(q), bnd(b), sorted(s), qlut(q), search(b) { init(); }
#else
  QuantCtx(const float* q, const float* b, bool s) : qmap(q), bnd(b), sorted(s) { init(); }
#endif
  void init() {
    ascending = true;
    for (int i = 0; i < 255; ++i)
      if (!(qmap[i] <= qmap[i + 1])) ascending = false;
    last_le0 = -1;
    first_ge0 = 256;
    for (int i = 0; i < 256; ++i) {
      if (qmap[i] <= 0.0f) last_le0 = i;
      if (qmap[i] >= 0.0f && first_ge0 == 256) first_ge0 = i;
    }
  }
};

// Requantize len values of one block: new absmax, nearest codes (quantize_blockwise's exact arithmetic).
inline void requant(const float* x, int64_t len, const QuantCtx& qc, bool keep_sign, uint8_t* codes, float* absmax) {
  const float am = buf_absmax(x, len);
  *absmax = am;
  const bnb::BlockScale sc = bnb::block_scale(am);
  int64_t i = 0;
  if (qc.sorted) {
#if BNB_OVEC
    const vf vs = bc(sc.s, vf()), vinv = bc(sc.inv, vf()), zero = bc(0.0f, vf());
    for (; i + W <= len; i += W) {
      const vf xv = ldf(x, i, vf());
      vi idx = qc.search(vzero_nan((xv * vs) * vinv));
      if (keep_sign) {
        vmask up, down;
        if (qc.ascending) {
          up = m_and(m_gt(xv, zero), i_le(idx, qc.last_le0));
          down = m_and(m_lt(xv, zero), i_ge(idx, qc.first_ge0));
        } else {
          const vf v = qc.qlut(idx);
          up = m_and(m_gt(xv, zero), m_le(v, zero));
          down = m_and(m_lt(xv, zero), m_ge(v, zero));
        }
        idx = isel(up, imin(iadd(idx, iset1(1)), iset1(255)), isel(down, imax(iadd(idx, iset1(-1)), iset1(0)), idx));
      }
      store_codes8(codes + i, idx);
    }
#endif
    for (; i < len; ++i) {
      int q = bnb::code_8bit_search(bnb::scale_value(x[i], sc), qc.bnd);
      codes[i] = (uint8_t)(keep_sign ? fix_sign(q, x[i], qc.qmap) : q);
    }
  } else {
    for (; i < len; ++i) {
      int q = bnb::code_8bit_count(bnb::scale_value(x[i], sc), qc.bnd);
      codes[i] = (uint8_t)(keep_sign ? fix_sign(q, x[i], qc.qmap) : q);
    }
  }
}

template <class T>
struct Deq;
template <>
struct Deq<float> {
  const float* q1;
  const float* q2;
  Deq(const float* a, const float* b) : q1(a), q2(b) {}
  float s1(const uint8_t* c, int64_t i, float am) const { return q1[c[i]] * am; }
  float s2(const uint8_t* c, int64_t i, float am) const { return q2[c[i]] * am; }
};
#if BNB_OVEC
template <>
struct Deq<vf> {
  Lut256 l1, l2;
  Deq(const float* a, const float* b) : l1(a), l2(b) {}
  vf s1(const uint8_t* c, int64_t i, float am) const { return l1(load_codes8(c + i)) * bc(am, vf()); }
  vf s2(const uint8_t* c, int64_t i, float am) const { return l2(load_codes8(c + i)) * bc(am, vf()); }
};
#endif

// One element group at block offset j (global index i): dequantize, update, write p, keep new states
// (or the old ones where the gradient is masked) in the local buffers.
template <int DT, int NAME, class T>
inline void update8_one(const Optim8Args& a, const K<T>& c, const Deq<T>& dq, int64_t i, int64_t j,
                        const float* am, float* n1, float* n1b, float* n2) {
  auto keep = m_finite(T());
  T g = masked_grad(c, ldv<DT>(a.g, i, T()), keep);
  const T p0 = ldv<DT>(a.p, i, T());
  const T s1o = dq.s1(a.s1, i, am[0]);
  T p = p0, s1 = s1o, s1b = c.zero, s2 = c.zero, s1bo = c.zero, s2o = c.zero, upd = c.zero;
  if (NAME == kOptAdemamix) s1b = s1bo = dq.s1(a.s1 + a.n, i, am[1]);
  if (two_states(NAME)) s2 = s2o = dq.s2(a.s2, i, am[2]);
  T sd = rule<NAME, false>(c, g, p, s1, s1b, s2, upd);
  stv<DT>(a.p, i, sel(keep, p + sd, p0));
  stf(n1, j, sel(keep, s1, s1o));
  if (NAME == kOptAdemamix) stf(n1b, j, sel(keep, s1b, s1bo));
  if (two_states(NAME)) stf(n2, j, sel(keep, s2, s2o));
}

template <int DT, int NAME>
void update8_t(const Optim8Args& a, int64_t b0, int64_t b1) {
  alignas(64) float n1[BS], n1b[BS], n2[BS];
  const int64_t nb = (a.n + BS - 1) / BS;
  const K<float> cs(a.k);
  const Deq<float> ds(a.qmap1, two_states(NAME) ? a.qmap2 : a.qmap1);
  const QuantCtx qc1(a.qmap1, a.bnd1, a.sorted1);
  const QuantCtx qc2(two_states(NAME) ? a.qmap2 : a.qmap1, two_states(NAME) ? a.bnd2 : a.bnd1,
                     two_states(NAME) ? a.sorted2 : a.sorted1);
#if BNB_OVEC
  const K<vf> cv(a.k);
  const Deq<vf> dv(a.qmap1, two_states(NAME) ? a.qmap2 : a.qmap1);
#endif
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t s = b * BS, len = (s + BS < a.n) ? BS : a.n - s;
    const float am[3] = {a.absmax1[b], NAME == kOptAdemamix ? a.absmax1[nb + b] : 0.0f,
                         two_states(NAME) ? a.absmax2[b] : 0.0f};
    int64_t j = 0;
#if BNB_OVEC
    for (; j + W <= len; j += W) update8_one<DT, NAME>(a, cv, dv, s + j, j, am, n1, n1b, n2);
#endif
    for (; j < len; ++j) update8_one<DT, NAME>(a, cs, ds, s + j, j, am, n1, n1b, n2);
    requant(n1, len, qc1, true, a.s1 + s, a.absmax1 + b);
    if (NAME == kOptAdemamix) requant(n1b, len, qc1, true, a.s1 + a.n + s, a.absmax1 + nb + b);
    if (two_states(NAME)) requant(n2, len, qc2, false, a.s2 + s, a.absmax2 + b);
  }
}

// ============================================================ dispatch over (dtype, rule)
template <int DT, template <int, int> class F, class R, class... Args>
R by_name(int name, Args... args) {
  switch (name) {
    case kOptAdam: return F<DT, kOptAdam>::run(args...);
    case kOptMomentum: return F<DT, kOptMomentum>::run(args...);
    case kOptRmsprop: return F<DT, kOptRmsprop>::run(args...);
    case kOptLion: return F<DT, kOptLion>::run(args...);
    case kOptAdagrad: return F<DT, kOptAdagrad>::run(args...);
    case kOptLamb: return F<DT, kOptLamb>::run(args...);
    case kOptLars: return F<DT, kOptLars>::run(args...);
    default: return F<DT, kOptAdemamix>::run(args...);
  }
}
template <template <int, int> class F, class R, class... Args>
R by_dtype_name(int dtype, int name, Args... args) {
  switch (dtype) {
    case 0: return by_name<0, F, R>(name, args...);
    case 1: return by_name<1, F, R>(name, args...);
    default: return by_name<2, F, R>(name, args...);
  }
}
template <int DT, int NAME>
struct Norm32 {
  static double run(const Optim32Args* a, int64_t i0, int64_t i1) { return norm32_t<DT, NAME>(*a, i0, i1); }
};
template <int DT, int NAME>
struct Update32 {
  static void run(const Optim32Args* a, float scale, int64_t i0, int64_t i1) {
    update32_t<DT, NAME>(*a, scale, i0, i1);
  }
};
template <int DT, int NAME>
struct Update8 {
  static void run(const Optim8Args* a, int64_t b0, int64_t b1) { update8_t<DT, NAME>(*a, b0, b1); }
};

double norm32(const Optim32Args& a, int64_t i0, int64_t i1) {
  return by_dtype_name<Norm32, double>(a.k.dtype, a.k.name, &a, i0, i1);
}
void update32(const Optim32Args& a, float scale, int64_t i0, int64_t i1) {
  by_dtype_name<Update32, void>(a.k.dtype, a.k.name, &a, scale, i0, i1);
}
void update8(const Optim8Args& a, int64_t b0, int64_t b1) {
  by_dtype_name<Update8, void>(a.k.dtype, a.k.name, &a, b0, b1);
}

}  // namespace

#define BNB_OSTR2(x) #x
#define BNB_OSTR(x) BNB_OSTR2(x)
extern const OptimKernelTable optim_table = {BNB_OSTR(BNB_ISA_NS), norm32, update32, update8};

}  // namespace BNB_ISA_NS
}  // namespace bnb_cpu
