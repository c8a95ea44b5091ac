// Fused 4-bit matmul kernels, compiled once per ISA (see kernels_mm4.h and CMakeLists.txt).
//
// fp32 path: a decode unit of U packed elements (U/2 bytes) becomes two fp32 vectors with one table
// permute each: the 16-entry table is code[0..15] * absmax[block] (so every weight is exactly the
// reference's fp32 code * absmax), the high nibbles give the unit's even elements, the low nibbles its odd
// elements. A is prepared once per call in that order (prep_a), so the dot product needs no shuffles.
// Register blocking: MB rows of A x NB rows of W per inner loop, each decoded unit reused MB times.
//
// bf16 tile path (avx512vnni, bf16 A, many rows): a tile of 64 weight rows x 256 columns is decoded once
// into an L1 buffer as bf16 (table = bf16(code * absmax), one vpermw per 32 elements) in the vdpbf16ps pair
// layout (a 16 x 16 dword transpose per 16 rows), then every row of A is multiplied by it as outer products:
// A pairs broadcast, 6 x 64 outputs in registers, no horizontal sums (rows_bf16_tile, 9-23 rows). From 24
// rows the pipelined variant decodes the next 128-column tile inside the current tile's micro-kernel, so the
// decode overlaps the multiplies (rows_bf16_pipe; rows_bf16 picks one).
//
// direct bf16 path (avx512vnni, bf16 A, few rows): the same bf16 weights decoded in registers and used
// at once in dot products along K (no tile buffer; A prepared by prep_a_bf16) (rows_bf16_direct). One row of A
// at blocksize >= 64 (gemv) takes rows_gemv instead: an unscaled bf16(code) table and one FMA by absmax per
// 64-element unit, with software prefetch of the weight and absmax streams.
//
// gemv in fp32 arithmetic (rows_gemv32: AVX-512 and AVX2, one row of A at blocksize >= 64, K % 64 == 0): the
// gemv's row groups and prefetching with an unscaled fp32 code looked up by vpermps (exact weights), for fp32 / fp16
// A, for bf16 A on the amx tier and on CPUs without BF16; on AVX2 bf16 A looks up bf16(code) bytes by vpshufb.
#include <math.h>
#include <string.h>

#include <vector>

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

// Double-quantized absmax (see Mm4Table::nested_absmax): a gather from the 256-entry code per 16 (8) blocks, which
// share one absmax2 unless they straddle a multiple of BNB_NESTED_BLOCKSIZE (then one at a time). Writes out[i - i0].
inline float nested_absmax_one(const uint8_t* q, const float* absmax2, const float* code, float offset, int64_t i) {
  const float v = code[q[i]] * absmax2[i / BNB_NESTED_BLOCKSIZE];
  return v + offset;
}

void nested_absmax(const uint8_t* q, const float* absmax2, const float* code, float offset, int64_t i0, int64_t i1,
                   float* out) {
  int64_t i = i0;
#if defined(MM4_AVX512) || defined(MM4_AVX2)
#if defined(MM4_AVX512)
  constexpr int L = 16;
#else
  constexpr int L = 8;
#endif
  for (; i + L <= i1; i += L) {
    const int64_t g = i / BNB_NESTED_BLOCKSIZE;
    if (g != (i + L - 1) / BNB_NESTED_BLOCKSIZE) {
      for (int l = 0; l < L; ++l) out[i + l - i0] = nested_absmax_one(q, absmax2, code, offset, i + l);
      continue;
    }
#if defined(MM4_AVX512)
    const __m512 c = _mm512_i32gather_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(q + i))), code, 4);
    const __m512 v = _mm512_mul_ps(c, _mm512_set1_ps(absmax2[g]));
    _mm512_storeu_ps(out + (i - i0), _mm512_add_ps(v, _mm512_set1_ps(offset)));
#else
    const __m256 c = _mm256_i32gather_ps(code, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(q + i))), 4);
    const __m256 v = _mm256_mul_ps(c, _mm256_set1_ps(absmax2[g]));
    _mm256_storeu_ps(out + (i - i0), _mm256_add_ps(v, _mm256_set1_ps(offset)));
#endif
  }
#endif
  for (; i < i1; ++i) out[i - i0] = nested_absmax_one(q, absmax2, code, offset, i);
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

void rows(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
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

#if defined(MM4_AVX512) || defined(MM4_AVX2)
// ============================================================ gemv (one row of A, blocksize >= 64): the shared parts
// Groups of 16 rows. Rows of at most 2 KiB (K <= 4096) go as 4 tiles of rows 4 apart (0, 4, 8, 12; 1, 5, ...), so
// a tile's 4 streams lie 8 KiB apart instead of 2 KiB: streamed from memory (2 threads, 2026-12-06 Xeon VM)
// 14336 x 4096 and 11008 x 4096 ~3-4% faster, longer rows not (K = 14336: rows 2 apart the same, 4 apart slower).
// A double-quantized absmax (a.absmax_q) is decoded per group into a scratch buffer (a gather per 16 blocks), and
// the unit loop reads it from there like a plain one. Decoding it per unit instead (scalar loads, a multiply, an
// add and a broadcast from a register, which takes the shuffle port the vpermw need) made the gemv 19% slower
// hot and 10% streamed than with a plain absmax (4096 x 4096, 2 threads). Tiles: GemvTiles<unit> (gemv_tile) or
// Gemv16Tiles (AVX2 bf16, which also takes several rows).
template <bool NESTED, class Tiles>
void rows_gemv_groups(Mm4Args a, const Tiles& tiles, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  std::vector<float> scratch(NESTED ? (size_t)(16 * ((K >> a.bshift) + 2)) : 0);
  if (NESTED) a.absmax = scratch.data();
  for (int64_t g = n0; g < n1; g += 16) {
    const int64_t g1 = g + 16 < n1 ? g + 16 : n1, blk0 = NESTED ? (g * K) >> a.bshift : 0;
    if (NESTED)
      nested_absmax(a.absmax_q, a.absmax2, a.absmax_code, a.absmax_offset, blk0, ((g1 * K - 1) >> a.bshift) + 1,
                    scratch.data());
    if (K <= 4096 && g1 - g == 16) {
      for (int r = 0; r < 4; ++r) tiles.template run<4, 4, NESTED>(a, g + r, blk0);
      continue;
    }
    int64_t n = g;
    for (; n + 4 <= g1; n += 4) tiles.template run<4, 1, NESTED>(a, n, blk0);
    for (; n < g1; ++n) tiles.template run<1, 1, NESTED>(a, n, blk0);
  }
}

// The exact-weight decode's element order (AVX-512: V::L = 16, AVX2: 8): each 16-byte half h of a unit is broadcast
// to the G = V::L / 4 128-bit lanes, and vector s (of 8 / G per half) shifts lane d right by 4 k, k = (d >> 2) + G s:
// nibble k of dword d & 3 (k even: a byte's low nibble, the odd element). Output lane q * V::L + d of a unit <-
// element idx of the unit.
struct Gemv32Order {
  alignas(64) int32_t idx[64];
  constexpr Gemv32Order() : idx() {
    constexpr int G = V::L / 4, S = 8 / G;
    for (int q = 0; q < 2 * S; ++q)
      for (int d = 0; d < V::L; ++d) {
        const int h = q / S, s = q % S, k = (d >> 2) + G * s, byte = 16 * h + 4 * (d & 3) + (k >> 1);
        idx[q * V::L + d] = 2 * byte + ((k & 1) ? 0 : 1);
      }
  }
};
constexpr Gemv32Order kGemv32Order{};

// The unit loop of every gemv variant: NB weight rows RS apart from n0; each 64-element unit's products go to a
// fresh partial sum (unit.dot(p, ak): the packed unit at p with A's unit ak = unit.a_at(k), read once per k for the
// NB rows) that one FMA scales by the block's absmax. Streaming: one software prefetch per cache line, at least
// 8 KiB ahead (a whole number of tiles: without it the weight streamed from memory at ~10 GB/s on the 2026-12-06
// Xeon VM), and the absmax line of the same point ahead (a double-quantized absmax is in the group's scratch).
// Not inlined: inlined into the row loop next to the nested_absmax calls, GCC kept the accumulators of the nested
// variant in memory (a store per unit and a load-FMA-store chain), 5-6% of the gemv. U: vf, zero, set1, fma, hsum.
// prefetch distance of a tile of tile_bytes: a whole number of tiles, at least 8 KiB
inline int64_t gemv_pf_distance(int64_t tile_bytes) {
  return tile_bytes * (tile_bytes < 8192 ? 8192 / tile_bytes : 1);
}

// before the unit at element e: the weight line pfd bytes ahead (once per line) and, for a plain absmax, the absmax
// line of the same point ahead (a double-quantized one is in the group's scratch)
template <bool NESTED>
inline __attribute__((always_inline)) void gemv_prefetch(const Mm4Args& a, int64_t e, int64_t pfd) {
  const uint8_t* pf = a.B + (e >> 1) + pfd;
  if ((((uintptr_t)pf) & 32) == 0) _mm_prefetch((const char*)pf, _MM_HINT_T1);
  if (!NESTED && ((e >> a.bshift) & 15) == 0)
    _mm_prefetch((const char*)(a.absmax + ((e + 2 * pfd) >> a.bshift)), _MM_HINT_T1);
}

template <int NB, int RS, bool NESTED, class U>
__attribute__((noinline)) void gemv_tile(const Mm4Args& a, const U& unit, int64_t n0, int64_t blk0) {
  const int64_t K = a.K;
  typename U::vf acc[NB];
  for (int j = 0; j < NB; ++j) acc[j] = U::zero();
  const int64_t pfd = gemv_pf_distance(NB * RS * (K >> 1));
  for (int64_t k = 0; k < K; k += 64) {
    const auto ak = unit.a_at(k);
    for (int j = 0; j < NB; ++j) {
      const int64_t e = (n0 + j * RS) * K + k;
      gemv_prefetch<NESTED>(a, e, pfd);
      const int64_t blk = e >> a.bshift;
      acc[j] = U::fma(unit.dot(a.B + (e >> 1), ak), U::set1(a.absmax[NESTED ? blk - blk0 : blk]), acc[j]);
    }
  }
  for (int j = 0; j < NB; ++j) store_out(a, 0, n0 + j * RS, U::hsum(acc[j]));
}

// rows_gemv_groups' tiles for a unit type U (every variant but the AVX2 bf16 one, which also takes several rows)
template <class U>
struct GemvTiles {
  U unit;
  template <int NB, int RS, bool NESTED>
  void run(const Mm4Args& a, int64_t n0, int64_t blk0) const {
    gemv_tile<NB, RS, NESTED>(a, unit, n0, blk0);
  }
};

template <class U>
void rows_gemv_with(const Mm4Args& args, const U& unit, int64_t n0, int64_t n1) {
  const GemvTiles<U> tiles{unit};
  if (args.absmax_q)
    rows_gemv_groups<true>(args, tiles, n0, n1);  // (by value: a local copy, see rows_direct_t)
  else
    rows_gemv_groups<false>(args, tiles, n0, n1);
}
#endif

#if defined(MM4_AVX512)
// Each 64-element unit lies in one block: its products with the UNSCALED fp32 code go to a fresh partial sum that
// one FMA scales by the block's absmax. Decode without a shuffle-port expansion: each 16-byte half of the unit is
// broadcast to the four 128-bit lanes (a load), and two variable dword shifts leave nibble (d >> 2) + 4 s of dword
// d & 3 in the low 4 bits of lane d (s = 0, 1), the only index bits vpermps reads. Per unit and weight row: 4 shifts,
// 4 vpermps, 4 multiply/FMA into the partial, 1 FMA by absmax (13 vector uops, against 7 + 2 vdpbf16ps of the bf16
// gemv, whose vdpbf16ps issue once per ~2.1 cycles on the 2026-12-06 Xeon VM). A is converted to fp32 and permuted
// once per call to the decode's order (kGemv32Order, prep_a_gemv32). The weights are the exact fp32 codes, scaled by
// the absmax after the unit's sum. The row groups, the row order for short rows and the prefetching are the bf16
// gemv's (rows_gemv_groups, below).

// Rows of A [M][K] (dtype) -> fp32 in kGemv32Order per 64-element unit (K % 64 == 0).
void prep_a_gemv32(int dtype, const void* A, int64_t M, int64_t K, float* Ap) {
  __m512i idx[4];
  for (int q = 0; q < 4; ++q)  // two-source indices: vector q reads elements [32 (q >> 1), 32 (q >> 1) + 32)
    idx[q] = _mm512_sub_epi32(_mm512_load_si512((const void*)(kGemv32Order.idx + 16 * q)),
                              _mm512_set1_epi32(32 * (q >> 1)));
  for (int64_t u = 0; u < M * K; u += 64) {
    __m512 x[4];
    for (int v = 0; v < 4; ++v) {
      const int64_t e = u + 16 * v;
      if (dtype == 0) {
        x[v] = _mm512_loadu_ps((const float*)A + e);
      } else if (dtype == 1) {
        x[v] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)((const uint16_t*)A + e)));
      } else {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)((const uint16_t*)A + e)));
        x[v] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
      }
    }
    for (int q = 0; q < 4; ++q)
      _mm512_storeu_ps(Ap + u + 16 * q, _mm512_permutex2var_ps(x[2 * (q >> 1)], idx[q], x[2 * (q >> 1) + 1]));
  }
}

