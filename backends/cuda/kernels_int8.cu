// LLM.int8() kernels on CUDA: row/column absmax int8 quantization with fused outlier-column detection,
// dequantization, the exact int32 matmul A[M, K] @ B[N, K]^T and its fused dequantization epilogue.
//
// Exact fp32 semantics of bnb_core/reference.py (compiled with -fmad=false, IEEE division):
//   scale = fp32(1 / absmax) * 127, q = rne(x * scale), non-finite q -> 0, clamp to [-127, 127];
//   dequant (float(A) * stats) * fp32(1/127); mm dequant (float(acc) * (row * col)) * fp32(1/127^2) (+ bias),
//   one rounding to the output dtype. Absmax reductions run on the fp32 BITS of |x| as unsigned integers:
//   for non-negative floats that order is the float order, and NaN (above +Inf) propagates.
//
// Quantization (one pass over A when threshold == 0, plus a tiny fix-up when > 0):
//   row_quant_kernel: a warp per row (K <= 2048) or a CTA per row; pass 1 reduces the row absmax leaving out
//   |x| >= threshold and flags those columns (bytes in the caller's workspace, cleared by cudaMemsetAsync);
//   pass 2 re-reads the row (L1/L2) and quantizes with outlier ELEMENTS zeroed. The last CTA to finish
//   (threadfence + atomic counter) compacts the flags into the ascending column list (block prefix sums)
//   and writes the count to device memory; zero_cols_kernel then zeroes those columns in every row.
//   Python reads the count with one device-to-host copy: the only synchronization of the family.
//
// Matmul: gemm_tc_kernel (sm_75+, not HIP): CTA tile BM x BN, K in steps of 128 bytes through a
//   STAGES-deep cp.async pipeline (sm_80+; plain loads on sm_75) into XOR-swizzled shared memory (row r
//   of 128 bytes holds chunk c at c ^ (r & 7): conflict-free cp.async stores and ldmatrix reads);
//   ldmatrix.x4 fragments, mma.sync m16n8k32 s8.s8.s32 (sm_80+) or 4x m8n8k16 (sm_75). Warps split the
//   tile as WM x WN and optionally the 4 k32 steps of a stage (WK, reduced through shared memory at the end:
//   the small-M configuration streams B with 4 warps on one 16 x 32 tile). The epilogue stores int32, adds
//   it atomically (split-K over gridDim.y: integer adds are exact in any order), or dequantizes in place
//   (row/col stats, bias) to fp32/fp16/bf16. Needs K % 16 == 0 and 16-byte aligned A, B (cp.async).
//   gemm_simt_kernel: the portable path (HIP, odd K, unaligned operands): 64 x 64 tiles, dp4a (or its
//   byte-wise equivalent), same epilogues.
#include <algorithm>
#include <atomic>
#include <string>

#include "common.cuh"
#include "kernels_int8.h"

#if defined(__CUDA_ARCH__) && !defined(__HIPCC__)
#define BNB_I8_PTX 1
#else
#define BNB_I8_PTX 0
#endif

namespace bnb_cuda {
namespace {

constexpr float kDequant = BNB_INT8_DEQUANT_SCALE;       // fp32(1/127)
constexpr float kMmDequant = BNB_INT8_MM_DEQUANT_SCALE;  // fp32(1/127^2)
constexpr int kWarp = 32;
constexpr unsigned kFull = 0xFFFFFFFFu;
constexpr int kQuantThreads = 256;
constexpr int64_t kWarpRowMaxK = 2048;  // rows up to this length: a warp per row, else a CTA per row

// ------------------------------------------------------------------------------------ small helpers

__device__ __forceinline__ float f32_inf() { return __int_as_float(0x7F800000); }

// rne(x * s); NaN/Inf -> 0; clamp to [-127, 127]
__device__ __forceinline__ int8_t quant1(float x, float s) {
  float q = x * s;
  if (!(fabsf(q) < f32_inf())) return 0;
  q = rintf(q);
  q = fminf(fmaxf(q, -127.0f), 127.0f);
  return (int8_t)(int)q;
}

__device__ __forceinline__ float row_scale(float absmax) { return (1.0f / absmax) * 127.0f; }

__device__ __forceinline__ unsigned warp_max_u32(unsigned v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = max(v, (unsigned)__shfl_xor_sync(kFull, v, o, kWarp));
  return v;
}

__device__ __forceinline__ void store8_i8(int8_t* out, int64_t i, int count, bool vec, const int8_t q[8]) {
  if (vec && count == 8) {
    uint2 w;
    w.x = (uint32_t)(uint8_t)q[0] | ((uint32_t)(uint8_t)q[1] << 8) | ((uint32_t)(uint8_t)q[2] << 16) |
          ((uint32_t)(uint8_t)q[3] << 24);
    w.y = (uint32_t)(uint8_t)q[4] | ((uint32_t)(uint8_t)q[5] << 8) | ((uint32_t)(uint8_t)q[6] << 16) |
          ((uint32_t)(uint8_t)q[7] << 24);
    *reinterpret_cast<uint2*>(out + i) = w;
    return;
  }
#pragma unroll
  for (int k = 0; k < 8; ++k)
    if (k < count) out[i + k] = q[k];
}

template <int D>
bool aligned8_elems(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (D == 0 ? 31u : 15u)) == 0;
}

__device__ __forceinline__ float load_f32_any(const void* p, int64_t i, int dtype) {
  if (dtype == 0) return static_cast<const float*>(p)[i];
  if (dtype == 1) return DT<1>::load(static_cast<const uint16_t*>(p), i);
  return DT<2>::load(static_cast<const uint16_t*>(p), i);
}

// ------------------------------------------------------------------------------------ row quantization

// Compacts the byte flags [0, Kp) (Kp a multiple of 16; each flag 0 or 1) into the ascending list of set
// indices (cols) and their count (*ncols). Run by ONE whole CTA of kQuantThreads threads. The flags were
// written by other CTAs: read them with volatile (L1-bypassing) loads after the completion fence.
__device__ void compact_flags(const uint8_t* flags, int64_t Kp, int64_t* cols, int64_t* ncols) {
  __shared__ int warp_tot[kQuantThreads / kWarp];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
  constexpr int kNW = kQuantThreads / kWarp;
  int64_t base = 0;
  for (int64_t c0 = 0; c0 < Kp; c0 += (int64_t)kQuantThreads * 16) {
    const int64_t my = c0 + (int64_t)tid * 16;
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (my < Kp) {
      const volatile uint32_t* p = reinterpret_cast<const volatile uint32_t*>(flags + my);
#pragma unroll
      for (int i = 0; i < 4; ++i) w[i] = p[i];
    }
    int cnt = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) cnt += __popc(w[i] & 0x01010101u);
    int incl = cnt;  // inclusive warp scan
#pragma unroll
    for (int o = 1; o < kWarp; o <<= 1) {
      const int t = __shfl_up_sync(kFull, incl, o, kWarp);
      if (lane >= o) incl += t;
    }
    if (lane == kWarp - 1) warp_tot[warp] = incl;
    __syncthreads();
    int before = 0, total = 0;
#pragma unroll
    for (int i = 0; i < kNW; ++i) {
      const int t = warp_tot[i];
      before += i < warp ? t : 0;
      total += t;
    }
    int64_t pos = base + before + incl - cnt;
    if (cnt) {
#pragma unroll
      for (int b = 0; b < 16; ++b)
        if ((w[b >> 2] >> (8 * (b & 3))) & 1u) cols[pos++] = my + b;
    }
    base += total;
    __syncthreads();  // warp_tot is rewritten next round
  }
  if (tid == 0) *ncols = base;
}

