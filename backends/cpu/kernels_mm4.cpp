// Fused 4-bit matmul kernels, compiled once per ISA (see kernels_mm4.h and CMakeLists.txt).
//
// fp32 path: a decode unit of U packed elements (U/2 bytes) becomes two fp32 vectors with one table
// permute each: the 16-entry table is code[0..15] * absmax[block] (so every weight is exactly the
// reference's fp32 code * absmax), the high nibbles give the unit's even elements, the low nibbles its odd
// elements. A is prepared once per call in that order (prep_a), so the dot product needs no shuffles.
// Register blocking: MB rows of A x NB rows of W per inner loop, each decoded unit reused MB times.
//
// bf16 path (avx512vnni, bf16 A): a tile of NB weight rows x KC columns is decoded once into an L1 buffer
// as bf16 (table = bf16(code * absmax), one vpermw per 32 elements), then multiplied by every row of A
// with vdpbf16ps (fp32 accumulation) in MB x NB register tiles.
//
// direct bf16 path (avx512vnni, bf16 A, few rows): the same bf16 weights decoded in registers and used
// at once (no tile buffer), results bit-identical to the tile path (rows_bf16_direct).
#include <math.h>
#include <string.h>

#include "bnb_quant_math.h"
#include "kernels_mm4.h"

#if !defined(BNB_ISA_NS)
#error "BNB_ISA_NS must be defined"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define MM4_AVX512 1
#include <immintrin.h>
#if defined(__AVX512BF16__)
#define MM4_BF16 1
#endif
#elif defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#define MM4_AVX2 1
#include <immintrin.h>
#endif

namespace bnb_cpu {
namespace BNB_ISA_NS {
namespace {

inline int nibble(const uint8_t* B, int64_t e) {
  const uint8_t b = B[e >> 1];
  return (e & 1) ? (b & 15) : (b >> 4);
}

template <class T>
void prep_perm(const T* A, int64_t M, int64_t K, int U, T* Ap) {
  const int64_t full = K - K % U;
  for (int64_t m = 0; m < M; ++m) {
    const T* a = A + m * K;
    T* p = Ap + m * K;
    for (int64_t g = 0; g < full; g += U)
      for (int l = 0; l < U / 2; ++l) {
        p[g + l] = a[g + 2 * l];
        p[g + U / 2 + l] = a[g + 2 * l + 1];
      }
    for (int64_t k = full; k < K; ++k) p[k] = a[k];
  }
}

void store_out(const Mm4Args& a, int64_t m, int64_t n, float v) {
  if (a.bias) v = v + bnb::load_as_f32(a.bias, n, a.dtype);
  bnb::store_from_f32(a.out, m * a.N + n, a.dtype, v);
}

#if defined(MM4_AVX512) || defined(MM4_AVX2)
// ============================================================ vector traits
#if defined(MM4_AVX512)
struct V {
  static constexpr int U = 32;  // elements per unit (16 bytes)
  static constexpr int L = 16;  // fp32 lanes
  typedef __m512 vf;
  struct Tbl {
    __m512 t;
  };
  static inline Tbl table(const Tbl& code, float s) { return Tbl{_mm512_mul_ps(code.t, _mm512_set1_ps(s))}; }
  static inline Tbl load_code(const float* c) { return Tbl{_mm512_loadu_ps(c)}; }
  // 16 bytes -> even elements (hi), odd elements (lo)
  static inline void decode(const uint8_t* p, const Tbl& t, vf& hi, vf& lo) {
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p));
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), t.t);
    lo = _mm512_permutexvar_ps(v, t.t);  // vpermps reads index bits 3:0
  }
  static inline vf zero() { return _mm512_setzero_ps(); }
  static inline vf load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
  static inline vf fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vf add(vf a, vf b) { return _mm512_add_ps(a, b); }
  static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
  static constexpr int nb_for(int mb) { return mb == 1 ? 4 : (mb == 2 ? 4 : 2); }
};
#else
struct V {
  static constexpr int U = 16;  // elements per unit (8 bytes)
  static constexpr int L = 8;
  typedef __m256 vf;
  struct Tbl {
    __m256 lo8, hi8;
  };
  static inline Tbl table(const Tbl& code, float s) {
    const __m256 b = _mm256_set1_ps(s);
    return Tbl{_mm256_mul_ps(code.lo8, b), _mm256_mul_ps(code.hi8, b)};
  }
  static inline Tbl load_code(const float* c) { return Tbl{_mm256_loadu_ps(c), _mm256_loadu_ps(c + 8)}; }
  static inline __m256 lookup(__m256i idx, const Tbl& t) {
    const __m256 p0 = _mm256_permutevar8x32_ps(t.lo8, idx);  // index bits 2:0
    const __m256 p1 = _mm256_permutevar8x32_ps(t.hi8, idx);
    return _mm256_blendv_ps(p0, p1, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3
  }
  static inline void decode(const uint8_t* p, const Tbl& t, vf& hi, vf& lo) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p));
    hi = lookup(_mm256_srli_epi32(v, 4), t);
    lo = lookup(v, t);
  }
  static inline vf zero() { return _mm256_setzero_ps(); }
  static inline vf load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
  static inline vf fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vf add(vf a, vf b) { return _mm256_add_ps(a, b); }
  static inline float hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static constexpr int nb_for(int mb) { return mb == 1 ? 2 : (mb == 2 ? 2 : 1); }
};
#endif
constexpr int U = V::U;