struct Gemv32Unit {
  typedef __m512 vf;
  __m512 tbl;  // the 16 fp32 codes
  __m512i sh0, sh1;
  const float* A;  // a.Ap
  explicit Gemv32Unit(const Mm4Args& a)
      : tbl(_mm512_loadu_ps(a.code)),
        sh0(_mm512_set_epi32(12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0)),
        sh1(_mm512_add_epi32(sh0, _mm512_set1_epi32(16))),
        A(a.Ap) {}
  struct Ak {
    __m512 a0, a1, a2, a3;
  };
  inline __attribute__((always_inline)) Ak a_at(int64_t k) const {
    return Ak{_mm512_loadu_ps(A + k), _mm512_loadu_ps(A + k + 16), _mm512_loadu_ps(A + k + 32),
              _mm512_loadu_ps(A + k + 48)};
  }
  inline __attribute__((always_inline)) vf dot(const uint8_t* p, const Ak& x) const {
    const __m512i b0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)p));
    const __m512i b1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)(p + 16)));
    __m512 t = _mm512_mul_ps(x.a0, _mm512_permutexvar_ps(_mm512_srlv_epi32(b0, sh0), tbl));
    t = _mm512_fmadd_ps(x.a1, _mm512_permutexvar_ps(_mm512_srlv_epi32(b0, sh1), tbl), t);
    t = _mm512_fmadd_ps(x.a2, _mm512_permutexvar_ps(_mm512_srlv_epi32(b1, sh0), tbl), t);
    return _mm512_fmadd_ps(x.a3, _mm512_permutexvar_ps(_mm512_srlv_epi32(b1, sh1), tbl), t);
  }
  static inline vf zero() { return _mm512_setzero_ps(); }
  static inline vf set1(float v) { return _mm512_set1_ps(v); }
  static inline vf fma(vf x, vf y, vf z) { return _mm512_fmadd_ps(x, y, z); }
  static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
};

void rows_gemv32(const Mm4Args& args, int64_t n0, int64_t n1) { rows_gemv_with(args, Gemv32Unit(args), n0, n1); }
#elif defined(MM4_AVX2)
// The AVX2 form of the gemv above: 8 lanes, so each 16-byte half of a 64-element unit is broadcast to both 128-bit
// lanes and four variable shifts leave nibble (d >> 2) + 2 s of dword d & 3 in the low bits of lane d (s = 0..3); a
// 16-entry lookup is two vpermps (index bits 2:0) and a blend on bit 3 (V::lookup). Per unit and weight row: 8
// shifts, 8 lookups, 8 multiply/FMA, 1 FMA by absmax, with the unscaled code (no per-block table multiply). The row
// groups and prefetching are the AVX-512 gemv's: before, one row of A on AVX2 took the general fp32 path, which
// streamed from memory at half its in-cache speed. This exact form serves fp32 and fp16 A; bf16 A takes Gemv16Unit.

// bf16 A on AVX2: the weights as bf16(code) (the bf16 paths' rounding) looked up by vpshufb, which runs on two ports
// of recent x86 cores where vpermps runs on one: the unit's 64 nibbles as two byte vectors of indices, the low and
// the high byte of bf16(code) by one vpshufb each, interleaved into words (unpack 8) and into the high half of
// dwords (unpack 16 with zero): that is fp32(bf16(code)) with no conversion. 16 shuffles + 3 integer ops per unit
// and weight row against 16 vpermps + 8 shifts + 16 more for the blends of Gemv32Unit: measured on this VM
// (BNB_CPU_ISA=avx2, 2 threads, 4096x4096 in cache) 0.51 ms against 0.885, torch's AVX2 int4 kernel 0.80.
// Not for fp32 / fp16 A: their error bound needs the exact weights. Lane d of vector q (nib = q >> 2, u = (q >> 1)
// & 1, h16 = q & 1) is element 2 j + nib, j = 16 (d >> 2) + 8 u + 4 h16 + (d & 3) (nib 0: high nibbles, even).
struct Gemv16Order {
  int32_t idx[64];  // output lane q * 8 + d of a unit <- element idx of the unit
  constexpr Gemv16Order() : idx() {
    for (int q = 0; q < 8; ++q)
      for (int d = 0; d < 8; ++d) {
        const int nib = q >> 2, u = (q >> 1) & 1, h16 = q & 1;
        const int j = 16 * (d >> 2) + 8 * u + 4 * h16 + (d & 3);
        idx[q * 8 + d] = 2 * j + nib;
      }
  }
};
constexpr Gemv16Order kGemv16Order{};

struct Gemv16Unit {
  typedef __m256 vf;
  __m256i tl, th;  // the low and the high byte of bf16(code), in both 128-bit lanes
  __m256i m15, z;
  const float* A;  // a.Ap
  Gemv16Unit(const Mm4Args& a, __m256i lo, __m256i hi)
      : tl(lo), th(hi), m15(_mm256_set1_epi8(15)), z(_mm256_setzero_si256()), A(a.Ap) {}
  inline __attribute__((always_inline)) const float* a_at(int64_t k) const { return A + k; }
  // the unit at p as 8 fp32 vectors: f(off, v) for the elements [off, off + 8) of A's unit (kGemv16Order)
  template <class F>
  inline __attribute__((always_inline)) void decode(const uint8_t* p, F&& f) const {
    const __m256i w = _mm256_loadu_si256((const __m256i*)p);
    for (int nib = 0; nib < 2; ++nib) {
      const __m256i ix = nib == 0 ? _mm256_and_si256(_mm256_srli_epi16(w, 4), m15) : _mm256_and_si256(w, m15);
      const __m256i L = _mm256_shuffle_epi8(tl, ix), H = _mm256_shuffle_epi8(th, ix);
      const __m256i wa = _mm256_unpacklo_epi8(L, H), wb = _mm256_unpackhi_epi8(L, H);
      f(32 * nib, _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, wa)));
      f(32 * nib + 8, _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, wa)));
      f(32 * nib + 16, _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, wb)));
      f(32 * nib + 24, _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, wb)));
    }
  }
  inline __attribute__((always_inline)) vf dot(const uint8_t* p, const float* ak) const {
    __m256 t = _mm256_setzero_ps();
    decode(p, [&](int off, __m256 v) { t = _mm256_fmadd_ps(_mm256_loadu_ps(ak + off), v, t); });
    return t;
  }
  static inline vf zero() { return _mm256_setzero_ps(); }
  static inline vf set1(float v) { return _mm256_set1_ps(v); }
  static inline vf fma(vf x, vf y, vf z) { return _mm256_fmadd_ps(x, y, z); }
  static inline float hsum(vf v) { return V::hsum(v); }
};

