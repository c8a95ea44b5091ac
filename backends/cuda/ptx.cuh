// The NVIDIA-only PTX instructions bnb-core's kernels use, one small device function per instruction form:
// inline asm under nvcc, an emulation under BNB_CUDA_EMU (the CPU emulator, emu/cuda_emu.h) that follows the
// PTX ISA fragment layouts exactly (per-lane fragments exchanged through the warp), and nothing under HIP
// (kernels keep a portable SIMT path for HIP and older GPUs).
//
// Use them behind the feature macros, which also hold in the emulator (BNB_PTX_SM = BNB_EMU_SM, 900 unless a
// build sets -DBNB_EMU_SM=700 to run the SIMT fallbacks):
//
//   #if BNB_HAS_MMA_M16N8K16
//     bnb_cuda::ptx::ldmatrix_x4(a, &As[row][col]);
//     bnb_cuda::ptx::mma_m16n8k16_bf16_f32(acc, a, b, acc);
//   #else
//     ... SIMT path ...
//   #endif
//
// Fragment layouts, from the PTX ISA ("Parallel Thread Execution ISA", section "Warp Level Matrix Multiply-
// Accumulate Instructions" > "Matrix Fragments for mma.m*n*k*"; 9.7.14.5.x in the 8.x documents, the numbering
// moves between versions, the titles do not). groupID g = %laneid >> 2, threadID_in_group t = %laneid % 4;
// element i of a fragment lives in register i / (elements per register), lowest bits first:
//   "Matrix Fragments for mma.m16n8k16 with floating point type" (.f16/.bf16): A a0..a7 (4 x .b32): row g for
//     i in {0,1,4,5}, g + 8 otherwise; col 2t + (i & 1), + 8 for i >= 4.  B b0..b3 (2 x .b32): row (k)
//     2t + (i & 1), + 8 for i >= 2; col (n) g.  C/D c0..c3 (.f32): row g for i < 2, g + 8 otherwise;
//     col 2t + (i & 1).
//   "Matrix Fragments for mma.m16n8k32" (.s8): A a0..a15 (4 x .b32): row g for i in [0,4) and [8,12), g + 8
//     otherwise; col 4t + (i & 3), + 16 for i >= 8.  B b0..b7 (2 x .b32): row (k) 4t + (i & 3), + 16 for
//     i >= 4; col (n) g.  C/D (.s32): as m16n8k16.
//   "Matrix Fragments for mma.m8n8k16" (.s8, sm_75): A a0..a3 (1 x .b32): row g, col 4t + i.  B b0..b3:
//     row (k) 4t + i, col (n) g.  C/D c0, c1 (.s32): row g, col 2t + i.
//   "Warp-level matrix load instruction: ldmatrix" (.m8n8 .b16): lanes 8j..8j+7 give the 8 row addresses of
//     matrix j (16-byte aligned rows of eight 16-bit elements; "a group of four consecutive threads loads 16
//     bytes"); register j of lane L holds row L / 4, elements 2 (L % 4) and 2 (L % 4) + 1 (low half first)
//     of matrix j; with .trans, the elements (row 2 (L % 4) + h, col L / 4).
//   "Data Movement and Conversion Instructions: cp.async": copies cp-size bytes (4, 8, 16; .cg: 16 only)
//     global -> shared, the bytes past src-size zero-filled; complete once cp.async.wait_group N leaves at
//     most N newer committed groups pending (wait_all: all, committed or not). Addresses aligned to cp-size.
//     The emulator performs a copy when the wait completes it (never earlier), so a read of the destination
//     before the wait sees the old contents.
//
// Arithmetic of the emulated mma: exact products, the sum over k and C accumulated in double and rounded once
// to fp32 (s32: exact, wrapping). Hardware tensor cores round differently (matmul results are held to the
// conformance bound, never to bit equality with one accumulation order).
#pragma once

#include "common.cuh"