// Fast path (K % U == 0, so every unit is byte aligned and inside one block): MB rows of A from m0,
// NB rows of W from n0.
template <int MB, int NB>
void tile_fast(const Mm4Args& a, const V::Tbl& code, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  V::vf acc_h[MB][NB], acc_l[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc_h[i][j] = acc_l[i][j] = V::zero();
  const float* A0 = a.Ap + m0 * K;
  // blocks aligned with the rows (K % blocksize == 0): one table per block and row; otherwise per unit
  const int64_t span = (K % a.blocksize == 0) ? a.blocksize : U;
  for (int64_t kb = 0; kb < K; kb += span) {
    V::Tbl tb[NB];
    for (int j = 0; j < NB; ++j) tb[j] = V::table(code, a.absmax[((n0 + j) * K + kb) >> a.bshift]);
    for (int64_t k = kb; k < kb + span; k += U) {
      V::vf wh[NB], wl[NB];
      for (int j = 0; j < NB; ++j) V::decode(a.B + (((n0 + j) * K + k) >> 1), tb[j], wh[j], wl[j]);
      for (int i = 0; i < MB; ++i) {
        const V::vf ah = V::load(A0 + i * K + k), al = V::load(A0 + i * K + k + U / 2);
        for (int j = 0; j < NB; ++j) {
          acc_h[i][j] = V::fma(ah, wh[j], acc_h[i][j]);
          acc_l[i][j] = V::fma(al, wl[j], acc_l[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) store_out(a, m0 + i, n0 + j, V::hsum(V::add(acc_h[i][j], acc_l[i][j])));
}

template <int MB>
void rows_fast_mb(const Mm4Args& a, const V::Tbl& code, int64_t m0, int64_t n0, int64_t n1) {
  constexpr int NB = V::nb_for(MB);
  int64_t n = n0;
  for (; n + NB <= n1; n += NB) tile_fast<MB, NB>(a, code, m0, n);
  for (; n < n1; ++n) tile_fast<MB, 1>(a, code, m0, n);
}

// General path (any K): units that are byte aligned and inside one block are decoded with vectors, the
// others element by element; the K % U tail is scalar.
void rows_general(const Mm4Args& a, const V::Tbl& code, int64_t n0, int64_t n1) {
  const int64_t K = a.K, full = K - K % U, bs = a.blocksize;
  constexpr int MT = 8;
  alignas(64) float w[U];
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t m0 = 0; m0 < a.M; m0 += MT) {
      const int mt = (int)((a.M - m0) < MT ? (a.M - m0) : MT);
      V::vf acc[MT];
      for (int i = 0; i < MT; ++i) acc[i] = V::zero();
      for (int64_t k = 0; k < full; k += U) {
        const int64_t e = n * K + k;
        V::vf wh, wl;
        if (!(e & 1) && (e & (bs - 1)) + U <= bs) {
          V::decode(a.B + (e >> 1), V::table(code, a.absmax[e >> a.bshift]), wh, wl);
        } else {
          for (int l = 0; l < U; ++l) {
            const int64_t el = e + l;
            w[(l & 1) ? U / 2 + (l >> 1) : (l >> 1)] = a.code[nibble(a.B, el)] * a.absmax[el >> a.bshift];
          }
          wh = V::load(w);
          wl = V::load(w + U / 2);
        }
        for (int i = 0; i < mt; ++i) {
          const float* ap = a.Ap + (m0 + i) * K + k;
          acc[i] = V::fma(V::load(ap), wh, acc[i]);
          acc[i] = V::fma(V::load(ap + U / 2), wl, acc[i]);
        }
      }
      for (int i = 0; i < mt; ++i) {
        float s = V::hsum(acc[i]);
        const float* ap = a.Ap + (m0 + i) * K;
        for (int64_t k = full; k < K; ++k) {
          const int64_t e = n * K + k;
          s += ap[k] * (a.code[nibble(a.B, e)] * a.absmax[e >> a.bshift]);
        }
        store_out(a, m0 + i, n, s);
      }
    }
  }
}

void rows(const Mm4Args& a, int64_t n0, int64_t n1) {
  const V::Tbl code = V::load_code(a.code);
  if (a.K % U != 0) return rows_general(a, code, n0, n1);
  int64_t m = 0;
  for (; m + 4 <= a.M; m += 4) rows_fast_mb<4>(a, code, m, n0, n1);
  switch (a.M - m) {
    case 3: rows_fast_mb<3>(a, code, m, n0, n1); break;
    case 2: rows_fast_mb<2>(a, code, m, n0, n1); break;
    case 1: rows_fast_mb<1>(a, code, m, n0, n1); break;
    default: break;
  }
}

void prep_a(int dtype, const void* A, int64_t M, int64_t K, float* Ap) {
  // convert in natural order into Ap, then permute each row in place through a small buffer
  const int64_t full = K - K % U;
  alignas(64) float t[U];
  for (int64_t m = 0; m < M; ++m) {
    float* p = Ap + m * K;
    for (int64_t k = 0; k < K; ++k) p[k] = bnb::load_as_f32(A, m * K + k, dtype);
    for (int64_t g = 0; g < full; g += U) {
      memcpy(t, p + g, sizeof(t));
      for (int l = 0; l < U / 2; ++l) {
        p[g + l] = t[2 * l];
        p[g + U / 2 + l] = t[2 * l + 1];
      }
    }
  }
}

#if defined(MM4_BF16)
// ============================================================ bf16 path (vdpbf16ps)
constexpr int BNB_NB = 4;     // weight rows per tile
constexpr int BKC = 2048;     // columns per tile (NB * KC bf16 = 16 KiB)
constexpr int BMT = 64;       // rows of A per macro tile (accumulators 64 * 4 * 64 B = 16 KiB)

void prep_a_bf16(const uint16_t* A, int64_t M, int64_t K, uint16_t* Abf) { prep_perm<uint16_t>(A, M, K, 64, Abf); }

// decode columns [k0, k0 + kc) of weight row n into dst (bf16, 64-element units: 32 even then 32 odd)
template <bool BS32>
inline void decode_bf16_row(const Mm4Args& a, const __m512& code, int64_t n, int64_t k0, int64_t kc, uint16_t* dst) {
  const __m512i lane_off = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(16), 1);
  const __m512i m15 = _mm512_set1_epi16(15);
  for (int64_t k = 0; k < kc; k += 64) {
    const int64_t e = n * a.K + k0 + k;
    __m512i tbl;
    const __m256i s0 = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(a.absmax[e >> a.bshift])));
    if (BS32) {
      const __m256i s1 =
          (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(a.absmax[(e + 32) >> a.bshift])));
      tbl = _mm512_inserti64x4(_mm512_castsi256_si512(s0), s1, 1);
    } else {
      tbl = _mm512_inserti64x4(_mm512_castsi256_si512(s0), s0, 1);
    }
    _mm_prefetch((const char*)(a.B + (e >> 1) + BNB_NB * (a.K >> 1)), _MM_HINT_T1);  // next row tile
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(a.B + (e >> 1))));
    __m512i ih = _mm512_srli_epi16(w, 4), il = w;  // vpermw reads index bits 4:0; the table is duplicated
    if (BS32) {
      ih = _mm512_or_si512(ih, lane_off);
      il = _mm512_or_si512(_mm512_and_si512(w, m15), lane_off);
    }
    _mm512_storeu_si512((void*)(dst + k), _mm512_permutexvar_epi16(ih, tbl));
    _mm512_storeu_si512((void*)(dst + k + 32), _mm512_permutexvar_epi16(il, tbl));
  }
}