// One row per group of G threads (G = 32: 8 rows per CTA; G = 256: one row per CTA).
template <int D, bool OUTL, int G>
__global__ void __launch_bounds__(kQuantThreads) row_quant_kernel(const typename DT<D>::T* __restrict__ A, int64_t M,
                                                                  int64_t K, float thr, int8_t* __restrict__ out,
                                                                  float* __restrict__ stats, uint8_t* flags,
                                                                  unsigned* counter, int64_t* cols, int64_t* ncols,
                                                                  bool vec_in, bool vec_out) {
  constexpr int kGroups = kQuantThreads / G;
  __shared__ unsigned red[kQuantThreads / kWarp];
  const int tid = threadIdx.x;
  const int gi = G == kQuantThreads ? 0 : tid / G;  // group of this thread
  const int li = G == kQuantThreads ? tid : tid % G;  // lane in the group
  // every thread of the CTA runs the same number of row iterations (the CTA reduction needs that)
  const int64_t rows_per_iter = (int64_t)gridDim.x * kGroups;
  for (int64_t r0 = (int64_t)blockIdx.x * kGroups; r0 < M; r0 += rows_per_iter) {
    const int64_t row = r0 + gi;
    const bool active = row < M;
    const int64_t base = row * K;
    unsigned mb = 0u;  // bits of the absmax (non-negative floats order as unsigned ints; NaN is the largest)
    if (active) {
#pragma unroll 4  // several independent loads in flight (K = 8192 at a CTA per row: 4 steps)
      for (int64_t j = (int64_t)li * 8; j < K; j += (int64_t)G * 8) {
        float v[8];
        const int count = (int)min((int64_t)8, K - j);
        load8<D>(A, base + j, count, vec_in, v);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          const float a = fabsf(v[k]);  // padding reads 0: neither an outlier nor above the max
          if (OUTL && a >= thr) {
            flags[j + k] = 1;
          } else {
            mb = max(mb, __float_as_uint(a));
          }
        }
      }
    }
    mb = warp_max_u32(mb);
    if constexpr (G == kQuantThreads) {
      if (tid % kWarp == 0) red[tid / kWarp] = mb;
      __syncthreads();
#pragma unroll
      for (int i = 0; i < kQuantThreads / kWarp; ++i) mb = max(mb, red[i]);
      __syncthreads();
    }
    if (!active) continue;
    const float absmax = __uint_as_float(mb);
    if (li == 0) stats[row] = absmax;
    const float s = row_scale(absmax);
#pragma unroll 4
    for (int64_t j = (int64_t)li * 8; j < K; j += (int64_t)G * 8) {
      float v[8];
      const int count = (int)min((int64_t)8, K - j);
      load8<D>(A, base + j, count, vec_in, v);
      int8_t q[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) q[k] = (OUTL && fabsf(v[k]) >= thr) ? (int8_t)0 : quant1(v[k], s);
      store8_i8(out, base + j, count, vec_out, q);
    }
  }
  if constexpr (OUTL) {
    // the last CTA to finish compacts the column flags of all CTAs
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (tid == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    compact_flags(flags, (K + 15) / 16 * 16, cols, ncols);
  }
}

// out[r, cols[j]] = 0 for every row r and j < *ncols (the count the compaction wrote).
__global__ void __launch_bounds__(256) zero_cols_kernel(int8_t* __restrict__ out, int64_t M, int64_t K,
                                                        const int64_t* __restrict__ cols,
                                                        const int64_t* __restrict__ ncols) {
  const int64_t n = *ncols;
  if (n == 0) return;
  const int64_t total = M * n;
  for (int64_t i = global_thread_id(); i < total; i += grid_threads()) {
    const int64_t r = i / n;
    out[r * K + cols[i - r * n]] = 0;
  }
}

// ------------------------------------------------------------------------------------ column statistics

// col_stats must hold 0 (cleared by the host); atomicMax on the bits of |x| (see above). Each thread owns one
// column of a 256-column block and a chunk of rows (blockIdx.y).
template <int D, bool OUTL>
__global__ void __launch_bounds__(256) col_absmax_kernel(const typename DT<D>::T* __restrict__ A, int64_t M, int64_t K,
                                                         float thr, int64_t rows_per_chunk,
                                                         unsigned* __restrict__ col_bits) {
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= K) return;
  for (int64_t r0 = (int64_t)blockIdx.y * rows_per_chunk; r0 < M; r0 += (int64_t)gridDim.y * rows_per_chunk) {
    const int64_t r1 = min(M, r0 + rows_per_chunk);
    unsigned mb = 0u;
    for (int64_t r = r0; r < r1; ++r) {
      const float a = fabsf(DT<D>::load(A, r * K + c));
      if (!(OUTL && a >= thr)) mb = max(mb, __float_as_uint(a));
    }
    if (mb) atomicMax(col_bits + c, mb);
  }
}

