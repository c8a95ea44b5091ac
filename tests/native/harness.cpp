// Harness runtime: test registry, main(), RNG and the reference dtype conversions.
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <chrono>
#include <set>

#include "ops.h"

namespace bnb_test {
namespace {

struct Entry {
  const char* name;
  TestFn fn;
  bool per_isa;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
constexpr int64_t kMaxPrintedFailures = 8;

}  // namespace

Registrar::Registrar(const char* name, TestFn fn, bool per_isa) { registry().push_back({name, fn, per_isa}); }

bool Ctx::check(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    if (failures < kMaxPrintedFailures)
      fprintf(stderr, "FAIL isa=%s test=%s: %s\n", isa.empty() ? "-" : isa.c_str(), test.c_str(), what.c_str());
    ++failures;
  }
  return ok;
}

Rng::Rng(const std::string& name) : s(0x9E3779B97F4A7C15ull) {
  for (char c : name) s = (s ^ (uint8_t)c) * 0x100000001B3ull;
}
uint64_t Rng::next() {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double Rng::uniform() { return (double)(next() >> 11) * (1.0 / 9007199254740992.0); }
int64_t Rng::below(int64_t n) { return n <= 0 ? 0 : (int64_t)(next() % (uint64_t)n); }
float Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
float Rng::wide() { return ldexpf(normal(), (int)below(61) - 30); }

float ref_f16_to_f32(uint16_t h) {
  const bool neg = (h & 0x8000) != 0;
  const int e = (h >> 10) & 0x1F;
  const int m = h & 0x3FF;
  if (e == 0x1F) return from_bits((neg ? 0x80000000u : 0u) | 0x7F800000u | ((uint32_t)m << 13));
  // normal: (1024 + m) * 2^(e - 25); subnormal: m * 2^-24; both exact in fp32
  const float mag = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), e - 25);
  return neg ? -mag : mag;
}

uint16_t ref_f32_to_f16(float f) {
  const uint32_t u = bits(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  if (f != f) return (uint16_t)(sign | 0x7E00 | ((u >> 13) & 0x3FF));
  const double a = fabs((double)f);
  if (a >= 65520.0) return (uint16_t)(sign | 0x7C00);  // 65520 = half-way to 2^16: ties to even -> Inf
  if (a < ldexp(1.0, -14)) {                             // subnormal (or zero): units of 2^-24
    const double q = nearbyint(ldexp(a, 24));           // default rounding: to nearest even
    return (uint16_t)(sign | (uint16_t)q);              // q == 1024 is the smallest normal's encoding
  }
  int ex;
  frexp(a, &ex);  // a = fr * 2^ex, fr in [0.5, 1): exponent ex - 1
  int E = ex - 1;
  double m = nearbyint(ldexp(a, 10 - E));  // [1024, 2048]
  if (m == 2048.0) {
    m = 1024.0;
    ++E;
  }
  return (uint16_t)(sign | (uint16_t)((E + 15) << 10) | (uint16_t)((int)m - 1024));
}

float ref_bf16_to_f32(uint16_t h) { return from_bits((uint32_t)h << 16); }

uint16_t ref_f32_to_bf16(float f) {
  if (f != f) return 0x7FC0;
  const uint32_t u = bits(f);
  uint32_t hi = u >> 16;
  const uint32_t lo = u & 0xFFFF;
  if (lo > 0x8000 || (lo == 0x8000 && (hi & 1))) ++hi;  // Inf has lo == 0; rounding up may give Inf
  return (uint16_t)hi;
}

float ref_load(int dtype, const void* p, int64_t i) {
  if (dtype == 0) return ((const float*)p)[i];
  const uint16_t h = ((const uint16_t*)p)[i];
  return dtype == 1 ? ref_f16_to_f32(h) : ref_bf16_to_f32(h);
}
void ref_store(int dtype, void* p, int64_t i, float v) {
  if (dtype == 0)
    ((float*)p)[i] = v;
  else
    ((uint16_t*)p)[i] = dtype == 1 ? ref_f32_to_f16(v) : ref_f32_to_bf16(v);
}
const char* dtype_name(int dtype) { return dtype == 0 ? "float32" : dtype == 1 ? "float16" : "bfloat16"; }

int64_t first_diff(const void* a, const void* b, int64_t nbytes) {
  const uint8_t* x = (const uint8_t*)a;
  const uint8_t* y = (const uint8_t*)b;
  for (int64_t i = 0; i < nbytes; ++i)
    if (x[i] != y[i]) return i;
  return -1;
}

bool quick() {
  const char* e = getenv("BNB_CORE_QUICK");
  return e && e[0] == '1';
}

}  // namespace bnb_test

// ---------------------------------------------------------------- main
// usage: bnb_core_tests [--isa NAME]... [--expect-isa NAME]... [--test NAME]...
//   --isa: run only these ISA paths (default: every path this build and CPU support)
//   --expect-isa: fail unless this path is available (guards against silently testing less)
//   --test: run only these tests
int main(int argc, char** argv) {
  using namespace bnb_test;
  std::vector<std::string> want_isas, expect_isas;
  std::set<std::string> want_tests;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--isa" || a == "--expect-isa" || a == "--test") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--isa") want_isas.push_back(v);
      else if (a == "--expect-isa") expect_isas.push_back(v);
      else want_tests.insert(v);
    } else {
      fprintf(stderr, "usage: %s [--isa NAME]... [--expect-isa NAME]... [--test NAME]...\n", argv[0]);
      return 2;
    }
  }
  const std::vector<std::string> avail = bnb_cpu::available_isas();
  std::string avail_s;
  for (const auto& s : avail) avail_s += (avail_s.empty() ? "" : ",") + s;
  printf("bnb_core_tests: available ISA paths: %s (default: %s)\n", avail_s.c_str(), bnb_cpu::isa().c_str());
  int64_t total_checks = 0, total_failures = 0;
  for (const auto& e : expect_isas) {
    bool found = false;
    for (const auto& s : avail) found = found || s == e;
    if (!found) {
      fprintf(stderr, "FAIL expected ISA path %s is not available (have %s)\n", e.c_str(), avail_s.c_str());
      ++total_failures;
    }
  }
  if (want_isas.empty()) want_isas = avail;
  auto run = [&](const Entry& t, const std::string& isa) {
    if (!want_tests.empty() && !want_tests.count(t.name)) return;
    Ctx ctx;
    ctx.isa = isa;
    ctx.test = t.name;
    const auto t0 = std::chrono::steady_clock::now();
    t.fn(ctx);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ctx.checks == 0) ctx.check(false, "test made no checks");
    printf("%s isa=%s test=%s checks=%lld failures=%lld time=%.2fs\n", ctx.failures ? "FAILED" : "ok",
           isa.empty() ? "-" : isa.c_str(), t.name, (long long)ctx.checks, (long long)ctx.failures, s);
    fflush(stdout);
    total_checks += ctx.checks;
    total_failures += ctx.failures;
  };
  for (const Entry& t : registry())
    if (!t.per_isa) run(t, "");
  for (const auto& isa : want_isas) {
    if (bnb_cpu::set_isa(isa) != bnb_cpu::kOk || bnb_cpu::isa() != isa) {
      fprintf(stderr, "FAIL set_isa(%s) failed (available: %s)\n", isa.c_str(), avail_s.c_str());
      ++total_failures;
      continue;
    }
    for (const Entry& t : registry())
      if (t.per_isa) run(t, isa);
  }
  printf("%s: %lld checks, %lld failures\n", total_failures ? "FAILED" : "OK", (long long)total_checks,
         (long long)total_failures);
  return total_failures ? 1 : 0;
}