#if defined(BNB_CUDA_EMU)
#define BNB_PTX_SM BNB_EMU_SM
#elif defined(__CUDA_ARCH__) && !defined(__HIPCC__)
#define BNB_PTX_SM __CUDA_ARCH__
#else
#define BNB_PTX_SM 0
#endif

#define BNB_HAS_LDMATRIX (BNB_PTX_SM >= 750)
#define BNB_HAS_MMA_S8_M8N8K16 (BNB_PTX_SM >= 750)
#define BNB_HAS_MMA_M16N8K16 (BNB_PTX_SM >= 800)
#define BNB_HAS_MMA_S8_M16N8K32 (BNB_PTX_SM >= 800)
#define BNB_HAS_CP_ASYNC (BNB_PTX_SM >= 800)

// nvcc's host pass parses kernel bodies too; declare the wrappers there (their bodies never run on the host).
#if defined(__CUDACC__) && !defined(__CUDA_ARCH__) && !defined(__HIPCC__) && !defined(BNB_CUDA_EMU)
#define BNB_PTX_DECLARE 1
#else
#define BNB_PTX_DECLARE 0
#endif

namespace bnb_cuda {
namespace ptx {

#if defined(BNB_CUDA_EMU)
// ------------------------------------------------------------------------------------ emulation
namespace emu {

inline void need_full_warp(const bnb_emu::WarpArgs& w, const char* what) {
  if (w.lanes != 0xFFFFFFFFu) bnb_emu::detail::trap(what);
}

struct MmaIn {
  uint32_t a[4];
  uint32_t b[2];
  uint32_t c[4];  // fp32 or s32 bit patterns
};

inline float f16_elem(uint32_t r, int h, bool bf16) {
  const uint16_t v = (uint16_t)(r >> (16 * h));
  return bf16 ? bnb::bf16_to_f32(v) : bnb::f16_to_f32(v);
}

inline float bits_f32(uint32_t u) { return bnb::f32_from_bits(u); }

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 (PTX ISA 9.7.14.5.8)
template <bool BF16>
void mma_m16n8k16_fn(const bnb_emu::WarpArgs& w) {
  need_full_warp(w, "mma.sync.m16n8k16: all 32 lanes of the warp must execute it");
  float A[16][16], B[16][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaIn& in = *static_cast<const MmaIn*>(w.in[lane]);
    const int g = lane >> 2, t = lane & 3;
    for (int r = 0; r < 4; ++r)
      for (int h = 0; h < 2; ++h) A[g + 8 * (r & 1)][2 * t + h + 8 * (r >> 1)] = f16_elem(in.a[r], h, BF16);
    for (int r = 0; r < 2; ++r)
      for (int h = 0; h < 2; ++h) B[2 * t + h + 8 * r][g] = f16_elem(in.b[r], h, BF16);
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = bits_f32(in.c[i]);
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    float* d = static_cast<float*>(w.out[lane]);
    for (int i = 0; i < 4; ++i) {
      const int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
      double acc = C[m][n];
      for (int k = 0; k < 16; ++k) acc += (double)A[m][k] * (double)B[k][n];
      d[i] = (float)acc;
    }
  }
}

// mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 (PTX ISA 9.7.14.5.10); wrapping s32 arithmetic
void inline mma_m16n8k32_s8_fn(const bnb_emu::WarpArgs& w) {
  need_full_warp(w, "mma.sync.m16n8k32: all 32 lanes of the warp must execute it");
  int32_t A[16][32], B[32][8], C[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaIn& in = *static_cast<const MmaIn*>(w.in[lane]);
    const int g = lane >> 2, t = lane & 3;
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 4; ++j) A[g + 8 * (r & 1)][4 * t + j + 16 * (r >> 1)] = (int8_t)(in.a[r] >> (8 * j));
    for (int r = 0; r < 2; ++r)
      for (int j = 0; j < 4; ++j) B[4 * t + j + 16 * r][g] = (int8_t)(in.b[r] >> (8 * j));
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = (int32_t)in.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    int32_t* d = static_cast<int32_t*>(w.out[lane]);
    for (int i = 0; i < 4; ++i) {
      const int m = g + 8 * (i >> 1), n = 2 * t + (i & 1);
      uint32_t acc = (uint32_t)C[m][n];
      for (int k = 0; k < 32; ++k) acc += (uint32_t)(A[m][k] * B[k][n]);
      d[i] = (int32_t)acc;
    }
  }
}

// mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 (PTX ISA 9.7.14.5.4)
void inline mma_m8n8k16_s8_fn(const bnb_emu::WarpArgs& w) {
  need_full_warp(w, "mma.sync.m8n8k16: all 32 lanes of the warp must execute it");
  int32_t A[8][16], B[16][8], C[8][8];
  for (int lane = 0; lane < 32; ++lane) {
    const MmaIn& in = *static_cast<const MmaIn*>(w.in[lane]);
    const int g = lane >> 2, t = lane & 3;
    for (int j = 0; j < 4; ++j) {
      A[g][4 * t + j] = (int8_t)(in.a[0] >> (8 * j));
      B[4 * t + j][g] = (int8_t)(in.b[0] >> (8 * j));
    }
    for (int i = 0; i < 2; ++i) C[g][2 * t + i] = (int32_t)in.c[i];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    int32_t* d = static_cast<int32_t*>(w.out[lane]);
    for (int i = 0; i < 2; ++i) {
      uint32_t acc = (uint32_t)C[g][2 * t + i];
      for (int k = 0; k < 16; ++k) acc += (uint32_t)(A[g][k] * B[k][2 * t + i]);
      d[i] = (int32_t)acc;
    }
  }
}

// ldmatrix.sync.aligned.m8n8.x{NUM}{.trans}.shared.b16 (PTX ISA 9.7.14.5.15)
template <int NUM, bool TRANS>
void ldmatrix_fn(const bnb_emu::WarpArgs& w) {
  need_full_warp(w, "ldmatrix: all 32 lanes of the warp must execute it");
  const unsigned char* rows[4][8];
  for (int j = 0; j < NUM; ++j)
    for (int r = 0; r < 8; ++r) {
      const unsigned char* p = *static_cast<const unsigned char* const*>(w.in[8 * j + r]);
      if (((uintptr_t)p & 15u) != 0) bnb_emu::detail::trap("ldmatrix: a row address is not 16-byte aligned");
      rows[j][r] = p;
    }
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t* out = static_cast<uint32_t*>(w.out[lane]);
    for (int j = 0; j < NUM; ++j) {
      uint32_t v = 0;
      for (int h = 0; h < 2; ++h) {
        const int row = TRANS ? 2 * (lane % 4) + h : lane / 4;
        const int col = TRANS ? lane / 4 : 2 * (lane % 4) + h;
        uint16_t e;
        memcpy(&e, rows[j][row] + 2 * col, 2);
        v |= (uint32_t)e << (16 * h);
      }
      out[j] = v;
    }
  }
}

template <int NUM, bool TRANS>
inline void ldmatrix(uint32_t* r, const void* row) {
  const unsigned char* p = static_cast<const unsigned char*>(row);
  uint32_t out[NUM];
  bnb_emu::detail::warp_collective(0xFFFFFFFFu, &ldmatrix_fn<NUM, TRANS>, &p, out);
  for (int j = 0; j < NUM; ++j) r[j] = out[j];
}

inline void mma(bnb_emu::WarpFn fn, uint32_t* d, int nd, const uint32_t* a, int na, const uint32_t* b, int nb,
                const uint32_t* c) {
  MmaIn in{};
  for (int i = 0; i < na; ++i) in.a[i] = a[i];
  for (int i = 0; i < nb; ++i) in.b[i] = b[i];
  for (int i = 0; i < nd; ++i) in.c[i] = c[i];
  uint32_t out[4];
  bnb_emu::detail::warp_collective(0xFFFFFFFFu, fn, &in, out);
  for (int i = 0; i < nd; ++i) d[i] = out[i];
}

inline void f32_to_bits(const float* f, uint32_t* u, int n) {
  for (int i = 0; i < n; ++i) u[i] = bnb::f32_bits(f[i]);
}

}  // namespace emu
#endif  // BNB_CUDA_EMU

