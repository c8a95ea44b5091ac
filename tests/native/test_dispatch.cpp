// ISA dispatch and argument validation of ops.h (family-independent).
#include "harness.h"
#include "ops.h"

BNB_CORE_TEST(dispatch) {
  using namespace bnb_test;
  using bnb_cpu::IsaId;
  const IsaId id = bnb_cpu::active_isa();
  const IsaId want = ctx.isa == "amx"          ? IsaId::kAmx
                     : ctx.isa == "avx2"       ? IsaId::kAvx2
                     : ctx.isa == "avx512"     ? IsaId::kAvx512
                     : ctx.isa == "avx512vnni" ? IsaId::kAvx512Vnni
                     : ctx.isa == "neon"       ? IsaId::kNeon
                                               : IsaId::kScalar;
  ctx.check(id == want, "active_isa() matches " + ctx.isa + " (got " + std::to_string((int)id) + ")");
  ctx.check(bnb_cpu::isa() == ctx.isa, "isa() == " + ctx.isa);
  ctx.check(bnb_cpu::set_isa("no-such-isa") == bnb_cpu::kUnsupportedIsa, "set_isa(unknown) fails");
  ctx.check(bnb_cpu::isa() == ctx.isa, "failed set_isa keeps the active path");
#if defined(__aarch64__)
  ctx.check(bnb_cpu::set_isa("avx2") == bnb_cpu::kUnsupportedIsa, "no x86 path on AArch64");
#endif
#if defined(__x86_64__)
  ctx.check(bnb_cpu::set_isa("neon") == bnb_cpu::kUnsupportedIsa, "no neon path on x86-64");
#endif
  ctx.check(bnb_cpu::isa() == ctx.isa, "active path unchanged");

  // status codes (the Python op checks run first in the module; the kernels still refuse bad input)
  float x[4] = {1, 2, 3, 4}, absmax[4] = {0}, code[256];
  for (int i = 0; i < 256; ++i) code[i] = -1.0f + 2.0f * (float)i / 255.0f;
  uint8_t q[8] = {0};
  using namespace bnb_cpu;
  ctx.check(quantize_blockwise(3, x, 4, code, 2, q, absmax, 1) == kBadDtype, "quant8 bad dtype");
  ctx.check(quantize_blockwise(0, x, -1, code, 2, q, absmax, 1) == kBadSize, "quant8 n < 0");
  ctx.check(quantize_blockwise(0, x, 4, code, 0, q, absmax, 1) == kBadBlocksize, "quant8 blocksize 0");
  ctx.check(quantize_blockwise(0, nullptr, 4, code, 2, q, absmax, 1) == kNullPointer, "quant8 null x");
  ctx.check(quantize_blockwise(0, nullptr, 0, nullptr, 2, nullptr, nullptr, 1) == kOk, "quant8 n == 0");
  ctx.check(dequantize_blockwise(0, q, 4, nullptr, absmax, 2, x, 1) == kNullPointer, "dequant8 null code");
  ctx.check(dequantize_blockwise(-1, q, 4, code, absmax, 2, x, 1) == kBadDtype, "dequant8 bad dtype");
  ctx.check(quantize_4bit(0, x, 4, 2, 2, q, 2, absmax, 1) == kBadQuantType, "quant4 bad quant type");
  ctx.check(quantize_4bit(0, x, 4, 2, 0, q, 1, absmax, 1) == kOutputTooSmall, "quant4 output too small");
  ctx.check(quantize_4bit(0, x, 4, -2, 0, q, 2, absmax, 1) == kBadBlocksize, "quant4 bad blocksize");
  ctx.check(dequantize_4bit(0, q, 4, nullptr, 2, 0, x, 1) == kNullPointer, "dequant4 null absmax");
  ctx.check(dequantize_4bit(0, q, 4, absmax, 2, 1, x, 1) == kOk, "dequant4 ok");
}
