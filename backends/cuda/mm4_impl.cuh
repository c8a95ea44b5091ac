// Fused 4-bit matmul kernels (gemv_4bit / gemm_4bit): device code, launch plan and launches.
//
// out[M, N] = A[M, K] @ W[N, K].T (+ bias[N]), W decoded on the fly from the standard packed 4-bit layout
// (element e = n*K + k in byte e/2, even e in the high nibble), one fp32 absmax per block of `blocksize`
// consecutive elements of the flat weight (or the double-quantized form: absmax_code[absmax_8bit[b]] *
// absmax2[b / 256] + offset, fp32, in that order, as bnb_core/reference.py), a 16-entry fp32 codebook.
// The dequantized weight is never materialized.
//
// Kernels (make_plan picks one; each is documented where it is defined):
//   gemv  (SIMT)  M <= 4: 4 weight rows per CTA, the 4 warps split K; 128-bit loads of packed bytes
//                 (32 codes per lane), codebook in shared memory, the block scale applied to each lane's
//                 32-element partial; fp32 accumulation. Also the path for odd K (element-wise variant).
//   mma           2 <= M, fp16/bf16 A, sm_80+ (not HIP), K % 32 == 0, 16-byte aligned A and B:
//                 mma.sync m16n8k16 with W as the "A" operand (16 weight rows per fragment) and the
//                 activations as the "B" operand (8 batch rows per fragment). Weights are decoded in
//                 registers from the packed bytes in shared memory to exactly the reference's weight
//                 (fp32 code * absmax rounded once to fp16/bf16); cp.async multi-stage pipeline for the
//                 packed weights and the activations; tiles for batch 8/16/32/64/128.
//   simt          everything else (fp32 A, sm_75, HIP, unaligned or K % 32 != 0): a 64x32 register-tiled
//                 SIMT kernel over decoded fp32 weights in shared memory.
// Narrow outputs (few CTAs against the SM count) split K over gridDim.z: each split writes fp32 partials
// to a workspace the caller provides, and mm4_splitk_reduce sums them in split order (deterministic),
// adds the bias and converts.
//
// This header is compiled by nvcc/hipcc (kernels_mm4.cu) and, for tests, by a host C++ compiler with
// BNB_MM4_EMU defined against tests/cuda_emu/cuda_emu.h (a SIMT emulator: CTAs of fibers, warp
// collectives, the mma.sync / cp.async semantics), so the same source runs without a GPU.
#pragma once

#include <stdint.h>

#include <atomic>

#if defined(BNB_MM4_EMU)
#include "cuda_emu.h"
#include "bnb_quant_math.h"
#define BNB_MM4_MMA 1
#define MM4_DEV inline
#define MM4_GLOBAL inline
#define MM4_BOUNDS(t)
#define MM4_BOUNDS2(t, b)
#define MM4_SHARED static
#define MM4_DYN_SMEM(name) unsigned char* name = emu::dynamic_smem()
namespace bnb_cuda {  // the Status values used here (status.h needs the CUDA runtime headers)
enum Status : int { kOk = 0, kNullPointer = 1, kBadDtype = 2, kBadQuantType = 3, kBadSize = 4, kBadBlocksize = 5 };
}
#else
#include "common.cuh"
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(__HIPCC__)
#define BNB_MM4_MMA 1  // mma.sync, cp.async, cvt.rn.{f16,bf16}x2.f32 (NVIDIA PTX, sm_80+)
#else
#define BNB_MM4_MMA 0
#endif
#define MM4_DEV __device__ __forceinline__
#define MM4_GLOBAL __global__
#define MM4_BOUNDS(t) __launch_bounds__(t)
#define MM4_BOUNDS2(t, b) __launch_bounds__(t, b)
#define MM4_SHARED __shared__
#define MM4_DYN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace bnb_cuda {
namespace mm4 {

// ------------------------------------------------------------------------------------------ parameters

struct Params {
  const void* A;  // [M, K] of dtype, row-major, contiguous
  int64_t M, K, N;
  const uint8_t* B;            // packed 4-bit weight, >= (N*K + 1) / 2 bytes
  const float* absmax;         // one per block; with absmax_8bit: the fp32 absmax2, one per 256 blocks
  const uint8_t* absmax_8bit;  // nested: uint8 code per block (null: plain fp32 absmax)
  const float* absmax_code;    // nested: 256 fp32
  const float* absmax_offset;  // nested: fp32 scalar (device memory)
  const float* code;           // 16 fp32 values, or null: the built-in NF4/FP4 table of quant_type
  int quant_type;              // 0 nf4, 1 fp4 (used when code is null)
  int bshift;                  // log2(blocksize)
  const void* bias;            // [N] of dtype or null
  void* out;                   // [M, N] of dtype
  float* ws;                   // [splits, M, N] fp32 partials when the plan splits K, else null
};

// ------------------------------------------------------------------------------------------ device helpers

template <class T>
MM4_DEV T ldg(const T* p) {
#if defined(BNB_MM4_EMU)
  return emu::load_global(p);
#else
  return __ldg(p);
#endif
}

template <class T>
MM4_DEV void stg(T* p, T v) {
#if defined(BNB_MM4_EMU)
  emu::store_global(p, v);
#else
  *p = v;
#endif
}

// A shared-memory load (the emulator counts these for its bank-conflict check).
template <class T>
MM4_DEV T lds(const void* p) {
#if defined(BNB_MM4_EMU)
  return emu::load_shared<T>(p);
#else
  return *reinterpret_cast<const T*>(p);
#endif
}

// dtype codes: 0 fp32, 1 fp16, 2 bf16 (16-bit types as their raw bits)
template <int D>
struct Io {
  using T = uint16_t;
  MM4_DEV static float to_f(T v) {
#if defined(BNB_MM4_EMU)
    return D == 1 ? bnb::f16_to_f32(v) : bnb::bf16_to_f32(v);
#else
    if constexpr (D == 1) return __half2float(__ushort_as_half(v));
    return bnb::bf16_to_f32(v);
#endif
  }
  MM4_DEV static T from_f(float v) {
#if defined(BNB_MM4_EMU)
    return D == 1 ? bnb::f32_to_f16(v) : bnb::f32_to_bf16(v);
#else
    if constexpr (D == 1) return __half_as_ushort(__float2half_rn(v));
    return bnb::f32_to_bf16(v);
#endif
  }
};
template <>
struct Io<0> {
  using T = float;
  MM4_DEV static float to_f(float v) { return v; }
  MM4_DEV static float from_f(float v) { return v; }
};

// 8 consecutive values of A from a 16-byte aligned address, as fp32.
template <int D>
MM4_DEV void load8f(const typename Io<D>::T* p, float v[8]) {
  if constexpr (D == 0) {
    const float4 a = ldg(reinterpret_cast<const float4*>(p));
    const float4 b = ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    const uint4 u = ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = Io<D>::to_f((uint16_t)(w[i] & 0xFFFFu));
      v[2 * i + 1] = Io<D>::to_f((uint16_t)(w[i] >> 16));
    }
  }
}