// Column-wise quantization with per-column absmax; outlier elements -> 0.
template <int D, bool OUTL>
__global__ void __launch_bounds__(256) col_quant_kernel(const typename DT<D>::T* __restrict__ A, int64_t M, int64_t K,
                                                        float thr, const float* __restrict__ col_stats,
                                                        int8_t* __restrict__ out) {
  const int64_t n = M * K;
  for (int64_t i = global_thread_id(); i < n; i += grid_threads()) {
    const int64_t c = i % K;
    const float x = DT<D>::load(A, i);
    out[i] = (OUTL && fabsf(x) >= thr) ? (int8_t)0 : quant1(x, row_scale(col_stats[c]));
  }
}

// ------------------------------------------------------------------------------------ dequantization

__global__ void __launch_bounds__(256) dequant_kernel(const int8_t* __restrict__ A, int64_t M, int64_t K,
                                                      const float* __restrict__ stats, float* __restrict__ out) {
  const int64_t n = M * K;
  for (int64_t i = global_thread_id(); i < n; i += grid_threads()) {
    out[i] = ((float)A[i] * stats[i / K]) * kDequant;
  }
}

// out[m, n] = dtype(float(acc) * (row[m] * col[n]) * fp32(1/127^2) (+ bias[n]))
template <int D>
__device__ __forceinline__ typename DT<D>::T dequant_one(int acc, float rs, float cs, const void* bias, int bias_dtype,
                                                         int64_t n) {
  float v = ((float)acc * (rs * cs)) * kMmDequant;
  if (bias) v = v + load_f32_any(bias, n, bias_dtype);
  return DT<D>::to(v);
}

template <int D>
__global__ void __launch_bounds__(256) mm_dequant_kernel(const int32_t* __restrict__ acc, int64_t M, int64_t N,
                                                         const float* __restrict__ row, const float* __restrict__ col,
                                                         const void* __restrict__ bias, int bias_dtype,
                                                         typename DT<D>::T* __restrict__ out) {
  const int64_t n = M * N;
  for (int64_t i = global_thread_id(); i < n; i += grid_threads()) {
    const int64_t r = i / N, c = i - r * N;
    out[i] = dequant_one<D>(acc[i], row[r], col[c], bias, bias_dtype, c);
  }
}

// sub_a[m, j] = A[m, c_j]; sub_b[n, j] = dtype((float(CB[n, c_j]) * SCB[n]) * (1/127)); bad index -> NaN
template <int D>
__global__ void __launch_bounds__(256) outlier_operands_kernel(const typename DT<D>::T* __restrict__ A,
                                                               const int8_t* __restrict__ CB,
                                                               const float* __restrict__ SCB, int64_t M, int64_t N,
                                                               int64_t K, const int64_t* __restrict__ cols,
                                                               int64_t nc, typename DT<D>::T* __restrict__ sub_a,
                                                               typename DT<D>::T* __restrict__ sub_b) {
  const int64_t na = M * nc, total = (M + N) * nc;
  for (int64_t i = global_thread_id(); i < total; i += grid_threads()) {
    const bool is_a = i < na;
    const int64_t e = is_a ? i : i - na;
    const int64_t r = e / nc, j = e - r * nc;
    int64_t c = cols[j];
    if (c < 0) c += K;
    const bool ok = c >= 0 && c < K;
    if (is_a) {
      sub_a[e] = ok ? A[r * K + c] : DT<D>::to(__int_as_float(0x7FC00000));
    } else {
      const float v = ok ? ((float)CB[r * K + c] * SCB[r]) * kDequant : __int_as_float(0x7FC00000);
      sub_b[e] = DT<D>::to(v);
    }
  }
}

// ------------------------------------------------------------------------------------ matmul

enum Epi : int { kEpiStore = 0, kEpiAtomic = 1, kEpiDequant = 2 };

struct GemmArgs {
  const int8_t* A;
  const int8_t* B;
  int64_t M, N, K;
  int32_t* C;  // kEpiStore / kEpiAtomic
  const float* row_stats;  // kEpiDequant
  const float* col_stats;
  const void* bias;
  int bias_dtype;
  void* out;
  int64_t ktiles_per_split;  // tensor-core path: 128-byte K tiles per gridDim.y slice
  int64_t tiles_m, tiles_n;
};

template <int EPI, int D>
__device__ __forceinline__ void epi_one(const GemmArgs& g, int64_t row, int64_t col, int v) {
  if (row >= g.M || col >= g.N) return;
  const int64_t o = row * g.N + col;
  if constexpr (EPI == kEpiStore) {
    g.C[o] = v;
  } else if constexpr (EPI == kEpiAtomic) {
    atomicAdd(g.C + o, v);
  } else {
    static_cast<typename DT<D>::T*>(g.out)[o] =
        dequant_one<D>(v, g.row_stats[row], g.col_stats[col], g.bias, g.bias_dtype, col);
  }
}

// (row, col) and (row, col + 1)
template <int EPI, int D>
__device__ __forceinline__ void epi_pair(const GemmArgs& g, int64_t row, int64_t col, int v0, int v1) {
  if (row >= g.M || col >= g.N) return;
  if (col + 1 >= g.N) {
    epi_one<EPI, D>(g, row, col, v0);
    return;
  }
  const int64_t o = row * g.N + col;
  if constexpr (EPI == kEpiStore) {
    int32_t* p = g.C + o;
    if ((reinterpret_cast<uintptr_t>(p) & 7u) == 0) {
      *reinterpret_cast<int2*>(p) = make_int2(v0, v1);
    } else {
      p[0] = v0;
      p[1] = v1;
    }
  } else if constexpr (EPI == kEpiAtomic) {
    atomicAdd(g.C + o, v0);
    atomicAdd(g.C + o + 1, v1);
  } else {
    using T = typename DT<D>::T;
    const float rs = g.row_stats[row];
    const T a = dequant_one<D>(v0, rs, g.col_stats[col], g.bias, g.bias_dtype, col);
    const T b = dequant_one<D>(v1, rs, g.col_stats[col + 1], g.bias, g.bias_dtype, col + 1);
    T* p = static_cast<T*>(g.out) + o;
    if constexpr (D == 0) {
      if ((reinterpret_cast<uintptr_t>(p) & 7u) == 0) {
        *reinterpret_cast<float2*>(p) = make_float2(a, b);
        return;
      }
    } else {
      if ((reinterpret_cast<uintptr_t>(p) & 3u) == 0) {
        *reinterpret_cast<uint32_t*>(p) = (uint32_t)a | ((uint32_t)b << 16);
        return;
      }
    }
    p[0] = a;
    p[1] = b;
  }
}

// c += a * b over 4 signed bytes (wrapping int32)
__device__ __forceinline__ int dot4(int a, int b, int c) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 610
  return __dp4a(a, b, c);
