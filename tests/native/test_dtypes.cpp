// The harness's own reference dtype conversions, checked against the compiler's _Float16 conversions
// (GCC/Clang on x86-64 and AArch64) and against known values, so the oracle is not circular.
#include <math.h>

#include "harness.h"

// The compiler's half type: __fp16 on AArch64 (g++ 12 has no _Float16 in C++ there), _Float16 elsewhere.
#if defined(__aarch64__) && defined(__ARM_FP16_FORMAT_IEEE)
#define BNB_TEST_HAVE_FLOAT16 1
typedef __fp16 half_t;
#elif defined(__FLT16_MAX__)
#define BNB_TEST_HAVE_FLOAT16 1
typedef _Float16 half_t;
#endif

BNB_CORE_TEST_ONCE(conversions) {
  using namespace bnb_test;
  // known values
  ctx.check(ref_f32_to_f16(1.0f) == 0x3C00, "f16(1) == 0x3C00");
  ctx.check(ref_f32_to_f16(65504.0f) == 0x7BFF, "f16(65504) == 0x7BFF");
  ctx.check(ref_f32_to_f16(65519.996f) == 0x7BFF, "f16(65519.996) == 0x7BFF");
  ctx.check(ref_f32_to_f16(65520.0f) == 0x7C00, "f16(65520) == Inf");
  ctx.check(ref_f32_to_f16(-INFINITY) == 0xFC00, "f16(-Inf)");
  ctx.check(ref_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001, "f16(2^-24) == 1");
  ctx.check(ref_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000, "f16(2^-25) ties to even 0");
  ctx.check(ref_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002, "f16(3 * 2^-25) ties to even 2");
  ctx.check(ref_f32_to_f16(-0.0f) == 0x8000, "f16(-0)");
  ctx.check(ref_f32_to_bf16(1.0f) == 0x3F80, "bf16(1)");
  ctx.check(ref_f32_to_bf16(from_bits(0x3F808000u)) == 0x3F80, "bf16 tie to even (down)");
  ctx.check(ref_f32_to_bf16(from_bits(0x3F818000u)) == 0x3F82, "bf16 tie to even (up)");
  ctx.check(ref_f32_to_bf16(from_bits(0x7F7FFFFFu)) == 0x7F80, "bf16(FLT_MAX) == Inf");
  ctx.check(ref_f32_to_bf16(from_bits(0xFFC12345u)) == 0x7FC0, "bf16(NaN) == 0x7FC0");
  ctx.check(ref_f32_to_f16(from_bits(0xFF812345u)) == (0xFE00 | ((0xFF812345u >> 13) & 0x3FF)), "f16(sNaN) quieted");
  // every half -> float, round trip
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = ref_f16_to_f32((uint16_t)h);
    const bool nan = ((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF);
    if (!nan) ctx.check(ref_f32_to_f16(f) == h, "f16 round trip " + std::to_string(h));
#if BNB_TEST_HAVE_FLOAT16
    uint16_t hh = (uint16_t)h;
    half_t x;
    memcpy(&x, &hh, 2);
    const float g = (float)x;
    if (!nan) ctx.check(bits(f) == bits(g), "f16->f32 vs compiler half at " + std::to_string(h));
#endif
  }
#if BNB_TEST_HAVE_FLOAT16
  // float -> half on random bit patterns, near-ties and the subnormal / overflow ranges
  Rng rng("conversions");
  for (int i = 0; i < (1 << 18); ++i) {
    uint32_t u;
    switch (i & 3) {
      case 0: u = (uint32_t)rng.next(); break;
      case 1: u = (uint32_t)(0x33000000u + rng.below(0x47800000u - 0x33000000u)) | (uint32_t)(rng.next() & 0x80000000u); break;
      case 2: u = (bits(ref_f16_to_f32((uint16_t)rng.below(0x7C00))) + 0x1000u + (uint32_t)rng.below(3) - 1u); break;
      default: u = bits(rng.wide()); break;
    }
    const float f = from_bits(u);
    if (f != f) continue;  // NaN payload handling differs between soft-float libraries; known values above
    const half_t x = (half_t)f;
    uint16_t want;
    memcpy(&want, &x, 2);
    ctx.check(ref_f32_to_f16(f) == want, "f32->f16 vs compiler half at bits " + std::to_string(u));
  }
#endif
}