MM4_DEV float builtin_code(int quant_type, int i) {
  return quant_type == 0 ? bnb_formats::NF4_CODE[i] : bnb_formats::FP4_CODE[i];
}

// Block scale fetched in two parts so the global loads can be issued early: q >= 0 means nested
// (scale = code8[q] * a + offset), q < 0 means the scale is `a` itself (plain absmax, or 0 for padding).
struct RawScale {
  int q;
  float a;
};

MM4_DEV RawScale fetch_scale(const Params& p, int64_t block) {
  RawScale r;
  if (p.absmax_8bit) {
    r.q = (int)ldg(p.absmax_8bit + block);
    r.a = ldg(p.absmax + (block >> 8));
  } else {
    r.q = -1;
    r.a = ldg(p.absmax + block);
  }
  return r;
}

// The reference's arithmetic: fp32 code8[q] * absmax2, then + offset (two roundings; -fmad=false keeps
// them separate).
MM4_DEV float finish_scale(RawScale r, const float* code8_s, float offset) {
  if (r.q < 0) return r.a;
  const float v = code8_s[r.q] * r.a;
  return v + offset;
}

// Loads the 16-entry codebook (and the 256-entry nested absmax code) into shared memory. Call by all
// threads, followed by a barrier.
MM4_DEV void load_tables(const Params& p, float* code_s, float* code8_s, int tid, int nthreads) {
  if (tid < 16) code_s[tid] = p.code ? ldg(p.code + tid) : builtin_code(p.quant_type, tid);
  if (p.absmax_8bit)
    for (int i = tid; i < 256; i += nthreads) code8_s[i] = ldg(p.absmax_code + i);
}

MM4_DEV float load_offset(const Params& p) { return p.absmax_8bit ? ldg(p.absmax_offset) : 0.0f; }

MM4_DEV float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o, 32);
  return v;
}

// Final value of output (m, n): partial to the workspace (split K), or + bias and converted.
template <int D>
MM4_DEV void write_out(const Params& p, int64_t m, int64_t n, float v, int split) {
  using T = typename Io<D>::T;
  if (p.ws) {
    stg(p.ws + ((int64_t)split * p.M + m) * p.N + n, v);
  } else {
    if (p.bias) v = v + Io<D>::to_f(ldg(static_cast<const T*>(p.bias) + n));
    stg(static_cast<T*>(p.out) + m * p.N + n, Io<D>::from_f(v));
  }
}

// ------------------------------------------------------------------------------------------ gemv (M <= 4)

constexpr int kGemvWarps = 4;
constexpr int kGemvThreads = 32 * kGemvWarps;
constexpr int kGemvRows = 4;                      // weight rows per CTA (every warp covers all of them)
constexpr int64_t kGemvLaneK = 32;                // codes per lane per step (16 bytes)
constexpr int64_t kGemvWarpK = 32 * kGemvLaneK;   // 1024 per warp step
constexpr int64_t kGemvCtaK = kGemvWarps * kGemvWarpK;  // 4096 per CTA step: the split-K unit

// VEC (K % 32 == 0, B and A 16-byte aligned): lane l of warp w takes the 32 codes at
// k = kbeg + w*1024 + l*32 + i*4096 of each of the CTA's 4 rows (one 128-bit load per row; the 32 codes
// lie in one quantization block, blocksize >= 32), accumulates code[q] * a over them in fp32, then
// multiplies the partial by the block scale once. The next step's loads are issued before the current
// step is decoded. Not VEC: one element per lane per step (any K, any alignment), weight = code * scale.
// Warps reduce with shuffles, then in warp order through shared memory.
template <int D, int MB, bool VEC>
MM4_GLOBAL void MM4_BOUNDS(kGemvThreads) mm4_gemv_kernel(Params p, int64_t kps) {
  using T = typename Io<D>::T;
  MM4_SHARED float code_s[16];
  MM4_SHARED float code8_s[256];
  MM4_SHARED float red_s[kGemvWarps][MB][kGemvRows];
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int64_t K = p.K, N = p.N;
  const int64_t n0 = (int64_t)blockIdx.x * kGemvRows;
  const int split = (int)blockIdx.y;
  const int64_t kbeg = (int64_t)split * kps;
  const int64_t kend = kbeg + kps < K ? kbeg + kps : K;
  const T* A = static_cast<const T*>(p.A);

  float acc[MB][kGemvRows];
#pragma unroll
  for (int m = 0; m < MB; ++m)
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) acc[m][r] = 0.0f;

  if constexpr (VEC) {
    constexpr int R = kGemvRows;
    int64_t k = kbeg + warp * kGemvWarpK + lane * kGemvLaneK;
    uint4 wc[R];
    RawScale sc[R];
    auto fetch = [&](int64_t kk, uint4* w, RawScale* s) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t n = n0 + r;
        if (n < N) {
          const int64_t e = n * K + kk;
          w[r] = ldg(reinterpret_cast<const uint4*>(p.B + (e >> 1)));
          s[r] = fetch_scale(p, e >> p.bshift);
        } else {
          w[r] = make_uint4(0u, 0u, 0u, 0u);
          s[r].q = -1;
          s[r].a = 0.0f;
        }
      }
    };
    bool have = k < kend;
    if (have) fetch(k, wc, sc);  // in flight while the tables load
    load_tables(p, code_s, code8_s, tid, kGemvThreads);
    const float offset = load_offset(p);
    __syncthreads();
    while (have) {
      const int64_t kn = k + kGemvCtaK;
      const bool have_n = kn < kend;
      uint4 wn[R];
      RawScale sn[R];
      if (have_n) fetch(kn, wn, sn);
      float part[MB][R];
#pragma unroll
      for (int m = 0; m < MB; ++m)
#pragma unroll
        for (int r = 0; r < R; ++r) part[m][r] = 0.0f;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float a[MB][8];
#pragma unroll
        for (int m = 0; m < MB; ++m) load8f<D>(A + m * K + k + 8 * q, a[m]);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t word = q == 0 ? wc[r].x : q == 1 ? wc[r].y : q == 2 ? wc[r].z : wc[r].w;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const float c0 = lds<float>(code_s + ((word >> (8 * j + 4)) & 15u));  // element 2j: high nibble
            const float c1 = lds<float>(code_s + ((word >> (8 * j)) & 15u));
#pragma unroll
            for (int m = 0; m < MB; ++m) {
              part[m][r] = fmaf(c0, a[m][2 * j], part[m][r]);
              part[m][r] = fmaf(c1, a[m][2 * j + 1], part[m][r]);
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float s = finish_scale(sc[r], code8_s, offset);
#pragma unroll
        for (int m = 0; m < MB; ++m) acc[m][r] = fmaf(part[m][r], s, acc[m][r]);
      }
      k = kn;
      have = have_n;
#pragma unroll
      for (int r = 0; r < R; ++r) wc[r] = wn[r], sc[r] = sn[r];
    }
  } else {
    load_tables(p, code_s, code8_s, tid, kGemvThreads);
    const float offset = load_offset(p);
    __syncthreads();
    for (int64_t k = kbeg + warp * 32 + lane; k < kend; k += kGemvThreads) {
      float a[MB];
#pragma unroll
      for (int m = 0; m < MB; ++m) a[m] = Io<D>::to_f(ldg(A + m * K + k));
#pragma unroll
      for (int r = 0; r < kGemvRows; ++r) {
        const int64_t n = n0 + r;
        if (n < N) {
          const int64_t e = n * K + k;
          const uint32_t byte = ldg(p.B + (e >> 1));
          const uint32_t q = (e & 1) ? (byte & 15u) : (byte >> 4);
          const float w = code_s[q] * finish_scale(fetch_scale(p, e >> p.bshift), code8_s, offset);
#pragma unroll
          for (int m = 0; m < MB; ++m) acc[m][r] = fmaf(w, a[m], acc[m][r]);
        }
      }
    }
  }

