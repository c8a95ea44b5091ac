// Entry points of the XPU backend: argument validation, choice of the kernel instantiation and launch
// shape, as templates over a Launcher policy (launch.h). The production module (launch_queue.h) and the
// test harness (launch_source.h) instantiate these same functions, so what the harness runs on the CPU
// SYCL device is this code and these kernels.
//
// Pointers are USM pointers the kernels can read (torch XPU tensors). dtype codes: 0 = float32,
// 1 = float16, 2 = bfloat16; quant_type: 0 = nf4, 1 = fp4. Every function returns a Status and never throws.
#pragma once

#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "bnb_optim_consts.h"
#include "kernels_mm4.h"
#include "kernels_optim.h"
#include "kernels_quant.h"
#include "launch.h"

namespace bnb_xpu {

namespace detail {

inline bool bad_dtype(int d) { return d < 0 || d > 2; }
inline bool bad_qt(int q) { return q < 0 || q > 1; }
inline bool pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }
inline int log2i(int64_t v) {
  int s = 0;
  while (((int64_t)1 << s) < v) ++s;
  return s;
}
// Work-items per group for a loop over `work` elements: a power of two in [32, kMaxLocal].
inline int64_t local_for(int64_t work) {
  int64_t l = 32;
  while (l < kMaxLocal && l < work) l <<= 1;
  return l;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// f(std::integral_constant<int, DT>) for a runtime dtype code (checked by the caller)
template <class F>
int by_dtype(int dtype, F&& f) {
  switch (dtype) {
    case 0: return f(std::integral_constant<int, 0>());
    case 1: return f(std::integral_constant<int, 1>());
    case 2: return f(std::integral_constant<int, 2>());
    default: return kBadDtype;
  }
}
template <class F>
int by_quant_type(int qt, F&& f) {
  switch (qt) {
    case 0: return f(std::integral_constant<int, 0>());
    case 1: return f(std::integral_constant<int, 1>());
    default: return kBadQuantType;
  }
}
template <class F>
int by_optimizer(int name, F&& f) {
  switch (name) {
    case kOptAdam: return f(std::integral_constant<int, kOptAdam>());
    case kOptMomentum: return f(std::integral_constant<int, kOptMomentum>());
    case kOptRmsprop: return f(std::integral_constant<int, kOptRmsprop>());
    case kOptLion: return f(std::integral_constant<int, kOptLion>());
    case kOptAdagrad: return f(std::integral_constant<int, kOptAdagrad>());
    case kOptLamb: return f(std::integral_constant<int, kOptLamb>());
    case kOptLars: return f(std::integral_constant<int, kOptLars>());
    case kOptAdemamix: return f(std::integral_constant<int, kOptAdemamix>());
    default: return kBadOptimizerName;
  }
}

}  // namespace detail

// ------------------------------------------------------------------ blockwise 8-bit

template <class L>
int quantize_blockwise(L& l, int dtype, const void* x, int64_t n, const float* code, int64_t blocksize,
                       uint8_t* out, float* absmax) {
  if (detail::bad_dtype(dtype)) return kBadDtype;
  if (n < 0) return kBadSize;
  if (!detail::pow2(blocksize)) return kBadBlocksize;
  if (n == 0) return kOk;
  if (!x || !code || !out || !absmax) return kNullPointer;
  const Range r = make_range(detail::ceil_div(n, blocksize), detail::local_for(blocksize));
  return detail::by_dtype(dtype, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return l.launch(Quant8<DT>{x, n, code, blocksize, out, absmax}, r);
  });
}

template <class L>
int dequantize_blockwise(L& l, int dtype_out, const uint8_t* q, int64_t n, const float* code, const float* absmax,
                         int64_t blocksize, void* out) {
  if (detail::bad_dtype(dtype_out)) return kBadDtype;
  if (n < 0) return kBadSize;
  if (!detail::pow2(blocksize)) return kBadBlocksize;
  if (n == 0) return kOk;
  if (!q || !code || !absmax || !out) return kNullPointer;
  const int bshift = detail::log2i(blocksize);
  const Range r = make_range(detail::ceil_div(n, kMaxLocal), kMaxLocal);
  return detail::by_dtype(dtype_out, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return l.launch(Dequant8<DT>{q, n, code, absmax, bshift, out}, r);
  });
}

// ------------------------------------------------------------------ 4-bit