// Several rows of bf16 A (AVX2): weight row n decoded once per unit (Gemv16Unit::decode) for up to 4 rows of A from
// m0, each decoded vector multiplied into the 4 rows' partial sums at once.
template <int MB, bool NESTED>
inline void gemm16_rows(const Mm4Args& a, const Gemv16Unit& u, int64_t n, int64_t m0, int64_t blk0) {
  const int64_t K = a.K;
  __m256 acc[MB];
  for (int i = 0; i < MB; ++i) acc[i] = _mm256_setzero_ps();
  const float* A0 = a.Ap + m0 * K;
  const int64_t pfd = gemv_pf_distance(K >> 1);
  for (int64_t k = 0; k < K; k += 64) {
    const int64_t e = n * K + k;
    if (m0 == 0) gemv_prefetch<NESTED>(a, e, pfd);  // later groups of rows of A find the row in cache
    __m256 t[MB];
    for (int i = 0; i < MB; ++i) t[i] = _mm256_setzero_ps();
    u.decode(a.B + (e >> 1), [&](int off, __m256 v) {
      for (int i = 0; i < MB; ++i) t[i] = _mm256_fmadd_ps(_mm256_loadu_ps(A0 + i * K + k + off), v, t[i]);
    });
    const int64_t blk = e >> a.bshift;
    const __m256 s = _mm256_set1_ps(a.absmax[NESTED ? blk - blk0 : blk]);
    for (int i = 0; i < MB; ++i) acc[i] = _mm256_fmadd_ps(t[i], s, acc[i]);
  }
  for (int i = 0; i < MB; ++i) store_out(a, m0 + i, n, V::hsum(acc[i]));
}

template <bool NESTED>
__attribute__((noinline)) void tile_gemm16(const Mm4Args& a, const Gemv16Unit& u, int64_t n, int64_t blk0) {
  int64_t m = 0;
  for (; m + 4 <= a.M; m += 4) gemm16_rows<4, NESTED>(a, u, n, m, blk0);
  switch (a.M - m) {
    case 3: gemm16_rows<3, NESTED>(a, u, n, m, blk0); break;
    case 2: gemm16_rows<2, NESTED>(a, u, n, m, blk0); break;
    case 1: gemm16_rows<1, NESTED>(a, u, n, m, blk0); break;
    default: break;
  }
}

// Several rows of bf16 A go to tile_gemm16 while the fp32 copy of A fits in L2 (Mm4Table::gemv32_bf16_max_elems: M
// * K <= 2^18, 1 MiB): it re-reads all of A for every weight row. AVX2, 2 threads, this VM (2 MiB L2), 4096 x 4096
// against the general fp32 path: 2 rows 0.76 / 1.31 ms, 4 1.26 / 1.60, 16 4.80 / 6.03, 64 20.9 / 26.2, 128 71 / 51;
// 4096 x 14336: 16 rows 17.4 / 22.7, 32 rows 48.6 / 48.0, 64 rows 214 / 92.
constexpr int64_t kGemm16MaxElems = int64_t(1) << 18;

struct Gemv16Tiles {
  Gemv16Unit unit;
  template <int NB, int RS, bool NESTED>
  void run(const Mm4Args& a, int64_t n0, int64_t blk0) const {
    if (a.M == 1) {
      gemv_tile<NB, RS, NESTED>(a, unit, n0, blk0);
    } else {
      for (int j = 0; j < NB; ++j) tile_gemm16<NESTED>(a, unit, n0 + j * RS, blk0);
    }
  }
};

// Rows of A [M][K] -> fp32 in the decode's order: kGemv16Order for bf16 A (Gemv16Unit), else kGemv32Order.
void prep_a_gemv32(int dtype, const void* A, int64_t M, int64_t K, float* Ap) {
  const int32_t* order = dtype == 2 ? kGemv16Order.idx : kGemv32Order.idx;
  alignas(32) float x[64];
  for (int64_t u = 0; u < M * K; u += 64) {
    for (int i = 0; i < 64; ++i) x[i] = bnb::load_as_f32(A, u + i, dtype);
    for (int i = 0; i < 64; ++i) Ap[u + i] = x[order[i]];
  }
}

struct Gemv32Unit {
  typedef __m256 vf;
  V::Tbl tbl;  // the 16 fp32 codes
  __m256i sh0, sh1, sh2, sh3;
  const float* A;  // a.Ap
  explicit Gemv32Unit(const Mm4Args& a)
      : tbl(V::load_code(a.code)),
        sh0(_mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)),
        sh1(_mm256_add_epi32(sh0, _mm256_set1_epi32(8))),
        sh2(_mm256_add_epi32(sh1, _mm256_set1_epi32(8))),
        sh3(_mm256_add_epi32(sh2, _mm256_set1_epi32(8))),
        A(a.Ap) {}
  inline __attribute__((always_inline)) const float* a_at(int64_t k) const { return A + k; }
  inline __attribute__((always_inline)) vf dot(const uint8_t* p, const float* ak) const {
    __m256 t = _mm256_setzero_ps();
    for (int h = 0; h < 2; ++h) {
      const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(p + 16 * h)));
      const float* ah = ak + 32 * h;
      t = _mm256_fmadd_ps(_mm256_loadu_ps(ah), V::lookup(_mm256_srlv_epi32(b, sh0), tbl), t);
      t = _mm256_fmadd_ps(_mm256_loadu_ps(ah + 8), V::lookup(_mm256_srlv_epi32(b, sh1), tbl), t);
      t = _mm256_fmadd_ps(_mm256_loadu_ps(ah + 16), V::lookup(_mm256_srlv_epi32(b, sh2), tbl), t);
      t = _mm256_fmadd_ps(_mm256_loadu_ps(ah + 24), V::lookup(_mm256_srlv_epi32(b, sh3), tbl), t);
    }
    return t;
  }
  static inline vf zero() { return _mm256_setzero_ps(); }
  static inline vf set1(float v) { return _mm256_set1_ps(v); }
  static inline vf fma(vf x, vf y, vf z) { return _mm256_fmadd_ps(x, y, z); }
  static inline float hsum(vf v) { return V::hsum(v); }
};

void rows_gemv32(const Mm4Args& args, int64_t n0, int64_t n1) {
  if (args.dtype != 2) return rows_gemv_with(args, Gemv32Unit(args), n0, n1);
  // bf16 A: bf16(code) weights (Gemv16Unit; several rows: tile_gemm16)
  alignas(32) uint8_t lo[32], hi[32];
  for (int i = 0; i < 16; ++i) {
    uint32_t u;
    memcpy(&u, args.code + i, 4);
    u += 0x7FFF + ((u >> 16) & 1);  // round to nearest even (the codes are finite)
    lo[i] = lo[i + 16] = (uint8_t)(u >> 16);
    hi[i] = hi[i + 16] = (uint8_t)(u >> 24);
  }
  const Gemv16Tiles t16{
      Gemv16Unit(args, _mm256_load_si256((const __m256i*)lo), _mm256_load_si256((const __m256i*)hi))};
  if (args.absmax_q)
    rows_gemv_groups<true>(args, t16, n0, n1);
  else
    rows_gemv_groups<false>(args, t16, n0, n1);
}
#endif  // MM4_AVX512 / MM4_AVX2

#if defined(MM4_BF16)
// ============================================================ bf16 path (vdpbf16ps)
void prep_a_bf16(const uint16_t* A, int64_t M, int64_t K, uint16_t* Abf) { prep_perm<uint16_t>(A, M, K, 64, Abf); }

// ------------------------------------------------------------ tile path (outer products, many rows of A)
// A tile of TNR weight rows x TKC columns is decoded once into an L1 buffer in the dot-product-pair layout
// (pair p = columns 2p, 2p+1 of 16 consecutive weight rows per 64-byte vector: [TKC/2][TNR] dwords), then
// every row of A is multiplied by it with vdpbf16ps: each A pair is broadcast, each accumulator lane is one
// output, so no horizontal sums. The weights are the same bf16(code * absmax) as the direct path's.
constexpr int TNR = 64;   // weight rows per tile: 4 vectors of 16 outputs
constexpr int TKC = 256;  // columns per tile: 128 pairs x 64 rows x 4 B = 32 KiB
constexpr int TMT = 192;  // rows of A per macro tile: fp32 partial sums 192 x 64 x 4 B = 48 KiB
constexpr int TMR = 6;    // rows of A per register tile: 6 x 4 accumulators

#include "simd_transpose.h"  // transpose16 (per-ISA: inside this namespace on purpose)

// 32 packed bytes of one weight row -> 32 pairs (two vectors) in natural order: word 2j = byte j >> 4
// (column 2j), word 2j+1 = byte j & 15 (column 2j+1). The first vector looks up entries 0-15 of tbl, the
// second entries hi + 0-15 (hi = 16: a second table in the upper half, for blocksize 32; hi = 0: the same).
inline void decode_pairs64(const uint8_t* p, __m512i tbl, __m512i hi, __m512i sel_lo, __m512i sel_hi, __m512i& w0,
                           __m512i& w1) {
  const __m512i b = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)p));
  const __m512i shifts = _mm512_set1_epi32(4);  // even words >> 4, odd words >> 0
  const __m512i m15 = _mm512_set1_epi16(15);
  const __mmask64 even = 0x5555555555555555ull;
  const __m512i i0 = _mm512_srlv_epi16(_mm512_maskz_permutexvar_epi8(even, sel_lo, b), shifts);
  const __m512i i1 = _mm512_srlv_epi16(_mm512_maskz_permutexvar_epi8(even, sel_hi, b), shifts);
  w0 = _mm512_permutexvar_epi16(_mm512_and_si512(i0, m15), tbl);
  w1 = _mm512_permutexvar_epi16(_mm512_ternarylogic_epi32(i1, m15, hi, 0xEA), tbl);  // (i1 & m15) | hi
}
// bf16(code * s) in entries 0-15 (entries 16-31 undefined)
inline __m512i scaled_table(const __m512 code, float s) {
  return _mm512_castsi256_si512((__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(s))));
}
// bf16(code * s0) in entries 0-15, bf16(code * s1) in entries 16-31
inline __m512i scaled_table2(const __m512 code, float s0, float s1) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(code, _mm512_set1_ps(s1)), _mm512_mul_ps(code, _mm512_set1_ps(s0)));
}