#pragma unroll
  for (int m = 0; m < MB; ++m)
#pragma unroll
    for (int r = 0; r < kGemvRows; ++r) {
      const float v = warp_sum(acc[m][r]);
      if (lane == 0) red_s[warp][m][r] = v;
    }
  __syncthreads();
  if (tid < MB * kGemvRows) {
    const int m = tid / kGemvRows, r = tid % kGemvRows;
    const int64_t n = n0 + r;
    if (n < N) {
      float s = red_s[0][m][r];
#pragma unroll
      for (int w = 1; w < kGemvWarps; ++w) s += red_s[w][m][r];
      write_out<D>(p, m, n, s, split);
    }
  }
}

// ------------------------------------------------------------------------------------------ split-K reduce

constexpr int kReduceThreads = 256;

// out[m, n] = sum over splits (in order) of ws[s, m, n] (+ bias[n]); splits == 0 writes bias or zeros
// (K == 0).
template <int D>
MM4_GLOBAL void MM4_BOUNDS(kReduceThreads) mm4_splitk_reduce(const float* ws, int splits, int64_t M, int64_t N,
                                                              const void* bias, void* out) {
  using T = typename Io<D>::T;
  const int64_t total = M * N;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int z = 0; z < splits; ++z) s += ldg(ws + z * total + i);
    if (bias) s = s + Io<D>::to_f(ldg(static_cast<const T*>(bias) + i % N));
    stg(static_cast<T*>(out) + i, Io<D>::from_f(s));
  }
}

// ------------------------------------------------------------------------------------------ SIMT gemm

constexpr int kSimtThreads = 256;
constexpr int kSimtTN = 64;  // weight rows per CTA
constexpr int kSimtTM = 32;  // rows of A per CTA
constexpr int kSimtTK = 32;  // k per step

// Each step decodes a 64 x 32 weight tile to fp32 (code * scale: the reference's fp32 weight) and a 32 x 32
// tile of A into shared memory; each thread accumulates 4 weight rows x 2 rows of A with fmaf.
// Any K, any alignment, any dtype. Rows of A beyond gridDim.y tiles are covered by a grid-stride loop.
template <int D>
MM4_GLOBAL void MM4_BOUNDS(kSimtThreads) mm4_simt_kernel(Params p, int64_t kps) {
  using T = typename Io<D>::T;
  MM4_SHARED float code_s[16];
  MM4_SHARED float code8_s[256];
  MM4_SHARED __align__(16) float w_s[kSimtTK][kSimtTN + 4];  // rows of 272 bytes: 16-byte aligned
  MM4_SHARED __align__(16) float a_s[kSimtTK][kSimtTM + 4];
  const int tid = threadIdx.x;
  const int64_t M = p.M, K = p.K, N = p.N;
  const int64_t n0 = (int64_t)blockIdx.x * kSimtTN;
  const int split = (int)blockIdx.z;
  const int64_t kbeg = (int64_t)split * kps;
  const int64_t kend = kbeg + kps < K ? kbeg + kps : K;
  const T* A = static_cast<const T*>(p.A);
  load_tables(p, code_s, code8_s, tid, kSimtThreads);
  const float offset = load_offset(p);
  __syncthreads();
  const int tn = tid % 16;  // weight rows tn*4 .. +3
  const int tm = tid / 16;  // rows of A tm*2 .. +1
  for (int64_t m0 = (int64_t)blockIdx.y * kSimtTM; m0 < M; m0 += (int64_t)gridDim.y * kSimtTM) {
    float acc[4][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f}};
    for (int64_t k0 = kbeg; k0 < kend; k0 += kSimtTK) {
#pragma unroll
      for (int j = 0; j < kSimtTN * kSimtTK / kSimtThreads; ++j) {
        const int i = tid + j * kSimtThreads;
        const int row = i / kSimtTK, kk = i % kSimtTK;
        const int64_t n = n0 + row, k = k0 + kk;
        float w = 0.0f;
        if (n < N && k < kend) {
          const int64_t e = n * K + k;
          const uint32_t byte = ldg(p.B + (e >> 1));
          const uint32_t q = (e & 1) ? (byte & 15u) : (byte >> 4);
          w = code_s[q] * finish_scale(fetch_scale(p, e >> p.bshift), code8_s, offset);
        }
        w_s[kk][row] = w;
      }
#pragma unroll
      for (int j = 0; j < kSimtTM * kSimtTK / kSimtThreads; ++j) {
        const int i = tid + j * kSimtThreads;
        const int row = i / kSimtTK, kk = i % kSimtTK;
        const int64_t m = m0 + row, k = k0 + kk;
        a_s[kk][row] = (m < M && k < kend) ? Io<D>::to_f(ldg(A + m * K + k)) : 0.0f;
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kSimtTK; ++kk) {
        const float4 wq = lds<float4>(&w_s[kk][tn * 4]);  // 128-bit: conflict-free (lanes 16..31 repeat 0..15)
        const float2 aq = lds<float2>(&a_s[kk][tm * 2]);
        const float w[4] = {wq.x, wq.y, wq.z, wq.w}, a[2] = {aq.x, aq.y};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          acc[i][0] = fmaf(w[i], a[0], acc[i][0]);
          acc[i][1] = fmaf(w[i], a[1], acc[i][1]);
        }
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int64_t n = n0 + tn * 4 + i, m = m0 + tm * 2 + j;
        if (n < N && m < M) write_out<D>(p, m, n, acc[i][j], split);
      }
  }
}