template <class L>
int quantize_4bit(L& l, int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type, uint8_t* out,
                  int64_t out_nbytes, float* absmax) {
  if (detail::bad_dtype(dtype)) return kBadDtype;
  if (detail::bad_qt(quant_type)) return kBadQuantType;
  if (n < 0 || out_nbytes < 0) return kBadSize;
  if (!detail::pow2(blocksize) || blocksize < BNB_MIN_BLOCKSIZE_4BIT || blocksize > BNB_MAX_BLOCKSIZE_4BIT)
    return kBadBlocksize;
  const int64_t nbytes = (n + 1) / 2;
  if (out_nbytes < nbytes) return kOutputTooSmall;
  if (out_nbytes == 0) return kOk;
  if (!out || (n > 0 && (!x || !absmax))) return kNullPointer;
  const Range r = make_range(detail::ceil_div(n, blocksize), detail::local_for(blocksize / 2));
  return detail::by_dtype(dtype, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return detail::by_quant_type(quant_type, [&](auto qt) {
      constexpr int QT = decltype(qt)::value;
      return l.launch(Quant4<DT, QT>{x, n, blocksize, out, out_nbytes, absmax}, r);
    });
  });
}

template <class L>
int dequantize_4bit(L& l, int dtype_out, const uint8_t* q, int64_t n, const float* absmax, int64_t blocksize,
                    int quant_type, void* out) {
  if (detail::bad_dtype(dtype_out)) return kBadDtype;
  if (detail::bad_qt(quant_type)) return kBadQuantType;
  if (n < 0) return kBadSize;
  if (!detail::pow2(blocksize) || blocksize < BNB_MIN_BLOCKSIZE_4BIT || blocksize > BNB_MAX_BLOCKSIZE_4BIT)
    return kBadBlocksize;
  if (n == 0) return kOk;
  if (!q || !absmax || !out) return kNullPointer;
  const int bshift = detail::log2i(blocksize);
  const Range r = make_range(detail::ceil_div((n + 1) / 2, kMaxLocal), kMaxLocal);
  return detail::by_dtype(dtype_out, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return detail::by_quant_type(quant_type, [&](auto qt) {
      constexpr int QT = decltype(qt)::value;
      return l.launch(Dequant4<DT, QT>{q, n, absmax, bshift, out}, r);
    });
  });
}

// ------------------------------------------------------------------ fused 4-bit matmul

// out[M, N] = A[M, K] @ W[N, K].T (+ bias). absmax_8bit / absmax_code / absmax_offset: double-quantized
// absmax (then `absmax` is the second-level fp32 absmax); null otherwise. bias null = none.
template <class L>
int gemm_4bit(L& l, int dtype, const void* A, int64_t M, int64_t K, const void* B, int64_t b_nbytes, int64_t N,
              const float* absmax, int64_t blocksize, const float* code, const uint8_t* absmax_8bit,
              const float* absmax_code, const float* absmax_offset, const void* bias, void* out) {
  if (detail::bad_dtype(dtype)) return kBadDtype;
  if (M < 0 || K < 0 || N < 0 || b_nbytes < 0) return kBadSize;
  if (!detail::pow2(blocksize) || blocksize < BNB_MIN_BLOCKSIZE_4BIT || blocksize > BNB_MAX_BLOCKSIZE_4BIT)
    return kBadBlocksize;
  if (M == 0 || N == 0) return kOk;
  if (!out || (!A && K > 0)) return kNullPointer;
  if (K > 0 && N > INT64_MAX / K) return kBadSize;
  const int64_t n = N * K;
  if (b_nbytes < (n + 1) / 2) return kBadSize;
  if (n > 0 && (!B || !absmax || !code)) return kNullPointer;
  if (absmax_8bit && (!absmax_code || !absmax_offset)) return kNullPointer;
  const int bshift = detail::log2i(blocksize);
  const int64_t local = detail::local_for(K);
  auto go = [&](auto dt, auto mt) {
    constexpr int DT = decltype(dt)::value, MT = decltype(mt)::value;
    const Range r = make_range(N * detail::ceil_div(M, MT), local);
    return l.launch(Mm4<DT, MT>{A, M, K, N, (const uint8_t*)B, absmax, bshift, code, absmax_8bit, absmax_code,
                                absmax_offset, bias, out},
                    r);
  };
  return detail::by_dtype(dtype, [&](auto dt) {
    return M == 1 ? go(dt, std::integral_constant<int, 1>()) : go(dt, std::integral_constant<int, 4>());
  });
}

// ------------------------------------------------------------------ optimizers

