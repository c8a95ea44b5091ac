// Shared by every CUDA kernel family (torch-free): status codes, the device guard, launch checks, dtype
// loads/stores. Built as HIP through backends/rocm/hip_compat.h (the one place where CUDA and HIP differ
// in names); kernels use the CUDA spelling.
#pragma once

#include <stdint.h>

#include <type_traits>

#if defined(__HIPCC__)
#include "../rocm/hip_compat.h"
#elif defined(BNB_CUDA_EMU)
#include "emu/cuda_emu.h"  // g++ -x c++: the kernels run on CPU (tests/test_cuda_emu.py)
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include "bnb_quant_math.h"
#include "status.h"

// Kernel launch: `BNB_LAUNCH(kernel, grid, block, smem_bytes, stream, args...)` is
// `kernel<<<grid, block, smem_bytes, stream>>>(args...)` under nvcc/hipcc and the CPU emulator's launch under
// BNB_CUDA_EMU (g++ cannot parse the chevrons). Every launch in backends/cuda goes through it. A kernel name with
// template arguments goes in parentheses: BNB_LAUNCH((kern<D, 0>), grid, block, 0, stream, x, n).
#if defined(BNB_CUDA_EMU)
#define BNB_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::bnb_emu::launch(#kernel, kernel, grid, block, smem, stream, ##__VA_ARGS__)
#else
#define BNB_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#endif

// Dynamic shared memory (the `smem_bytes` of the launch) as a `T*` named `name`, aligned to 16 bytes:
// `BNB_DYNAMIC_SMEM(float, buf);` instead of `extern __shared__ float buf[];` (which the emulator cannot express).
#if defined(BNB_CUDA_EMU)
#define BNB_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::bnb_emu::detail::dynamic_smem())
#else
#define BNB_DYNAMIC_SMEM(T, name)                                   \
  extern __shared__ __align__(16) unsigned char bnb_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(bnb_dynamic_smem_)
#endif

namespace bnb_cuda {

// Makes `device` current for the scope of a launch and restores the previous device (kernels run on their
// tensors' device, whatever the caller's current device is). ok() is false when the device is invalid.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    err_ = cudaGetDevice(&prev_);
    if (err_ == cudaSuccess && prev_ != device) err_ = cudaSetDevice(device);
    if (err_ != cudaSuccess) {
      prev_ = -1;
      // The failed call also set the runtime's last error; error() reports it, so clear it here: left set,
      // the next successful launch's launch_status() (cudaGetLastError) would return it as its own.
      (void)cudaGetLastError();
    }
  }
  ~DeviceGuard() {
    int cur = -1;
    if (prev_ >= 0 && cudaGetDevice(&cur) == cudaSuccess && cur != prev_) (void)cudaSetDevice(prev_);
  }
  cudaError_t error() const { return err_; }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
  cudaError_t err_ = cudaSuccess;
};

// Status of the launch just made (configuration errors are reported here, execution errors later by
// torch's own synchronization, as for any CUDA op).
inline int launch_status() { return record_cuda_error(cudaGetLastError()); }

// Hardware warp size of `device` for launches whose configuration depends on it: 32 on NVIDIA; on AMD 64
// (CDNA/GCN) or 32 (RDNA). Asked of the device at each call, never cached (one process may see both kinds).
// Kernels themselves are written against a logical 32-lane warp (backends/rocm/hip_compat.h).
inline cudaError_t device_warp_size(int device, int* size) {
  return cudaDeviceGetAttribute(size, cudaDevAttrWarpSize, device);
}

// 64-bit grid-stride helpers.
__device__ __forceinline__ int64_t global_thread_id() {
  return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_threads() { return (int64_t)gridDim.x * blockDim.x; }

// Number of blocks for a grid-stride loop over `work` items with `threads` per block: enough to fill
// the device (capped; the loop covers the rest).
inline unsigned grid_for(int64_t work, int threads, int64_t cap = 65535 * 8) {
  int64_t b = (work + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > cap) b = cap;
  return (unsigned)b;
}

// dtype codes: 0 = float32, 1 = float16, 2 = bfloat16 (as bnb_core/backends/*.py pass them).
template <int D>
struct DT;
template <>
struct DT<0> {
  using T = float;
  __device__ __forceinline__ static float from(T r) { return r; }
  __device__ __forceinline__ static T to(float v) { return v; }
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return p[i]; }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = v; }
};
template <>
struct DT<1> {  // hardware conversions: exact widening, round-to-nearest-even narrowing (as torch)
  using T = uint16_t;
  __device__ __forceinline__ static float from(T r) { return __half2float(__ushort_as_half(r)); }
  __device__ __forceinline__ static T to(float v) { return __half_as_ushort(__float2half_rn(v)); }
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return from(p[i]); }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = to(v); }
};
template <>
struct DT<2> {  // bf16: a shift up; round-to-nearest-even down (NaN -> 0x7FC0), bnb_quant_math.h
  using T = uint16_t;
  __device__ __forceinline__ static float from(T r) { return bnb::bf16_to_f32(r); }
  __device__ __forceinline__ static T to(float v) { return bnb::f32_to_bf16(v); }
  __device__ __forceinline__ static float load(const T* p, int64_t i) { return from(p[i]); }
  __device__ __forceinline__ static void store(T* p, int64_t i, float v) { p[i] = to(v); }
};

// Loads 8 consecutive values starting at element i as fp32 (count valid elements; the rest read as 0). vec: the
// 128-bit path (one 16-byte load, two for fp32), valid when the address of element i is aligned to 8 elements.
template <int D>
__device__ __forceinline__ void load8(const typename DT<D>::T* x, int64_t i, int count, bool vec, float v[8]) {
  if (vec && count == 8) {
    if constexpr (D == 0) {
      const float4 a = reinterpret_cast<const float4*>(x + i)[0];
      const float4 b = reinterpret_cast<const float4*>(x + i)[1];
      v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
      const uint4 a = *reinterpret_cast<const uint4*>(x + i);
      const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        v[2 * k] = DT<D>::from((uint16_t)(w[k] & 0xFFFFu));
        v[2 * k + 1] = DT<D>::from((uint16_t)(w[k] >> 16));
      }
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < 8; ++k) v[k] = k < count ? DT<D>::load(x, i + k) : 0.0f;
}

template <int D>
using DtypeTag = std::integral_constant<int, D>;

// Calls f(DtypeTag<D>{}) for the runtime dtype code (use `constexpr int D = decltype(tag)::value;` in a
// generic lambda); kBadDtype for an unknown code.
template <class F>
inline int dispatch_dtype(int dtype, F&& f) {
  switch (dtype) {
    case 0:
      return f(DtypeTag<0>{});
    case 1:
      return f(DtypeTag<1>{});
    case 2:
      return f(DtypeTag<2>{});
    default:
      return kBadDtype;
  }
}

}  // namespace bnb_cuda
