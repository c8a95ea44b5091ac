// The ONE place where the CUDA backend's sources (backends/cuda) and HIP differ in names: included by
// backends/cuda/common.cuh and status.h when they are built as HIP (backends/rocm/CMakeLists.txt), so the
// kernels keep the CUDA spelling and are never forked. Two kinds of translation units include it:
//   * kernel sources (*.cu) compiled by hipcc (__HIPCC__ defined): runtime names + device intrinsics;
//   * host-only sources (module.cpp, status.cpp, bind_*.cpp) compiled by the C++ compiler with BNB_HIP_HOST:
//     runtime names only.
//
// What differs on AMD and how it is handled here (docs/architecture.md, "ROCm"):
//   * Warp size. CUDA code in this project is written against a LOGICAL 32-lane warp. An AMD wavefront has
//     64 lanes on CDNA/GCN (gfx90a, gfx942) and 32 on RDNA (gfx1030, gfx1100): on wave64 one wavefront holds
//     two logical warps (lanes 0-31 and 32-63). Every warp primitive below acts on the caller's logical warp:
//     shuffles default to width 32 and never cross the 32-lane boundary; ballot/any/all/activemask take the
//     caller's 32-bit half of the 64-bit wavefront ballot. Device code that needs the hardware size reads
//     `warpSize` (a compile-time constant per offload arch); host code asks the device it launches on:
//     cudaDeviceGetAttribute(&ws, cudaDevAttrWarpSize, device) (bnb_cuda::device_warp_size in common.cuh),
//     at each launch that cares, never cached from device 0.
//   * Masks. AMD lanes of a wavefront execute in lockstep (no independent thread scheduling): the member
//     mask of *_sync shuffles is not needed and ignored (as HIP does); ballot/any/all results are ANDed with
//     it, as in CUDA. __syncwarp is a wavefront-scope fence + wave barrier. Every lane named by a shuffle
//     must be active, as CUDA requires.
//   * Compute capability. AMD devices have none: cudaDevAttrComputeCapabilityMajor/Minor and
//     cudaGetDeviceProperties' major/minor read 0 here, so host code that picks an sm_80/sm_90 path by
//     `cc >= X` takes its portable path. NVIDIA-only PTX (mma.sync, ldmatrix, cp.async, wgmma, TMA) stays
//     behind `#if defined(__CUDA_ARCH__) && !defined(__HIPCC__)` in the sources (HIP never defines
//     __CUDA_ARCH__).
//   * Exact fp32. HIP 5.2's __frcp_rn / __fsqrt_rn / __frsqrt_rn use the hardware approximations; they are
//     redefined here as correctly rounded operations (the build passes -fhip-fp32-correctly-rounded-divide-sqrt,
//     -ffp-contract=off and keeps denormals, like nvcc -fmad=false).
//   * bf16. ROCm 5.2 has no CUDA-like bf16 type (hip_bfloat16 rounds NaN differently and later ROCm renamed
//     it): __nv_bfloat16 / __nv_bfloat162 and their conversions are defined here with CUDA's bit semantics
//     (round to nearest even, NaN -> 0x7FFF). __half / __half2 and their intrinsics are HIP's own.
// Not mapped (keep them behind #if !defined(__HIPCC__) with a portable fallback): cooperative_groups,
// __match_*_sync, wmma / mma.h, cuda_pipeline / cp.async, TMA, thread-block clusters, launch attributes
// (programmatic dependent launch), cuBLAS/cuBLASLt (hipBLASLt is not in Debian; see docs/architecture.md).
#pragma once

#if !defined(__HIP_PLATFORM_AMD__) && !defined(__HIP_PLATFORM_NVIDIA__) && !defined(__HIP_PLATFORM_NVCC__)
#define __HIP_PLATFORM_AMD__ 1  // host-only sources compiled by g++ (hipcc defines it itself)
#endif

#include <hip/hip_runtime_api.h>
#if defined(__HIPCC__)
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#endif

#include <stdint.h>
#include <string.h>

#include <type_traits>

// Tells either kind of translation unit (kernel or host-only) that it is the HIP build.
#define BNB_PLATFORM_HIP 1