// ------------------------------------------------------------------------------------ mma
#if BNB_HAS_MMA_M16N8K16 || BNB_PTX_DECLARE
// d = a * b + c; a: 16x16 f16 (row), b: 16x8 f16 (col), c/d: 16x8 f32. d may alias c.
__device__ __forceinline__ void mma_m16n8k16_f16_f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4]) {
#if defined(BNB_CUDA_EMU)
  uint32_t cu[4], du[4];
  emu::f32_to_bits(c, cu, 4);
  emu::mma(&emu::mma_m16n8k16_fn<false>, du, 4, a, 4, b, 2, cu);
  for (int i = 0; i < 4; ++i) d[i] = bnb::f32_from_bits(du[i]);
#elif BNB_HAS_MMA_M16N8K16
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}

// The same with bf16 inputs.
__device__ __forceinline__ void mma_m16n8k16_bf16_f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                      const float c[4]) {
#if defined(BNB_CUDA_EMU)
  uint32_t cu[4], du[4];
  emu::f32_to_bits(c, cu, 4);
  emu::mma(&emu::mma_m16n8k16_fn<true>, du, 4, a, 4, b, 2, cu);
  for (int i = 0; i < 4; ++i) d[i] = bnb::f32_from_bits(du[i]);
#elif BNB_HAS_MMA_M16N8K16
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}
#endif