// ------------------------------------------------------------------------------------------ tensor-core gemm

// Tile shape: each warp owns 16*FN weight rows x BM rows of A over a 128-wide K slice of every stage;
// WN warps side by side along N, WK warps along K (their partials are summed in shared memory in warp
// order at the end).
template <int BM_, int FN_, int WN_, int WK_, int STAGES_, int MINB_>
struct MmaCfg {
  static constexpr int BM = BM_, FN = FN_, WN = WN_, WK = WK_, STAGES = STAGES_;
  static constexpr int MIN_BLOCKS = MINB_;  // __launch_bounds__ occupancy hint (caps registers per thread)
  static constexpr int FM = BM / 8;
  static constexpr int BN = 16 * FN * WN;
  static constexpr int KW = 128;  // K per warp per stage: 32 codes (16 bytes) per thread per weight row
  static constexpr int BK = KW * WK;
  static constexpr int THREADS = 32 * WN * WK;
  static constexpr int W_ROW = BK / 2;  // bytes of packed codes per weight row and stage
  static constexpr int A_ROW = BK * 2;  // bytes of A per row and stage
  static constexpr int W_STAGE = BN * W_ROW;
  static constexpr int A_STAGE = BM * A_ROW;
  static constexpr int STAGE = W_STAGE + A_STAGE;
  static constexpr int SMEM = STAGES * STAGE;
  static constexpr int RED = (WK - 1) * WN * 32 * FN * FM * 4 * 4;  // bytes for the K-warp reduction
  static_assert(BM % 8 == 0 && STAGES >= 2, "tile");
  static_assert(RED <= SMEM, "the K-warp reduction reuses the pipeline buffers");
  // Shared-memory layouts, in 16-byte chunks, XOR-swizzled so that the fragment reads below are free of
  // bank conflicts (every quarter warp reads 8 distinct 16-byte bank groups):
  //   weights: row r, chunk c (32 codes) at chunk c ^ ((r & 1) << 2) when a row spans >= 8 chunks;
  //   A:       row m, chunk c (8 values) at chunk c ^ (((c >> 3) & 1) | ((m & 1) << 1)).
  MM4_DEV static int w_off(int r, int c) { return r * W_ROW + 16 * (W_ROW >= 128 ? (c ^ ((r & 1) << 2)) : c); }
  MM4_DEV static int a_off(int m, int c) { return m * A_ROW + 16 * (c ^ (((c >> 3) & 1) | ((m & 1) << 1))); }
};

#if BNB_MM4_MMA
#if defined(BNB_MM4_EMU)
MM4_DEV void cp_async16(void* smem, const void* gmem, bool valid) { emu::cp_async16(smem, gmem, valid); }
MM4_DEV void cp_async_commit() { emu::cp_async_commit(); }
template <int N>
MM4_DEV void cp_async_wait() { emu::cp_async_wait(N); }
template <int D>
MM4_DEV uint32_t pack2(float lo, float hi) {
  return D == 1 ? (uint32_t)bnb::f32_to_f16(lo) | ((uint32_t)bnb::f32_to_f16(hi) << 16)
                : (uint32_t)bnb::f32_to_bf16(lo) | ((uint32_t)bnb::f32_to_bf16(hi) << 16);
}
template <int D>
MM4_DEV void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  emu::mma_m16n8k16(c, a, b0, b1, D == 2);
}
#else
// 16 bytes global -> shared, zero-filled when !valid (src-size 0; the address is then not read).
MM4_DEV void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
MM4_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
MM4_DEV void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// Two fp32 -> one f16x2 / bf16x2 register, round to nearest even; `lo` in bits 0..15.
template <int D>
MM4_DEV uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (D == 1)
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
// c += A (16x16, row) * B (16x8, col), fp32 accumulation.
template <int D>
MM4_DEV void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  if constexpr (D == 1)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

// Byte `bi` of `word` (two codes; the high nibble is the lower k) -> the reference's two weights
// (fp32 code * scale, rounded once), packed for the mma A operand.
template <int D>
MM4_DEV uint32_t decode_pair(const float* code_s, uint32_t word, int bi, float scale) {
  const uint32_t byte = word >> (8 * bi);
  const float lo = lds<float>(code_s + ((byte >> 4) & 15u)) * scale;
  const float hi = lds<float>(code_s + (byte & 15u)) * scale;
  return pack2<D>(lo, hi);
}
#endif  // BNB_MM4_MMA