#else
  unsigned s = (unsigned)c;
#pragma unroll
  for (int i = 0; i < 4; ++i) s += (unsigned)((int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i)));
  return (int)s;
#endif
}

// ---- portable SIMT matmul: 64 x 64 tile, 32 bytes of K per step, 256 threads of 4 x 4 outputs
constexpr int kSimtTile = 64;
constexpr int kSimtKW = 8;  // 32-bit words of K per step

__device__ __forceinline__ int load_word(const int8_t* row, int64_t k, int64_t K, bool word_ok) {
  if (word_ok && k + 3 < K) return *reinterpret_cast<const int*>(row + k);
  unsigned w = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (k + i < K) w |= (unsigned)(uint8_t)row[k + i] << (8 * i);
  return (int)w;
}

template <int EPI, int D>
__global__ void __launch_bounds__(256) gemm_simt_kernel(GemmArgs g, bool word_ok) {
  __shared__ int As[kSimtKW][kSimtTile];
  __shared__ int Bs[kSimtKW][kSimtTile];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t n0 = (int64_t)blockIdx.x * kSimtTile;
  for (int64_t mt = blockIdx.y; mt < g.tiles_m; mt += gridDim.y) {
    const int64_t m0 = mt * kSimtTile;
    int acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    for (int64_t k0 = 0; k0 < g.K; k0 += 4 * kSimtKW) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // 2 x 256 = 512 words per operand tile
        const int e = tid + h * 256;
        const int r = e % kSimtTile, w = e / kSimtTile;
        const int64_t k = k0 + 4 * w;
        const int64_t m = m0 + r, n = n0 + r;
        As[w][r] = m < g.M ? load_word(g.A + m * g.K, k, g.K, word_ok) : 0;
        Bs[w][r] = n < g.N ? load_word(g.B + n * g.K, k, g.K, word_ok) : 0;
      }
      __syncthreads();
#pragma unroll
      for (int w = 0; w < kSimtKW; ++w) {
        int a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = As[w][ty + 16 * i], b[i] = Bs[w][tx + 16 * i];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = dot4(a[i], b[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) epi_one<EPI, D>(g, m0 + ty + 16 * i, n0 + tx + 16 * j, acc[i][j]);
  }
}

// ---- tensor-core matmul
constexpr int kBK = 128;  // bytes of K per pipeline stage (4 mma k-steps of 32)

template <int BM_, int BN_, int WM_, int WN_, int WK_, int STAGES_, int MIN_BLOCKS_>
struct TcCfg {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, WK = WK_, STAGES = STAGES_;
  static constexpr int kMinBlocks = MIN_BLOCKS_;
  static constexpr int kWarps = WM * WN * WK;
  static constexpr int kThreads = kWarps * kWarp;
  static constexpr int kWarpM = BM / WM, kWarpN = BN / WN;
  static constexpr int kMT = kWarpM / 16, kNT = kWarpN / 8;
  static constexpr int kKSteps = 4 / WK;
  static constexpr int kStageBytes = (BM + BN) * kBK;
  static constexpr int kSmem = STAGES * kStageBytes;
  static constexpr int kLoadIters = (BM + BN) * (kBK / 16) / kThreads;
  static_assert(kWarpM % 16 == 0 && kWarpN % 16 == 0 && 4 % WK == 0, "warp tile");
  static_assert((BM + BN) * (kBK / 16) % kThreads == 0, "loader");
  static_assert(BM % 8 == 0, "swizzle rows");
  static_assert((WK - 1) * WM * WN * kMT * kNT * 4 * kWarp * 4 <= kSmem, "split-warp reduction buffer");
};

// M <= 16: 4 warps on a 16 x 32 tile, each taking one k32 step of every stage (streams B: 256 CTAs at N = 8192)
using CfgS = TcCfg<16, 32, 1, 1, 4, 6, 4>;
// 16 < M <= 128: 64 x 32 tile, 2 x 1 warps x 2 k-halves
using CfgM = TcCfg<64, 32, 2, 1, 2, 4, 3>;
// M > 128: 128 x 128 tile, 2 x 4 warps of 64 x 32
using CfgL = TcCfg<128, 128, 2, 4, 1, 3, 2>;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
#if BNB_I8_PTX
  return (uint32_t)__cvta_generic_to_shared(p);
#else
  return 0u;
#endif
}

// 16 bytes global -> shared; src_bytes 0 writes zeros
__device__ __forceinline__ void cp_async16(uint32_t dst, void* dst_generic, const void* src, int src_bytes) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
#else
  *reinterpret_cast<int4*>(dst_generic) = src_bytes ? *reinterpret_cast<const int4*>(src) : make_int4(0, 0, 0, 0);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], uint32_t addr) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 750
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#else
  r[0] = r[1] = r[2] = r[3] = 0u;
#endif
}

// c[16 x 8] += a[16 x 32] * b[32 x 8] (s8 x s8 -> s32), PTX fragment layouts of mma.m16n8k32 (row.col)
__device__ __forceinline__ void mma_16832(int c[4], const uint32_t a[4], const uint32_t b[2]) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif BNB_I8_PTX && __CUDA_ARCH__ >= 750
  // m16n8k32 = 4 x m8n8k16: a0 rows 0-7 k 0-15, a1 rows 8-15 k 0-15, a2 rows 0-7 k 16-31, a3 rows 8-15 k 16-31;
  // b0 k 0-15, b1 k 16-31; c0/c1 rows 0-7, c2/c3 rows 8-15 (the m8n8k16 layouts are the same per 8 x 16 piece)
#define BNB_MMA8816(C0, C1, A, B)                                                               \
  asm("mma.sync.aligned.m8n8k16.row.col.s32.s8.s8.s32 {%0, %1}, {%2}, {%3}, {%0, %1};\n" \
      : "+r"(C0), "+r"(C1)                                                                      \
      : "r"(A), "r"(B))
  BNB_MMA8816(c[0], c[1], a[0], b[0]);
  BNB_MMA8816(c[0], c[1], a[2], b[1]);
  BNB_MMA8816(c[2], c[3], a[1], b[0]);
  BNB_MMA8816(c[2], c[3], a[3], b[1]);
#undef BNB_MMA8816
#endif
}

