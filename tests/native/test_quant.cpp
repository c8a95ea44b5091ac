// Kernel family: blockwise 8-bit and 4-bit (NF4/FP4) quantization (backends/cpu/kernels.cpp).
//
// Reference semantics (bnb_core/reference.py, docs/formats.md), written out plainly here:
//   absmax[b] = max |x| over the block, canonical NaN 0x7FC00000 when the block holds a NaN;
//   s = 2^64 if absmax < FLT_MIN else 1; y = (x * s) * (1 / (absmax * s)) in fp32; NaN y -> 0;
//   8-bit code = #{i : y > (code[i] + code[i+1]) / 2} (for any code table: the count form);
//   NF4 code = #{i : y > NF4_BOUNDARIES[i]}; FP4 = (y < 0 ? 8 : 0) | RANK_TO_CODE[#{i : |y| > FP4_MAG[i]}];
//   4-bit packing: element 2k in the high nibble, bytes past (n+1)/2 hold the zero code twice;
//   dequantize = code[q] * absmax[block] in fp32, then converted to the output dtype (RNE).
#include <math.h>
#include <stdio.h>

#include <algorithm>

#include "bnb_formats.h"
#include "harness.h"
#include "ops.h"

namespace {
using namespace bnb_test;

const float kFltMin = 1.17549435e-38f;
const float kTinyScale = 18446744073709551616.0f;  // 2^64
// absmax values whose product with the codes +-1.0 (and powers of two) is an exact rounding tie in the
// output dtype: round-to-nearest-even must go down (even) or up (odd).
const float kTieBf16Down = from_bits(0x3F808000u), kTieBf16Up = from_bits(0x3F818000u);
const float kTieF16Down = from_bits(0x3F801000u), kTieF16Up = from_bits(0x3F803000u);

// ---------------------------------------------------------------- reference
float ref_absmax(int dt, const void* x, int64_t s, int64_t e) {
  float m = 0.0f;
  for (int64_t i = s; i < e; ++i) {
    const float v = fabsf(ref_load(dt, x, i));
    if (v != v) return from_bits(0x7FC00000u);
    m = std::max(m, v);
  }
  return m;
}
float ref_scaled(float x, float am) {
  const float s = am < kFltMin ? kTinyScale : 1.0f;
  const float inv = 1.0f / (am * s);
  const float y = (x * s) * inv;
  return y != y ? 0.0f : y;
}
int ref_count_above(float y, const float* b, int nb) {
  int c = 0;
  for (int i = 0; i < nb; ++i) c += y > b[i];
  return c;
}
int ref_code4(float y, int qt) {
  if (qt == 0) return ref_count_above(y, bnb_formats::NF4_BOUNDARIES, 15);
  const int rank = ref_count_above(fabsf(y), bnb_formats::FP4_MAGNITUDE_BOUNDARIES, 7);
  return (y < 0.0f ? 8 : 0) | bnb_formats::FP4_RANK_TO_CODE[rank];
}
const float* ref_codebook4(int qt) { return qt == 0 ? bnb_formats::NF4_CODE : bnb_formats::FP4_CODE; }
int zero_code4(int qt) { return qt == 0 ? BNB_NF4_ZERO_CODE : BNB_FP4_ZERO_CODE; }

void ref_quant8(int dt, const void* x, int64_t n, const float* code, int64_t bs, uint8_t* out, float* absmax) {
  float bnd[255];
  for (int i = 0; i < 255; ++i) bnd[i] = (code[i] + code[i + 1]) / 2.0f;
  // Ascending boundaries: the count is the lower_bound position (y is never NaN); otherwise count.
  const bool sorted = std::is_sorted(bnd, bnd + 255);
  for (int64_t b = 0; b * bs < n; ++b) {
    const int64_t s = b * bs, e = std::min(n, s + bs);
    absmax[b] = ref_absmax(dt, x, s, e);
    for (int64_t i = s; i < e; ++i) {
      const float y = ref_scaled(ref_load(dt, x, i), absmax[b]);
      out[i] = (uint8_t)(sorted ? std::lower_bound(bnd, bnd + 255, y) - bnd : ref_count_above(y, bnd, 255));
    }
  }
}
void ref_quant4(int dt, const void* x, int64_t n, int64_t bs, int qt, uint8_t* out, int64_t out_nbytes, float* absmax) {
  const int z = zero_code4(qt);
  for (int64_t j = 0; j < out_nbytes; ++j) out[j] = (uint8_t)(z << 4 | z);
  for (int64_t b = 0; b * bs < n; ++b) {
    const int64_t s = b * bs, e = std::min(n, s + bs);
    absmax[b] = ref_absmax(dt, x, s, e);
    for (int64_t i = s; i < e; ++i) {
      const int c = ref_code4(ref_scaled(ref_load(dt, x, i), absmax[b]), qt);
      out[i / 2] = (uint8_t)(i % 2 == 0 ? (c << 4) | (out[i / 2] & 0x0F) : (out[i / 2] & 0xF0) | c);
    }
  }
}
void ref_dequant(int dt, const uint8_t* q, int64_t n, bool packed4, const float* code, const float* absmax, int64_t bs,
                 void* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int c = packed4 ? (i % 2 == 0 ? q[i / 2] >> 4 : q[i / 2] & 0x0F) : q[i];
    ref_store(dt, out, i, code[c] * absmax[i / bs]);
  }
}