// K permutation (the dot product is order-free, so W and A just have to agree): in the 128-wide slice
// of a warp, lane (g = lane / 4, t = lane % 4) owns k = 32t .. 32t+31, i.e. one 16-byte chunk of every
// weight row it touches and 4 chunks of every row of A. mma step s (0..7) takes k = 32t + 4s + {0,1} for
// the fragment columns 2t, 2t+1 and 32t + 4s + {2,3} for the columns 2t+8, 2t+9, in the A operand
// (weights: byte 2s and 2s+1 of the lane's chunk) and in the B operand (activations: 4 consecutive values)
// alike. So each lane reads its weights with one 128-bit shared load per row and its activations with one
// 128-bit load per two steps, and decodes each packed byte straight into one f16x2/bf16x2 register.
template <int D, class C>
MM4_GLOBAL void MM4_BOUNDS2(C::THREADS, C::MIN_BLOCKS) mm4_mma_kernel(Params p, int64_t kps) {
#if BNB_MM4_MMA
  using T = typename Io<D>::T;
  constexpr int BM = C::BM, FN = C::FN, FM = C::FM, WN = C::WN, WK = C::WK, STAGES = C::STAGES;
  MM4_SHARED float code_s[16];
  MM4_SHARED float code8_s[256];
  MM4_DYN_SMEM(smem);
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wn = warp % WN, wk = warp / WN;
  const int g = lane >> 2, t = lane & 3;
  const int64_t M = p.M, K = p.K, N = p.N;
  const int64_t n0 = (int64_t)blockIdx.x * C::BN;
  const int split = (int)blockIdx.z;
  const int64_t kbeg = (int64_t)split * kps;
  const int64_t kend = kbeg + kps < K ? kbeg + kps : K;
  const int iters = kend > kbeg ? (int)((kend - kbeg + C::BK - 1) / C::BK) : 0;
  const T* A = static_cast<const T*>(p.A);
  load_tables(p, code_s, code8_s, tid, C::THREADS);
  const float offset = load_offset(p);
  __syncthreads();

  const int row0 = wn * 16 * FN;  // this warp's first weight row in the tile
  const int kl = wk * C::KW + 32 * t;  // this lane's k offset inside a stage

  for (int64_t m0 = (int64_t)blockIdx.y * BM; m0 < M; m0 += (int64_t)gridDim.y * BM) {
    // Producer mapping: THREADS is a multiple of the 16-byte chunks per row, so a thread copies the same
    // chunk column of rows r0, r0 + RPP, ... (RPP rows per pass): one source pointer, constant strides.
    constexpr int WCH = C::BK / 32, WRPP = C::THREADS / WCH, WPASS = C::BN / WRPP;
    constexpr int ACH = C::BK / 8, ARPP = C::THREADS / ACH, APASS = BM / ARPP;
    static_assert(C::THREADS % WCH == 0 && C::BN % WRPP == 0 && WRPP % 2 == 0, "weight copy mapping");
    static_assert(C::THREADS % ACH == 0 && BM % ARPP == 0 && ARPP % 2 == 0, "activation copy mapping");
    const int wc = tid % WCH, wr = tid / WCH;
    const int ac = tid % ACH, ar = tid / ACH;
    const uint8_t* wsrc = p.B + (((n0 + wr) * K) >> 1) + 16 * wc;  // + k0 / 2 per stage
    const T* asrc = A + (m0 + ar) * K + 8 * ac;                       // + k0 per stage
    const int wdst = C::w_off(wr, wc), adst = C::a_off(ar, ac);
    uint32_t wrows = 0, arows = 0;  // passes whose row exists
#pragma unroll
    for (int i = 0; i < WPASS; ++i) wrows |= (n0 + wr + i * WRPP < N) ? (1u << i) : 0u;
#pragma unroll
    for (int i = 0; i < APASS; ++i) arows |= (m0 + ar + i * ARPP < M) ? (1u << i) : 0u;
    auto load_stage = [&](int stage, int64_t k0) {
      unsigned char* ws = smem + stage * C::STAGE;
      unsigned char* as = ws + C::W_STAGE;
      const bool wk_ok = k0 + 32 * wc < kend, ak_ok = k0 + 8 * ac < kend;
      const uint8_t* w = wsrc + (k0 >> 1);
#pragma unroll
      for (int i = 0; i < WPASS; ++i) {
        const bool v = wk_ok && ((wrows >> i) & 1u);
        cp_async16(ws + wdst + i * WRPP * C::W_ROW, v ? (const void*)(w + (int64_t)i * WRPP * (K >> 1)) : (const void*)p.B,
                   v);
      }
      const T* a = asrc + k0;
#pragma unroll
      for (int i = 0; i < APASS; ++i) {
        const bool v = ak_ok && ((arows >> i) & 1u);
        cp_async16(as + adst + i * ARPP * C::A_ROW, v ? (const void*)(a + (int64_t)i * ARPP * K) : (const void*)A, v);
      }
    };
    // the block scales of this lane's 2*FN weight rows for the stage at k0 (0 for padding)
    int64_t erow[FN][2];  // flat index of the lane's first code in each row, at k0 = 0
#pragma unroll
    for (int f = 0; f < FN; ++f)
#pragma unroll
      for (int h = 0; h < 2; ++h) erow[f][h] = (n0 + row0 + 16 * f + 8 * h + g) * K + kl;
    auto fetch_scales = [&](int64_t k0, RawScale (*s)[2]) {
      const bool kok = k0 + kl < kend;
#pragma unroll
      for (int f = 0; f < FN; ++f)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (kok && n0 + row0 + 16 * f + 8 * h + g < N) {
            s[f][h] = fetch_scale(p, (erow[f][h] + k0) >> p.bshift);
          } else {
            s[f][h].q = -1;
            s[f][h].a = 0.0f;
          }
        }
    };

    float acc[FN][FM][4];
#pragma unroll
    for (int f = 0; f < FN; ++f)
#pragma unroll
      for (int fm = 0; fm < FM; ++fm)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[f][fm][i] = 0.0f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < iters) load_stage(s, kbeg + (int64_t)s * C::BK);
      cp_async_commit();
    }
    RawScale sc_next[FN][2];
    if (iters > 0) fetch_scales(kbeg, sc_next);

    for (int it = 0; it < iters; ++it) {
      const int64_t k0 = kbeg + (int64_t)it * C::BK;
      RawScale sc_raw[FN][2];
#pragma unroll
      for (int f = 0; f < FN; ++f) sc_raw[f][0] = sc_next[f][0], sc_raw[f][1] = sc_next[f][1];
      if (it + 1 < iters) fetch_scales(k0 + C::BK, sc_next);  // in flight during this stage
      cp_async_wait<STAGES - 2>();
      __syncthreads();  // stage `it` landed for every thread; stage it-1 is no longer read
      {
        const int nxt = it + STAGES - 1;
        if (nxt < iters) load_stage(nxt % STAGES, kbeg + (int64_t)nxt * C::BK);
        cp_async_commit();
      }
      const unsigned char* ws = smem + (it % STAGES) * C::STAGE;
      const unsigned char* as = ws + C::W_STAGE;
      const bool kval = k0 + kl < kend;
      uint32_t msk[FN][2];
      float sc[FN][2];
      uint4 wv[FN][2];  // the lane's 16-byte chunk of each of its weight rows (one conflict-free 128-bit load)
#pragma unroll
      for (int f = 0; f < FN; ++f)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = row0 + 16 * f + 8 * h + g;
          wv[f][h] = lds<uint4>(ws + C::w_off(r, wk * (C::KW / 32) + t));
          msk[f][h] = (kval && n0 + r < N) ? 0xFFFFFFFFu : 0u;
          sc[f][h] = finish_scale(sc_raw[f][h], code8_s, offset);
        }
      // Not unrolled: an unrolled j lets the scheduler decode the whole stage ahead of the mma's and run
      // out of registers. Word j of each chunk is taken from .x, then the words rotate down.
