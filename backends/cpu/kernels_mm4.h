// Fused 4-bit matmul kernels (gemv_4bit / gemm_4bit): out[M, N] = A[M, K] @ W[N, K].T with W decoded from
// the standard packed 4-bit layout in registers / L1 (the dequantized matrix is never materialized).
// kernels_mm4.cpp is compiled once per ISA into bnb_cpu::<isa>; ops_mm4.cpp picks the table of active_isa().
#pragma once

#include <stdint.h>

namespace bnb_cpu {

struct Mm4Args {
  int dtype;  // of A, bias and out: 0 fp32, 1 fp16, 2 bf16
  int64_t M, K, N;
  const float* Ap;      // A as fp32 [M][K], permuted by prep_a (unit `unit`)
  const uint16_t* Abf;  // A as bf16 [M][K]: permuted in 64-element units by prep_a_bf16 for rows_bf16_direct,
                        // in natural order for rows_bf16; or null
  const uint8_t* B;     // packed codes, element e in byte e/2 (even e: high nibble)
  const float* absmax;  // one per block of `blocksize` consecutive elements of the flat [N*K] weight
  // Double quantization, read by rows_gemv, rows_gemv32 and rows_amx_s (null otherwise; the other paths read `absmax`, which the
  // op glue then reconstructs with nested_absmax): block i's absmax is
  // absmax_code[absmax_q[i]] * absmax2[i / BNB_NESTED_BLOCKSIZE] + absmax_offset, in fp32, multiply then add.
  const uint8_t* absmax_q;
  const float* absmax2;
  const float* absmax_code;  // 256 fp32 values
  float absmax_offset;
  int64_t blocksize;    // a power of two >= 32
  int bshift;           // log2(blocksize)
  const float* code;    // 16 fp32 values
  const void* bias;     // [N] of dtype, or null
  void* out;            // [M][N] of dtype
};

struct Mm4Table {
  const char* name;
  int unit;  // elements per decode unit of the fp32 path (1 = natural order)
  // A [M][K] (dtype) -> fp32 [M][K]: each full group of `unit` elements stored as its even elements then
  // its odd elements; the K % unit tail in natural order.
  void (*prep_a)(int dtype, const void* A, int64_t M, int64_t K, float* Ap);
  // fp32 accumulation, fp32 weights; output rows n in [n0, n1) for all M.
  void (*rows)(const Mm4Args& a, int64_t n0, int64_t n1);
  // bf16 paths (bf16 A, weights rounded to bf16(code * absmax), fp32 accumulation); null when the ISA has no
  // BF16 dot products. Both need K % 64 == 0.
  // prep_a_bf16 permutes A for rows_bf16_direct (few rows of A: weights decoded in registers, dot products
  // along K); rows_bf16 (many rows: a decoded weight tile in pair layout, outer products) reads A as is.
  void (*prep_a_bf16)(const uint16_t* A, int64_t M, int64_t K, uint16_t* Abf);
  void (*rows_bf16)(const Mm4Args& a, int64_t n0, int64_t n1);
  void (*rows_bf16_direct)(const Mm4Args& a, int64_t n0, int64_t n1);
  // rows_bf16_direct with ONE row of A at blocksize >= 64 runs the gemv, which reads A [K] permuted by
  // prep_a_gemv instead of prep_a_bf16 (each 64-element unit in the unscaled decode's order).
  void (*prep_a_gemv)(const uint16_t* A, int64_t K, uint16_t* Abf);
  // AMX tile path (amx tier only: the op glue calls it when active_isa() is kAmx; null without BF16). prep_a_amx
  // writes A [M][K] bf16 as the tile unit's pair-interleaved operand, [ceil(M/16)][K/2][16][2] (rows >= M zero),
  // permuted like prep_a_bf16; rows_bf16_amx reads it from a.Abf. K % 64 == 0.
  void (*prep_a_amx)(const uint16_t* A, int64_t M, int64_t K, uint16_t* Y);
  void (*rows_bf16_amx)(const Mm4Args& a, int64_t n0, int64_t n1);
  // AMX path for up to 16 rows of A at blocksize >= 64 (amx tier, the op glue takes it for 2-16 rows; null without
  // BF16): unscaled bf16(code) tiles, the absmax applied per 64-element unit to the tile products. prep_a_amx_s
  // writes A [M][K] bf16 as [K/64][2][16][M][2] (the unit's two tile steps, in the decode's element order);
  // rows_amx_s reads it from a.Abf. K % 64 == 0.
  void (*prep_a_amx_s)(const uint16_t* A, int64_t M, int64_t K, uint16_t* Y);
  void (*rows_amx_s)(const Mm4Args& a, int64_t n0, int64_t n1);
  // out[i - i0] = code[q[i]] * absmax2[i / BNB_NESTED_BLOCKSIZE] + offset for i in [i0, i1): a double-quantized
  // absmax (every ISA, vectorized where it has gathers)
  void (*nested_absmax)(const uint8_t* q, const float* absmax2, const float* code, float offset, int64_t i0,
                        int64_t i1, float* out);
  // The gemv in fp32 arithmetic (AVX-512 and AVX2 tiers; null on scalar/NEON): ONE row of A (or, for bf16 A, rows
  // up to M * K <= gemv32_bf16_max_elems) at blocksize >= 64, K % 64 == 0, any dtype of A, which prep_a_gemv32
  // converts to fp32 [M][K] in the decode's order; rows_gemv32 reads it from a.Ap and takes a plain or
  // double-quantized absmax as rows_gemv. The weights are the exact fp32 codes times absmax (AVX2 with bf16 A:
  // bf16(code) times absmax, as the bf16 paths; prep_a_gemv32 then writes that decode's order).
  void (*prep_a_gemv32)(int dtype, const void* A, int64_t M, int64_t K, float* Ap);
  void (*rows_gemv32)(const Mm4Args& a, int64_t n0, int64_t n1);
  int64_t gemv32_bf16_max_elems;  // 0: one row only (AVX-512, no rows_gemv32); AVX2: 2^18
};

namespace scalar {
extern const Mm4Table mm4_table;
}
#if defined(BNB_HAVE_AVX2_TU)
namespace avx2 {
extern const Mm4Table mm4_table;
}
#endif
#if defined(BNB_HAVE_AVX512_TU)
namespace avx512 {
extern const Mm4Table mm4_table;
}
#endif
#if defined(BNB_HAVE_AVX512VNNI_TU)
namespace avx512vnni {
extern const Mm4Table mm4_table;
}
#endif

}  // namespace bnb_cpu