#if BNB_HAS_MMA_S8_M16N8K32 || BNB_PTX_DECLARE
// d = a * b + c; a: 16x32 s8 (row), b: 32x8 s8 (col), c/d: 16x8 s32 (wrapping). d may alias c.
__device__ __forceinline__ void mma_m16n8k32_s8_s32(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const int32_t c[4]) {
#if defined(BNB_CUDA_EMU)
  emu::mma(&emu::mma_m16n8k32_s8_fn, reinterpret_cast<uint32_t*>(d), 4, a, 4, b, 2,
           reinterpret_cast<const uint32_t*>(c));
#elif BNB_HAS_MMA_S8_M16N8K32
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(c[0]), "r"(c[1]), "r"(c[2]),
        "r"(c[3]));
#endif
}
#endif

#if BNB_HAS_MMA_S8_M8N8K16 || BNB_PTX_DECLARE
// d = a * b + c; a: 8x16 s8 (row), b: 16x8 s8 (col), c/d: 8x8 s32 (wrapping). sm_75 (Turing) int8 shape.
__device__ __forceinline__ void mma_m8n8k16_s8_s32(int32_t d[2], uint32_t a, uint32_t b, const int32_t c[2]) {
#if defined(BNB_CUDA_EMU)
  emu::mma(&emu::mma_m8n8k16_s8_fn, reinterpret_cast<uint32_t*>(d), 2, &a, 1, &b, 1,
           reinterpret_cast<const uint32_t*>(c));
#elif BNB_HAS_MMA_S8_M8N8K16
  asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0,%1}, {%2}, {%3}, {%4,%5};\n"
      : "=r"(d[0]), "=r"(d[1])
      : "r"(a), "r"(b), "r"(c[0]), "r"(c[1]));
#endif
}
#endif

// ------------------------------------------------------------------------------------ ldmatrix
#if BNB_HAS_LDMATRIX || BNB_PTX_DECLARE
#if defined(BNB_CUDA_EMU)
#define BNB_PTX_LDMATRIX(NAME, NUM, TRANS, ASMNUM, ASMTRANS, OUTS, ...)          \
  __device__ __forceinline__ void NAME(uint32_t r[NUM], const void* smem_row) { \
    emu::ldmatrix<NUM, TRANS>(r, smem_row);                                     \
  }
