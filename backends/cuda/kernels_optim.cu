// Optimizer update kernels (32-bit state; fused blockwise 8-bit state) for every update rule of the reference.
//
// 8-bit: one warp per 256-element absmax block, 8 consecutive elements per lane (128-bit loads of fp32/16-bit
// g and p, 64-bit loads of the codes when aligned), 8 warps per CTA, grid-stride over blocks. A CTA first loads
// both code tables (qmap1, qmap2) into shared memory and builds their boundary tables in Eytzinger order
// (optim_core.cuh). Per block: dequantize (code * old absmax), update, write p, warp max-reduce of the new
// states (NaN tracked), lane 0 writes the new absmax, then every lane requantizes its 8 values (nearest code
// by an 8-level search over the shared table, ties to the lower code, state1 keeps nonzero signs) and writes
// its 8 codes. One pass over g, p, codes and absmax.
//
// 32-bit: 4 elements per thread and iteration (128-bit accesses when aligned), grid-stride. With max_unorm > 0
// (trust ratio) a norm kernel first writes one fp64 partial sum of update^2 per CTA into a workspace; every CTA
// of the update kernel then reduces the partials in a fixed order (so the result is deterministic and needs no
// atomics, memset or host round trip), CTA 0 writes unorm_vec, and the steps are scaled.
//
// Host emulation (emulate_*): the same lane-level functions, table construction and reduction order, run lane
// by lane on host memory, so the kernels' logic is tested against the reference on machines without a GPU.
#include <atomic>

#include "bnb_optim_consts.h"
#include "common.cuh"
#include "kernels_optim.h"
#include "optim_core.cuh"

namespace bnb_cuda {
namespace {

using namespace optim;

constexpr int kThreads32 = 256;
constexpr int kThreads8 = 256;  // 8 warps = 8 blocks of 256 elements per CTA iteration
constexpr int kWarps8 = kThreads8 / kWarp;
constexpr int64_t kMaxNormParts = 1024;

template <int N>
using NameTag = std::integral_constant<int, N>;

template <class F>
inline int dispatch_name(int name, F&& f) {
  switch (name) {
    case kAdam: return f(NameTag<kAdam>{});
    case kMomentum: return f(NameTag<kMomentum>{});
    case kRmsprop: return f(NameTag<kRmsprop>{});
    case kLion: return f(NameTag<kLion>{});
    case kAdagrad: return f(NameTag<kAdagrad>{});
    case kLamb: return f(NameTag<kLamb>{});
    case kLars: return f(NameTag<kLars>{});
    case kAdemamix: return f(NameTag<kAdemamix>{});
    default: return kBadOptimizerName;
  }
}

// Status of the arguments shared by both ops; fills the fp32 constants (bnb_optim_consts.h, shared with the
// CPU and XPU backends).
int prepare_consts(int name, int dtype, int64_t n, int64_t step, double beta1, double beta2, double beta3,
                   double alpha, double eps, double weight_decay, double lr, double gnorm_scale, bool skip_zeros,
                   Consts* k) {
  if (name < kAdam || name > kAdemamix) return kBadOptimizerName;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (n < 0 || step < 1) return kBadSize;
  const bool coupled = name == kMomentum || name == kLars || name == kRmsprop || name == kAdagrad;
  k->name = name;
  k->skip_zeros = skip_zeros;
  bnb_optim_step_consts(k, coupled, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale);
  return kOk;
}

// Trust-ratio limit (fp32, as the reference compares and divides in fp32).
float trust_limit(int name, double max_unorm, double param_norm, double eps) {
  const bool eps_rule = !two_states(name);  // momentum, lars, rmsprop, adagrad, lion add eps
  return (float)(max_unorm * param_norm + (eps_rule ? eps : 0.0));
}

__host__ __device__ inline int64_t groups32(int64_t n) { return (n + kGroup32 - 1) / kGroup32; }

int64_t norm_parts(int64_t n) {
  const int64_t need = (groups32(n) + kThreads32 - 1) / kThreads32;
  return need < kMaxNormParts ? need : kMaxNormParts;
}

bool aligned(const void* p, uintptr_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

// ------------------------------------------------------------------------------------ device reductions
// Sum over a logical 32-lane warp by xor butterfly (every lane ends with the same value: a + b == b + a).
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = v + __shfl_xor_sync(0xFFFFFFFFu, v, o, kWarp);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o, kWarp));
  return v;
}
__device__ __forceinline__ int warp_or(int v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v |= __shfl_xor_sync(0xFFFFFFFFu, v, o, kWarp);
  return v;
}

