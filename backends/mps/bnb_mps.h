// Metal-side pieces shared by the MPS kernels (backends/mps/*.metal): storage types of the three float dtypes,
// the thread-position arguments every kernel takes, and NaN-aware helpers. Metal Shading Language (C++14-based);
// bnb_core/backends/mps.py inlines this file after bnb_quant_math.h into the source it compiles at run time
// (torch.mps.compile_shader), and tests/test_mps_kernels.py compiles that same source with g++ through
// tests/mps_compat/bnb_metal_compat.h and runs every kernel against the reference.
//
// Rules the kernels follow (docs/architecture.md, "backends/mps"):
// * element indices and offsets are `long` (64-bit): a tensor may hold more than 2^32 elements; loops are
//   grid-stride or threadgroup-stride over 64-bit ranges, so any size runs with a bounded grid;
// * every output element (byte) is written by exactly one thread;
// * SIMD-group functions and threadgroup barriers are reached by all threads of their SIMD-group / threadgroup
//   (uniform control flow), which the CPU emulation checks (a barrier some thread never reaches fails the test);
// * the per-element arithmetic is the shared one of bnb_quant_math.h (bit-exact codes, absmax, dequantized values).
#pragma once

// ---------------------------------------------------------------- storage of fp32 / fp16 / bf16 elements
// fp16 is Metal's half (float -> half is static_cast, round to nearest even: MSL spec, "Type Conversions").
// bf16 is kept as its 16 bits (ushort) and converted with the shared bit-exact helpers (round to nearest even,
// NaN -> 0x7FC0), so bf16 needs no MSL 3.1 `bfloat` and matches the CPU kernels bit for bit.
struct BnbF32 {
  typedef float T;
  static inline float load(T v) { return v; }
  static inline T store(float f) { return f; }
};
struct BnbF16 {
  typedef half T;
  static inline float load(T v) { return static_cast<float>(v); }
  static inline T store(float f) { return static_cast<half>(f); }
};
struct BnbBF16 {
  typedef ushort T;
  static inline float load(T v) { return bnb::bf16_to_f32(v); }
  static inline T store(float f) { return bnb::f32_to_bf16(f); }
};

// ---------------------------------------------------------------- thread positions (1-D grids)
// Every kernel ends its parameter list with BNB_GRID_ARGS and passes BNB_GRID (a BnbGrid) to its body.
// (tests/mps_compat/emulator.cpp passes these values in this order.)
#define BNB_GRID_ARGS                                                                                    \
  uint tid [[thread_position_in_grid]], uint nthreads [[threads_per_grid]],                              \
      uint lid [[thread_position_in_threadgroup]], uint group [[threadgroup_position_in_grid]],          \
      uint group_size [[threads_per_threadgroup]], uint ngroups [[threadgroups_per_grid]],               \
      uint simd_lane [[thread_index_in_simdgroup]], uint simd_id [[simdgroup_index_in_threadgroup]],     \
      uint simd_width [[threads_per_simdgroup]]

struct BnbGrid {
  uint tid, nthreads, lid, group, group_size, ngroups, simd_lane, simd_id, simd_width;
};

#define BNB_GRID BnbGrid{tid, nthreads, lid, group, group_size, ngroups, simd_lane, simd_id, simd_width}

// Threadgroup-memory slots for per-SIMD-group partial results (threadgroups of up to 1024 threads of 32 lanes).
#define BNB_MAX_SIMDGROUPS 32

inline float bnb_inf() { return bnb::f32_from_bits(0x7F800000u); }