// =====================================================================================================
// Runtime API (host). Names as the CUDA sources spell them -> HIP.
// =====================================================================================================

// ---- types
#define cudaError_t hipError_t
#define cudaStream_t hipStream_t
#define cudaEvent_t hipEvent_t
#define cudaDeviceProp hipDeviceProp_t
#define cudaDeviceAttr hipDeviceAttribute_t
#define cudaFuncAttribute hipFuncAttribute
#define cudaFuncAttributes hipFuncAttributes
#define cudaMemcpyKind hipMemcpyKind
#define cudaMemoryAdvise hipMemoryAdvise
#define cudaPointerAttributes hipPointerAttribute_t
#define cudaStreamCaptureStatus hipStreamCaptureStatus

// ---- error codes
#define cudaSuccess hipSuccess
#define cudaErrorInvalidValue hipErrorInvalidValue
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorInitializationError hipErrorNotInitialized
#define cudaErrorInsufficientDriver hipErrorInsufficientDriver
#define cudaErrorCudartUnloading hipErrorDeinitialized  // runtime shutting down (process teardown)
#define cudaErrorNoDevice hipErrorNoDevice
#define cudaErrorInvalidDevice hipErrorInvalidDevice
#define cudaErrorInvalidDevicePointer hipErrorInvalidDevicePointer
#define cudaErrorInvalidConfiguration hipErrorInvalidConfiguration
#define cudaErrorInvalidDeviceFunction hipErrorInvalidDeviceFunction
#define cudaErrorNoKernelImageForDevice hipErrorNoBinaryForGpu
#define cudaErrorInvalidResourceHandle hipErrorInvalidHandle
#define cudaErrorNotReady hipErrorNotReady
#define cudaErrorNotSupported hipErrorNotSupported
#define cudaErrorLaunchFailure hipErrorLaunchFailure
#define cudaErrorLaunchOutOfResources hipErrorLaunchOutOfResources
#define cudaErrorIllegalAddress hipErrorIllegalAddress
#define cudaErrorStreamCaptureUnsupported hipErrorStreamCaptureUnsupported
#define cudaErrorStreamCaptureInvalidated hipErrorStreamCaptureInvalidated

// ---- errors, versions, devices
#define cudaGetLastError hipGetLastError
#define cudaPeekAtLastError hipPeekAtLastError
#define cudaGetErrorName hipGetErrorName
#define cudaGetErrorString hipGetErrorString
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDevice hipGetDevice
#define cudaSetDevice hipSetDevice
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaDeviceGetAttribute bnb_hip::device_get_attribute
#define cudaGetDeviceProperties bnb_hip::get_device_properties
#define cudaMemGetInfo hipMemGetInfo