#pragma unroll 1
      for (int j = 0; j < 4; ++j) {  // 32-bit word j of each lane chunk = mma steps 2j, 2j+1
        uint32_t af[2][FN][4];
#pragma unroll
        for (int f = 0; f < FN; ++f) {
          const uint32_t w0 = wv[f][0].x;
          const uint32_t w1 = wv[f][1].x;
#pragma unroll
          for (int h = 0; h < 2; ++h) wv[f][h] = make_uint4(wv[f][h].y, wv[f][h].z, wv[f][h].w, wv[f][h].x);
#pragma unroll
          for (int sub = 0; sub < 2; ++sub) {
            af[sub][f][0] = decode_pair<D>(code_s, w0, 2 * sub, sc[f][0]) & msk[f][0];
            af[sub][f][1] = decode_pair<D>(code_s, w1, 2 * sub, sc[f][1]) & msk[f][1];
            af[sub][f][2] = decode_pair<D>(code_s, w0, 2 * sub + 1, sc[f][0]) & msk[f][0];
            af[sub][f][3] = decode_pair<D>(code_s, w1, 2 * sub + 1, sc[f][1]) & msk[f][1];
          }
        }
#pragma unroll
        for (int fm = 0; fm < FM; ++fm) {
          const int m = 8 * fm + g;
          const uint4 b = lds<uint4>(as + C::a_off(m, wk * (C::KW / 8) + 4 * t + j));
#pragma unroll
          for (int f = 0; f < FN; ++f) {
            mma16816<D>(acc[f][fm], af[0][f], b.x, b.y);
            mma16816<D>(acc[f][fm], af[1][f], b.z, b.w);
          }
        }
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // pipeline buffers free (reused below for the K-warp reduction)

    if constexpr (WK > 1) {
      constexpr int PER = FN * FM * 4;
      float* red = reinterpret_cast<float*>(smem);
      if (wk > 0) {
        float* dst = red + ((size_t)((wk - 1) * WN + wn) * 32 + lane) * PER;
#pragma unroll
        for (int f = 0; f < FN; ++f)
#pragma unroll
          for (int fm = 0; fm < FM; ++fm)
#pragma unroll
            for (int i = 0; i < 4; ++i) dst[(f * FM + fm) * 4 + i] = acc[f][fm][i];
      }
      __syncthreads();
      if (wk == 0) {
#pragma unroll 1
        for (int w2 = 1; w2 < WK; ++w2) {
          const float* src = red + ((size_t)((w2 - 1) * WN + wn) * 32 + lane) * PER;
#pragma unroll
          for (int f = 0; f < FN; ++f)
#pragma unroll
            for (int fm = 0; fm < FM; ++fm)
#pragma unroll
              for (int i = 0; i < 4; ++i) acc[f][fm][i] += src[(f * FM + fm) * 4 + i];
        }
      }
    }
    if (wk == 0) {
#pragma unroll
      for (int f = 0; f < FN; ++f)
#pragma unroll
        for (int fm = 0; fm < FM; ++fm)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const int64_t n = n0 + row0 + 16 * f + g + 8 * (i >> 1);
            const int64_t m = m0 + 8 * fm + 2 * t + (i & 1);
            if (n < N && m < M) write_out<D>(p, m, n, acc[f][fm][i], split);
          }
    }
    __syncthreads();  // the next row tile's prologue overwrites the buffers
  }
#elif defined(__CUDA_ARCH__) && !defined(__HIPCC__)
  __trap();  // built for < sm_80 (e.g. run as JIT-compiled PTX on a newer GPU): never planned there, never silent
#endif  // BNB_MM4_MMA
}

// Configurations by batch (rows of A): BM, FN, WN, WK, STAGES.
using Mma8 = MmaCfg<8, 2, 2, 2, 4, 3>;      // BN 64,  BK 256, 128 threads, 48 KiB
using Mma16 = MmaCfg<16, 2, 2, 2, 4, 3>;    // BN 64,  BK 256, 128 threads, 64 KiB
using Mma32 = MmaCfg<32, 2, 4, 1, 4, 2>;    // BN 128, BK 128, 128 threads, 64 KiB
using Mma64 = MmaCfg<64, 2, 4, 1, 3, 2>;    // BN 128, BK 128, 128 threads, 72 KiB
using Mma128 = MmaCfg<128, 1, 8, 1, 2, 1>;  // BN 128, BK 128, 256 threads, 80 KiB (fits sm_86/89's 99 KiB)

// ------------------------------------------------------------------------------------------ plan

enum Kind { kGemv = 0, kMma = 1, kSimt = 2, kFill = 3 };

struct Plan {
  int kind;
  int mb;        // gemv: rows of A (1..4); mma: BM
  bool vec;      // gemv: the 128-bit path
  int splits;    // >= 1 (kFill: 0)
  int64_t kps;   // K per split
  int64_t gx;    // CTAs along N (the caller checks it fits a grid dimension)
  unsigned gy;   // CTAs along M (capped at 65535; the kernels loop over the rest)
  int threads;
  int smem;      // dynamic shared memory (mma)
};

struct Device {
  int cc_major;  // compute capability major (>= 8: mma path)
  int sms;       // multiprocessor count
  bool hip;
};

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline void mma_shape(int64_t M, int& bm, int& bn, int& bk, int& threads, int& smem, int& min_blocks) {
#define BNB_MM4_CFG(C) \
  bm = C::BM, bn = C::BN, bk = C::BK, threads = C::THREADS, smem = C::SMEM, min_blocks = C::MIN_BLOCKS
  if (M <= 8) {
    BNB_MM4_CFG(Mma8);
  } else if (M <= 16) {
    BNB_MM4_CFG(Mma16);
  } else if (M <= 32) {
    BNB_MM4_CFG(Mma32);
  } else if (M <= 64) {
    BNB_MM4_CFG(Mma64);
  } else {
    BNB_MM4_CFG(Mma128);
  }
#undef BNB_MM4_CFG
}