// ---------------------------------------------------------------- inputs
// Block contents drawn per block (and a few single specials), covering the paths of the kernels:
// vector bodies, scalar tails, NaN / Inf / zero / denormal blocks, values exactly on boundaries.
void fill_block(Rng& rng, float* x, int64_t s, int64_t e, const float* bnd, int nbnd) {
  const int kind = (int)rng.below(12);
  const float scale = ldexpf(1.0f, (int)rng.below(41) - 20);
  for (int64_t i = s; i < e; ++i) {
    float v;
    switch (kind) {
      case 0: v = 0.0f; break;
      case 1: v = (rng.next() & 1) ? -0.0f : 0.0f; break;
      case 2: v = from_bits((uint32_t)rng.below(0x00800000) | (uint32_t)(rng.next() & 0x80000000u)); break;  // denormal
      case 3: v = rng.normal() * 1e-30f; break;
      case 4: v = rng.normal() * 3e38f / 6.0f; break;
      case 5: v = bnd[rng.below(nbnd)] * (rng.next() & 1 ? 1.0f : -1.0f); break;  // on a boundary (absmax 1 below)
      case 6: v = rng.normal() * scale; v = (rng.below(4) == 0) ? 0.0f : v; break;
      default: v = rng.normal() * scale; break;
    }
    x[i] = v;
  }
  if (kind == 5 && e > s) x[s + rng.below(e - s)] = 1.0f;
  if (e > s && rng.below(6) == 0) {  // one special value somewhere in the block
    const float sp[] = {NAN, -NAN, INFINITY, -INFINITY, from_bits(0x7F800001u), 3.4028235e38f, -1e-45f};
    x[s + rng.below(e - s)] = sp[rng.below(7)];
  }
}

// Inputs in dtype dt: floats converted with the reference (fp16/bf16), sometimes raw random 16-bit words.
std::vector<uint8_t> make_input(Rng& rng, int dt, int64_t n, int64_t bs, const float* bnd, int nbnd) {
  std::vector<float> f(n);
  for (int64_t s = 0; s < n; s += bs) fill_block(rng, f.data(), s, std::min(n, s + bs), bnd, nbnd);
  std::vector<uint8_t> buf((size_t)(n * dtype_size(dt)) + 1);
  const bool raw = dt != 0 && rng.below(4) == 0;
  for (int64_t i = 0; i < n; ++i) {
    if (raw)
      ((uint16_t*)buf.data())[i] = (uint16_t)rng.next();
    else
      ref_store(dt, buf.data(), i, f[i]);
  }
  return buf;
}

std::vector<int64_t> sizes_for(int64_t bs, bool with_large) {
  std::vector<int64_t> v = {0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 47, 63, 65, bs - 1, bs, bs + 1, 2 * bs + 3, 3 * bs - 5};
  if (!quick()) v.push_back(5 * bs + 17);
  // Past the inline threshold (1 << 16 elements), so nthreads 2 really runs on two threads.
  if (with_large) v.push_back((1 << 16) + 2 * bs + 37);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  v.erase(std::remove_if(v.begin(), v.end(), [](int64_t n) { return n < 0; }), v.end());
  return v;
}

std::string where(int dt, int64_t n, int64_t bs, int nt, const std::string& extra) {
  char b[200];
  snprintf(b, sizeof(b), "dtype=%s n=%lld blocksize=%lld nthreads=%d %s", dtype_name(dt), (long long)n, (long long)bs,
           nt, extra.c_str());
  return b;
}
std::string at(int64_t i) { return " first difference at byte " + std::to_string(i); }

const uint8_t kGuard = 0xA5;
bool guard_ok(const std::vector<uint8_t>& v, size_t from) {
  for (size_t i = from; i < v.size(); ++i)
    if (v[i] != kGuard) return false;
  return true;
}

