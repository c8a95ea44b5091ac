// CPU stand-in for the parts of the Metal Shading Language that bnb-core's MPS kernels use, so that g++
// compiles the SAME assembled shader source (bnb_core.backends.mps.shader_source("cpu")) and emulator.cpp
// runs its kernels on CPU (tests/test_mps_kernels.py). What it does:
//   * address spaces defined away (`device`, `constant`, `thread`); `threadgroup` variables become function
//     statics: threadgroups run one after another, so exactly one threadgroup uses them at a time;
//   * `kernel` -> a plain function; Metal attributes ([[buffer(i)]], [[thread_position_in_grid]]) are ignored
//     by g++ (-Wno-attributes); the emulator passes the thread positions itself;
//   * Metal scalar types; half = _Float16 (IEEE round to nearest even, as Metal's float -> half conversion);
//   * as_type<T>() bit casts;
//   * threadgroup_barrier and the SIMD-group functions (simd_sum, simd_max, simd_any) are collective: every
//     thread of a threadgroup is a cooperative fiber (emulator.cpp) and a barrier / SIMD-group function
//     suspends it until all threads of its threadgroup / SIMD-group (32 lanes) arrive. A barrier that some
//     thread never reaches is reported as an error. simd_max(float) ignores NaN (IEEE maxNum, what Metal does
//     not promise either), so a kernel must not rely on it to propagate NaN;
//   * fp32 subnormals flushed to zero, as Apple GPUs do: emulator.cpp runs the kernels with the x86 FTZ and DAZ
//     flags set (operands and results of float arithmetic that are subnormal become zero).
// It cannot show: Metal compile errors, real dispatch, other hardware numerics (the order of simd_sum's
// additions, FMA contraction), data races between threads of a threadgroup.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#define BNB_METAL 1
#define BNB_METAL_COMPAT 1

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;  // 64-bit on the LP64 targets this test runs on
static_assert(sizeof(ulong) == 8, "Metal's ulong is 64-bit");
typedef _Float16 half;

using std::fabs;

template <typename To, typename From>
inline To as_type(From from) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs types of the same size");
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
}

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

namespace bnb_emu {
// Implemented by emulator.cpp (the fiber scheduler).
void group_barrier();
// Collective over the calling thread's SIMD-group: deposits `bits`, waits for every lane, fills lanes[0..n) in
// lane order and returns n.
int simd_collect(uint32_t bits, uint32_t* lanes);
}  // namespace bnb_emu

inline void threadgroup_barrier(mem_flags) { bnb_emu::group_barrier(); }

inline float simd_sum(float v) {
  uint32_t lanes[64];
  const int n = bnb_emu::simd_collect(as_type<uint32_t>(v), lanes);
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += as_type<float>(lanes[i]);
  return s;
}

inline float simd_max(float v) {
  uint32_t lanes[64];
  const int n = bnb_emu::simd_collect(as_type<uint32_t>(v), lanes);
  float m = as_type<float>(lanes[0]);
  for (int i = 1; i < n; ++i) m = std::fmax(m, as_type<float>(lanes[i]));
  return m;
}

inline uint simd_max(uint v) {
  uint32_t lanes[64];
  const int n = bnb_emu::simd_collect(v, lanes);
  uint m = lanes[0];
  for (int i = 1; i < n; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}

inline bool simd_any(bool v) {
  uint32_t lanes[64];
  const int n = bnb_emu::simd_collect(v ? 1u : 0u, lanes);
  for (int i = 0; i < n; ++i)
    if (lanes[i]) return true;
  return false;
}

#define kernel
#define device
#define constant const
#define thread
#define threadgroup static