template <class Cfg, int EPI, int D>
__device__ __forceinline__ void gemm_tc_body(const GemmArgs& g) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 750
  constexpr int BM = Cfg::BM, BN = Cfg::BN, WN = Cfg::WN, kMT = Cfg::kMT, kNT = Cfg::kNT;
  extern __shared__ __align__(128) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;

  // grouped rasterization: 8 M-tiles side by side share the B tiles they stream (L2 reuse at large M)
  constexpr int64_t kGroupM = 8;
  const int64_t pid = blockIdx.x;
  const int64_t per_group = kGroupM * g.tiles_n;
  const int64_t first_m = pid / per_group * kGroupM;
  const int64_t group_m = min(g.tiles_m - first_m, kGroupM);
  const int64_t pid_m = first_m + (pid % per_group) % group_m;
  const int64_t pid_n = (pid % per_group) / group_m;
  const int64_t m0 = pid_m * BM, n0 = pid_n * BN;

  const int64_t kt_total = (g.K + kBK - 1) / kBK;
  const int64_t kt0 = (int64_t)blockIdx.y * g.ktiles_per_split;
  const int nkt = (int)max((int64_t)0, min(kt_total, kt0 + g.ktiles_per_split) - kt0);

  const uint32_t sbase = smem_addr(smem);
  auto load_stage = [&](int stage, int64_t kt) {
    const int64_t kb = kt * kBK;
#pragma unroll
    for (int it = 0; it < Cfg::kLoadIters; ++it) {
      const int c = tid + it * Cfg::kThreads;
      const int r = c >> 3, ch = c & 7;
      const int64_t k = kb + ch * 16;
      const int8_t* src = g.A;
      bool ok;
      if (r < BM) {
        const int64_t m = m0 + r;
        ok = m < g.M && k < g.K;
        if (ok) src = g.A + m * g.K + k;
      } else {
        const int64_t n = n0 + (r - BM);
        ok = n < g.N && k < g.K;
        if (ok) src = g.B + n * g.K + k;
      }
      const int off = stage * Cfg::kStageBytes + r * kBK + ((ch ^ (r & 7)) << 4);
      cp_async16(sbase + off, smem + off, src, ok ? 16 : 0);
    }
  };

  const int wk = warp / (Cfg::WM * WN), wmn = warp % (Cfg::WM * WN);
  const int wm = wmn / WN, wn = wmn % WN;
  const int lr = lane & 7, lj = lane >> 3;
  int acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0;

#pragma unroll
  for (int s = 0; s < Cfg::STAGES - 1; ++s) {
    if (s < nkt) load_stage(s, kt0 + s);
    cp_async_commit();
  }
  for (int kt = 0; kt < nkt; ++kt) {
    cp_async_wait<Cfg::STAGES - 2>();
    __syncthreads();  // stage kt landed for every thread; every warp is done with stage kt - 1
    {
      const int nk = kt + Cfg::STAGES - 1;
      if (nk < nkt) load_stage(nk % Cfg::STAGES, kt0 + nk);
      cp_async_commit();
    }
    const uint32_t st = sbase + (kt % Cfg::STAGES) * Cfg::kStageBytes;
#pragma unroll
    for (int ks = 0; ks < Cfg::kKSteps; ++ks) {
      const int kk = wk * Cfg::kKSteps + ks;  // k32 step in the stage: 16-byte chunks 2kk, 2kk + 1
      uint32_t af[kMT][4], bf[kNT][2];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {  // matrices: (rows 0-7, k lo), (rows 8-15, k lo), (0-7, hi), (8-15, hi)
        const int r = wm * Cfg::kWarpM + mt * 16 + (lj & 1) * 8 + lr;
        const int ch = 2 * kk + (lj >> 1);
        ldmatrix_x4(af[mt], st + r * kBK + ((ch ^ (r & 7)) << 4));
      }
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {  // matrices: (n 0-7, k lo), (n 0-7, hi), (n 8-15, lo), (n 8-15, hi)
        const int r = BM + wn * Cfg::kWarpN + np * 16 + (lj >> 1) * 8 + lr;
        const int ch = 2 * kk + (lj & 1);
        uint32_t t[4];
        ldmatrix_x4(t, st + r * kBK + ((ch ^ (r & 7)) << 4));
        bf[2 * np][0] = t[0];
        bf[2 * np][1] = t[1];
        bf[2 * np + 1][0] = t[2];
        bf[2 * np + 1][1] = t[3];
      }
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) mma_16832(acc[mt][nt], af[mt], bf[nt]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  if constexpr (Cfg::WK > 1) {  // warps that took other k32 steps of the same tile: sum through shared memory
    constexpr int kVals = kMT * kNT * 4;
    int* red = reinterpret_cast<int*>(smem);
    if (wk > 0) {
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int v = 0; v < 4; ++v)
            red[(((wk - 1) * Cfg::WM * WN + wmn) * kVals + (mt * kNT + nt) * 4 + v) * kWarp + lane] = acc[mt][nt][v];
    }
    __syncthreads();
    if (wk > 0) return;
#pragma unroll
    for (int w = 1; w < Cfg::WK; ++w)
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int v = 0; v < 4; ++v)
            acc[mt][nt][v] = (int)((unsigned)acc[mt][nt][v] +
                                   (unsigned)red[(((w - 1) * Cfg::WM * WN + wmn) * kVals + (mt * kNT + nt) * 4 + v) *
                                                     kWarp +
                                                 lane]);
  }

  // C fragment: c0, c1 at (row g, cols 2t, 2t + 1), c2, c3 at row g + 8
  const int gq = lane >> 2, tq = lane & 3;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
    const int64_t row = m0 + wm * Cfg::kWarpM + mt * 16 + gq;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
      const int64_t col = n0 + wn * Cfg::kWarpN + nt * 8 + 2 * tq;
      epi_pair<EPI, D>(g, row, col, acc[mt][nt][0], acc[mt][nt][1]);
      epi_pair<EPI, D>(g, row + 8, col, acc[mt][nt][2], acc[mt][nt][3]);
    }
  }
#endif
}

template <class Cfg, int EPI, int D>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) gemm_tc_kernel(GemmArgs g) {
#if BNB_I8_PTX && __CUDA_ARCH__ >= 750
  // configurations needing more than sm_75's 64 KiB of shared memory are never launched there (choose_path):
  // no code for them on sm_75
  if constexpr (Cfg::kSmem <= 64 * 1024 || __CUDA_ARCH__ >= 800) {
    gemm_tc_body<Cfg, EPI, D>(g);
  } else {  // keeps the body-only constants referenced (nvcc warns about unused members otherwise)
    (void)Cfg::kKSteps, (void)Cfg::kLoadIters;
  }
#endif
}