template <int MB, int NB>
inline void micro_bf16(const uint16_t* A, int64_t K, const uint16_t* wbuf, int64_t kc, float* acc) {
  __m512 c[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) c[i][j] = _mm512_loadu_ps(acc + (i * BNB_NB + j) * 16);
  for (int64_t k = 0; k < kc; k += 32) {
    __m512i w[NB];
    for (int j = 0; j < NB; ++j) w[j] = _mm512_loadu_si512((const void*)(wbuf + j * BKC + k));
    for (int i = 0; i < MB; ++i) {
      const __m512i av = _mm512_loadu_si512((const void*)(A + i * K + k));
      for (int j = 0; j < NB; ++j) c[i][j] = _mm512_dpbf16_ps(c[i][j], (__m512bh)av, (__m512bh)w[j]);
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) _mm512_storeu_ps(acc + (i * BNB_NB + j) * 16, c[i][j]);
}

template <int NB>
inline void micro_bf16_m(int mb, const uint16_t* A, int64_t K, const uint16_t* wbuf, int64_t kc, float* acc) {
  switch (mb) {
    case 4: return micro_bf16<4, NB>(A, K, wbuf, kc, acc);
    case 3: return micro_bf16<3, NB>(A, K, wbuf, kc, acc);
    case 2: return micro_bf16<2, NB>(A, K, wbuf, kc, acc);
    default: return micro_bf16<1, NB>(A, K, wbuf, kc, acc);
  }
}

template <bool BS32>
void rows_bf16_t(const Mm4Args& a, int64_t n0, int64_t n1) {
  alignas(64) uint16_t wbuf[BNB_NB * BKC];
  alignas(64) float acc[BMT * BNB_NB * 16];
  const __m512 code = _mm512_loadu_ps(a.code);
  const int64_t K = a.K;
  for (int64_t n = n0; n < n1; n += BNB_NB) {
    const int nb = (int)((n1 - n) < BNB_NB ? (n1 - n) : BNB_NB);
    for (int64_t m0 = 0; m0 < a.M; m0 += BMT) {
      const int64_t mt = (a.M - m0) < BMT ? (a.M - m0) : BMT;
      memset(acc, 0, sizeof(float) * mt * BNB_NB * 16);
      for (int64_t k0 = 0; k0 < K; k0 += BKC) {
        const int64_t kc = (K - k0) < BKC ? (K - k0) : BKC;
        for (int j = 0; j < nb; ++j) decode_bf16_row<BS32>(a, code, n + j, k0, kc, wbuf + j * BKC);
        for (int64_t i = 0; i < mt; i += 4) {
          const int mb = (int)((mt - i) < 4 ? (mt - i) : 4);
          const uint16_t* Ai = a.Abf + (m0 + i) * K + k0;
          float* ac = acc + i * BNB_NB * 16;
          switch (nb) {
            case 4: micro_bf16_m<4>(mb, Ai, K, wbuf, kc, ac); break;
            case 3: micro_bf16_m<3>(mb, Ai, K, wbuf, kc, ac); break;
            case 2: micro_bf16_m<2>(mb, Ai, K, wbuf, kc, ac); break;
            default: micro_bf16_m<1>(mb, Ai, K, wbuf, kc, ac); break;
          }
        }
      }
      for (int64_t i = 0; i < mt; ++i)
        for (int j = 0; j < nb; ++j)
          store_out(a, m0 + i, n + j, _mm512_reduce_add_ps(_mm512_loadu_ps(acc + (i * BNB_NB + j) * 16)));
    }
  }
}

// ------------------------------------------------------------ direct bf16 path (few rows of A)
// The weights are decoded in registers exactly as decode_bf16_row decodes them into the tile buffer
// (bf16(code * absmax), one vpermw per 32 elements) and multiplied with vdpbf16ps in the same order as
// micro_bf16, so both bf16 paths give bit-identical outputs for any batch size (batch invariance).
template <int MB, int NB, bool BS32>
inline void tile_direct(const Mm4Args& a, const __m512 code, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const __m512i lane_off = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(16), 1);
  const __m512i m15 = _mm512_set1_epi16(15);
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_ps();
  const uint16_t* A0 = a.Abf + m0 * K;
  for (int64_t k = 0; k < K; k += 64) {
    __m512i wh[NB], wl[NB];
    for (int j = 0; j < NB; ++j) {
      const int64_t e = (n0 + j) * K + k;
      const uint8_t* bp = a.B + (e >> 1);
      _mm_prefetch((const char*)(bp + NB * (K >> 1)), _MM_HINT_T1);  // the same unit of the next row tile
      const __m256i s0 =
          (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(a.absmax[e >> a.bshift])));
      __m512i tbl;
      if (BS32) {
        const __m256i s1 =
            (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(a.absmax[(e >> 5) + 1])));
        tbl = _mm512_inserti64x4(_mm512_castsi256_si512(s0), s1, 1);
      } else {
        tbl = _mm512_inserti64x4(_mm512_castsi256_si512(s0), s0, 1);
      }
      const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)bp));
      __m512i ih = _mm512_srli_epi16(w, 4), il = w;
      if (BS32) {
        ih = _mm512_or_si512(ih, lane_off);
        il = _mm512_or_si512(_mm512_and_si512(w, m15), lane_off);
      }
      wh[j] = _mm512_permutexvar_epi16(ih, tbl);
      wl[j] = _mm512_permutexvar_epi16(il, tbl);
    }
    for (int i = 0; i < MB; ++i) {
      const __m512i ah = _mm512_loadu_si512((const void*)(A0 + i * K + k));
      const __m512i al = _mm512_loadu_si512((const void*)(A0 + i * K + k + 32));
      for (int j = 0; j < NB; ++j) {
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)ah, (__m512bh)wh[j]);
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)al, (__m512bh)wl[j]);
      }
    }
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) store_out(a, m0 + i, n0 + j, _mm512_reduce_add_ps(acc[i][j]));
}

