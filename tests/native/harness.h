// Torch-free test harness for the CPU kernel cores (tests/native/README.md).
//
// The program links the per-ISA kernel sources, ops*.cpp and thread_pool.cpp (no pybind11, no Python)
// and checks the entry points of ops.h against the straightforward scalar reference implementations
// written in the test files, on every ISA path the build and the CPU (or qemu) support.
#pragma once

#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

namespace bnb_test {

// Per (ISA, test) bookkeeping. Tests call check(); failures are printed (the first few per test).
struct Ctx {
  std::string isa;   // active ISA path ("" for ISA-independent tests)
  std::string test;  // test name
  int64_t checks = 0;
  int64_t failures = 0;
  bool check(bool ok, const std::string& what);  // returns ok
};

using TestFn = void (*)(Ctx&);
struct Registrar {
  // per_isa: run once per ISA path (after bnb_cpu::set_isa), otherwise once.
  Registrar(const char* name, TestFn fn, bool per_isa);
};

// A test run once per ISA path, e.g. BNB_CORE_TEST(quant8) { ctx.check(...); }
#define BNB_CORE_TEST(name)                                              \
  static void bnb_core_test_##name(bnb_test::Ctx&);                      \
  static bnb_test::Registrar bnb_core_reg_##name(#name, bnb_core_test_##name, true); \
  static void bnb_core_test_##name(bnb_test::Ctx& ctx)
// A test of the harness itself or of ISA-independent code, run once.
#define BNB_CORE_TEST_ONCE(name)                                         \
  static void bnb_core_test_##name(bnb_test::Ctx&);                      \
  static bnb_test::Registrar bnb_core_reg_##name(#name, bnb_core_test_##name, false); \
  static void bnb_core_test_##name(bnb_test::Ctx& ctx)

// Deterministic RNG (splitmix64); tests seed it from their own name so runs are reproducible.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  explicit Rng(const std::string& name);
  uint64_t next();
  double uniform();                      // [0, 1)
  int64_t below(int64_t n);              // [0, n)
  float normal();                        // N(0, 1)
  float wide();                          // +-N(0,1) * 2^[-30, 30]
};

inline uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
inline float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// ---------------------------------------------------------------- reference dtype conversions
// Written independently of backends/common/bnb_quant_math.h (different algorithms), and checked
// against the compiler's _Float16 conversions where it has them (test `conversions`).
// dtype codes as in ops.h: 0 = float32, 1 = float16, 2 = bfloat16.
float ref_f16_to_f32(uint16_t h);
uint16_t ref_f32_to_f16(float f);  // round to nearest even; NaN: sign | 0x7E00 | top 10 payload bits
float ref_bf16_to_f32(uint16_t h);
uint16_t ref_f32_to_bf16(float f);  // round to nearest even; NaN -> 0x7FC0 (torch)
float ref_load(int dtype, const void* p, int64_t i);
void ref_store(int dtype, void* p, int64_t i, float v);
inline int dtype_size(int dtype) { return dtype == 0 ? 4 : 2; }
const char* dtype_name(int dtype);

// Bytes of buffers, compared bitwise; returns the first differing index or -1.
int64_t first_diff(const void* a, const void* b, int64_t nbytes);

// BNB_CORE_QUICK=1 trims the case lists (for slow emulators); the default covers everything.
bool quick();

}  // namespace bnb_test