// ------------------------------------------------------------------------------------ host side

constexpr int kMaxCachedDevices = 64;
std::atomic<int> g_sms[kMaxCachedDevices];
std::atomic<int> g_cc[kMaxCachedDevices];

// (SM count, compute capability major * 10 + minor) of `device`, cached; {0, 0} on error.
void device_info(int device, int* sms, int* cc) {
  if (device < kMaxCachedDevices) {
    *sms = g_sms[device].load(std::memory_order_relaxed);
    *cc = g_cc[device].load(std::memory_order_relaxed);
    if (*sms > 0) return;
  }
  int s = 0, ma = 0, mi = 0;
  if (cudaDeviceGetAttribute(&s, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    *sms = 0;
    *cc = 0;
    return;
  }
  *sms = s;
  *cc = ma * 10 + mi;
  if (device < kMaxCachedDevices) {
    g_cc[device].store(*cc, std::memory_order_relaxed);
    g_sms[device].store(s, std::memory_order_relaxed);
  }
}

bool bad_dtype(int d) { return d < 0 || d > 2; }
bool bad_bias_dtype(int d) { return d < -1 || d > 2; }

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

enum class Path { kSimt, kTcS, kTcM, kTcL };

// The tensor-core path needs K % 16 == 0 and 16-byte aligned operands (cp.async rows).
Path choose_path(int cc, int64_t M, int64_t K, const void* A, const void* B) {
#if defined(__HIPCC__)
  (void)cc, (void)M, (void)K, (void)A, (void)B;
  return Path::kSimt;
#else
  const bool aligned = ((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(B)) & 15u) == 0;
  if (cc < 75 || K % 16 != 0 || !aligned) return Path::kSimt;
  if (M <= 16) return Path::kTcS;
  if (M <= 128 || cc < 80) return Path::kTcM;  // the large tile's 96 KiB of shared memory: sm_80+ (sm_75: 64 KiB)
  return Path::kTcL;
#endif
}

void tile_of(Path p, int* bm, int* bn) {
  switch (p) {
    case Path::kTcS: *bm = CfgS::BM, *bn = CfgS::BN; return;
    case Path::kTcM: *bm = CfgM::BM, *bn = CfgM::BN; return;
    case Path::kTcL: *bm = CfgL::BM, *bn = CfgL::BN; return;
    default: *bm = kSimtTile, *bn = kSimtTile; return;
  }
}

// Split K over gridDim.y when the output tiles fill at most half of the SMs (only on the tensor-core path;
// aiming at two CTAs per SM, each split keeping at least 4 K tiles of 128). A split costs a memset and, for
// the fused epilogue, a separate dequantization kernel: not worth it for a nearly full wave.
int splits_for(Path p, int sms, int64_t M, int64_t N, int64_t K) {
  if (p == Path::kSimt || sms <= 0) return 1;
  int bm, bn;
  tile_of(p, &bm, &bn);
  const int64_t tiles = cdiv(M, bm) * cdiv(N, bn);
  const int64_t ktiles = cdiv(K, kBK);
  if (2 * tiles > sms) return 1;
  int64_t s = cdiv(2 * (int64_t)sms, tiles);
  s = std::min<int64_t>(s, ktiles / 4);
  s = std::min<int64_t>(s, 16);
  return s < 2 ? 1 : (int)s;
}

template <class Cfg, int EPI, int D>
int launch_tc(int device, cudaStream_t st, GemmArgs g, int splits) {
#if defined(__HIPCC__)
  (void)device, (void)st, (void)g, (void)splits;
  return kBadDevice;
#else
  auto kern = gemm_tc_kernel<Cfg, EPI, D>;
  if (Cfg::kSmem > 48 * 1024) {  // opt in to more than 48 KiB of dynamic shared memory, once per device
    static std::atomic<uint64_t> done{0};
    const uint64_t bit = device < 64 ? (uint64_t(1) << device) : 0;
    if (!bit || !(done.load(std::memory_order_relaxed) & bit)) {
      const cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::kSmem);
      if (e != cudaSuccess) return record_cuda_error(e);
      done.fetch_or(bit, std::memory_order_relaxed);
    }
  }
  g.tiles_m = cdiv(g.M, Cfg::BM);
  g.tiles_n = cdiv(g.N, Cfg::BN);
  const int64_t ktiles = cdiv(g.K, kBK);
  g.ktiles_per_split = splits > 1 ? cdiv(ktiles, splits) : std::max<int64_t>(ktiles, 1);
  const int64_t tiles = g.tiles_m * g.tiles_n;
  if (tiles > 0x7FFFFFFF) return kBadSize;
  dim3 grid((unsigned)tiles, (unsigned)splits);
  kern<<<grid, Cfg::kThreads, Cfg::kSmem, st>>>(g);
  return launch_status();
#endif
}

template <int EPI, int D>
int launch_gemm(Path p, int device, cudaStream_t st, const GemmArgs& g, int splits) {
  switch (p) {
    case Path::kTcS: return launch_tc<CfgS, EPI, D>(device, st, g, splits);
    case Path::kTcM: return launch_tc<CfgM, EPI, D>(device, st, g, splits);
    case Path::kTcL: return launch_tc<CfgL, EPI, D>(device, st, g, splits);
    default: break;
  }
  GemmArgs a = g;
  a.tiles_m = cdiv(g.M, kSimtTile);
  a.tiles_n = cdiv(g.N, kSimtTile);
  if (a.tiles_n > 0x7FFFFFFF) return kBadSize;
  const bool word_ok = g.K % 4 == 0 && ((reinterpret_cast<uintptr_t>(g.A) | reinterpret_cast<uintptr_t>(g.B)) & 3u) == 0;
  dim3 grid((unsigned)a.tiles_n, (unsigned)std::min<int64_t>(a.tiles_m, 65535));
  gemm_simt_kernel<EPI, D><<<grid, 256, 0, st>>>(a, word_ok);
  return launch_status();
}