// decode weight rows [n, n + nr) (nr <= TNR), columns [k0, k0 + kc) (kc % 64 == 0) into wt[kc/2][TNR]:
// 16 rows at a time into a row-major staging buffer, then 16 x 16 dword transposes
inline void decode_tile(const Mm4Args& a, const __m512 code, int64_t n, int nr, int64_t k0, int64_t kc,
                        uint32_t* wt) {
  alignas(64) static const uint8_t kSel[64] = {0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 2, 0, 3, 0, 3, 0, 4, 0, 4, 0, 5, 0,
                                              5, 0, 6, 0, 6, 0, 7, 0, 7, 0, 8, 0, 8, 0, 9, 0, 9, 0, 10, 0, 10, 0,
                                              11, 0, 11, 0, 12, 0, 12, 0, 13, 0, 13, 0, 14, 0, 14, 0, 15, 0, 15, 0};
  alignas(64) uint32_t stage[16 * (TKC / 2)];
  const __m512i sel_lo = _mm512_load_si512((const void*)kSel);
  const __m512i sel_hi = _mm512_add_epi8(sel_lo, _mm512_set1_epi8(16));
  const __m512i hi16 = _mm512_set1_epi16(16), zero = _mm512_setzero_si512();
  const int64_t K = a.K, np = kc / 2;
  for (int j = 0; j * 16 < nr; ++j) {
    const int rows = (nr - j * 16) < 16 ? (nr - j * 16) : 16;
    for (int i = 0; i < rows; ++i) {
      const int64_t e0 = (n + j * 16 + i) * K + k0;
      uint32_t* dst = stage + i * (TKC / 2);
      // this row's columns one tile ahead into L1 and three tiles ahead into L2: the 64 rows of a tile are 64
      // interleaved streams of 2 lines each, beyond the hardware prefetchers (from L3 the decode is
      // latency-bound without this)
      if (k0 + TKC < K)
        for (int64_t pb = 0; pb < TKC / 2; pb += 64) _mm_prefetch((const char*)(a.B + ((e0 + TKC) >> 1) + pb), _MM_HINT_T0);
      if (k0 + 3 * TKC < K)
        for (int64_t pb = 0; pb < TKC / 2; pb += 64)
          _mm_prefetch((const char*)(a.B + ((e0 + 3 * TKC) >> 1) + pb), _MM_HINT_T1);
      if (a.blocksize == 32) {
        for (int64_t kk = 0; kk < kc; kk += 64) {
          const int64_t e = e0 + kk;
          __m512i w0, w1;
          decode_pairs64(a.B + (e >> 1), scaled_table2(code, a.absmax[e >> 5], a.absmax[(e >> 5) + 1]), hi16, sel_lo,
                         sel_hi, w0, w1);
          _mm512_store_si512((void*)(dst + kk / 2), w0);
          _mm512_store_si512((void*)(dst + kk / 2 + 16), w1);
        }
      } else {
        for (int64_t kk = 0; kk < kc; kk += 64) {
          const int64_t e = e0 + kk;
          const __m512i t = scaled_table(code, a.absmax[e >> a.bshift]);
          __m512i w0, w1;
          decode_pairs64(a.B + (e >> 1), t, zero, sel_lo, sel_hi, w0, w1);
          _mm512_store_si512((void*)(dst + kk / 2), w0);
          _mm512_store_si512((void*)(dst + kk / 2 + 16), w1);
        }
      }
    }
    for (int i = rows; i < 16; ++i) memset(stage + i * (TKC / 2), 0, sizeof(uint32_t) * np);
    for (int64_t p = 0; p < np; p += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512((const void*)(stage + i * (TKC / 2) + p));
      transpose16(r);
      for (int q = 0; q < 16; ++q) _mm512_store_si512((void*)(wt + (p + q) * TNR + j * 16), r[q]);
    }
  }
}

// C[MR][TNR] (+)= A[MR rows, stride lda][2 * np] x wt[np][TNR], NV vectors of 16 outputs, with `units` calls
// of job.unit() spread over the pairs (the pipelined path's decode of its next tile; none for the tile path)
template <int MR, int NV, class Job>
inline void micro_pipe(const uint16_t* A, int64_t lda, const uint32_t* wt, int64_t np, float* C, bool init,
                       Job& job, int units) {
  __m512 c[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) c[i][j] = init ? _mm512_setzero_ps() : _mm512_load_ps(C + i * TNR + j * 16);
  const int64_t every = units > 0 ? (np / units > 0 ? np / units : 1) : np + 1;
  int done = 0;
  int64_t countdown = every;
  for (int64_t p = 0; p < np; ++p) {
    __m512i w[NV];
    for (int j = 0; j < NV; ++j) w[j] = _mm512_load_si512((const void*)(wt + p * TNR + j * 16));
    for (int i = 0; i < MR; ++i) {
      int32_t v;
      memcpy(&v, A + i * lda + 2 * p, 4);
      const __m512i av = _mm512_set1_epi32(v);
      for (int j = 0; j < NV; ++j) c[i][j] = _mm512_dpbf16_ps(c[i][j], (__m512bh)av, (__m512bh)w[j]);
    }
    if (--countdown == 0) {
      countdown = every;
      if (done < units) {
        job.unit();
        ++done;
      }
    }
  }
  for (; done < units; ++done) job.unit();
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) _mm512_store_ps(C + i * TNR + j * 16, c[i][j]);
}

struct NoJob {
  void unit() {}
};

template <int MR, int NV>
inline void micro_tile(const uint16_t* A, int64_t lda, const uint32_t* wt, int64_t np, float* C, bool init) {
  NoJob none;
  micro_pipe<MR, NV>(A, lda, wt, np, C, init, none, 0);
}

template <int NV>
inline void micro_tile_m(int mr, const uint16_t* A, int64_t lda, const uint32_t* wt, int64_t np, float* C, bool init) {
  switch (mr) {
    case 6: return micro_tile<6, NV>(A, lda, wt, np, C, init);
    case 5: return micro_tile<5, NV>(A, lda, wt, np, C, init);
    case 4: return micro_tile<4, NV>(A, lda, wt, np, C, init);
    case 3: return micro_tile<3, NV>(A, lda, wt, np, C, init);
    case 2: return micro_tile<2, NV>(A, lda, wt, np, C, init);
    default: return micro_tile<1, NV>(A, lda, wt, np, C, init);
  }
}

// rows [m0, m0 + rows) x outputs [n, n + cnt) (cnt <= 16): row i's 16 fp32 sums at src + i * ld, + bias -> bf16
// out, rounded to nearest even, NaN -> the canonical 0x7FC0 (bf16 out: the only dtype of the bf16 paths)
inline void store_bf16_group(const Mm4Args& a, int64_t m0, int64_t rows, int64_t n, int cnt, const float* src,
                             int64_t ld) {
  const uint16_t* bias = (const uint16_t*)a.bias;
  uint16_t* out = (uint16_t*)a.out;
  const __mmask16 mk = (__mmask16)((1u << cnt) - 1u);
  __m512 bv = _mm512_setzero_ps();
  if (bias)
    bv = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, bias + n)), 16));
  for (int64_t i = 0; i < rows; ++i) {
    __m512 v = _mm512_loadu_ps(src + i * ld);
    if (bias) v = _mm512_add_ps(v, bv);
    __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    h = _mm256_mask_mov_epi16(h, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm256_set1_epi16(0x7FC0));
    _mm256_mask_storeu_epi16(out + (m0 + i) * a.N + n, mk, h);
  }
}

inline void store_tile(const Mm4Args& a, int64_t m0, int64_t mt, int64_t n, int nr, const float* C) {
  for (int j = 0; j * 16 < nr; ++j)
    store_bf16_group(a, m0, mt, n + j * 16, (nr - j * 16) < 16 ? (nr - j * 16) : 16, C + j * 16, TNR);
}

// A is a.Abf in natural order (not permuted), K % 32 == 0
void rows_bf16_tile(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
  alignas(64) uint32_t wt[TKC / 2 * TNR];
  alignas(64) float cb[TMT * TNR];
  const __m512 code = _mm512_loadu_ps(a.code);
  const int64_t K = a.K;
  for (int64_t n = n0; n < n1; n += TNR) {
    const int nr = (int)((n1 - n) < TNR ? (n1 - n) : TNR);
    const int nv = (nr + 15) / 16;
    for (int64_t m0 = 0; m0 < a.M; m0 += TMT) {
      const int64_t mt = (a.M - m0) < TMT ? (a.M - m0) : TMT;
      for (int64_t k0 = 0; k0 < K; k0 += TKC) {
        const int64_t kc = (K - k0) < TKC ? (K - k0) : TKC;
        decode_tile(a, code, n, nr, k0, kc, wt);
        for (int64_t i = 0; i < mt; i += TMR) {
          const int mr = (int)((mt - i) < TMR ? (mt - i) : TMR);
          const uint16_t* Ai = a.Abf + (m0 + i) * K + k0;
          float* C = cb + i * TNR;
          switch (nv) {
            case 4: micro_tile_m<4>(mr, Ai, K, wt, kc / 2, C, k0 == 0); break;
            case 3: micro_tile_m<3>(mr, Ai, K, wt, kc / 2, C, k0 == 0); break;
            case 2: micro_tile_m<2>(mr, Ai, K, wt, kc / 2, C, k0 == 0); break;
            default: micro_tile_m<1>(mr, Ai, K, wt, kc / 2, C, k0 == 0); break;
          }
        }
      }
      store_tile(a, m0, mt, n, nr, cb);
    }
  }
}