// ---- device attributes (cudaDeviceGetAttribute)
#define cudaDevAttrWarpSize hipDeviceAttributeWarpSize
#define cudaDevAttrMultiProcessorCount hipDeviceAttributeMultiprocessorCount
#define cudaDevAttrMaxThreadsPerBlock hipDeviceAttributeMaxThreadsPerBlock
#define cudaDevAttrMaxThreadsPerMultiProcessor hipDeviceAttributeMaxThreadsPerMultiProcessor
#define cudaDevAttrMaxBlocksPerMultiprocessor hipDeviceAttributeMaxBlocksPerMultiProcessor
#define cudaDevAttrMaxSharedMemoryPerBlock hipDeviceAttributeMaxSharedMemoryPerBlock
#define cudaDevAttrMaxSharedMemoryPerBlockOptin hipDeviceAttributeSharedMemPerBlockOptin
#define cudaDevAttrMaxSharedMemoryPerMultiprocessor hipDeviceAttributeMaxSharedMemoryPerMultiprocessor
#define cudaDevAttrMaxRegistersPerBlock hipDeviceAttributeMaxRegistersPerBlock
#define cudaDevAttrMaxBlockDimX hipDeviceAttributeMaxBlockDimX
#define cudaDevAttrMaxGridDimX hipDeviceAttributeMaxGridDimX
#define cudaDevAttrMaxGridDimY hipDeviceAttributeMaxGridDimY
#define cudaDevAttrMaxGridDimZ hipDeviceAttributeMaxGridDimZ
#define cudaDevAttrL2CacheSize hipDeviceAttributeL2CacheSize
#define cudaDevAttrClockRate hipDeviceAttributeClockRate
#define cudaDevAttrMemoryClockRate hipDeviceAttributeMemoryClockRate
#define cudaDevAttrGlobalMemoryBusWidth hipDeviceAttributeMemoryBusWidth
#define cudaDevAttrComputeCapabilityMajor hipDeviceAttributeComputeCapabilityMajor  // reads 0 (see above)
#define cudaDevAttrComputeCapabilityMinor hipDeviceAttributeComputeCapabilityMinor  // reads 0
#define cudaDevAttrManagedMemory hipDeviceAttributeManagedMemory
#define cudaDevAttrConcurrentManagedAccess hipDeviceAttributeConcurrentManagedAccess
#define cudaDevAttrPageableMemoryAccess hipDeviceAttributePageableMemoryAccess
#define cudaDevAttrCooperativeLaunch hipDeviceAttributeCooperativeLaunch
#define cudaDevAttrIntegrated hipDeviceAttributeIntegrated
#define cudaDevAttrUnifiedAddressing hipDeviceAttributeUnifiedAddressing

// ---- streams and events
#define cudaStreamDefault hipStreamDefault
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaStreamPerThread hipStreamPerThread
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaStreamQuery hipStreamQuery
#define cudaStreamWaitEvent hipStreamWaitEvent
#define cudaStreamIsCapturing hipStreamIsCapturing
#define cudaStreamCaptureStatusNone hipStreamCaptureStatusNone
#define cudaStreamCaptureStatusActive hipStreamCaptureStatusActive
#define cudaStreamCaptureStatusInvalidated hipStreamCaptureStatusInvalidated
#define cudaEventCreate hipEventCreate
#define cudaEventCreateWithFlags hipEventCreateWithFlags
#define cudaEventDefault hipEventDefault
#define cudaEventDisableTiming hipEventDisableTiming
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime
#define cudaEventQuery hipEventQuery
#define cudaEventDestroy hipEventDestroy

// ---- memory (device, pinned host, managed/paged)
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMallocHost hipHostMalloc
#define cudaHostAlloc hipHostMalloc
#define cudaFreeHost hipHostFree
#define cudaHostAllocDefault hipHostMallocDefault
#define cudaHostAllocPortable hipHostMallocPortable
#define cudaHostAllocMapped hipHostMallocMapped
#define cudaHostRegister hipHostRegister
#define cudaHostUnregister hipHostUnregister
#define cudaHostRegisterDefault hipHostRegisterDefault
#define cudaHostGetDevicePointer hipHostGetDevicePointer
#define cudaMallocManaged hipMallocManaged
#define cudaMemAttachGlobal hipMemAttachGlobal
#define cudaMemAttachHost hipMemAttachHost
// CUDA 13 takes a cudaMemLocation where CUDA <= 12 (and HIP) took a device index: both forms are accepted.
#define cudaMemPrefetchAsync bnb_hip::mem_prefetch_async
#define cudaMemAdvise bnb_hip::mem_advise
#define cudaMemLocation bnb_hip::MemLocation
#define cudaMemLocationType bnb_hip::MemLocationType
#define cudaMemLocationTypeDevice bnb_hip::kMemLocationDevice
#define cudaMemLocationTypeHost bnb_hip::kMemLocationHost
#define cudaMemLocationTypeHostNuma bnb_hip::kMemLocationHostNuma
#define cudaMemLocationTypeHostNumaCurrent bnb_hip::kMemLocationHostNumaCurrent
#define cudaMemAdviseSetReadMostly hipMemAdviseSetReadMostly
#define cudaMemAdviseUnsetReadMostly hipMemAdviseUnsetReadMostly
#define cudaMemAdviseSetPreferredLocation hipMemAdviseSetPreferredLocation
#define cudaMemAdviseUnsetPreferredLocation hipMemAdviseUnsetPreferredLocation
#define cudaMemAdviseSetAccessedBy hipMemAdviseSetAccessedBy
#define cudaMemAdviseUnsetAccessedBy hipMemAdviseUnsetAccessedBy
#define cudaCpuDeviceId hipCpuDeviceId
#define cudaInvalidDeviceId hipInvalidDeviceId
#define cudaPointerGetAttributes hipPointerGetAttributes
#define cudaMemcpy hipMemcpy
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemcpy2DAsync hipMemcpy2DAsync
#define cudaMemset hipMemset
#define cudaMemsetAsync hipMemsetAsync
#define cudaMemcpyHostToHost hipMemcpyHostToHost
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaMemcpyDefault hipMemcpyDefault

