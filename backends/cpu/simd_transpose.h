// 16 x 16 dword transpose of 16 zmm registers, shared by the AVX-512 kernel families that repack weight rows
// into lane-per-column layouts (kernels_mm4.cpp: bf16 pairs; kernels_int8.cpp: int8 quads).
// Include after <immintrin.h>, INSIDE the per-ISA namespace (bnb_cpu::BNB_ISA_NS::<anonymous>), and only in a
// translation unit compiled with AVX-512 F (ODR: one copy per ISA namespace).
#pragma once

// 16 x 16 dwords: r[i] lane j -> r[j] lane i
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // r[4i + q], 128-bit chunk c = rows 4i..4i+3 of column 4c + q: transpose the 4 x 4 grid of chunks
  for (int q = 0; q < 4; ++q) {
    const __m512i u0 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0x88), u1 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0xDD);
    const __m512i u2 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0x88);
    const __m512i u3 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0xDD);
    t[q] = _mm512_shuffle_i32x4(u0, u2, 0x88);
    t[4 + q] = _mm512_shuffle_i32x4(u1, u3, 0x88);
    t[8 + q] = _mm512_shuffle_i32x4(u0, u2, 0xDD);
    t[12 + q] = _mm512_shuffle_i32x4(u1, u3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