// ------------------------------------------------------------ pipelined tile path
// As rows_bf16, but the row-major decode of the NEXT tile is interleaved with the multiplies on the current
// one, one 64-column unit every few weight pairs, so the decode's shuffles issue next to vdpbf16ps instead
// of in a separate phase (the phases are longer than the reorder window). 128-column tiles (the tile and the
// next tile's staging rows: 2 x 16 KiB), 4 x 4 register tiles (registers left for a decode unit).
constexpr int PKC = 128;  // columns per tile
constexpr int PMR = 4;    // rows of A per register tile

struct TileJob {  // the next tile: rows [n, n + nr), columns [k0, k0 + kc), decoded row-major into stage
  const uint8_t* B;
  const float* absmax;
  int64_t K;
  int bshift;
  bool bs32;
  __m512 code;
  __m512i sel_lo, sel_hi, hi16;
  uint32_t* stage;  // [TNR][PKC / 2]
  int64_t n, k0;
  int nr, kc, next, total;

  void start(int64_t n_, int nr_, int64_t k0_, int kc_) {
    n = n_, nr = nr_, k0 = k0_, kc = kc_, next = 0, total = nr_ * (kc_ / 64);
  }
  inline void unit() {
    const int u = next++;
    const int i = kc == PKC ? u >> 1 : u, c = kc == PKC ? u & 1 : 0;  // PKC = 2 units per row (no division)
    const int64_t e = (n + i) * K + k0 + 64 * c;
    if (c == 0) {  // this row's next tiles: one ahead into L1, three ahead into L2 (64 interleaved streams)
      if (k0 + PKC < K) _mm_prefetch((const char*)(B + ((e + PKC) >> 1)), _MM_HINT_T0);
      if (k0 + 4 * PKC < K) _mm_prefetch((const char*)(B + ((e + 4 * PKC) >> 1)), _MM_HINT_T1);
    }
    __m512i w0, w1;
    if (bs32)
      decode_pairs64(B + (e >> 1), scaled_table2(code, absmax[e >> 5], absmax[(e >> 5) + 1]), hi16, sel_lo, sel_hi, w0,
                     w1);
    else
      decode_pairs64(B + (e >> 1), scaled_table(code, absmax[e >> bshift]), _mm512_setzero_si512(), sel_lo, sel_hi,
                     w0, w1);
    uint32_t* dst = stage + i * (PKC / 2) + 32 * c;
    _mm512_store_si512((void*)dst, w0);
    _mm512_store_si512((void*)(dst + 16), w1);
  }
  void finish() {
    while (next < total) unit();
  }
};

// stage rows [0, nr) (rows >= nr read as zero), pairs [0, kc / 2) -> wt[kc / 2][TNR]
inline void transpose_stage(const uint32_t* stage, int nr, int kc, uint32_t* wt) {
  for (int j = 0; j * 16 < nr; ++j)
    for (int p = 0; p < kc / 2; p += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = j * 16 + i < nr ? _mm512_load_si512((const void*)(stage + (j * 16 + i) * (PKC / 2) + p))
                               : _mm512_setzero_si512();
      transpose16(r);
      for (int q = 0; q < 16; ++q) _mm512_store_si512((void*)(wt + (p + q) * TNR + j * 16), r[q]);
    }
}

template <int NV>
inline void micro_pipe_m(int mr, const uint16_t* A, int64_t lda, const uint32_t* wt, int64_t np, float* C, bool init,
                         TileJob& job, int units) {
  switch (mr) {
    case 4: return micro_pipe<4, NV>(A, lda, wt, np, C, init, job, units);
    case 3: return micro_pipe<3, NV>(A, lda, wt, np, C, init, job, units);
    case 2: return micro_pipe<2, NV>(A, lda, wt, np, C, init, job, units);
    default: return micro_pipe<1, NV>(A, lda, wt, np, C, init, job, units);
  }
}

void rows_bf16_pipe(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
  alignas(64) uint32_t wt[PKC / 2 * TNR];
  alignas(64) uint32_t stage[TNR * (PKC / 2)];
  alignas(64) float cb[TMT * TNR];
  alignas(64) static const uint8_t kSel[64] = {0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 2, 0, 3, 0, 3, 0, 4, 0, 4, 0, 5, 0,
                                              5, 0, 6, 0, 6, 0, 7, 0, 7, 0, 8, 0, 8, 0, 9, 0, 9, 0, 10, 0, 10, 0,
                                              11, 0, 11, 0, 12, 0, 12, 0, 13, 0, 13, 0, 14, 0, 14, 0, 15, 0, 15, 0};
  const int64_t K = a.K;
  TileJob job;
  job.B = a.B, job.absmax = a.absmax, job.K = K, job.bshift = a.bshift, job.bs32 = a.blocksize == 32;
  job.code = _mm512_loadu_ps(a.code);
  job.sel_lo = _mm512_load_si512((const void*)kSel);
  job.sel_hi = _mm512_add_epi8(job.sel_lo, _mm512_set1_epi8(16));
  job.hi16 = _mm512_set1_epi16(16);
  job.stage = stage;
  // tiles in loop order (n, m0, k0); the first is decoded up front
  int64_t n = n0, m0 = 0, k0 = 0;
  auto nr_of = [&](int64_t nn) { return (int)((n1 - nn) < TNR ? (n1 - nn) : TNR); };
  auto kc_of = [&](int64_t kk) { return (int)((K - kk) < PKC ? (K - kk) : PKC); };
  job.start(n, nr_of(n), k0, kc_of(k0));
  job.finish();
  transpose_stage(stage, job.nr, job.kc, wt);
  for (;;) {
    const int nr = nr_of(n), nv = (nr + 15) / 16, kc = kc_of(k0);
    const int64_t mt = (a.M - m0) < TMT ? (a.M - m0) : TMT;
    // the next tile
    int64_t nn = n, nm0 = m0, nk0 = k0 + PKC;
    if (nk0 >= K) {
      nk0 = 0;
      nm0 = m0 + TMT;
      if (nm0 >= a.M) nm0 = 0, nn = n + TNR;
    }
    const bool has_next = nn < n1;
    if (has_next) job.start(nn, nr_of(nn), nk0, kc_of(nk0));
    else job.start(n, 0, 0, 64);  // nothing to decode
    const int64_t ncalls = (mt + PMR - 1) / PMR;
    int left = job.total;
    for (int64_t i = 0, call = 0; i < mt; i += PMR, ++call) {
      const int mr = (int)((mt - i) < PMR ? (mt - i) : PMR);
      const int units = (int)((left + (ncalls - call) - 1) / (ncalls - call));
      left -= units;
      const uint16_t* Ai = a.Abf + (m0 + i) * K + k0;
      float* C = cb + i * TNR;
      switch (nv) {
        case 4: micro_pipe_m<4>(mr, Ai, K, wt, kc / 2, C, k0 == 0, job, units); break;
        case 3: micro_pipe_m<3>(mr, Ai, K, wt, kc / 2, C, k0 == 0, job, units); break;
        case 2: micro_pipe_m<2>(mr, Ai, K, wt, kc / 2, C, k0 == 0, job, units); break;
        default: micro_pipe_m<1>(mr, Ai, K, wt, kc / 2, C, k0 == 0, job, units); break;
      }
    }
    if (k0 + PKC >= K) store_tile(a, m0, mt, n, nr, cb);
    if (!has_next) break;
    job.finish();
    transpose_stage(stage, job.nr, job.kc, wt);
    n = nn, m0 = nm0, k0 = nk0;
  }
}

// From 24 rows of A the pipelined path (its 4 x 4 register tile is slower than the 6 x 4 one, but the decode
// hides behind the multiplies). Single thread, 4096 x 4096, cycles per 32 weights, pipelined vs tile: 24 rows
// 17.5-18 vs 19-19.5, 32 rows 21-24 vs 25, 48 rows 28-29 vs 36, 128 rows 70-73 vs 89-90; 16 rows 14-15 vs 13.
constexpr int64_t kPipeMinRows = 24;

void rows_bf16(const Mm4Args& a, int64_t n0, int64_t n1) {
  if (a.M >= kPipeMinRows)
    rows_bf16_pipe(a, n0, n1);
  else
    rows_bf16_tile(a, n0, n1);
}

// ------------------------------------------------------------ direct bf16 path (few rows of A)
// The 64 elements [e, e + 64) of the flat weight (e % 64 == 0) as bf16(code * absmax): wh = the even elements,
// wl = the odd ones (word i = element 2i, 2i + 1). The table holds bf16(code * absmax) in entries 0-15 (blocksize
// 32: the next block's in entries 16-31, used by the upper 32 elements through lane_off).
// The lookup alone: the 32 packed bytes at p through tbl (BS32: the upper 32 elements from entries 16-31).
template <bool BS32>
inline __attribute__((always_inline)) void lookup_unit64(const uint8_t* p, const __m512i tbl, const __m512i lane_off,
                                                         const __m512i m15, __m512i& wh, __m512i& wl) {
  const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)p));
  __m512i ih = _mm512_srli_epi16(w, 4), il = _mm512_and_si512(w, m15);
  if (BS32) {
    ih = _mm512_or_si512(ih, lane_off);
    il = _mm512_or_si512(il, lane_off);
  }
  wh = _mm512_permutexvar_epi16(ih, tbl);
  wl = _mm512_permutexvar_epi16(il, tbl);
}
template <bool BS32>
inline __attribute__((always_inline)) void decode_unit64(const Mm4Args& a, const __m512 code, int64_t e,
                                                         const __m512i lane_off, const __m512i m15, __m512i& wh,
                                                         __m512i& wl) {
  const __m512i tbl =
      BS32 ? scaled_table2(code, a.absmax[e >> 5], a.absmax[(e >> 5) + 1]) : scaled_table(code, a.absmax[e >> a.bshift]);
  lookup_unit64<BS32>(a.B + (e >> 1), tbl, lane_off, m15, wh, wl);
}