// ---- kernel attributes and occupancy (CUDA's C++ API takes the kernel itself)
#define cudaFuncSetAttribute bnb_hip::func_set_attribute
#define cudaFuncGetAttributes bnb_hip::func_get_attributes
#define cudaFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#define cudaFuncAttributePreferredSharedMemoryCarveout hipFuncAttributePreferredSharedMemoryCarveout
#define cudaOccupancyMaxActiveBlocksPerMultiprocessor hipOccupancyMaxActiveBlocksPerMultiprocessor

namespace bnb_hip {

// cudaDeviceGetAttribute: HIP's, except that AMD devices report no NVIDIA compute capability (0), so code
// choosing an sm_XX path by capability takes its portable path.
inline hipError_t device_get_attribute(int* value, hipDeviceAttribute_t attr, int device) {
  const hipError_t err = hipDeviceGetAttribute(value, attr, device);
  if (err == hipSuccess &&
      (attr == hipDeviceAttributeComputeCapabilityMajor || attr == hipDeviceAttributeComputeCapabilityMinor))
    *value = 0;
  return err;
}

inline hipError_t get_device_properties(hipDeviceProp_t* prop, int device) {
  const hipError_t err = hipGetDeviceProperties(prop, device);
  if (err == hipSuccess) prop->major = prop->minor = 0;
  return err;
}

enum MemLocationType {
  kMemLocationInvalid = 0,
  kMemLocationDevice = 1,
  kMemLocationHost = 2,
  kMemLocationHostNuma = 3,  // HIP has no NUMA placement: the host
  kMemLocationHostNumaCurrent = 4,
};
struct MemLocation {
  MemLocationType type;
  int id;
};
inline int location_device(const MemLocation& loc) {
  return loc.type == kMemLocationDevice ? loc.id : (int)hipCpuDeviceId;
}
inline hipError_t mem_prefetch_async(const void* p, size_t n, int device, hipStream_t stream = nullptr) {
  return hipMemPrefetchAsync(p, n, device, stream);
}
inline hipError_t mem_prefetch_async(const void* p, size_t n, MemLocation loc, unsigned /*flags*/,
                                     hipStream_t stream = nullptr) {
  return hipMemPrefetchAsync(p, n, location_device(loc), stream);
}
inline hipError_t mem_advise(const void* p, size_t n, hipMemoryAdvise advice, int device) {
  return hipMemAdvise(p, n, advice, device);
}
inline hipError_t mem_advise(const void* p, size_t n, hipMemoryAdvise advice, MemLocation loc) {
  return hipMemAdvise(p, n, advice, location_device(loc));
}

template <class F>
inline hipError_t func_set_attribute(F* kernel, hipFuncAttribute attr, int value) {
  return hipFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

template <class F>
inline hipError_t func_get_attributes(hipFuncAttributes* attr, F* kernel) {
  return hipFuncGetAttributes(attr, reinterpret_cast<const void*>(kernel));
}

}  // namespace bnb_hip

// =====================================================================================================
// Device code (kernel sources compiled by hipcc).
// =====================================================================================================
#if defined(__HIPCC__)

// ---- math constants (math_constants.h)
#define CUDART_INF_F __builtin_huge_valf()
#define CUDART_NAN_F __builtin_nanf("")
#define CUDART_MIN_DENORM_F 1.40129846e-45f
#define CUDART_MAX_NORMAL_F 3.40282347e+38f
#define CUDART_PI_F 3.141592654f
#define CUDART_INF __builtin_huge_val()
#define CUDART_NAN __builtin_nan("")

namespace bnb_hip {

// ---------------------------------------------------------------------------------- logical 32-lane warp

constexpr int kLogicalWarp = 32;

// Lane in the hardware wavefront (0..63 on wave64, 0..31 on wave32) and in the caller's logical warp.
__device__ __forceinline__ int wave_lane() {
  return (int)__builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u));
}
__device__ __forceinline__ int warp_lane() { return wave_lane() & (kLogicalWarp - 1); }
// First wavefront lane of the caller's logical warp: 0, or 32 in the upper half of a wave64.
__device__ __forceinline__ int warp_base() { return wave_lane() & ~(kLogicalWarp - 1); }