// 8-bit code tables: the two standard ones, one with repeated entries (sorted, non-strict) and an
// unsorted random one (count form).
struct Code8 {
  const char* name;
  std::vector<float> c;
};
std::vector<Code8> code_tables(Rng& rng) {
  std::vector<Code8> r;
  r.push_back({"dynamic_signed", std::vector<float>(bnb_formats::DYNAMIC_SIGNED, bnb_formats::DYNAMIC_SIGNED + 256)});
  r.push_back({"dynamic_unsigned", std::vector<float>(bnb_formats::DYNAMIC_UNSIGNED, bnb_formats::DYNAMIC_UNSIGNED + 256)});
  std::vector<float> dup(256);
  for (int i = 0; i < 256; ++i) dup[i] = -1.0f + 2.0f * (float)(i / 3 * 3) / 255.0f;
  r.push_back({"repeated", dup});
  std::vector<float> un(256);
  for (int i = 0; i < 256; ++i) un[i] = rng.normal() * 0.5f;
  r.push_back({"unsorted", un});
  return r;
}

const std::vector<int64_t> kBlocksizes8 = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 1, 5, 33, 100};
const std::vector<int64_t> kBlocksizes4 = {32, 64, 128, 256, 512, 1024, 2048, 4096, 1, 3, 17, 33, 100};
bool large_case(int64_t bs) { return bs == 64 || bs == 4096 || bs == 33; }

}  // namespace

BNB_CORE_TEST(quantize_blockwise) {
  Rng rng("quantize_blockwise");
  const std::vector<Code8> codes = code_tables(rng);
  for (int dt = 0; dt < 3; ++dt)
    for (const Code8& code : codes)
      for (int64_t bs : kBlocksizes8) {
        // the count-form (unsorted) and repeated-entry tables: every blocksize up to 256 is enough
        if ((code.name[0] == 'r' || code.name[0] == 'u') && bs > 256) continue;
        float bnd[255];
        for (int i = 0; i < 255; ++i) bnd[i] = (code.c[i] + code.c[i + 1]) / 2.0f;
        for (int64_t n : sizes_for(bs, large_case(bs) && code.name[0] == 'd'))
          for (int nt = 1; nt <= 2; ++nt) {
            const auto x = make_input(rng, dt, n, bs, bnd, 255);
            const int64_t nb = (n + bs - 1) / bs;
            std::vector<uint8_t> out(n + 16, kGuard), want(n + 1);
            std::vector<float> am(nb + 4, from_bits(0x12345678u)), want_am(nb + 1);
            const int st = bnb_cpu::quantize_blockwise(dt, x.data(), n, code.c.data(), bs, out.data(), am.data(), nt);
            const std::string w = where(dt, n, bs, nt, std::string("code=") + code.name);
            if (!ctx.check(st == 0, "status " + std::to_string(st) + " " + w)) continue;
            ref_quant8(dt, x.data(), n, code.c.data(), bs, want.data(), want_am.data());
            int64_t d = first_diff(out.data(), want.data(), n);
            ctx.check(d < 0, "codes " + w + at(d));
            d = first_diff(am.data(), want_am.data(), nb * 4);
            ctx.check(d < 0, "absmax " + w + at(d));
            ctx.check(guard_ok(out, (size_t)n), "wrote past the codes " + w);
            ctx.check(bits(am[nb]) == 0x12345678u, "wrote past absmax " + w);
          }
      }
}

BNB_CORE_TEST(dequantize_blockwise) {
  Rng rng("dequantize_blockwise");
  const std::vector<Code8> codes = code_tables(rng);
  for (int dt = 0; dt < 3; ++dt)
    for (const Code8& code : codes)
      for (int64_t bs : kBlocksizes8) {
        if ((code.name[0] == 'r' || code.name[0] == 'u') && bs > 256) continue;
        for (int64_t n : sizes_for(bs, large_case(bs) && code.name[0] == 'd'))
          for (int nt = 1; nt <= 2; ++nt) {
            const int64_t nb = (n + bs - 1) / bs;
            std::vector<uint8_t> q(n + 1);
            for (auto& v : q) v = (uint8_t)rng.next();
            std::vector<float> am(nb + 1);
            const float sp[] = {0.0f, -0.0f, INFINITY, from_bits(0x7FC00000u), from_bits(0xFFE00001u), 1e-40f, -2.5f,
                                65504.0f, 70000.0f, 1e-7f, kTieBf16Down, kTieBf16Up, kTieF16Down, kTieF16Up};
            for (auto& a : am) a = rng.below(3) == 0 ? sp[rng.below(14)] : fabsf(rng.wide());
            std::vector<uint8_t> out((size_t)(n * dtype_size(dt)) + 32, kGuard), want((size_t)(n * dtype_size(dt)) + 1);
            const int st = bnb_cpu::dequantize_blockwise(dt, q.data(), n, code.c.data(), am.data(), bs, out.data(), nt);
            const std::string w = where(dt, n, bs, nt, std::string("code=") + code.name);
            if (!ctx.check(st == 0, "status " + std::to_string(st) + " " + w)) continue;
            ref_dequant(dt, q.data(), n, false, code.c.data(), am.data(), bs, want.data());
            const int64_t d = first_diff(out.data(), want.data(), n * dtype_size(dt));
            ctx.check(d < 0, "values " + w + at(d));
            ctx.check(guard_ok(out, (size_t)(n * dtype_size(dt))), "wrote past the output " + w);
          }
      }
}