int launch_mm_dequant(cudaStream_t st, const int32_t* acc, int64_t M, int64_t N, const float* row, const float* col,
                      int bias_dtype, const void* bias, int out_dtype, void* out) {
  const unsigned grid = grid_for(M * N, 256);
  const int s = dispatch_dtype(out_dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    mm_dequant_kernel<D><<<grid, 256, 0, st>>>(acc, M, N, row, col, bias_dtype >= 0 ? bias : nullptr, bias_dtype,
                                               static_cast<typename DT<D>::T*>(out));
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

// Row quantization (+ outlier flags, compaction and column zeroing when threshold > 0).
int launch_row_quant(cudaStream_t st, int dtype, const void* A, int64_t M, int64_t K, float threshold, int8_t* out,
                     float* stats, void* workspace, int64_t* cols, int64_t* ncols) {
  const bool outl = threshold > 0.0f;
  uint8_t* flags = static_cast<uint8_t*>(workspace);
  unsigned* counter = nullptr;
  if (outl) {
    const int64_t bytes = int8_outlier_workspace_bytes(K);
    counter = reinterpret_cast<unsigned*>(flags + (bytes - 16));
    const cudaError_t e = cudaMemsetAsync(workspace, 0, (size_t)bytes, st);
    if (e != cudaSuccess) return record_cuda_error(e);
  }
  const bool warp_rows = K <= kWarpRowMaxK;
  const int64_t groups = warp_rows ? kQuantThreads / kWarp : 1;
  const unsigned grid = (unsigned)std::max<int64_t>(1, std::min<int64_t>(cdiv(M, groups), int64_t(1) << 20));
  const bool vec_out = K % 8 == 0 && (reinterpret_cast<uintptr_t>(out) & 7u) == 0;
  const int s = dispatch_dtype(dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    using T = typename DT<D>::T;
    const T* a = static_cast<const T*>(A);
    const bool vec_in = K % 8 == 0 && aligned8_elems<D>(A);
#define BNB_ROWQ(OUTL, G)                                                                                  \
  row_quant_kernel<D, OUTL, G><<<grid, kQuantThreads, 0, st>>>(a, M, K, threshold, out, stats, flags, counter, \
                                                               cols, ncols, vec_in, vec_out)
    if (outl) {
      if (warp_rows) BNB_ROWQ(true, kWarp);
      else BNB_ROWQ(true, kQuantThreads);
    } else {
      if (warp_rows) BNB_ROWQ(false, kWarp);
      else BNB_ROWQ(false, kQuantThreads);
    }
#undef BNB_ROWQ
    return kOk;
  });
  if (s != kOk) return s;
  if (int ls = launch_status()) return ls;
  if (outl) {
    const unsigned zgrid = (unsigned)std::max<int64_t>(1, std::min<int64_t>(cdiv(M * 32, 256), 4096));
    zero_cols_kernel<<<zgrid, 256, 0, st>>>(out, M, K, cols, ncols);
    return launch_status();
  }
  return kOk;
}

// threshold must be finite and >= 0 (NaN fails both comparisons)
bool bad_threshold(float t) { return !(t >= 0.0f && t <= 3.4028234663852886e38f); }

}  // namespace

int64_t int8_outlier_workspace_bytes(int64_t K) { return (K < 0 ? 0 : cdiv(K, 16) * 16) + 16; }

int int8_vectorwise_quant(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, float threshold,
                          int8_t* out, float* stats, void* workspace, int64_t* outlier_cols, int64_t* n_outliers_dev) {
  if (device < 0) return kBadDevice;
  if (bad_dtype(dtype)) return kBadDtype;
  if (M < 0 || K < 0 || bad_threshold(threshold)) return kBadSize;
  const bool outl = threshold > 0.0f;
  if (outl && !n_outliers_dev) return kNullPointer;
  if (M == 0 && !outl) return kOk;
  if (M > 0 && !stats) return kNullPointer;
  const bool work = M > 0 && K > 0;
  if (work && (!A || !out || (outl && (!workspace || !outlier_cols)))) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (!work) {  // no elements: row stats 0 (K == 0), no outlier columns
    if (M > 0) {
      if (cudaError_t e = cudaMemsetAsync(stats, 0, (size_t)M * sizeof(float), st)) return record_cuda_error(e);
    }
    if (outl) {
      if (cudaError_t e = cudaMemsetAsync(n_outliers_dev, 0, sizeof(int64_t), st)) return record_cuda_error(e);
    }
    return kOk;
  }
  return launch_row_quant(st, dtype, A, M, K, threshold, out, stats, workspace, outlier_cols, n_outliers_dev);
}