// The caller's logical warp's 32-bit ballot: bit i = lane i of its 32-lane half (active lanes only).
__device__ __forceinline__ uint32_t ballot32(bool pred) {
  const unsigned long long b = __ballot((int)pred);  // 64-bit wavefront ballot (wave32: upper half 0)
  return (uint32_t)(b >> warp_base());
}

// Moves a value of up to 8 bytes from wavefront lane `src` (ds_bpermute, 4 bytes at a time).
template <class T>
__device__ __forceinline__ T permute_from(int src, T v) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffle of a type larger than 8 bytes");
  constexpr int kWords = (int)((sizeof(T) + 3) / 4);
  int w[kWords] = {};
  __builtin_memcpy(w, &v, sizeof(T));
#pragma unroll
  for (int k = 0; k < kWords; ++k) w[k] = __builtin_amdgcn_ds_bpermute(src << 2, w[k]);
  __builtin_memcpy(&v, w, sizeof(T));
  return v;
}

// CUDA's shuffle semantics on the logical warp (PTX shfl.sync with c = ((32 - width) << 8) | 0x1f): the
// warp is split into segments of `width` lanes (a power of two <= 32); idx reads lane `src` mod width of
// the caller's segment; up/down/xor return the caller's own value when the source lane falls outside.
template <class T>
__device__ __forceinline__ T shfl_sync(unsigned /*mask*/, T v, int src, int width = kLogicalWarp) {
  const int l = warp_lane();
  return permute_from(warp_base() + ((l & ~(width - 1)) | (src & (width - 1))), v);
}
template <class T>
__device__ __forceinline__ T shfl_up_sync(unsigned /*mask*/, T v, unsigned delta, int width = kLogicalWarp) {
  const int l = warp_lane();
  const int j = l - (int)delta;
  return permute_from(warp_base() + (j < (l & ~(width - 1)) ? l : j), v);
}
template <class T>
__device__ __forceinline__ T shfl_down_sync(unsigned /*mask*/, T v, unsigned delta, int width = kLogicalWarp) {
  const int l = warp_lane();
  const int j = l + (int)delta;
  return permute_from(warp_base() + (j > ((l & ~(width - 1)) | (width - 1)) ? l : j), v);
}
template <class T>
__device__ __forceinline__ T shfl_xor_sync(unsigned /*mask*/, T v, int lane_mask, int width = kLogicalWarp) {
  const int l = warp_lane();
  const int j = l ^ lane_mask;
  return permute_from(warp_base() + (j > ((l & ~(width - 1)) | (width - 1)) ? l : j), v);
}

// Votes on the logical warp (CUDA: over the non-exited lanes named by mask).
__device__ __forceinline__ unsigned ballot_sync(unsigned mask, int pred) { return ballot32(pred != 0) & mask; }
__device__ __forceinline__ int any_sync(unsigned mask, int pred) { return (ballot32(pred != 0) & mask) != 0; }
__device__ __forceinline__ int all_sync(unsigned mask, int pred) { return (ballot32(pred == 0) & mask) == 0; }
__device__ __forceinline__ unsigned activemask() { return ballot32(true); }