BNB_CORE_TEST(quantize_4bit) {
  Rng rng("quantize_4bit");
  for (int dt = 0; dt < 3; ++dt)
    for (int qt = 0; qt < 2; ++qt) {
      const float* bnd = qt == 0 ? bnb_formats::NF4_BOUNDARIES : bnb_formats::FP4_MAGNITUDE_BOUNDARIES;
      for (int64_t bs : kBlocksizes4)
        for (int64_t n : sizes_for(bs, large_case(bs)))
          for (int nt = 1; nt <= 2; ++nt) {
            const auto x = make_input(rng, dt, n, bs, bnd, qt == 0 ? 15 : 7);
            const int64_t nb = (n + bs - 1) / bs, nbytes = (n + 1) / 2;
            const int64_t out_nbytes = nbytes + (rng.below(3) == 0 ? rng.below(5) : 0);  // + zero-code padding
            std::vector<uint8_t> out(out_nbytes + 16, kGuard), want(out_nbytes + 1);
            std::vector<float> am(nb + 4, from_bits(0x12345678u)), want_am(nb + 1);
            const int st = bnb_cpu::quantize_4bit(dt, x.data(), n, bs, qt, out.data(), out_nbytes, am.data(), nt);
            const std::string w = where(dt, n, bs, nt, std::string(qt ? "fp4" : "nf4") + " out_nbytes=" +
                                                           std::to_string(out_nbytes));
            if (!ctx.check(st == 0, "status " + std::to_string(st) + " " + w)) continue;
            ref_quant4(dt, x.data(), n, bs, qt, want.data(), out_nbytes, want_am.data());
            int64_t d = first_diff(out.data(), want.data(), out_nbytes);
            ctx.check(d < 0, "packed codes " + w + at(d));
            d = first_diff(am.data(), want_am.data(), nb * 4);
            ctx.check(d < 0, "absmax " + w + at(d));
            ctx.check(guard_ok(out, (size_t)out_nbytes), "wrote past out_nbytes " + w);
            ctx.check(bits(am[nb]) == 0x12345678u, "wrote past absmax " + w);
          }
    }
}

BNB_CORE_TEST(dequantize_4bit) {
  Rng rng("dequantize_4bit");
  for (int dt = 0; dt < 3; ++dt)
    for (int qt = 0; qt < 2; ++qt)
      for (int64_t bs : kBlocksizes4)
        for (int64_t n : sizes_for(bs, large_case(bs)))
          for (int nt = 1; nt <= 2; ++nt) {
            const int64_t nb = (n + bs - 1) / bs, nbytes = (n + 1) / 2;
            std::vector<uint8_t> q(nbytes + 1);
            for (auto& v : q) v = (uint8_t)rng.next();
            std::vector<float> am(nb + 1);
            const float sp[] = {0.0f, -0.0f, INFINITY, from_bits(0x7FC00000u), from_bits(0x7FA00001u), 1e-40f, -3.0f,
                                65504.0f, 1e30f, 6e-8f, kTieBf16Down, kTieBf16Up, kTieF16Down, kTieF16Up};
            for (auto& a : am) a = rng.below(3) == 0 ? sp[rng.below(14)] : fabsf(rng.wide());
            std::vector<uint8_t> out((size_t)(n * dtype_size(dt)) + 32, kGuard), want((size_t)(n * dtype_size(dt)) + 1);
            const int st = bnb_cpu::dequantize_4bit(dt, q.data(), n, am.data(), bs, qt, out.data(), nt);
            const std::string w = where(dt, n, bs, nt, qt ? "fp4" : "nf4");
            if (!ctx.check(st == 0, "status " + std::to_string(st) + " " + w)) continue;
            ref_dequant(dt, q.data(), n, true, ref_codebook4(qt), am.data(), bs, want.data());
            const int64_t d = first_diff(out.data(), want.data(), n * dtype_size(dt));
            ctx.check(d < 0, "values " + w + at(d));
            ctx.check(guard_ok(out, (size_t)(n * dtype_size(dt))), "wrote past the output " + w);
          }
}