template <int MB, int NB, bool BS32>
inline void rows_direct_mb(const Mm4Args& a, const __m512 tbl, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NB <= n1; n += NB) tile_direct<MB, NB, BS32>(a, tbl, m0, n);
  for (; n < n1; ++n) tile_direct<MB, 1, BS32>(a, tbl, m0, n);
}

template <bool BS32>
void rows_direct_t(const Mm4Args& a, int64_t n0, int64_t n1) {
  const __m512 tbl = _mm512_loadu_ps(a.code);
  int64_t m = 0;
  for (; m + 4 <= a.M; m += 4) rows_direct_mb<4, 3, BS32>(a, tbl, m, n0, n1);
  switch (a.M - m) {
    case 3: rows_direct_mb<3, 3, BS32>(a, tbl, m, n0, n1); break;
    case 2: rows_direct_mb<2, 4, BS32>(a, tbl, m, n0, n1); break;
    case 1: rows_direct_mb<1, 4, BS32>(a, tbl, m, n0, n1); break;
    default: break;
  }
}

void rows_bf16_direct(const Mm4Args& a, int64_t n0, int64_t n1) {
  if (a.blocksize == 32)
    rows_direct_t<true>(a, n0, n1);
  else
    rows_direct_t<false>(a, n0, n1);
}