#elif BNB_HAS_LDMATRIX
#define BNB_PTX_LDMATRIX(NAME, NUM, TRANS, ASMNUM, ASMTRANS, OUTS, ...)                                  \
  __device__ __forceinline__ void NAME(uint32_t r[NUM], const void* smem_row) {                         \
    const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));                       \
    asm volatile("ldmatrix.sync.aligned.m8n8." ASMNUM ASMTRANS ".shared.b16 " OUTS ", [%" #NUM "];\n"   \
                 : __VA_ARGS__                                                                          \
                 : "r"(s)                                                                               \
                 : "memory");                                                                           \
  }
#else
#define BNB_PTX_LDMATRIX(NAME, NUM, TRANS, ASMNUM, ASMTRANS, OUTS, ...) \
  __device__ __forceinline__ void NAME(uint32_t r[NUM], const void* smem_row) {}
#endif
// Lane L gives the address of row L % 8 of matrix L / 8 (lanes 0-7 for x1, 0-15 for x2, all for x4);
// r[j] = this lane's fragment of matrix j (see the layout at the top of this file).
BNB_PTX_LDMATRIX(ldmatrix_x1, 1, false, "x1", "", "{%0}", "=r"(r[0]))
BNB_PTX_LDMATRIX(ldmatrix_x2, 2, false, "x2", "", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
BNB_PTX_LDMATRIX(ldmatrix_x4, 4, false, "x4", "", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]))
BNB_PTX_LDMATRIX(ldmatrix_x1_trans, 1, true, "x1", ".trans", "{%0}", "=r"(r[0]))
BNB_PTX_LDMATRIX(ldmatrix_x2_trans, 2, true, "x2", ".trans", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
BNB_PTX_LDMATRIX(ldmatrix_x4_trans, 4, true, "x4", ".trans", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]),
                 "=r"(r[3]))
#undef BNB_PTX_LDMATRIX
#endif

// ------------------------------------------------------------------------------------ cp.async
#if BNB_HAS_CP_ASYNC || BNB_PTX_DECLARE
// cp.async.ca.shared.global: BYTES (4, 8 or 16) from global `src` to shared `dst`, cached in L1 and L2.
template <int BYTES>
__device__ __forceinline__ void cp_async_ca(void* dst, const void* src) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async.ca copies 4, 8 or 16 bytes");
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async(dst, src, BYTES, BYTES);
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src), "n"(BYTES)
               : "memory");
#endif
}

// The same, reading only the first `src_bytes` (0..BYTES) of `src` and zero-filling the rest of `dst`.
template <int BYTES>
__device__ __forceinline__ void cp_async_ca_zfill(void* dst, const void* src, int src_bytes) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async.ca copies 4, 8 or 16 bytes");
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async(dst, src, BYTES, (unsigned)src_bytes);
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src), "n"(BYTES), "r"(src_bytes)
               : "memory");
#endif
}

// cp.async.cg.shared.global: 16 bytes, cached in L2 only (streaming).
__device__ __forceinline__ void cp_async_cg_16(void* dst, const void* src) {
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async(dst, src, 16, 16);
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src)
               : "memory");
#endif
}

__device__ __forceinline__ void cp_async_cg_16_zfill(void* dst, const void* src, int src_bytes) {
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async(dst, src, 16, (unsigned)src_bytes);
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src), "r"(src_bytes)
               : "memory");
#endif
}

// cp.async.commit_group: the copies this thread issued since the last commit form one group.
__device__ __forceinline__ void cp_async_commit() {
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async_commit();
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// cp.async.wait_group N: wait until at most N of this thread's most recent committed groups are pending.
// Other threads' copies are visible after a barrier (__syncthreads) that follows every thread's wait.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async_wait(N);
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// cp.async.wait_all: every copy this thread issued, committed or not.
__device__ __forceinline__ void cp_async_wait_all() {
#if defined(BNB_CUDA_EMU)
  bnb_emu::detail::cp_async_wait_all();
#elif BNB_HAS_CP_ASYNC
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}
#endif

}  // namespace ptx
}  // namespace bnb_cuda