// Orders the logical warp's shared/global memory accesses (lanes of a wavefront run in lockstep).
__device__ __forceinline__ void syncwarp(unsigned /*mask*/ = 0xFFFFFFFFu) {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
}

// __reduce_*_sync (sm_80): every lane of the logical warp must be active.
template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = kLogicalWarp / 2; o > 0; o >>= 1) v = op(v, shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}
template <class T>
__device__ __forceinline__ T reduce_add_sync(unsigned, T v) {
  return warp_reduce(v, [](T a, T b) { return (T)(a + b); });
}
template <class T>
__device__ __forceinline__ T reduce_min_sync(unsigned, T v) {
  return warp_reduce(v, [](T a, T b) { return b < a ? b : a; });
}
template <class T>
__device__ __forceinline__ T reduce_max_sync(unsigned, T v) {
  return warp_reduce(v, [](T a, T b) { return a < b ? b : a; });
}
__device__ __forceinline__ unsigned reduce_and_sync(unsigned, unsigned v) {
  return warp_reduce(v, [](unsigned a, unsigned b) { return a & b; });
}
__device__ __forceinline__ unsigned reduce_or_sync(unsigned, unsigned v) {
  return warp_reduce(v, [](unsigned a, unsigned b) { return a | b; });
}
__device__ __forceinline__ unsigned reduce_xor_sync(unsigned, unsigned v) {
  return warp_reduce(v, [](unsigned a, unsigned b) { return a ^ b; });
}

// ---------------------------------------------------------------------------------- int8 dot products

// __dp4a: 4-way int8 (or uint8) dot product plus a 32-bit accumulator. Portable form (the compiler forms
// v_dot4 where the target has it); exact integer arithmetic.
__device__ __forceinline__ int dp4a(int a, int b, int c) {
#pragma unroll
  for (int k = 0; k < 4; ++k) c += (int)(int8_t)(a >> (8 * k)) * (int)(int8_t)(b >> (8 * k));
  return c;
}
__device__ __forceinline__ unsigned dp4a(unsigned a, unsigned b, unsigned c) {
#pragma unroll
  for (int k = 0; k < 4; ++k) c += ((a >> (8 * k)) & 0xFFu) * ((b >> (8 * k)) & 0xFFu);
  return c;
}

// ---------------------------------------------------------------------------------- cache-hinted loads/stores
// (no equivalent hints are needed for correctness: plain accesses)
template <class T>
__device__ __forceinline__ T ld_hint(const T* p) {
  return *p;
}
template <class T>
struct same_type {
  using type = T;
};
template <class T>
__device__ __forceinline__ void st_hint(T* p, typename same_type<T>::type v) {  // v converts, as in CUDA
  *p = v;
}

// ---------------------------------------------------------------------------------- exact fp32 helpers
// HIP 5.2's __frcp_rn / __fsqrt_rn / __frsqrt_rn are the hardware approximations; CUDA's are correctly
// rounded (the build keeps division and sqrt correctly rounded: -fhip-fp32-correctly-rounded-divide-sqrt).
// (HIP's sqrtf is ocml's, correctly rounded under that flag; clang 15's __builtin_sqrtf is not on AMDGPU.)
__device__ __forceinline__ float frcp_rn(float x) { return 1.0f / x; }
__device__ __forceinline__ float fsqrt_rn(float x) { return ::sqrtf(x); }
// 1/sqrt(x) with two roundings (CUDA's is correctly rounded: may differ by one ulp).
__device__ __forceinline__ float frsqrt_rn(float x) { return 1.0f / ::sqrtf(x); }