namespace detail {

// Status of the arguments shared by both optimizer ops; fills the fp32 constants (bnb_optim_consts.h,
// shared with the CPU and CUDA backends).
inline int optim_prepare(int name, int dtype, int64_t n, int64_t step, double beta1, double beta2, double beta3,
                         double alpha, double eps, double weight_decay, double lr, double gnorm_scale,
                         bool skip_zeros, OptimConsts* k) {
  if (name < kOptAdam || name > kOptAdemamix) return kBadOptimizerName;
  if (bad_dtype(dtype)) return kBadDtype;
  if (n < 0 || step < 1) return kBadSize;
  const bool coupled = name == kOptMomentum || name == kOptLars || name == kOptRmsprop || name == kOptAdagrad;
  k->skip_zeros = skip_zeros ? 1 : 0;
  bnb_optim_step_consts(k, coupled, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale);
  return kOk;
}

}  // namespace detail

// scratch: kOptimScratchFloats fp32 (device memory), needed when max_unorm > 0.
template <class L>
int optimizer_update_32bit(L& l, int name, int dtype, const void* g, void* p, int64_t n, float* state1,
                           float* state2, float* unorm_vec, double max_unorm, double param_norm, double beta1,
                           double beta2, double beta3, double alpha, double eps, double weight_decay, int64_t step,
                           double lr, double gnorm_scale, bool skip_zeros, float* scratch, int64_t scratch_floats) {
  OptimConsts c;
  int st = detail::optim_prepare(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                                 skip_zeros, &c);
  if (st != kOk) return st;
  const bool norm = max_unorm > 0.0;
  if (norm && !unorm_vec) return kNullPointer;
  if (norm && (!scratch || scratch_floats < kOptimScratchFloats)) return kScratchTooSmall;
  if (n > 0 && (!g || !p || !state1 || (two_states(name) && !state2))) return kNullPointer;
  float* s2 = two_states(name) ? state2 : nullptr;
  const Range r = make_range(detail::ceil_div(n, kMaxLocal), kMaxLocal);
  return detail::by_dtype(dtype, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return detail::by_optimizer(name, [&](auto nm) {
      constexpr int NAME = decltype(nm)::value;
      const float* scale = nullptr;
      if (norm) {
        const Range rn = make_range(detail::ceil_div(n, kMaxLocal) < kNormGroups ? detail::ceil_div(n, kMaxLocal)
                                                                                 : kNormGroups,
                                    kMaxLocal);
        int s = l.launch(OptimNorm<DT, NAME>{c, n, g, p, state1, s2, scratch}, rn);
        if (s != kOk) return s;
        const bool eps_rule = name != kOptAdam && name != kOptLamb && name != kOptAdemamix;
        const float limit = (float)(max_unorm * param_norm + (eps_rule ? eps : 0.0));
        s = l.launch(OptimNormFinish{scratch, rn.groups, limit, unorm_vec, scratch + kNormGroups}, Range{1, kMaxLocal});
        if (s != kOk) return s;
        scale = scratch + kNormGroups;
      }
      if (n == 0) return (int)kOk;
      return l.launch(Optim32<DT, NAME>{c, n, g, p, state1, s2, scale}, r);
    });
  });
}

template <class L>
int optimizer_update_8bit_blockwise(L& l, int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1,
                                    uint8_t* state2, double beta1, double beta2, double beta3, double alpha,
                                    double eps, int64_t step, double lr, const float* qmap1, const float* qmap2,
                                    float* absmax1, float* absmax2, double weight_decay, double gnorm_scale,
                                    bool skip_zeros) {
  OptimConsts c;
  int st = detail::optim_prepare(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                                 skip_zeros, &c);
  if (st != kOk) return st;
  if (n == 0) return kOk;
  const bool two = two_states(name);
  if (!g || !p || !state1 || !qmap1 || !absmax1 || (two && (!state2 || !qmap2 || !absmax2))) return kNullPointer;
  const Range r = make_range(detail::ceil_div(n, kOptimBlock), kOptimBlock);
  return detail::by_dtype(dtype, [&](auto dt) {
    constexpr int DT = decltype(dt)::value;
    return detail::by_optimizer(name, [&](auto nm) {
      constexpr int NAME = decltype(nm)::value;
      return l.launch(Optim8<DT, NAME>{c, n, g, p, state1, two ? state2 : nullptr, absmax1, two ? absmax2 : nullptr,
                                       qmap1, two ? qmap2 : nullptr},
                      r);
    });
  });
}

}  // namespace bnb_xpu