// The same bf16(code * absmax) weights as the tile path, decoded in registers (one vpermw per 32 elements) and
// used at once in vdpbf16ps dot products along K; only the fp32 summation order differs from the tile path.
template <int MB, int NB, bool BS32>
inline void tile_direct(const Mm4Args& a, const __m512 code, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const __m512i lane_off = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(16), 1);
  const __m512i m15 = _mm512_set1_epi16(15);
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_setzero_ps();
  const uint16_t* A0 = a.Abf + m0 * K;
  const int64_t tile_bytes = NB * (K >> 1), pfd = tile_bytes * (tile_bytes < 32768 ? 32768 / tile_bytes : 1);
  for (int64_t k = 0; k < K; k += 64) {
    __m512i wh[NB], wl[NB];
    for (int j = 0; j < NB; ++j) {
      const int64_t e = (n0 + j) * K + k;
      _mm_prefetch((const char*)(a.B + (e >> 1) + pfd), _MM_HINT_T1);  // the same unit of a row tile >= 32 KiB ahead
      decode_unit64<BS32>(a, code, e, lane_off, m15, wh[j], wl[j]);
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

// ---- unscaled decode of a 64-element unit (the gemv and rows_amx_s; blocksize >= 64, absmax applied after)
// The 16-entry bf16(code) table is held twice (entries 16-31 = 0-15, so vpermw ignores bit 4 of an index). The
// unit's 32 bytes are broadcast to both halves of a register: word j holds elements 4j + 1 (bits 0-3), 4j (4-7),
// 4j + 3 (8-11) and 4j + 2 (12-15), so two variable shifts (by 0 / 4 and 8 / 12 per half) and two vpermw give
// v1 = elements 4p + 1 (p < 16) then 4(p - 16), v2 = 4p + 3 then 4(p - 16) + 2. A is permuted to that order
// once per call (kUnitOrder: prep_a_gemv, prep_a_amx_s). Single thread, in L2 (2026-12-06 Xeon VM): the gemv's
// unit went from ~9.0 to ~7.9 cycles against zero-extending the bytes, a shift, a mask and two vpermw (the two
// vdpbf16ps alone take ~4.2 here); masked constant shifts (3 per unit) ~8.4.
alignas(64) static const uint16_t kUnitOrder[64] = {
    1,  5,  9,  13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 0,  4,  8,  12, 16, 20,
    24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 3,  7,  11, 15, 19, 23, 27, 31, 35, 39, 43, 47,
    51, 55, 59, 63, 2,  6,  10, 14, 18, 22, 26, 30, 34, 38, 42, 46, 50, 54, 58, 62};

struct UnitDecode {
  __m512i tbl, sh1, sh2;  // the doubled bf16(code) table; shift counts per word of v1 / v2
  explicit UnitDecode(const float* code)
      : tbl(_mm512_broadcast_i64x4((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(code)))),
        sh1(_mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1)),
        sh2(_mm512_inserti64x4(_mm512_set1_epi16(8), _mm256_set1_epi16(12), 1)) {}
  // the weight row's unit at p (32 bytes) -> v1, v2 (tile steps 0 and 1 of rows_amx_s)
  inline __attribute__((always_inline)) void operator()(const uint8_t* p, __m512i& v1, __m512i& v2) const {
    const __m512i w = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)p));
    v1 = _mm512_permutexvar_epi16(_mm512_srlv_epi16(w, sh1), tbl);
    v2 = _mm512_permutexvar_epi16(_mm512_srlv_epi16(w, sh2), tbl);
  }
};

// One row of A [K] bf16 in kUnitOrder per 64-element unit (K % 64 == 0), for rows_gemv.
void prep_a_gemv(const uint16_t* A, int64_t K, uint16_t* Abf) {
  const __m512i i0 = _mm512_load_si512((const void*)kUnitOrder), i1 = _mm512_load_si512((const void*)(kUnitOrder + 32));
  for (int64_t u = 0; u < K; u += 64) {
    const __m512i x0 = _mm512_loadu_si512((const void*)(A + u)), x1 = _mm512_loadu_si512((const void*)(A + u + 32));
    _mm512_storeu_si512((void*)(Abf + u), _mm512_permutex2var_epi16(x0, i0, x1));
    _mm512_storeu_si512((void*)(Abf + u + 32), _mm512_permutex2var_epi16(x0, i1, x1));
  }
}

// One row of A (gemv), blocksize >= 64, A in kUnitOrder (prep_a_gemv): each 64-element unit lies in one block,
// so the table holds the UNSCALED bf16(code) (UnitDecode) and the unit's two dot products go to a fresh fp32
// partial sum that one FMA scales by the block's absmax (gemv_tile). That is 3 vector uops fewer per unit than
// building bf16(code * absmax) tables (mul + convert), and the weights are bf16(code) * absmax rounded once in fp32
// instead of bf16(code * absmax): within the same bf16 rounding of the weight. With several rows of A the extra
// FMA per row costs more than the table. Measured streamed from memory, 2 threads (2026-12-06 Xeon VM): 8-12%
// faster than the scaled-table kernel with one prefetch per unit 32 KiB ahead.
struct GemvBf16Unit {
  typedef __m512 vf;
  UnitDecode dec;
  const uint16_t* A;  // a.Abf
  struct Ak {
    __m512i ah, al;
  };
  inline __attribute__((always_inline)) Ak a_at(int64_t k) const {
    return Ak{_mm512_loadu_si512((const void*)(A + k)), _mm512_loadu_si512((const void*)(A + k + 32))};
  }
  inline __attribute__((always_inline)) vf dot(const uint8_t* p, const Ak& x) const {
    __m512i v1, v2;
    dec(p, v1, v2);
    const __m512 t = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)x.ah, (__m512bh)v1);
    return _mm512_dpbf16_ps(t, (__m512bh)x.al, (__m512bh)v2);
  }
  static inline vf zero() { return _mm512_setzero_ps(); }
  static inline vf set1(float v) { return _mm512_set1_ps(v); }
  static inline vf fma(vf x, vf y, vf z) { return _mm512_fmadd_ps(x, y, z); }
  static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
};

void rows_gemv(const Mm4Args& args, int64_t n0, int64_t n1) {
  rows_gemv_with(args, GemvBf16Unit{UnitDecode(args.code), args.Abf}, n0, n1);
}

template <int MB, int NB, bool BS32>
inline void rows_direct_mb(const Mm4Args& a, const __m512 tbl, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NB <= n1; n += NB) tile_direct<MB, NB, BS32>(a, tbl, m0, n);
  for (; n < n1; ++n) tile_direct<MB, 1, BS32>(a, tbl, m0, n);
}

template <bool BS32>
void rows_direct_t(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
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
  if (a.M == 1 && a.blocksize >= 64)
    rows_gemv(a, n0, n1);
  else if (a.blocksize == 32)
    rows_direct_t<true>(a, n0, n1);
  else
    rows_direct_t<false>(a, n0, n1);
}


// ------------------------------------------------------------ AMX path (amx tier, bf16 A, several rows)
// The tile unit computes C[16][16] += X[16][32 bf16] . Y[16 pairs][16][2 bf16]. The WEIGHTS are X: 16 weight
// rows x 32 columns, decoded row-major by decode_unit64 into a staging buffer (no transpose: each 64-element
// unit is stored as its even elements then its odd ones); the activations are Y: A permuted the same way and
// interleaved in pairs by prep_a_amx ([ceil(M/16)][K/2][16 rows of A][2], rows >= M zero). So C tiles are
// C^T: 16 outputs x 16 rows of A, transposed once per output tile when stored. Per 64 weight rows x XKC
// columns: the decode, then 4 C tiles (tmm0-3) per group of 16 rows of A, one Y tile (tmm4), X tiles in
// tmm5/tmm6. One group of rows keeps its C tiles in registers over all of K; more groups spill them to memory
// between chunks. The weights are the same bf16(code * absmax) as the other bf16 paths; the tile unit sums in
// fp32 (denormal inputs read as zero).
constexpr int XNR = 64;   // weight rows per step: 4 C tiles of 16
constexpr int XKC = 256;  // columns per decoded chunk: 64 rows x 256 bf16 = 32 KiB

#include "amx_tiles.h"  // AmxConfig, amx_config_16x64 (per-ISA: inside this namespace on purpose)

// Rows m0 .. m0 + 15 of A (rows >= M as zeros), columns [u, u + 64), permuted by the word indices i0 / i1 into
// 32 columns each and transposed as dword pairs: r0[q] / r1[q] lane i = pair q of row m0 + i.
inline void pairs16(const uint16_t* A, int64_t K, int64_t m0, int64_t M, int64_t u, const __m512i i0,
                    const __m512i i1, __m512i r0[16], __m512i r1[16]) {
  for (int i = 0; i < 16; ++i) {
    if (m0 + i < M) {
      const uint16_t* x = A + (m0 + i) * K + u;
      const __m512i x0 = _mm512_loadu_si512((const void*)x), x1 = _mm512_loadu_si512((const void*)(x + 32));
      r0[i] = _mm512_permutex2var_epi16(x0, i0, x1);
      r1[i] = _mm512_permutex2var_epi16(x0, i1, x1);
    } else {
      r0[i] = r1[i] = _mm512_setzero_si512();
    }
  }
  transpose16(r0);
  transpose16(r1);
}