// ---------------------------------------------------------------------------------- half max/min (sm_80 names
// ROCm 5.2 lacks). CUDA: a NaN operand yields the other one (both NaN: canonical NaN), +0 > -0; *_nan
// variants propagate NaN.
__device__ __forceinline__ __half half_nan() { return __ushort_as_half((unsigned short)0x7FFFu); }
__device__ __forceinline__ __half hmax(__half a, __half b) {
  const float x = __half2float(a), y = __half2float(b);
  if (x != x) return y != y ? half_nan() : b;
  if (y != y) return a;
  if (x == y) return __builtin_signbit(x) ? b : a;
  return x > y ? a : b;
}
__device__ __forceinline__ __half hmin(__half a, __half b) {
  const float x = __half2float(a), y = __half2float(b);
  if (x != x) return y != y ? half_nan() : b;
  if (y != y) return a;
  if (x == y) return __builtin_signbit(x) ? a : b;
  return x < y ? a : b;
}
__device__ __forceinline__ __half hmax_nan(__half a, __half b) {
  const float x = __half2float(a), y = __half2float(b);
  return (x != x || y != y) ? half_nan() : hmax(a, b);
}
__device__ __forceinline__ __half hmin_nan(__half a, __half b) {
  const float x = __half2float(a), y = __half2float(b);
  return (x != x || y != y) ? half_nan() : hmin(a, b);
}
__device__ __forceinline__ __half2 hmax2(__half2 a, __half2 b) {
  return __halves2half2(hmax(__low2half(a), __low2half(b)), hmax(__high2half(a), __high2half(b)));
}
__device__ __forceinline__ __half2 hmin2(__half2 a, __half2 b) {
  return __halves2half2(hmin(__low2half(a), __low2half(b)), hmin(__high2half(a), __high2half(b)));
}

}  // namespace bnb_hip

#define __hmax bnb_hip::hmax
#define __hmin bnb_hip::hmin
#define __hmax_nan bnb_hip::hmax_nan
#define __hmin_nan bnb_hip::hmin_nan
#define __hmax2 bnb_hip::hmax2
#define __hmin2 bnb_hip::hmin2

// ---- warp intrinsics, logical 32-lane warp (object-like macros: default arguments keep working)
#define __shfl_sync bnb_hip::shfl_sync
#define __shfl_up_sync bnb_hip::shfl_up_sync
#define __shfl_down_sync bnb_hip::shfl_down_sync
#define __shfl_xor_sync bnb_hip::shfl_xor_sync
#define __ballot_sync bnb_hip::ballot_sync
#define __any_sync bnb_hip::any_sync
#define __all_sync bnb_hip::all_sync
#define __activemask bnb_hip::activemask
#define __syncwarp bnb_hip::syncwarp
#define __reduce_add_sync bnb_hip::reduce_add_sync
#define __reduce_min_sync bnb_hip::reduce_min_sync
#define __reduce_max_sync bnb_hip::reduce_max_sync
#define __reduce_and_sync bnb_hip::reduce_and_sync
#define __reduce_or_sync bnb_hip::reduce_or_sync
#define __reduce_xor_sync bnb_hip::reduce_xor_sync
// __syncthreads, __syncthreads_or/and/count, __threadfence(_block/_system), atomics, __popc(ll),
// __clz(ll), __ffs(ll), __brev, __byte_perm, __funnelshift_*, __umulhi, the int/float bit casts and
// conversions (__float_as_int, __int_as_float, __float2int_rn, ...), __fdividef, __expf, __fmaf_rn, ...
// are HIP's own, with the CUDA names.

#define __dp4a bnb_hip::dp4a
#define __ldg bnb_hip::ld_hint  // HIP's __ldg is a plain load too, but only for some types (not bf16)
#define __ldca bnb_hip::ld_hint
#define __ldcg bnb_hip::ld_hint
#define __ldcs bnb_hip::ld_hint
#define __ldlu bnb_hip::ld_hint
#define __ldcv bnb_hip::ld_hint
#define __stwb bnb_hip::st_hint
#define __stcg bnb_hip::st_hint
#define __stcs bnb_hip::st_hint
#define __stwt bnb_hip::st_hint

#define __frcp_rn bnb_hip::frcp_rn
#define __fsqrt_rn bnb_hip::fsqrt_rn
#define __frsqrt_rn bnb_hip::frsqrt_rn