// Block sum of THREADS values in a fixed order (warps by butterfly, then warp 0 over the warp sums); the result
// is valid in thread 0. `sh` holds THREADS / 32 doubles.
template <int THREADS>
__device__ __forceinline__ double block_sum(double v, double* sh) {
  v = warp_sum(v);
  const int w = threadIdx.x / kWarp, l = threadIdx.x % kWarp;
  if (l == 0) sh[w] = v;
  __syncthreads();
  double r = 0.0;
  if (w == 0) {
    r = l < THREADS / kWarp ? sh[l] : 0.0;
    r = warp_sum(r);
  }
  return r;
}

// ------------------------------------------------------------------------------------ 32-bit kernels

template <int D, int NAME>
__global__ void __launch_bounds__(kThreads32, 4) optim32_norm_kernel(Args32 a, double* __restrict__ partials) {
  __shared__ double sh[kThreads32 / kWarp];
  const int64_t ng = groups32(a.n);
  double acc = 0.0;
  for (int64_t gi = (int64_t)blockIdx.x * kThreads32 + threadIdx.x; gi < ng; gi += (int64_t)gridDim.x * kThreads32)
    acc = acc + (double)group32_norm<D, NAME>(a, gi);
  acc = block_sum<kThreads32>(acc, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

template <int D, int NAME>
__global__ void __launch_bounds__(kThreads32) optim32_kernel(Args32 a, const double* __restrict__ partials, int nparts,
                                                             float limit, float* __restrict__ unorm_vec) {
  float scale = 1.0f;
  if (nparts > 0) {
    __shared__ double sh[kThreads32 / kWarp];
    __shared__ float s_scale;
    double v = 0.0;
    for (int i = threadIdx.x; i < nparts; i += kThreads32) v = v + partials[i];
    v = block_sum<kThreads32>(v, sh);
    if (threadIdx.x == 0) {
      const float unorm = sqrtf((float)v);
      s_scale = unorm > limit ? limit / unorm : 1.0f;
      if (blockIdx.x == 0) unorm_vec[0] = unorm * unorm;
    }
    __syncthreads();
    scale = s_scale;
  }
  const int64_t ng = groups32(a.n);
  for (int64_t gi = global_thread_id(); gi < ng; gi += grid_threads()) group32_update<D, NAME>(a, gi, scale);
}

// ------------------------------------------------------------------------------------ 8-bit kernel

template <int D, int NAME>
// 3 CTAs (24 warps) per SM: <= 80 registers; ademamix (a third state) gets 2 CTAs, i.e. up to 128, and does not spill
__global__ void __launch_bounds__(kThreads8, NAME == kAdemamix ? 2 : 3) optim8_kernel(Args8 a) {
  constexpr bool kTwo = NAME == kAdam || NAME == kLamb || NAME == kAdemamix;
  __shared__ QTable t1;
  __shared__ QTable t2;
  __shared__ int s_unsorted;
  if (threadIdx.x == 0) s_unsorted = 0;
  for (int i = threadIdx.x; i < 256; i += kThreads8) {
    t1.code[i] = a.qmap1[i];
    if (kTwo) t2.code[i] = a.qmap2[i];
  }
  __syncthreads();
  int bad = 0;
  for (int k = threadIdx.x; k < 255; k += kThreads8) {
    const int bi = eyt_index(k);
    t1.eyt[k] = boundary(t1.code, bi);
    if (kTwo) t2.eyt[k] = boundary(t2.code, bi);
    if (k < 254) {
      bad |= boundary_out_of_order(t1.code, k) ? 1 : 0;
      if (kTwo) bad |= boundary_out_of_order(t2.code, k) ? 2 : 0;
    }
  }
  if (bad) atomicOr(&s_unsorted, bad);
  __syncthreads();
  const bool sorted1 = (s_unsorted & 1) == 0, sorted2 = (s_unsorted & 2) == 0;

  const int lane = threadIdx.x % kWarp;
  for (int64_t b = (int64_t)blockIdx.x * kWarps8 + threadIdx.x / kWarp; b < a.nb; b += (int64_t)gridDim.x * kWarps8) {
    Lane8 L;
    lane8_update<D, NAME>(a, t1, t2, b, lane, L);
    const int nan = warp_or(L.nan);
    const float am1 = block_absmax(warp_max(L.m1), nan & 1);
    float am1b = 0.0f, am2 = 0.0f;
    if (NAME == kAdemamix) am1b = block_absmax(warp_max(L.m1b), nan & 2);
    if (kTwo) am2 = block_absmax(warp_max(L.m2), nan & 4);
    if (lane == 0) {  // every lane read the old absmax in lane8_update, before the shuffles above
      a.absmax1[b] = am1;
      if (NAME == kAdemamix) a.absmax1[a.nb + b] = am1b;
      if (kTwo) a.absmax2[b] = am2;
    }
    if (sorted1 && sorted2)
      lane8_requant<NAME, true>(a, t1, t2, true, true, b, lane, L, am1, am1b, am2);
    else
      lane8_requant<NAME, false>(a, t1, t2, sorted1, sorted2, b, lane, L, am1, am1b, am2);
  }
}

// ------------------------------------------------------------------------------------ launch helpers

// Multiprocessor count of `device`, cached per device (grid sizing only; results never depend on it).
cudaError_t sm_count(int device, int* out) {
  static std::atomic<int> cache[64];
  if (device < 64) {
    const int v = cache[device].load(std::memory_order_relaxed);
    if (v > 0) {
      *out = v;
      return cudaSuccess;
    }
  }
  int v = 0;
  const cudaError_t e = cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return e;
  if (v < 1) v = 1;
  if (device < 64) cache[device].store(v, std::memory_order_relaxed);
  *out = v;
  return cudaSuccess;
}

unsigned capped_grid(int64_t need, int sms, int per_sm) {
  int64_t cap = (int64_t)sms * per_sm;
  int64_t g = need < cap ? need : cap;
  return (unsigned)(g < 1 ? 1 : g);
}

Args32 make_args32(const Consts& k, int dtype, int64_t n, const void* g, void* p, float* s1, float* s2) {
  Args32 a;
  a.k = k;
  a.n = n;
  a.g = g;
  a.p = p;
  a.s1 = s1;
  a.s2 = two_states(k.name) ? s2 : nullptr;
  const uintptr_t pa = dtype == 0 ? 16 : 8;  // 4 elements
  a.vec = aligned(g, pa) && aligned(p, pa) && aligned(s1, 16) && (k.name != kAdemamix || aligned(s1 + n, 16)) &&
          (!a.s2 || aligned(a.s2, 16));
  return a;
}

Args8 make_args8(const Consts& k, int dtype, int64_t n, const void* g, void* p, uint8_t* s1, uint8_t* s2,
                 const float* qmap1, const float* qmap2, float* absmax1, float* absmax2) {
  const bool two = two_states(k.name);
  Args8 a;
  a.k = k;
  a.n = n;
  a.nb = (n + kBlock - 1) / kBlock;
  a.g = g;
  a.p = p;
  a.s1 = s1;
  a.s2 = two ? s2 : nullptr;
  a.absmax1 = absmax1;
  a.absmax2 = two ? absmax2 : nullptr;
  a.qmap1 = qmap1;
  a.qmap2 = two ? qmap2 : nullptr;
  (void)dtype;  // 8 elements: two float4 (fp32) or one uint4 (16-bit) per array
  a.vec = aligned(g, 16) && aligned(p, 16) && aligned(s1, 8) && (k.name != kAdemamix || aligned(s1 + n, 8)) &&
          (!a.s2 || aligned(a.s2, 8));
  return a;
}

int check32(int device, int name, int dtype, const void* g, void* p, int64_t n, float* state1, float* state2,
            float* unorm_vec, double max_unorm, int64_t step, double* workspace, int64_t workspace_len,
            bool need_device) {
  if (need_device && device < 0) return kBadDevice;
  if (name < kAdam || name > kAdemamix) return kBadOptimizerName;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (n < 0 || step < 1) return kBadSize;
  const bool norm = max_unorm > 0.0;
  if (norm && !unorm_vec) return kNullPointer;
  if (norm && need_device && n > 0) {  // the per-CTA partial norms (none for an empty update)
    if (!workspace) return kNullPointer;
    if (workspace_len < norm_parts(n)) return kOutputTooSmall;
  }
  if (n > 0 && (!g || !p || !state1 || (two_states(name) && !state2))) return kNullPointer;
  return kOk;
}

int check8(int device, int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1, uint8_t* state2,
           int64_t step, const float* qmap1, const float* qmap2, float* absmax1, float* absmax2, bool need_device) {
  if (need_device && device < 0) return kBadDevice;
  if (name < kAdam || name > kAdemamix) return kBadOptimizerName;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (n < 0 || step < 1) return kBadSize;
  if (n == 0) return kOk;
  const bool two = two_states(name);
  if (!g || !p || !state1 || !qmap1 || !absmax1 || (two && (!state2 || !qmap2 || !absmax2))) return kNullPointer;
  return kOk;
}

// ------------------------------------------------------------------------------------ host emulation pieces

// Fixed-order sum of one CTA's THREADS values exactly as block_sum computes it.
template <int THREADS>
double emulate_block_sum(const double* v) {
  constexpr int W = THREADS / kWarp;
  double warps[kWarp] = {0.0};
  auto butterfly = [](double* lanes) {  // lane 0's result of warp_sum
    for (int o = kWarp / 2; o > 0; o >>= 1) {
      double nx[kWarp];
      for (int l = 0; l < kWarp; ++l) nx[l] = lanes[l] + lanes[l ^ o];
      for (int l = 0; l < kWarp; ++l) lanes[l] = nx[l];
    }
    return lanes[0];
  };
  for (int w = 0; w < W; ++w) {
    double lanes[kWarp];
    for (int l = 0; l < kWarp; ++l) lanes[l] = v[w * kWarp + l];
    warps[w] = butterfly(lanes);
  }
  return butterfly(warps);
}

void emulate_tables(const float* qmap, QTable* t, bool* sorted) {
  for (int i = 0; i < 256; ++i) t->code[i] = qmap[i];
  bool ok = true;
  for (int k = 0; k < 255; ++k) {
    t->eyt[k] = boundary(t->code, eyt_index(k));
    if (k < 254 && boundary_out_of_order(t->code, k)) ok = false;
  }
  t->eyt[255] = 0.0f;
  *sorted = ok;
}

}  // namespace

// ==================================================================================== entry points

int64_t optimizer_32bit_workspace_len(int64_t n) { return n <= 0 ? 0 : norm_parts(n); }

int optimizer_update_32bit(int device, void* stream, int name, int dtype, const void* g, void* p, int64_t n,
                           float* state1, float* state2, float* unorm_vec, double max_unorm, double param_norm,
                           double beta1, double beta2, double beta3, double alpha, double eps, double weight_decay,
                           int64_t step, double lr, double gnorm_scale, bool skip_zeros, double* workspace,
                           int64_t workspace_len) {
  if (int s = check32(device, name, dtype, g, p, n, state1, state2, unorm_vec, max_unorm, step, workspace,
                      workspace_len, true))
    return s;
  Consts k;
  if (int s = prepare_consts(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                             skip_zeros, &k))
    return s;
  const bool norm = max_unorm > 0.0;
  if (n == 0 && !norm) return kOk;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (n == 0)  // the norm of an empty update is 0
    return record_cuda_error(cudaMemsetAsync(unorm_vec, 0, sizeof(float), st));
  int sms = 0;
  if (cudaError_t e = sm_count(device, &sms)) return record_cuda_error(e);
  const Args32 a = make_args32(k, dtype, n, g, p, state1, state2);
  const int64_t nparts = norm ? norm_parts(n) : 0;
  const float limit = trust_limit(name, max_unorm, param_norm, eps);
  const unsigned grid = capped_grid((groups32(n) + kThreads32 - 1) / kThreads32, sms, 8);
  return dispatch_dtype(dtype, [&](auto dt) {
    constexpr int D = decltype(dt)::value;
    return dispatch_name(name, [&](auto nt) {
      constexpr int NAME = decltype(nt)::value;
      if (norm) {
        optim32_norm_kernel<D, NAME><<<(unsigned)nparts, kThreads32, 0, st>>>(a, workspace);
        if (int s = launch_status()) return s;
      }
      optim32_kernel<D, NAME><<<grid, kThreads32, 0, st>>>(a, workspace, (int)nparts, limit, unorm_vec);
      return launch_status();
    });
  });
}

int optimizer_update_8bit_blockwise(int device, void* stream, int name, int dtype, const void* g, void* p, int64_t n,
                                    uint8_t* state1, uint8_t* state2, double beta1, double beta2, double beta3,
                                    double alpha, double eps, int64_t step, double lr, const float* qmap1,
                                    const float* qmap2, float* absmax1, float* absmax2, double weight_decay,
                                    double gnorm_scale, bool skip_zeros) {
  if (int s = check8(device, name, dtype, g, p, n, state1, state2, step, qmap1, qmap2, absmax1, absmax2, true))
    return s;
  Consts k;
  if (int s = prepare_consts(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                             skip_zeros, &k))
    return s;
  if (n == 0) return kOk;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  int sms = 0;
  if (cudaError_t e = sm_count(device, &sms)) return record_cuda_error(e);
  const Args8 a = make_args8(k, dtype, n, g, p, state1, state2, qmap1, qmap2, absmax1, absmax2);
  const unsigned grid = capped_grid((a.nb + kWarps8 - 1) / kWarps8, sms, 16);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  return dispatch_dtype(dtype, [&](auto dt) {
    constexpr int D = decltype(dt)::value;
    return dispatch_name(name, [&](auto nt) {
      constexpr int NAME = decltype(nt)::value;
      optim8_kernel<D, NAME><<<grid, kThreads8, 0, st>>>(a);
      return launch_status();
    });
  });
}

// ------------------------------------------------------------------------------------ host emulation

int emulate_optimizer_update_32bit(int name, int dtype, const void* g, void* p, int64_t n, float* state1,
                                   float* state2, float* unorm_vec, double max_unorm, double param_norm, double beta1,
                                   double beta2, double beta3, double alpha, double eps, double weight_decay,
                                   int64_t step, double lr, double gnorm_scale, bool skip_zeros) {
  if (int s = check32(0, name, dtype, g, p, n, state1, state2, unorm_vec, max_unorm, step, nullptr, 0, false))
    return s;
  Consts k;
  if (int s = prepare_consts(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                             skip_zeros, &k))
    return s;
  const bool norm = max_unorm > 0.0;
  if (n == 0) {
    if (norm) unorm_vec[0] = 0.0f;
    return kOk;
  }
  const Args32 a = make_args32(k, dtype, n, g, p, state1, state2);
  const int64_t ng = groups32(n);
  return dispatch_dtype(dtype, [&](auto dt) {
    constexpr int D = decltype(dt)::value;
    return dispatch_name(name, [&](auto nt) {
      constexpr int NAME = decltype(nt)::value;
      float scale = 1.0f;
      if (norm) {  // the norm kernel's per-CTA partials, then the update kernel's fixed-order reduction
        const int64_t nparts = norm_parts(n);
        double parts[kMaxNormParts];
        double acc[kThreads32];
        for (int64_t cta = 0; cta < nparts; ++cta) {
          for (int t = 0; t < kThreads32; ++t) {
            double v = 0.0;
            for (int64_t gi = cta * kThreads32 + t; gi < ng; gi += nparts * kThreads32)
              v = v + (double)group32_norm<D, NAME>(a, gi);
            acc[t] = v;
          }
          parts[cta] = emulate_block_sum<kThreads32>(acc);
        }
        for (int t = 0; t < kThreads32; ++t) {
          double v = 0.0;
          for (int64_t i = t; i < nparts; i += kThreads32) v = v + parts[i];
          acc[t] = v;
        }
        const float unorm = sqrtf((float)emulate_block_sum<kThreads32>(acc));
        const float limit = trust_limit(name, max_unorm, param_norm, eps);
        scale = unorm > limit ? limit / unorm : 1.0f;
        unorm_vec[0] = unorm * unorm;
      }
      for (int64_t gi = 0; gi < ng; ++gi) group32_update<D, NAME>(a, gi, scale);
      return kOk;
    });
  });
}

int emulate_optimizer_update_8bit_blockwise(int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1,
                                            uint8_t* state2, double beta1, double beta2, double beta3, double alpha,
                                            double eps, int64_t step, double lr, const float* qmap1,
                                            const float* qmap2, float* absmax1, float* absmax2, double weight_decay,
                                            double gnorm_scale, bool skip_zeros) {
  if (int s = check8(0, name, dtype, g, p, n, state1, state2, step, qmap1, qmap2, absmax1, absmax2, false)) return s;
  Consts k;
  if (int s = prepare_consts(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                             skip_zeros, &k))
    return s;
  if (n == 0) return kOk;
  const Args8 a = make_args8(k, dtype, n, g, p, state1, state2, qmap1, qmap2, absmax1, absmax2);
  static thread_local QTable t1, t2;
  bool sorted1 = true, sorted2 = true;
  emulate_tables(qmap1, &t1, &sorted1);
  if (a.qmap2) emulate_tables(a.qmap2, &t2, &sorted2);
  return dispatch_dtype(dtype, [&](auto dt) {
    constexpr int D = decltype(dt)::value;
    return dispatch_name(name, [&](auto nt) {
      constexpr int NAME = decltype(nt)::value;
      constexpr bool kTwo = NAME == kAdam || NAME == kLamb || NAME == kAdemamix;
      Lane8 lanes[kWarp];
      for (int64_t b = 0; b < a.nb; ++b) {
        float m1 = 0.0f, m1b = 0.0f, m2 = 0.0f;
        int nan = 0;
        for (int l = 0; l < kWarp; ++l) {
          lane8_update<D, NAME>(a, t1, t2, b, l, lanes[l]);
          m1 = fmaxf(m1, lanes[l].m1);
          m1b = fmaxf(m1b, lanes[l].m1b);
          m2 = fmaxf(m2, lanes[l].m2);
          nan |= lanes[l].nan;
        }
        const float am1 = block_absmax(m1, nan & 1);
        const float am1b = NAME == kAdemamix ? block_absmax(m1b, nan & 2) : 0.0f;
        const float am2 = kTwo ? block_absmax(m2, nan & 4) : 0.0f;
        a.absmax1[b] = am1;
        if (NAME == kAdemamix) a.absmax1[a.nb + b] = am1b;
        if (kTwo) a.absmax2[b] = am2;
        for (int l = 0; l < kWarp; ++l) {
          if (sorted1 && sorted2)
            lane8_requant<NAME, true>(a, t1, t2, true, true, b, l, lanes[l], am1, am1b, am2);
          else
            lane8_requant<NAME, false>(a, t1, t2, sorted1, sorted2, b, l, lanes[l], am1, am1b, am2);
        }
      }
      return kOk;
    });
  });
}

}  // namespace bnb_cuda