void prep_a_amx(const uint16_t* A, int64_t M, int64_t K, uint16_t* Y) {
  // per 64 columns: x0 = columns 0-31, x1 = 32-63 -> y0 = even columns, y1 = odd columns (decode_unit64's
  // order); dword q of y0 / y1 is pair q / 16 + q of the unit; 16 rows of A transposed per unit
  alignas(64) static const uint16_t kIdx[64] = {
      0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
      44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23,
      25, 27, 29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
  const __m512i ie = _mm512_load_si512((const void*)kIdx), io = _mm512_load_si512((const void*)(kIdx + 32));
  const int64_t G = (M + 15) / 16, P = K / 2;
  for (int64_t g = 0; g < G; ++g) {
    uint32_t* yg = (uint32_t*)Y + g * P * 16;
    for (int64_t u = 0; u < K; u += 64) {
      __m512i r0[16], r1[16];
      pairs16(A, K, g * 16, M, u, ie, io, r0, r1);
      uint32_t* yu = yg + (u / 2) * 16;
      for (int q = 0; q < 16; ++q) {
        _mm512_storeu_si512((void*)(yu + q * 16), r0[q]);  // Y: any alignment (a std::vector in the glue)
        _mm512_storeu_si512((void*)(yu + (16 + q) * 16), r1[q]);
      }
    }
  }
}

// ct[j][r][i] (C tile j: weight row n + 16 j + r, row of A m0 + i) -> out[m0 + i][n + 16 j + r] (+ bias, bf16)
inline void store_amx_tile(const Mm4Args& a, int64_t m0, int mg, int64_t n, int nr, const float* ct) {
  alignas(64) float rows[16 * 16];
  for (int j = 0; j * 16 < nr; ++j) {
    __m512i r[16];
    for (int q = 0; q < 16; ++q) r[q] = _mm512_load_si512((const void*)(ct + (j * 16 + q) * 16));
    transpose16(r);  // r[i] = the 16 outputs of row m0 + i
    for (int i = 0; i < mg; ++i) _mm512_store_si512((void*)(rows + i * 16), r[i]);
    store_bf16_group(a, m0, mg, n + j * 16, (nr - j * 16) < 16 ? (nr - j * 16) : 16, rows, 16);
  }
}

// a.Abf = prep_a_amx's Y; K % 64 == 0
template <bool BS32>
__attribute__((target("amx-tile,amx-bf16"))) void rows_amx_t(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
  alignas(64) uint16_t stage[XNR * XKC];
  alignas(64) float ct[XNR * 16];
  const int64_t K = a.K, P = K / 2, G = (a.M + 15) / 16;
  std::vector<float> spill(G > 1 ? (size_t)(G * XNR * 16) : 0);  // C tiles between chunks, more than one group
  float* cs = spill.data();
  amx_config_16x64(7);
  const __m512 code = _mm512_loadu_ps(a.code);
  const __m512i lane_off = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(16), 1);
  const __m512i m15 = _mm512_set1_epi16(15);
  constexpr int64_t ld = XKC * 2;  // bytes per staged row
  for (int64_t n = n0; n < n1; n += XNR) {
    const int nr = (int)((n1 - n) < XNR ? (n1 - n) : XNR);
    for (int64_t k0 = 0; k0 < K; k0 += XKC) {
      const int kc = (int)((K - k0) < XKC ? (K - k0) : XKC);
      for (int r = 0; r < XNR; ++r) {
        uint16_t* dst = stage + r * XKC;
        if (r >= nr) {
          memset(dst, 0, (size_t)kc * 2);
          continue;
        }
        const int64_t e0 = (n + r) * K + k0;
        // this row's next chunk into L1 and the one after into L2 (64 rows: 64 interleaved streams, beyond the
        // hardware prefetchers; the L2 prefetch took a 28672 x 8192 weight streamed from memory from 13.5 to 11 ms
        // at 4 rows of A)
        if (k0 + XKC < K)
          for (int pb = 0; pb < XKC / 2; pb += 64) _mm_prefetch((const char*)(a.B + ((e0 + XKC) >> 1) + pb), _MM_HINT_T0);
        if (k0 + 2 * XKC < K)
          for (int pb = 0; pb < XKC / 2; pb += 64)
            _mm_prefetch((const char*)(a.B + ((e0 + 2 * XKC) >> 1) + pb), _MM_HINT_T1);
        for (int u = 0; u < kc; u += 64) {
          __m512i wh, wl;
          decode_unit64<BS32>(a, code, e0 + u, lane_off, m15, wh, wl);
          _mm512_store_si512((void*)(dst + u), wh);
          _mm512_store_si512((void*)(dst + u + 32), wl);
        }
      }
      BNB_AMX_BARRIER();
      const bool first = k0 == 0, last = k0 + XKC >= K;
      for (int64_t g = 0; g < G; ++g) {
        float* cg = cs + g * XNR * 16;
        if (first) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else if (G > 1) {
          _tile_loadd(0, cg, 64);
          _tile_loadd(1, cg + 256, 64);
          _tile_loadd(2, cg + 512, 64);
          _tile_loadd(3, cg + 768, 64);
        }
        const uint16_t* yg = a.Abf + (g * P + k0 / 2) * 32;
        for (int ks = 0; ks < kc; ks += 32) {
          _tile_loadd(4, yg + ks * 16, 64);
          _tile_loadd(5, stage + ks, ld);
          _tile_dpbf16ps(0, 5, 4);
          _tile_loadd(6, stage + 16 * XKC + ks, ld);
          _tile_dpbf16ps(1, 6, 4);
          _tile_loadd(5, stage + 32 * XKC + ks, ld);
          _tile_dpbf16ps(2, 5, 4);
          _tile_loadd(6, stage + 48 * XKC + ks, ld);
          _tile_dpbf16ps(3, 6, 4);
        }
        if (last) {
          _tile_stored(0, ct, 64);
          _tile_stored(1, ct + 256, 64);
          _tile_stored(2, ct + 512, 64);
          _tile_stored(3, ct + 768, 64);
          BNB_AMX_BARRIER();
          const int64_t m0 = g * 16;
          store_amx_tile(a, m0, (int)((a.M - m0) < 16 ? (a.M - m0) : 16), n, nr, ct);
        } else if (G > 1) {
          _tile_stored(0, cg, 64);
          _tile_stored(1, cg + 256, 64);
          _tile_stored(2, cg + 512, 64);
          _tile_stored(3, cg + 768, 64);
        }
      }
      BNB_AMX_BARRIER();
    }
  }
  _tile_release();
}

void rows_bf16_amx(const Mm4Args& a, int64_t n0, int64_t n1) {
  if (a.blocksize == 32)
    rows_amx_t<true>(a, n0, n1);
  else
    rows_amx_t<false>(a, n0, n1);
}

// ------------------------------------------------------------ AMX path, few rows of A, blocksize >= 64
// The scale is applied after the tile multiply, so the decode has no per-block table (UnitDecode: 2 variable
// shifts and 2 vpermw per 64-element unit, in kUnitOrder). Per 16 weight rows and unit: 2 tile multiplies into a zeroed
// C tile (16 weight rows x M rows of A), which is stored and scaled by each row's absmax into fp32 accumulators
// (one FMA per row and unit; with M <= 4 and K % blocksize == 0 four rows per accumulator, the absmax gathered).
// Units go in pairs (two C tiles, two staging buffers), and a pair's C tiles are stored after the next pair's
// decode, so the tile unit's latency hides behind it. The weights are
// bf16(code) * absmax in fp32, like the gemv (rows_gemv). Y (prep_a_amx_s) holds per unit and step s the tile
// operand [16 pairs][M][2] in kUnitOrder: step 0 position p holds element 4p + 1 (p < 16) or 4(p - 16), step 1
// 4p + 3 or 4(p - 16) + 2.
void prep_a_amx_s(const uint16_t* A, int64_t M, int64_t K, uint16_t* Y) {
  const __m512i i0 = _mm512_load_si512((const void*)kUnitOrder), i1 = _mm512_load_si512((const void*)(kUnitOrder + 32));
  const __mmask16 mk = (__mmask16)((1u << M) - 1u);
  uint32_t* y = (uint32_t*)Y;
  for (int64_t u = 0; u < K; u += 64) {
    __m512i r0[16], r1[16];
    pairs16(A, K, 0, M, u, i0, i1, r0, r1);
    for (int q = 0; q < 16; ++q) _mm512_mask_storeu_epi32((void*)(y + q * M), mk, r0[q]);
    y += 16 * M;
    for (int q = 0; q < 16; ++q) _mm512_mask_storeu_epi32((void*)(y + q * M), mk, r1[q]);
    y += 16 * M;
  }
}

constexpr int kAmxSPrefetchUnits = 16;  // per weight row, in units of 32 bytes (even)

struct AmxSState {
  explicit AmxSState(const Mm4Args& args) : a(&args), dec(args.code) {}
  const Mm4Args* a;
  UnitDecode dec;
  uint16_t* stage;  // [2][16 rows][64]: units u, u + 1
  float* cbuf;      // [2][16][16], lanes >= M zero
  int64_t n, U;     // panel's first weight row; units per row
  int nr;           // valid rows in the panel
  // packed accumulators (M <= 4, K % blocksize == 0): row r's block of unit u is r * kb + (n * kb + 64 u / bs)
  __m512i ridx;     // lane r: r * kb
  __m512i pidx[4];  // lane l of vector q: row 4 q + l / 4
  int64_t kb;       // blocks per weight row
  // the panel's absmax: block i at absmax[i - blk0] (a.absmax and 0, or with a double-quantized absmax the
  // panel's blocks decoded into a scratch buffer at the panel's start)
  const float* absmax;
  int64_t blk0;
};