// ---- bf16 (cuda_bf16.h): CUDA's bit semantics (round to nearest even; NaN -> 0x7FFF; widening exact).
// Kernels of this project store bf16 with bnb::f32_to_bf16 (torch's NaN, 0x7FC0) through DT<2>.
namespace bnb_hip {

__host__ __device__ __forceinline__ unsigned short f32_to_bf16_rn(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
  return (unsigned short)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
__host__ __device__ __forceinline__ float bf16_bits_to_f32(unsigned short h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

struct alignas(2) bf16 {
  unsigned short __x;
  bf16() = default;
  __host__ __device__ bf16(float f) : __x(f32_to_bf16_rn(f)) {}
  __host__ __device__ operator float() const { return bf16_bits_to_f32(__x); }
};
struct alignas(4) bf162 {
  bf16 x, y;
};

__host__ __device__ __forceinline__ bf16 bf16_from_bits(unsigned short h) {
  bf16 r;
  r.__x = h;
  return r;
}
__host__ __device__ __forceinline__ bf16 float2bfloat16(float f) { return bf16_from_bits(f32_to_bf16_rn(f)); }
__host__ __device__ __forceinline__ bf16 float2bfloat16_rz(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return bf16_from_bits((u & 0x7FFFFFFFu) > 0x7F800000u ? (unsigned short)0x7FFFu : (unsigned short)(u >> 16));
}
__host__ __device__ __forceinline__ float bfloat162float(bf16 h) { return bf16_bits_to_f32(h.__x); }
__host__ __device__ __forceinline__ unsigned short bfloat16_as_ushort(bf16 h) { return h.__x; }
__host__ __device__ __forceinline__ short bfloat16_as_short(bf16 h) { return (short)h.__x; }
__host__ __device__ __forceinline__ bf16 ushort_as_bfloat16(unsigned short u) { return bf16_from_bits(u); }
__host__ __device__ __forceinline__ bf16 short_as_bfloat16(short s) { return bf16_from_bits((unsigned short)s); }
__host__ __device__ __forceinline__ bf162 floats2bfloat162_rn(float a, float b) {
  return bf162{float2bfloat16(a), float2bfloat16(b)};
}
__host__ __device__ __forceinline__ bf162 float2bfloat162_rn(float a) { return floats2bfloat162_rn(a, a); }
__host__ __device__ __forceinline__ float2 bfloat1622float2(bf162 h) {
  return make_float2(bfloat162float(h.x), bfloat162float(h.y));
}
__host__ __device__ __forceinline__ bf162 float22bfloat162_rn(float2 f) { return floats2bfloat162_rn(f.x, f.y); }
__host__ __device__ __forceinline__ float low2float(bf162 h) { return bfloat162float(h.x); }
__host__ __device__ __forceinline__ float high2float(bf162 h) { return bfloat162float(h.y); }

}  // namespace bnb_hip

typedef bnb_hip::bf16 __nv_bfloat16;
typedef bnb_hip::bf162 __nv_bfloat162;
typedef bnb_hip::bf16 nv_bfloat16;
typedef bnb_hip::bf162 nv_bfloat162;
#define __float2bfloat16 bnb_hip::float2bfloat16
#define __float2bfloat16_rn bnb_hip::float2bfloat16
#define __float2bfloat16_rz bnb_hip::float2bfloat16_rz
#define __bfloat162float bnb_hip::bfloat162float
#define __bfloat16_as_ushort bnb_hip::bfloat16_as_ushort
#define __bfloat16_as_short bnb_hip::bfloat16_as_short
#define __ushort_as_bfloat16 bnb_hip::ushort_as_bfloat16
#define __short_as_bfloat16 bnb_hip::short_as_bfloat16
#define __floats2bfloat162_rn bnb_hip::floats2bfloat162_rn
#define __float2bfloat162_rn bnb_hip::float2bfloat162_rn
#define __float22bfloat162_rn bnb_hip::float22bfloat162_rn
#define __bfloat1622float2 bnb_hip::bfloat1622float2
// __low2float / __high2float: HIP's overloads take __half2; the bf16 ones are added beside them.
__host__ __device__ __forceinline__ float __low2float(bnb_hip::bf162 h) { return bnb_hip::low2float(h); }
__host__ __device__ __forceinline__ float __high2float(bnb_hip::bf162 h) { return bnb_hip::high2float(h); }

#endif  // __HIPCC__
