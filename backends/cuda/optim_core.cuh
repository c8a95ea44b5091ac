// Lane-level logic of the CUDA optimizer kernels (kernels_optim.cu), written once as __host__ __device__
// code: the kernels run it per lane on the GPU, and the host emulation in kernels_optim.cu runs the very same
// functions lane by lane on the CPU (tests/test_cuda_optim_emulation.py checks them against the reference
// without a GPU). Only the warp/CTA plumbing (shuffles, shared memory, barriers) differs between the two.
//
// Semantics: bnb_core/reference.py `_optimizer_step_fp32`, `optimizer_update_32bit`,
// `optimizer_update_8bit_blockwise`, `_requantize_state` and docs/formats.md "Optimizer ops", with the
// reference's fp32 expression order (compiled with -fmad=false: no contraction; IEEE div and sqrt).
#pragma once

#include <stdint.h>

#if defined(__HIPCC__)
#include "../rocm/hip_compat.h"
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include "bnb_quant_math.h"

#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define BNB_OPT_DEVICE_PASS 1
#else
#define BNB_OPT_DEVICE_PASS 0
#endif

#define BNB_OHD __host__ __device__ __forceinline__

namespace bnb_cuda {
namespace optim {

// Update rules; the numbering is the order of bnb_core._ops.OPTIMIZER_NAMES.
enum Name : int {
  kAdam = 0,
  kMomentum = 1,
  kRmsprop = 2,
  kLion = 3,
  kAdagrad = 4,
  kLamb = 5,
  kLars = 6,
  kAdemamix = 7,
};

constexpr int kBlock = BNB_OPTIMIZER_BLOCKSIZE;  // 256 elements per absmax
constexpr int kWarp = 32;                        // logical warp (HIP wave64: two logical warps)
constexpr int kPerLane = kBlock / kWarp;         // 8 consecutive elements per lane, one block per warp
constexpr int kGroup32 = 4;                      // elements per thread and iteration of the 32-bit kernels
static_assert(kPerLane == 8, "the 8-bit kernel maps one 256-element block onto 32 lanes x 8 elements");

BNB_OHD bool two_states(int name) { return name == kAdam || name == kLamb || name == kAdemamix; }

// fp32 constants of one update: each one is the float32 rounding of the Python-float (double) expression the
// reference multiplies a tensor with (torch casts a Python scalar to the tensor dtype). Filled on the host by
// prepare_consts (kernels_optim.cu), identical to the CPU backend's.
struct Consts {
  int name;
  bool skip_zeros;    // zero gradients leave param and state unchanged
  bool coupled_wd;    // g += p * wd (momentum, lars, rmsprop, adagrad with wd > 0)
  bool decoupled_wd;  // p *= 1 - lr * wd (adam, lamb, ademamix, lion with wd > 0)
  bool first_step;    // step == 1 (momentum / lars start from g)
  float gnorm_scale, beta1, beta2, beta3, omb1, omb2, omb3;  // omb = 1 - beta
  float wd, decay;                                           // decay = 1 - lr * wd
  float c1, c2, c2sq;                                        // 1 - beta1^t, sqrt(1 - beta2^t), c2 * c2
  float eps, eps_c2, step_scale, neg_lr, alpha;              // eps * c2, -lr * c2 / c1, -lr
};

// ------------------------------------------------------------------------------------ dtype loads / stores
// dtype codes: 0 fp32, 1 fp16, 2 bf16. The GPU uses the hardware conversions (exact widening, RNE narrowing),
// the host emulation the bit-identical software ones of bnb_quant_math.h (NaN payloads aside).
template <int D>
BNB_OHD float from16(uint16_t r) {
  if constexpr (D == 1) {
#if BNB_OPT_DEVICE_PASS
    return __half2float(__ushort_as_half(r));
#else
    return bnb::f16_to_f32(r);
#endif
  } else {
    return bnb::bf16_to_f32(r);
  }
}
template <int D>
BNB_OHD uint16_t to16(float v) {
  if constexpr (D == 1) {
#if BNB_OPT_DEVICE_PASS
    return __half_as_ushort(__float2half_rn(v));
#else
    return bnb::f32_to_f16(v);
#endif
  } else {
    return bnb::f32_to_bf16(v);
  }
}

// Loads N (4 or 8) consecutive values from element i as fp32; `vec`: 128-bit (fp32: two for 8) / 64-bit loads
// (the caller checked alignment), `cnt`: how many are valid (the others read as 0).
template <int D, int N>
BNB_OHD void load_n(const void* base, int64_t i, int cnt, bool vec, float* v) {
  if (vec && cnt == N) {
    if constexpr (D == 0) {
      const float4* q = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
#pragma unroll
      for (int h = 0; h < N / 4; ++h) {
        const float4 a = q[h];
        v[4 * h] = a.x, v[4 * h + 1] = a.y, v[4 * h + 2] = a.z, v[4 * h + 3] = a.w;
      }
    } else {
      const uint16_t* s = static_cast<const uint16_t*>(base) + i;
      uint32_t w[N / 2];
      if constexpr (N == 8) {
        const uint4 a = *reinterpret_cast<const uint4*>(s);
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w;
      } else {
        const uint2 a = *reinterpret_cast<const uint2*>(s);
        w[0] = a.x, w[1] = a.y;
      }
#pragma unroll
      for (int k = 0; k < N / 2; ++k) {
        v[2 * k] = from16<D>((uint16_t)(w[k] & 0xFFFFu));
        v[2 * k + 1] = from16<D>((uint16_t)(w[k] >> 16));
      }
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < N; ++k) {
    float x = 0.0f;
    if (k < cnt) {
      if constexpr (D == 0)
        x = static_cast<const float*>(base)[i + k];
      else
        x = from16<D>(static_cast<const uint16_t*>(base)[i + k]);
    }
    v[k] = x;
  }
}

template <int D, int N>
BNB_OHD void store_n(void* base, int64_t i, int cnt, bool vec, const float* v) {
  if (vec && cnt == N) {
    if constexpr (D == 0) {
      float4* q = reinterpret_cast<float4*>(static_cast<float*>(base) + i);
#pragma unroll
      for (int h = 0; h < N / 4; ++h) q[h] = make_float4(v[4 * h], v[4 * h + 1], v[4 * h + 2], v[4 * h + 3]);
    } else {
      uint32_t w[N / 2];
#pragma unroll
      for (int k = 0; k < N / 2; ++k) w[k] = (uint32_t)to16<D>(v[2 * k]) | ((uint32_t)to16<D>(v[2 * k + 1]) << 16);
      uint16_t* s = static_cast<uint16_t*>(base) + i;
      if constexpr (N == 8)
        *reinterpret_cast<uint4*>(s) = make_uint4(w[0], w[1], w[2], w[3]);
      else
        *reinterpret_cast<uint2*>(s) = make_uint2(w[0], w[1]);
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < N; ++k) {
    if (k < cnt) {
      if constexpr (D == 0)
        static_cast<float*>(base)[i + k] = v[k];
      else
        static_cast<uint16_t*>(base)[i + k] = to16<D>(v[k]);
    }
  }
}

// 8 codes from byte i (8-byte loads when `vec`).
BNB_OHD void load_codes8(const uint8_t* q, int64_t i, int cnt, bool vec, uint8_t* c) {
  if (vec && cnt == 8) {
    const uint2 w = *reinterpret_cast<const uint2*>(q + i);
#pragma unroll
    for (int k = 0; k < 4; ++k) c[k] = (uint8_t)(w.x >> (8 * k)), c[4 + k] = (uint8_t)(w.y >> (8 * k));
    return;
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) c[k] = k < cnt ? q[i + k] : (uint8_t)0;
}

BNB_OHD void store_codes8(uint8_t* q, int64_t i, int cnt, bool vec, const uint8_t* c) {
  if (vec && cnt == 8) {
    uint2 w;
    w.x = (uint32_t)c[0] | ((uint32_t)c[1] << 8) | ((uint32_t)c[2] << 16) | ((uint32_t)c[3] << 24);
    w.y = (uint32_t)c[4] | ((uint32_t)c[5] << 8) | ((uint32_t)c[6] << 16) | ((uint32_t)c[7] << 24);
    *reinterpret_cast<uint2*>(q + i) = w;
    return;
  }
#pragma unroll
  for (int k = 0; k < 8; ++k)
    if (k < cnt) q[i + k] = c[k];
}

// ------------------------------------------------------------------------------------ the update rule
// g (scaled and masked) and p, s1, s1b (ademamix's slow EMA), s2 in; p (after decoupled decay) and the states
// updated in place; returns the step direction; with UPD also the direction whose norm gives the trust ratio.
template <int NAME, bool UPD>
BNB_OHD float rule(const Consts& c, float g, float& p, float& s1, float& s1b, float& s2, float& upd) {
  if (c.coupled_wd) g = g + p * c.wd;
  if (c.decoupled_wd) p = p * c.decay;
  float sd;
  if constexpr (NAME == kAdam || NAME == kLamb) {
    s1 = s1 * c.beta1 + c.omb1 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    if (UPD) upd = (s1 / c.c1) / (sqrtf(s2 / c.c2sq) + c.eps);
    sd = c.step_scale * (s1 / (sqrtf(s2) + c.eps_c2));
  } else if constexpr (NAME == kAdemamix) {
    const float m1 = s1 * c.beta1 + c.omb1 * g;
    const float m2 = s1b * c.beta3 + c.omb3 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    s1 = m1;
    s1b = m2;
    const float u = (m1 / c.c1 + c.alpha * m2) / (sqrtf(s2) / c.c2 + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  } else if constexpr (NAME == kMomentum || NAME == kLars) {
    s1 = c.first_step ? g : s1 * c.beta1 + g;
    if (UPD) upd = s1;
    sd = c.neg_lr * s1;
  } else if constexpr (NAME == kLion) {
    const float x = s1 * c.beta1 + c.omb1 * g;
    const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);  // torch.sign on the CPU: NaN -> 0
    sd = c.neg_lr * sign;
    s1 = s1 * c.beta2 + c.omb2 * g;
    if (UPD) upd = s1;
  } else if constexpr (NAME == kRmsprop) {
    s1 = s1 * c.beta1 + (c.omb1 * g) * g;
    const float u = g / (sqrtf(s1) + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  } else {  // adagrad
    s1 = s1 + g * g;
    const float u = g / (sqrtf(s1) + c.eps);
    if (UPD) upd = u;
    sd = c.neg_lr * u;
  }
  return sd;
}

// Scaled gradient and whether the element is updated (finite, and nonzero with skip_zeros); g is zeroed when not.
BNB_OHD float masked_grad(const Consts& c, float graw, bool& keep) {
  const float g = graw * c.gnorm_scale;
  keep = (g - g) == 0.0f;  // finite
  if (c.skip_zeros) keep = keep && g != 0.0f;
  return keep ? g : 0.0f;
}

// ------------------------------------------------------------------------------------ 32-bit
struct Args32 {
  Consts k;
  int64_t n;
  const void* g;
  void* p;
  float* s1;  // n (2n for ademamix: [m1 | m2])
  float* s2;  // n, or null for one-state rules
  bool vec;   // every array's base (and s1 + n) is 16-byte aligned: 128-bit (fp32) / 64-bit (16-bit) accesses
};

// Sum of update^2 over the 4 elements of group `gi` (fp32 in the element order), g masked as the op does.
template <int D, int NAME>
BNB_OHD float group32_norm(const Args32& a, int64_t gi) {
  const int64_t i = gi * kGroup32;
  const int64_t rest = a.n - i;
  const int cnt = rest < kGroup32 ? (int)rest : kGroup32;
  float g[4], p[4], s1[4], s1b[4] = {0, 0, 0, 0}, s2[4] = {0, 0, 0, 0};
  load_n<D, 4>(a.g, i, cnt, a.vec, g);
  load_n<D, 4>(a.p, i, cnt, a.vec, p);
  load_n<0, 4>(a.s1, i, cnt, a.vec, s1);
  if constexpr (NAME == kAdemamix) load_n<0, 4>(a.s1 + a.n, i, cnt, a.vec, s1b);
  if constexpr (NAME == kAdam || NAME == kLamb || NAME == kAdemamix) load_n<0, 4>(a.s2, i, cnt, a.vec, s2);
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < kGroup32; ++k) {
    if (k < cnt) {
      bool keep;
      const float gk = masked_grad(a.k, g[k], keep);
      float upd = 0.0f;
      rule<NAME, true>(a.k, gk, p[k], s1[k], s1b[k], s2[k], upd);
      sum = sum + upd * upd;
    }
  }
  return sum;
}

// Updates the 4 elements of group `gi`; step directions are multiplied by `scale` (the trust ratio, or 1).
template <int D, int NAME>
BNB_OHD void group32_update(const Args32& a, int64_t gi, float scale) {
  const int64_t i = gi * kGroup32;
  const int64_t rest = a.n - i;
  const int cnt = rest < kGroup32 ? (int)rest : kGroup32;
  constexpr bool kTwo = NAME == kAdam || NAME == kLamb || NAME == kAdemamix;
  float g[4], p[4], s1[4], s1b[4] = {0, 0, 0, 0}, s2[4] = {0, 0, 0, 0};
  load_n<D, 4>(a.g, i, cnt, a.vec, g);
  load_n<D, 4>(a.p, i, cnt, a.vec, p);
  load_n<0, 4>(a.s1, i, cnt, a.vec, s1);
  if constexpr (NAME == kAdemamix) load_n<0, 4>(a.s1 + a.n, i, cnt, a.vec, s1b);
  if constexpr (kTwo) load_n<0, 4>(a.s2, i, cnt, a.vec, s2);
#pragma unroll
  for (int k = 0; k < kGroup32; ++k) {
    bool keep;
    const float gk = masked_grad(a.k, g[k], keep);
    float pk = p[k], n1 = s1[k], n1b = s1b[k], n2 = s2[k], upd = 0.0f;
    const float sd = rule<NAME, false>(a.k, gk, pk, n1, n1b, n2, upd) * scale;
    if (keep) {
      p[k] = pk + sd;
      s1[k] = n1;
      s1b[k] = n1b;
      s2[k] = n2;
    }
  }
  store_n<D, 4>(a.p, i, cnt, a.vec, p);
  store_n<0, 4>(a.s1, i, cnt, a.vec, s1);
  if constexpr (NAME == kAdemamix) store_n<0, 4>(a.s1 + a.n, i, cnt, a.vec, s1b);
  if constexpr (kTwo) store_n<0, 4>(a.s2, i, cnt, a.vec, s2);
}

// ------------------------------------------------------------------------------------ 8-bit code tables
// Per map: the 256 code values and its 255 boundaries (fp32 midpoints) in Eytzinger (level) order, so that
// the nearest-code search reads, at tree level L, one of 2^L consecutive words: levels 0-5 never conflict on
// the 32 shared-memory banks, 6 and 7 at most 2- and 4-way (the plain sorted order puts every level's
// candidates on one or two banks). The search counts the boundaries strictly below y (ties go to the lower
// code), exactly as quantize_blockwise / code_8bit_search. `sorted` = the boundaries ascend; otherwise every
// boundary is counted (exact for any code table).
struct QTable {
  float code[256];
  float eyt[256];  // [0, 255) used
};

BNB_OHD int ilog2(int v) {  // v >= 1
#if BNB_OPT_DEVICE_PASS
  return 31 - __clz(v);
#else
  int l = 0;
  while ((v >> (l + 1)) != 0) ++l;
  return l;
#endif
}

// Boundary index (into the ascending 255) of Eytzinger node k.
BNB_OHD int eyt_index(int k) {
  const int L = ilog2(k + 1);
  const int j = k + 1 - (1 << L);
  return j * (256 >> L) + (128 >> L) - 1;
}

// boundary i of `code` (between code[i] and code[i + 1])
BNB_OHD float boundary(const float* code, int i) { return bnb::midpoint(code[i], code[i + 1]); }

// Whether boundary i > boundary i + 1 (or a NaN); i in [0, 254).
BNB_OHD bool boundary_out_of_order(const float* code, int i) { return !(boundary(code, i) <= boundary(code, i + 1)); }

BNB_OHD int code_search(float y, const float* eyt) {
  int k = 0;
#pragma unroll
  for (int l = 0; l < 8; ++l) k = 2 * k + 1 + (y > eyt[k] ? 1 : 0);
  return k - 255;
}

BNB_OHD int code_count(float y, const float* eyt) {
  int c = 0;
#pragma unroll 1
  for (int i = 0; i < 255; ++i) c += (y > eyt[i]) ? 1 : 0;
  return c;
}

// keep_sign (state1): a nonzero value whose code is zero or of the other sign moves one code away (reference
// `_requantize_state`).
BNB_OHD int fix_sign(int q, float x, const float* code) {
  const float v = code[q];
  if (x > 0.0f && v <= 0.0f) return q < 255 ? q + 1 : 255;
  if (x < 0.0f && v >= 0.0f) return q > 0 ? q - 1 : 0;
  return q;
}

// ------------------------------------------------------------------------------------ 8-bit lane phases
struct Args8 {
  Consts k;
  int64_t n, nb;
  const void* g;
  void* p;
  uint8_t* s1;     // n codes (2n for ademamix)
  uint8_t* s2;     // n codes or null
  float* absmax1;  // nb (2 nb for ademamix)
  float* absmax2;  // nb or null
  const float* qmap1;
  const float* qmap2;
  bool vec;  // g/p 16-byte aligned, s1 / s1 + n / s2 8-byte aligned
};

// One lane's 8 elements of one block between the two phases (registers on the GPU).
struct Lane8 {
  float n1[8], n1b[8], n2[8];  // new states (the old ones where the gradient is masked)
  int cnt;                     // valid elements
  // local |max| of each new state; bit 0/1/2 of `nan`: a NaN in n1 / n1b / n2
  float m1, m1b, m2;
  int nan;
};

BNB_OHD void acc_absmax(float x, float& m, int& nan, int bit) {
  if (x != x)
    nan |= bit;
  else
    m = fmaxf(m, fabsf(x));
}

// Phase 1 for lane `lane` of block b: dequantize the states (code * old absmax), update, write p, keep the new
// states and their local absmax. The old absmax values are read here, before any lane writes the new ones.
template <int D, int NAME>
BNB_OHD void lane8_update(const Args8& a, const QTable& t1, const QTable& t2, int64_t b, int lane, Lane8& L) {
  constexpr bool kTwo = NAME == kAdam || NAME == kLamb || NAME == kAdemamix;
  const int64_t s = b * kBlock;
  const int64_t i = s + (int64_t)lane * kPerLane;
  const int64_t rest = a.n - i;
  const int cnt = rest <= 0 ? 0 : (rest < kPerLane ? (int)rest : kPerLane);
  L.cnt = cnt;
  L.m1 = L.m1b = L.m2 = 0.0f;
  L.nan = 0;
  const float am1 = a.absmax1[b];
  const float am1b = NAME == kAdemamix ? a.absmax1[a.nb + b] : 0.0f;
  const float am2 = kTwo ? a.absmax2[b] : 0.0f;
  float g[8], p[8];
  uint8_t c1[8], c1b[8], c2[8];
  load_n<D, 8>(a.g, i, cnt, a.vec, g);
  load_n<D, 8>(a.p, i, cnt, a.vec, p);
  load_codes8(a.s1, i, cnt, a.vec, c1);
  if constexpr (NAME == kAdemamix) load_codes8(a.s1 + a.n, i, cnt, a.vec, c1b);
  if constexpr (kTwo) load_codes8(a.s2, i, cnt, a.vec, c2);
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) {
    bool keep;
    const float gk = masked_grad(a.k, g[k], keep);
    const float o1 = t1.code[c1[k]] * am1;
    float o1b = 0.0f, o2 = 0.0f;
    if constexpr (NAME == kAdemamix) o1b = t1.code[c1b[k]] * am1b;
    if constexpr (kTwo) o2 = t2.code[c2[k]] * am2;
    float pk = p[k], n1 = o1, n1b = o1b, n2 = o2, upd = 0.0f;
    const float sd = rule<NAME, false>(a.k, gk, pk, n1, n1b, n2, upd);
    if (keep) {
      p[k] = pk + sd;
    } else {
      n1 = o1, n1b = o1b, n2 = o2;
    }
    if (k < cnt) {
      L.n1[k] = n1;
      acc_absmax(n1, L.m1, L.nan, 1);
      if constexpr (NAME == kAdemamix) {
        L.n1b[k] = n1b;
        acc_absmax(n1b, L.m1b, L.nan, 2);
      }
      if constexpr (kTwo) {
        L.n2[k] = n2;
        acc_absmax(n2, L.m2, L.nan, 4);
      }
    }
  }
  store_n<D, 8>(a.p, i, cnt, a.vec, p);
}

// Phase 2: requantize the lane's new states against the block's new absmax (quantize_blockwise's arithmetic).
// SORTED: both boundary tables ascend (every bitsandbytes map): the 8-level search; otherwise every boundary of
// the unsorted table(s) is counted.
template <int NAME, bool SORTED>
BNB_OHD void lane8_requant(const Args8& a, const QTable& t1, const QTable& t2, bool sorted1, bool sorted2, int64_t b,
                           int lane, const Lane8& L, float am1, float am1b, float am2) {
  const bool srt1 = SORTED || sorted1, srt2 = SORTED || sorted2;
  (void)srt2;  // one-state rules
  constexpr bool kTwo = NAME == kAdam || NAME == kLamb || NAME == kAdemamix;
  const int64_t i = b * kBlock + (int64_t)lane * kPerLane;
  uint8_t q[8];
  {
    const bnb::BlockScale sc = bnb::block_scale(am1);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const float x = k < L.cnt ? L.n1[k] : 0.0f;
      const float y = bnb::scale_value(x, sc);
      const int c = srt1 ? code_search(y, t1.eyt) : code_count(y, t1.eyt);
      q[k] = (uint8_t)fix_sign(c, x, t1.code);
    }
    store_codes8(a.s1, i, L.cnt, a.vec, q);
  }
  if constexpr (NAME == kAdemamix) {
    const bnb::BlockScale sc = bnb::block_scale(am1b);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const float x = k < L.cnt ? L.n1b[k] : 0.0f;
      const float y = bnb::scale_value(x, sc);
      const int c = srt1 ? code_search(y, t1.eyt) : code_count(y, t1.eyt);
      q[k] = (uint8_t)fix_sign(c, x, t1.code);
    }
    store_codes8(a.s1 + a.n, i, L.cnt, a.vec, q);
  }
  if constexpr (kTwo) {
    const bnb::BlockScale sc = bnb::block_scale(am2);
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      const float x = k < L.cnt ? L.n2[k] : 0.0f;
      const float y = bnb::scale_value(x, sc);
      q[k] = (uint8_t)(srt2 ? code_search(y, t2.eyt) : code_count(y, t2.eyt));
    }
    store_codes8(a.s2, i, L.cnt, a.vec, q);
  }
}

// absmax of a block from the reduced |max| and NaN flag (NaN if the block holds a NaN, as quantize_blockwise).
BNB_OHD float block_absmax(float m, bool nan) { return nan ? bnb::canonical_nan() : m; }

}  // namespace optim
}  // namespace bnb_cuda