// decode units u (and u + 1 when TWO) of the panel's rows into stage[0] (stage[1]): both units of a row
// back to back, so its cache line is used up at once (16 rows 4 KiB apart share an L1 set). One prefetch per
// row and pair, kAmxSPrefetchUnits ahead (the next panel's rows past U).
template <bool TWO>
inline __attribute__((always_inline)) void amx_s_decode(const AmxSState& st, int64_t u) {
  const Mm4Args& a = *st.a;
  const int64_t half = a.K >> 1;
  const uint8_t* row0 = a.B + st.n * half + u * 32;
  const int64_t pu = u + kAmxSPrefetchUnits;
  const uint8_t* pf0 = pu < st.U ? row0 + kAmxSPrefetchUnits * 32 : a.B + (st.n + 16) * half + (pu - st.U) * 32;
  BNB_AMX_BARRIER();  // after the tile loads that read the staging buffers last
  for (int r = 0; r < 16; ++r) {
    if (r >= st.nr) break;
    __m512i v1, v2;
    _mm_prefetch((const char*)(pf0 + r * half), _MM_HINT_T1);
    st.dec(row0 + r * half, v1, v2);
    _mm512_store_si512((void*)(st.stage + r * 64), v1);
    _mm512_store_si512((void*)(st.stage + r * 64 + 32), v2);
    if (TWO) {
      st.dec(row0 + r * half + 32, v1, v2);
      _mm512_store_si512((void*)(st.stage + 16 * 64 + r * 64), v1);
      _mm512_store_si512((void*)(st.stage + 16 * 64 + r * 64 + 32), v2);
    }
  }
}

// acc[r] += cbuf[c] row r * absmax of row r, unit u. PACK: cbuf[c] is [16 rows][4] (M <= 4), acc[q] lane l holds
// row 4 q + l / 4, row of A l % 4, and the 16 rows' absmax come in one gather
template <bool PACK>
inline __attribute__((always_inline)) void amx_s_scale(const AmxSState& st, int c, int64_t u, __m512 acc[16]) {
  const Mm4Args& a = *st.a;
  if (PACK) {
    const float* cb = st.cbuf + c * 64;
    const float* base = st.absmax + (st.n * st.kb - st.blk0) + ((u * 64) >> a.bshift);
    const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)((1u << st.nr) - 1u), st.ridx, base, 4);
    for (int q = 0; q < 4; ++q)
      acc[q] = _mm512_fmadd_ps(_mm512_load_ps(cb + q * 16), _mm512_permutexvar_ps(st.pidx[q], g), acc[q]);
    return;
  }
  const int64_t e0 = st.n * a.K + u * 64;
  const float* cb = st.cbuf + c * 256;
  for (int r = 0; r < 16; ++r) {
    if (r >= st.nr) break;
    const float s = st.absmax[((e0 + r * a.K) >> a.bshift) - st.blk0];
    acc[r] = _mm512_fmadd_ps(_mm512_load_ps(cb + r * 16), _mm512_set1_ps(s), acc[r]);
  }
}

// C tile TC = the unit's two steps: X tiles TX0, TX1 from the staging buffer st (16 rows of 64 bf16), Y tiles 6, 7
// (a macro: the tile intrinsics take literal tile numbers)
#define BNB_AMX_S_MUL(TC, TX0, TX1, st, y, ystep, ldy) \
  do {                                                  \
    _tile_zero(TC);                                     \
    _tile_loadd(TX0, (st), 128);                        \
    _tile_loadd(6, (y), (ldy));                         \
    _tile_dpbf16ps(TC, TX0, 6);                         \
    _tile_loadd(TX1, (st) + 32, 128);                   \
    _tile_loadd(7, (y) + (ystep), (ldy));               \
    _tile_dpbf16ps(TC, TX1, 7);                         \
  } while (0)

// C tile 0 (unit u) and, when TWO, C tile 1 (unit u + 1) -> cbuf, scaled into acc
template <bool PACK, bool TWO>
__attribute__((target("amx-tile,amx-bf16"))) inline __attribute__((always_inline)) void amx_s_flush(
    const AmxSState& st, int64_t u, __m512 acc[16]) {
  if (PACK) {
    _tile_stored(0, st.cbuf, 16);
    if (TWO) _tile_stored(1, st.cbuf + 64, 16);
  } else {
    _tile_stored(0, st.cbuf, 64);
    if (TWO) _tile_stored(1, st.cbuf + 256, 64);
  }
  BNB_AMX_BARRIER();
  amx_s_scale<PACK>(st, 0, u, acc);
  if (TWO) amx_s_scale<PACK>(st, 1, u + 1, acc);
}

// a.Abf = prep_a_amx_s's Y; K % 64 == 0; blocksize >= 64; M <= 16. Tiles: C 0 (units u) / 1 (u + 1); X 2, 3
// (stage 0) and 4, 5 (stage 1); Y 6, 7. The C tiles of a pair are stored and scaled after the next pair's decode.
template <bool PACK>
__attribute__((target("amx-tile,amx-bf16"))) void rows_amx_s_t(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
  alignas(64) uint16_t stage[2 * 16 * 64];
  alignas(64) float cbuf[2 * 16 * 16];
  alignas(64) float accbuf[16 * 16];
  memset(stage, 0, sizeof(stage));
  memset(cbuf, 0, sizeof(cbuf));
  const int M = (int)a.M;
  {
    AmxConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) cfg.rows[t] = 16, cfg.colsb[t] = (t >= 2 && t < 6) ? 64 : (uint16_t)(4 * M);
    BNB_AMX_BARRIER();
    _tile_loadconfig(&cfg);
  }
  AmxSState st(a);
  st.stage = stage;
  st.cbuf = cbuf;
  st.U = a.K / 64;
  st.kb = a.K >> a.bshift;
  std::vector<float> nested(a.absmax_q ? (size_t)(16 * (st.kb + 2)) : 0);  // a panel's decoded absmax
  st.absmax = a.absmax_q ? nested.data() : a.absmax;
  st.blk0 = 0;
  {
    alignas(64) int32_t ri[16], pi[64];
    for (int i = 0; i < 16; ++i) ri[i] = (int32_t)(i * st.kb);
    for (int i = 0; i < 64; ++i) pi[i] = i / 4;
    st.ridx = _mm512_load_si512((const void*)ri);
    for (int q = 0; q < 4; ++q) st.pidx[q] = _mm512_load_si512((const void*)(pi + 16 * q));
  }
  const int64_t U = st.U, ystep = 16 * M * 2;  // bf16 per tile step of Y
  const int ldy = 4 * M;
  const uint16_t* Y = a.Abf;
  for (int64_t n = n0; n < n1; n += 16) {
    st.n = n;
    st.nr = (int)((n1 - n) < 16 ? (n1 - n) : 16);
    if (a.absmax_q) {
      st.blk0 = (n * a.K) >> a.bshift;
      nested_absmax(a.absmax_q, a.absmax2, a.absmax_code, a.absmax_offset, st.blk0,
                    (((n + st.nr) * a.K - 1) >> a.bshift) + 1, nested.data());
    }
    __m512 acc[16];
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    int64_t u = 0;
    for (; u + 2 <= U; u += 2) {
      amx_s_decode<true>(st, u);
      BNB_AMX_BARRIER();
      if (u > 0) amx_s_flush<PACK, true>(st, u - 2, acc);
      BNB_AMX_S_MUL(0, 2, 3, stage, Y + 2 * u * ystep, ystep, ldy);
      BNB_AMX_S_MUL(1, 4, 5, stage + 16 * 64, Y + 2 * (u + 1) * ystep, ystep, ldy);
    }
    if (u > 0) amx_s_flush<PACK, true>(st, u - 2, acc);
    if (u < U) {  // an odd unit count: the last unit alone
      amx_s_decode<false>(st, u);
      BNB_AMX_BARRIER();
      BNB_AMX_S_MUL(0, 2, 3, stage, Y + 2 * u * ystep, ystep, ldy);
      amx_s_flush<PACK, false>(st, u, acc);
    }
    if (PACK) {
      alignas(64) float t[64];
      for (int q = 0; q < 4; ++q) _mm512_store_ps(t + 16 * q, acc[q]);
      for (int r = 0; r < 16; ++r)
        for (int i = 0; i < 4; ++i) accbuf[r * 16 + i] = t[r * 4 + i];
    } else {
      for (int r = 0; r < 16; ++r) _mm512_store_ps(accbuf + r * 16, acc[r]);
    }
    store_amx_tile(a, 0, M, n, st.nr, accbuf);
  }
  _tile_release();
}
#undef BNB_AMX_S_MUL

void rows_amx_s(const Mm4Args& a, int64_t n0, int64_t n1) {
  if (a.M <= 4 && a.K % a.blocksize == 0)
    rows_amx_s_t<true>(a, n0, n1);
  else
    rows_amx_s_t<false>(a, n0, n1);
}

#endif  // MM4_BF16

#else
// ============================================================ scalar
constexpr int U = 1;

void rows(const Mm4Args& args, int64_t n0, int64_t n1) {
  const Mm4Args a = args;  // a local copy: the vector stores below (may_alias) cannot change its fields
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
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U,           prep_a,     rows,          prep_a_bf16,
                                   rows_bf16,            rows_bf16_direct, prep_a_gemv, prep_a_amx, rows_bf16_amx,
                                   prep_a_amx_s,         rows_amx_s,       nested_absmax, prep_a_gemv32, rows_gemv32,
                                   0};
#elif defined(MM4_AVX512)
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U, prep_a, rows, nullptr, nullptr, nullptr, nullptr,
                                   nullptr, nullptr, nullptr, nullptr, nested_absmax, prep_a_gemv32, rows_gemv32, 0};
#elif defined(MM4_AVX2)
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U, prep_a, rows, nullptr, nullptr, nullptr, nullptr,
                                   nullptr, nullptr, nullptr, nullptr, nested_absmax, prep_a_gemv32, rows_gemv32,
                                   kGemm16MaxElems};
#else
extern const Mm4Table mm4_table = {BNB_STR(BNB_ISA_NS), U, prep_a, rows, nullptr, nullptr, nullptr, nullptr,
                                   nullptr, nullptr, nullptr, nullptr, nested_absmax, nullptr, nullptr, 0};
#endif

}  // namespace BNB_ISA_NS
}  // namespace bnb_cpu