// The kernel, its grid and its K split for out[M, N] = A[M, K] @ W.T. `aligned`: A and B 16-byte aligned.
// At most `max_splits` K splits (the workspace the caller provides holds max_splits * M * N floats).
inline Plan make_plan(int dtype, int64_t M, int64_t N, int64_t K, const Device& dev, bool aligned,
                      int64_t max_splits) {
  Plan pl{};
  if (K == 0) {
    pl.kind = kFill;
    pl.splits = 0;
    pl.kps = 0;
    pl.threads = kReduceThreads;
    pl.gx = cdiv(M * N, kReduceThreads);
    if (pl.gx > 65535 * 8) pl.gx = 65535 * 8;
    pl.gy = 1;
    return pl;
  }
  const bool vec = aligned && K % 32 == 0;
  const bool mma = vec && !dev.hip && dev.cc_major >= 8 && dtype != 0;
  int64_t ctas, unit, target;
  if (M == 1 || (M <= 4 && !mma)) {
    pl.kind = kGemv;
    pl.mb = (int)M;
    pl.vec = vec;
    pl.threads = kGemvThreads;
    pl.gx = cdiv(N, kGemvRows);
    ctas = pl.gx;
    unit = kGemvCtaK;
    target = (int64_t)dev.sms * 8;  // 32 resident warps per SM
    pl.gy = 1;
  } else if (mma) {
    int bm, bn, bk, threads, smem, min_blocks;
    mma_shape(M, bm, bn, bk, threads, smem, min_blocks);
    pl.kind = kMma;
    pl.mb = bm;
    pl.threads = threads;
    pl.smem = smem;
    const int64_t mt = cdiv(M, bm);
    pl.gy = (unsigned)(mt < 65535 ? mt : 65535);
    pl.gx = cdiv(N, bn);
    ctas = pl.gx * (int64_t)pl.gy;
    unit = 2 * (int64_t)bk;
    target = (int64_t)dev.sms * min_blocks;  // one wave of resident CTAs
  } else {
    pl.kind = kSimt;
    pl.threads = kSimtThreads;
    const int64_t mt = cdiv(M, kSimtTM);
    pl.gy = (unsigned)(mt < 65535 ? mt : 65535);
    pl.gx = cdiv(N, kSimtTN);
    ctas = pl.gx * (int64_t)pl.gy;
    unit = 4 * kSimtTK;
    target = (int64_t)dev.sms * 4;  // 32 resident warps per SM
  }
  int64_t s = target / ctas;  // split K only when the grid fills less than half of the target
  const int64_t by_k = K / unit;  // every split gets at least one unit of K
  if (s > by_k) s = by_k;
  if (s > 32) s = 32;
  if (s > max_splits) s = max_splits;
  if (s < 1) s = 1;
  // K per split: a multiple of the kernel's K granularity, so splits only cut between lane chunks
  const int64_t gran = pl.kind == kGemv ? kGemvCtaK : pl.kind == kMma ? (int64_t)unit / 2 : kSimtTK;
  pl.kps = cdiv(cdiv(K, s), gran) * gran;
  pl.splits = (int)cdiv(K, pl.kps);
  return pl;
}

// ------------------------------------------------------------------------------------------ launch

#if defined(BNB_MM4_EMU)
#define BNB_MM4_LAUNCH(KERNEL, GRID, BLOCK, SMEM, STREAM, ...) \
  emu::launch(GRID, BLOCK, SMEM, [=] { KERNEL(__VA_ARGS__); })
inline int mm4_launch_status() { return 0; }
#else
#define BNB_MM4_LAUNCH(KERNEL, GRID, BLOCK, SMEM, STREAM, ...) \
  KERNEL<<<GRID, BLOCK, SMEM, static_cast<cudaStream_t>(STREAM)>>>(__VA_ARGS__)
inline int mm4_launch_status() { return launch_status(); }