void rows_bf16(const Mm4Args& a, int64_t n0, int64_t n1) {
  if (a.blocksize == 32)
    rows_bf16_t<true>(a, n0, n1);
  else
    rows_bf16_t<false>(a, n0, n1);
}
#endif  // MM4_BF16

#else
// ============================================================ scalar
constexpr int U = 1;

void rows(const Mm4Args& a, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  constexpr int MT = 8;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t m0 = 0; m0 < a.M; m0 += MT) {
      const int mt = (int)((a.M - m0) < MT ? (a.M - m0) : MT);
      float acc[MT] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t k = 0; k < K; ++k) {
        const int64_t e = n * K + k;
        const float w = a.code[nibble(a.B, e)] * a.absmax[e >> a.bshift];
        for (int i = 0; i < mt; ++i) acc[i] += a.Ap[(m0 + i) * K + k] * w;
      }
      for (int i = 0; i < mt; ++i) store_out(a, m0 + i, n, acc[i]);
    }
  }
}

void prep_a(int dtype, const void* A, int64_t M, int64_t K, float* Ap) {
  for (int64_t i = 0; i < M * K; ++i) Ap[i] = bnb::load_as_f32(A, i, dtype);
}
#endif

}  // namespace

#define BNB_STR2(x) #x
#define BNB_STR(x) BNB_STR2(x)
#if defined(MM4_BF16)
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U, prep_a, rows, prep_a_bf16, rows_bf16, rows_bf16_direct};
#else
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U, prep_a, rows, nullptr, nullptr, nullptr};
#endif

}  // namespace BNB_ISA_NS
}  // namespace bnb_cpu
