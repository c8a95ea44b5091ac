// Vector primitives shared by the CPU kernel families that are compiled per ISA: loads and stores of W-lane
// fp32 vectors from/to fp32, fp16 and bf16 memory (DT = 0 / 1 / 2), and Lut256, a 256-entry fp32 table lookup.
// Conversions are exact (fp16/bf16 -> fp32) or round to nearest even like torch's casts (fp32 -> fp16 with F16C; fp32 -> bf16 by integer rounding, NaN -> 0x7FC0).
// Include after <immintrin.h> and <stdint.h>, INSIDE the per-ISA namespace (bnb_cpu::BNB_ISA_NS::<anonymous>):
// the functions differ per ISA translation unit, so they must not share one name across them (ODR). It
// defines simd_io::load<DT> / simd_io::store<DT> for the widest x86 tier the translation unit is compiled for
// (AVX-512 F/BW/VL/DQ, or AVX2 + F16C); nothing for other tiers.
#pragma once

namespace simd_io {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
template <int DT>
inline __m512 load(const void* p, int64_t i) {
  if (DT == 0) return _mm512_loadu_ps((const float*)p + i);
  __m256i h = _mm256_loadu_si256((const __m256i*)((const uint16_t*)p + i));
  if (DT == 1) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// NT: a non-temporal (streaming) store, which needs p + i aligned to the store: 64 bytes for fp32, 32 for fp16/bf16
template <int DT, bool NT = false>
inline void store(void* p, int64_t i, __m512 v) {
  if (DT == 0) {
    if (NT)
      _mm512_stream_ps((float*)p + i, v);
    else
      _mm512_storeu_ps((float*)p + i, v);
    return;
  }
  __m256i h;
  if (DT == 1) {
    h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    __m512i u = _mm512_castps_si512(v);
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)),
                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
    r = _mm512_srli_epi32(r, 16);
    r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7FC0));
    h = _mm512_cvtepi32_epi16(r);
  }
  if (NT)
    _mm256_stream_si256((__m256i*)((uint16_t*)p + i), h);
  else
    _mm256_storeu_si256((__m256i*)((uint16_t*)p + i), h);
}
// 256-entry fp32 table lookup without gathers (gathers are slow on some CPUs, e.g. AMD Zen 4).
struct Lut256 {
  __m512 t[16];
  explicit Lut256(const float* c) {
    for (int j = 0; j < 16; ++j) t[j] = _mm512_loadu_ps(c + 16 * j);
  }
  inline __m512 operator()(__m512i idx) const {
    const __mmask16 m5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    const __mmask16 m6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
    const __mmask16 m7 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(128));
    __m512 p0 = _mm512_permutex2var_ps(t[0], idx, t[1]), p1 = _mm512_permutex2var_ps(t[2], idx, t[3]);
    __m512 p2 = _mm512_permutex2var_ps(t[4], idx, t[5]), p3 = _mm512_permutex2var_ps(t[6], idx, t[7]);
    __m512 p4 = _mm512_permutex2var_ps(t[8], idx, t[9]), p5 = _mm512_permutex2var_ps(t[10], idx, t[11]);
    __m512 p6 = _mm512_permutex2var_ps(t[12], idx, t[13]), p7 = _mm512_permutex2var_ps(t[14], idx, t[15]);
    __m512 a0 = _mm512_mask_blend_ps(m5, p0, p1), a1 = _mm512_mask_blend_ps(m5, p2, p3);
    __m512 a2 = _mm512_mask_blend_ps(m5, p4, p5), a3 = _mm512_mask_blend_ps(m5, p6, p7);
    __m512 b0 = _mm512_mask_blend_ps(m6, a0, a1), b1 = _mm512_mask_blend_ps(m6, a2, a3);
    return _mm512_mask_blend_ps(m7, b0, b1);
  }
};
#elif defined(__AVX2__) && defined(__F16C__)
template <int DT>
inline __m256 load(const void* p, int64_t i) {
  if (DT == 0) return _mm256_loadu_ps((const float*)p + i);
  __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)p + i));
  if (DT == 1) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
// NT: a non-temporal (streaming) store, which needs p + i aligned to the store: 32 bytes for fp32, 16 for fp16/bf16
template <int DT, bool NT = false>
inline void store(void* p, int64_t i, __m256 v) {
  if (DT == 0) {
    if (NT)
      _mm256_stream_ps((float*)p + i, v);
    else
      _mm256_storeu_ps((float*)p + i, v);
    return;
  }
  __m128i h;
  if (DT == 1) {
    h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  } else {
    __m256i u = _mm256_castps_si256(v);
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)),
                                 _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)));
    r = _mm256_srli_epi32(r, 16);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
    __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
    h = _mm_packus_epi32(lo, hi);
  }
  if (NT)
    _mm_stream_si128((__m128i*)((uint16_t*)p + i), h);
  else
    _mm_storeu_si128((__m128i*)((uint16_t*)p + i), h);
}
struct Lut256 {
  const float* c;
  explicit Lut256(const float* c_) : c(c_) {}
  inline __m256 operator()(__m256i idx) const {
    alignas(32) int32_t i[8];
    _mm256_store_si256((__m256i*)i, idx);
    return _mm256_setr_ps(c[i[0]], c[i[1]], c[i[2]], c[i[3]], c[i[4]], c[i[5]], c[i[6]], c[i[7]]);
  }
};
#endif

}  // namespace simd_io