#if !defined(__HIPCC__)
// Opts the mma kernel of (D, C) in to C::SMEM bytes of dynamic shared memory on `device` (once per device;
// also for sizes <= 48 KiB, whose default limit depends on the kernel's static shared memory).
template <int D, class C>
inline int mma_prepare(int device) {
  static std::atomic<uint64_t> done{0};
  const uint64_t bit = device < 64 ? (uint64_t(1) << device) : 0;
  if (bit && (done.load(std::memory_order_relaxed) & bit)) return kOk;
  const cudaError_t e = cudaFuncSetAttribute((const void*)mm4_mma_kernel<D, C>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
  if (e != cudaSuccess) return record_cuda_error(e);
  if (bit) done.fetch_or(bit, std::memory_order_relaxed);
  return kOk;
}
#endif  // !__HIPCC__
#endif

// Launches the plan on `stream` (the current device must be the tensors' device). p.ws must be set
// exactly when pl.splits > 1. Returns a Status.
template <int D>
inline int launch_plan(const Params& p, const Plan& pl, int device, void* stream) {
  (void)device;
  (void)stream;
  const dim3 block((unsigned)pl.threads);
  if (pl.kind == kFill) {
    auto k = mm4_splitk_reduce<D>;
    BNB_MM4_LAUNCH(k, dim3((unsigned)pl.gx), block, 0, stream, (const float*)nullptr, 0, p.M, p.N, p.bias, p.out);
    return mm4_launch_status();
  }
  if (pl.kind == kGemv) {
    const dim3 grid((unsigned)pl.gx, (unsigned)pl.splits);
    void (*k)(Params, int64_t) = nullptr;
#define BNB_MM4_GEMV(MB)                                                    \
  case MB:                                                                  \
    k = pl.vec ? mm4_gemv_kernel<D, MB, true> : mm4_gemv_kernel<D, MB, false>; \
    break;
    switch (pl.mb) {
      BNB_MM4_GEMV(1)
      BNB_MM4_GEMV(2)
      BNB_MM4_GEMV(3)
      BNB_MM4_GEMV(4)
      default:
        return kBadSize;
    }
#undef BNB_MM4_GEMV
    BNB_MM4_LAUNCH(k, grid, block, 0, stream, p, pl.kps);
  } else if (pl.kind == kSimt) {
    const dim3 grid((unsigned)pl.gx, pl.gy, (unsigned)pl.splits);
    auto k = mm4_simt_kernel<D>;
    BNB_MM4_LAUNCH(k, grid, block, 0, stream, p, pl.kps);
  } else if (pl.kind == kMma) {
#if defined(__HIPCC__)
    return kBadDtype;  // never planned on HIP
#else
    if constexpr (D == 0) {
      return kBadDtype;  // never planned for fp32
    } else {
      const dim3 grid((unsigned)pl.gx, pl.gy, (unsigned)pl.splits);
      void (*k)(Params, int64_t) = nullptr;
      int smem = 0;
#if defined(BNB_MM4_EMU)
#define BNB_MM4_MMA_CASE(BMV, C) \
  case BMV:                      \
    k = mm4_mma_kernel<D, C>;    \
    smem = C::SMEM;              \
    break;
#else
#define BNB_MM4_MMA_CASE(BMV, C)                          \
  case BMV:                                               \
    if (int s = mma_prepare<D, C>(device)) return s;      \
    k = mm4_mma_kernel<D, C>;                             \
    smem = C::SMEM;                                       \
    break;
#endif
      switch (pl.mb) {
        BNB_MM4_MMA_CASE(8, Mma8)
        BNB_MM4_MMA_CASE(16, Mma16)
        BNB_MM4_MMA_CASE(32, Mma32)
        BNB_MM4_MMA_CASE(64, Mma64)
        BNB_MM4_MMA_CASE(128, Mma128)
        default:
          return kBadSize;
      }
#undef BNB_MM4_MMA_CASE
      BNB_MM4_LAUNCH(k, grid, block, (size_t)smem, stream, p, pl.kps);
    }
#endif
  }
  if (int s = mm4_launch_status()) return s;
  if (pl.splits > 1) {
    int64_t g = cdiv(p.M * p.N, kReduceThreads);
    if (g > 65535 * 8) g = 65535 * 8;
    auto k = mm4_splitk_reduce<D>;
    BNB_MM4_LAUNCH(k, dim3((unsigned)g), dim3(kReduceThreads), 0, stream, (const float*)p.ws, pl.splits, p.M, p.N,
                   p.bias, p.out);
    return mm4_launch_status();
  }
  return kOk;
}

// ------------------------------------------------------------------------------------------ host entry

// One call of the fused matmul as the bindings pass it (sizes in elements unless named _nbytes).
struct Call {
  int dtype;
  const void* A;
  int64_t M, K;
  const void* B;
  int64_t b_nbytes;
  int64_t N;
  const float* absmax;
  int64_t blocksize;
  const float* code;  // null: built-in table of quant_type
  int quant_type;
  const uint8_t* absmax_8bit;
  const float* absmax_code;
  const float* absmax_offset;
  const void* bias;
  void* out;
  float* ws;
  int64_t ws_floats;
};

// Argument checks that need no device (a Status). *nothing is set when there is no output to write.
inline int validate(const Call& c, bool* nothing) {
  *nothing = false;
  if (c.dtype < 0 || c.dtype > 2) return kBadDtype;
  if (c.M < 0 || c.K < 0 || c.N < 0 || c.b_nbytes < 0 || c.ws_floats < 0) return kBadSize;
  if (c.blocksize < 32 || c.blocksize > 4096 || (c.blocksize & (c.blocksize - 1)) != 0) return kBadBlocksize;
  if (c.quant_type != 0 && c.quant_type != 1) return kBadQuantType;
  if (c.M == 0 || c.N == 0) {
    *nothing = true;
    return kOk;
  }
  if (c.N > INT64_MAX / c.M) return kBadSize;
  if (!c.out) return kNullPointer;
  if (c.ws_floats > 0 && !c.ws) return kNullPointer;
  if (c.K > 0) {
    if (c.N > INT64_MAX / c.K) return kBadSize;
    if (c.b_nbytes < (c.N * c.K + 1) / 2) return kBadSize;
    if (!c.A || !c.B || !c.absmax) return kNullPointer;
    if (c.absmax_8bit && (!c.absmax_code || !c.absmax_offset)) return kNullPointer;
  }
  return kOk;
}

inline int log2_pow2(int64_t v) {
  int l = 0;
  while ((int64_t(1) << l) < v) ++l;
  return l;
}

// Kernel parameters and plan of a validated call.
inline int build(const Call& c, const Device& dev, Params& p, Plan& pl) {
  p.A = c.A;
  p.M = c.M;
  p.K = c.K;
  p.N = c.N;
  p.B = static_cast<const uint8_t*>(c.B);
  p.absmax = c.absmax;
  p.absmax_8bit = c.absmax_8bit;
  p.absmax_code = c.absmax_code;
  p.absmax_offset = c.absmax_offset;
  p.code = c.code;
  p.quant_type = c.quant_type;
  p.bshift = log2_pow2(c.blocksize);
  p.bias = c.bias;
  p.out = c.out;
  const bool aligned = ((reinterpret_cast<uintptr_t>(c.A) | reinterpret_cast<uintptr_t>(c.B)) & 15u) == 0;
  const int64_t max_splits = c.ws ? c.ws_floats / (c.M * c.N) : 1;
  pl = make_plan(c.dtype, c.M, c.N, c.K, dev, aligned, max_splits < 1 ? 1 : max_splits);
  if (pl.gx > 0x7FFFFFFF) return kBadSize;
  p.ws = pl.splits > 1 ? c.ws : nullptr;
  return kOk;
}

// Number of K splits the plan uses for this shape with enough workspace (16-byte aligned tensors): the
// caller allocates splits * M * N floats of workspace when it is > 1.
inline int planned_splits(int dtype, int64_t M, int64_t N, int64_t K, const Device& dev) {
  if (M <= 0 || N <= 0 || K <= 0) return 1;
  const Plan pl = make_plan(dtype, M, N, K, dev, true, 64);
  return pl.splits < 1 ? 1 : pl.splits;
}

inline int run(int dtype, const Params& p, const Plan& pl, int device, void* stream) {
  switch (dtype) {
    case 0:
      return launch_plan<0>(p, pl, device, stream);
    case 1:
      return launch_plan<1>(p, pl, device, stream);
    case 2:
      return launch_plan<2>(p, pl, device, stream);
    default:
      return kBadDtype;
  }
}

}  // namespace mm4
}  // namespace bnb_cuda