int int8_double_quant(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, float threshold,
                      int8_t* out_row, int8_t* out_col, float* row_stats, float* col_stats, void* workspace,
                      int64_t* outlier_cols, int64_t* n_outliers_dev) {
  if (device < 0) return kBadDevice;
  if (bad_dtype(dtype)) return kBadDtype;
  if (M < 0 || K < 0 || bad_threshold(threshold)) return kBadSize;
  if (K > 0 && !col_stats) return kNullPointer;
  if (M > 0 && K > 0 && !out_col) return kNullPointer;
  // the row-wise half validates the rest (and finishes the empty cases)
  if (int s = int8_vectorwise_quant(device, stream, dtype, A, M, K, threshold, out_row, row_stats, workspace,
                                    outlier_cols, n_outliers_dev))
    return s;
  if (K == 0) return kOk;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (cudaError_t e = cudaMemsetAsync(col_stats, 0, (size_t)K * sizeof(float), st)) return record_cuda_error(e);
  if (M == 0) return kOk;
  const bool outl = threshold > 0.0f;
  constexpr int64_t kRowsPerChunk = 32;
  const dim3 agrid((unsigned)std::min<int64_t>(cdiv(K, 256), 0x7FFFFFFF),
                   (unsigned)std::min<int64_t>(cdiv(M, kRowsPerChunk), 65535));
  const unsigned qgrid = grid_for(M * K, 256);
  const int s = dispatch_dtype(dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    using T = typename DT<D>::T;
    const T* a = static_cast<const T*>(A);
    unsigned* bits = reinterpret_cast<unsigned*>(col_stats);
    if (outl) {
      col_absmax_kernel<D, true><<<agrid, 256, 0, st>>>(a, M, K, threshold, kRowsPerChunk, bits);
      col_quant_kernel<D, true><<<qgrid, 256, 0, st>>>(a, M, K, threshold, col_stats, out_col);
    } else {
      col_absmax_kernel<D, false><<<agrid, 256, 0, st>>>(a, M, K, threshold, kRowsPerChunk, bits);
      col_quant_kernel<D, false><<<qgrid, 256, 0, st>>>(a, M, K, threshold, col_stats, out_col);
    }
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

int int8_vectorwise_dequant(int device, void* stream, const int8_t* A, int64_t M, int64_t K, const float* stats,
                            float* out) {
  if (device < 0) return kBadDevice;
  if (M < 0 || K < 0) return kBadSize;
  if (M == 0 || K == 0) return kOk;
  if (!A || !stats || !out) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  dequant_kernel<<<grid_for(M * K, 256), 256, 0, static_cast<cudaStream_t>(stream)>>>(A, M, K, stats, out);
  return launch_status();
}

namespace {
// the path and split count of an aligned problem on `device` (the pointers decide SIMT vs tensor cores later)
Path plan(int device, int64_t M, int64_t K, const void* A, const void* B, int64_t N, int* splits) {
  int sms = 0, cc = 0;
  device_info(device, &sms, &cc);
  const Path p = choose_path(cc, M, K, A, B);
  *splits = splits_for(p, sms, M, N, K);
  return p;
}
const void* const kAligned = reinterpret_cast<const void*>(uintptr_t(256));
}  // namespace

int int8_gemm_splits(int device, int64_t M, int64_t N, int64_t K) {
  if (device < 0 || M <= 0 || N <= 0 || K <= 0) return 1;
  int splits = 1;
  plan(device, M, K, kAligned, kAligned, N, &splits);
  return splits;
}

const char* int8_gemm_config_name(int device, int64_t M, int64_t N, int64_t K, const void* A, const void* B) {
  static thread_local std::string name;
  if (device < 0 || M < 0 || N < 0 || K < 0) return "invalid";
  int splits = 1;
  const Path p = plan(device, M, K, A, B, N, &splits);
  name = p == Path::kTcS ? "tc-s" : p == Path::kTcM ? "tc-m" : p == Path::kTcL ? "tc-l" : "simt";
  if (splits > 1) name += "+splitK" + std::to_string(splits);
  return name.c_str();
}

int int8_linear_matmul(int device, void* stream, const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K,
                       int32_t* C) {
  if (device < 0) return kBadDevice;
  if (M < 0 || N < 0 || K < 0) return kBadSize;
  if (M == 0 || N == 0) return kOk;
  if (!C || (K > 0 && (!A || !B))) return kNullPointer;  // K == 0: zeros
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  int splits = 1;
  const Path p = plan(device, M, K, A, B, N, &splits);
  GemmArgs g{A, B, M, N, K, C, nullptr, nullptr, nullptr, -1, nullptr, 0, 0, 0};
  if (splits > 1) {
    if (cudaError_t e = cudaMemsetAsync(C, 0, (size_t)(M * N) * sizeof(int32_t), st)) return record_cuda_error(e);
    return launch_gemm<kEpiAtomic, 0>(p, device, st, g, splits);
  }
  return launch_gemm<kEpiStore, 0>(p, device, st, g, 1);
}

int int8_mm_dequant(int device, void* stream, const int32_t* acc, int64_t M, int64_t N, const float* row_stats,
                    const float* col_stats, int bias_dtype, const void* bias, int out_dtype, void* out) {
  if (device < 0) return kBadDevice;
  if (bad_dtype(out_dtype) || bad_bias_dtype(bias_dtype)) return kBadDtype;
  if (M < 0 || N < 0) return kBadSize;
  if (M == 0 || N == 0) return kOk;
  if (!acc || !row_stats || !col_stats || !out || (bias_dtype >= 0 && !bias)) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  return launch_mm_dequant(static_cast<cudaStream_t>(stream), acc, M, N, row_stats, col_stats, bias_dtype, bias,
                           out_dtype, out);
}

int int8_scaled_mm(int device, void* stream, const int8_t* A, const int8_t* B, int64_t M, int64_t N, int64_t K,
                   const float* row_stats, const float* col_stats, int bias_dtype, const void* bias, int out_dtype,
                   void* out, int32_t* workspace) {
  if (device < 0) return kBadDevice;
  if (bad_dtype(out_dtype) || bad_bias_dtype(bias_dtype)) return kBadDtype;
  if (M < 0 || N < 0 || K < 0) return kBadSize;
  if (M == 0 || N == 0) return kOk;
  if (!row_stats || !col_stats || !out || (bias_dtype >= 0 && !bias) || (K > 0 && (!A || !B))) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  int splits = 1;
  const Path p = plan(device, M, K, A, B, N, &splits);
  if (splits > 1 && workspace) {  // split K: exact int32 partial sums, then the dequantization
    if (cudaError_t e = cudaMemsetAsync(workspace, 0, (size_t)(M * N) * sizeof(int32_t), st))
      return record_cuda_error(e);
    GemmArgs g{A, B, M, N, K, workspace, nullptr, nullptr, nullptr, -1, nullptr, 0, 0, 0};
    if (int s = launch_gemm<kEpiAtomic, 0>(p, device, st, g, splits)) return s;
    return launch_mm_dequant(st, workspace, M, N, row_stats, col_stats, bias_dtype, bias, out_dtype, out);
  }
  GemmArgs g{A, B, M, N, K, nullptr, row_stats, col_stats, bias_dtype >= 0 ? bias : nullptr, bias_dtype, out, 0, 0, 0};
  return dispatch_dtype(out_dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    return launch_gemm<kEpiDequant, D>(p, device, st, g, 1);
  });
}

int int8_outlier_operands(int device, void* stream, int a_dtype, const void* A, const int8_t* CB, const float* SCB,
                          int64_t M, int64_t N, int64_t K, const int64_t* cols, int64_t n_cols, void* sub_a,
                          void* sub_b) {
  if (device < 0) return kBadDevice;
  if (bad_dtype(a_dtype)) return kBadDtype;
  if (M < 0 || N < 0 || K < 0 || n_cols < 0) return kBadSize;
  if (n_cols == 0 || M + N == 0) return kOk;
  if (!cols || (M > 0 && !sub_a) || (N > 0 && !sub_b)) return kNullPointer;
  if (K > 0 && ((M > 0 && !A) || (N > 0 && (!CB || !SCB)))) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const unsigned grid = grid_for((M + N) * n_cols, 256);
  const int s = dispatch_dtype(a_dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    using T = typename DT<D>::T;
    outlier_operands_kernel<D><<<grid, 256, 0, st>>>(static_cast<const T*>(A), CB, SCB, M, N, K, cols, n_cols,
                                                     static_cast<T*>(sub_a), static_cast<T*>(sub_b));
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

}  // namespace bnb_cuda
