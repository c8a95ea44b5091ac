// Compile-only probe of backends/rocm/hip_compat.h: uses, in the CUDA spelling, every CUDA runtime and
// device name the compat header maps (and the CUDA names HIP provides itself that kernels of this project
// use), so that
//   * the HIP build (backends/rocm/CMakeLists.txt, target bnb_hip_compat_probe) proves each maps to HIP, and
//   * tests/test_hip_build.py compiles the same file with nvcc, proving each is a real CUDA name.
// Nothing here is linked into a module or run.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

#include "common.cuh"

namespace bnb_compat_probe {

template <class T>
__device__ T warp_ops(T v, int lane) {
  v = __shfl_sync(0xFFFFFFFFu, v, 0);
  v = __shfl_sync(0xFFFFFFFFu, v, lane + 3, 8);
  v = __shfl_up_sync(0xFFFFFFFFu, v, 1);
  v = __shfl_up_sync(0xFFFFFFFFu, v, 2, 16);
  v = __shfl_down_sync(0xFFFFFFFFu, v, 1);
  v = __shfl_down_sync(0xFFFFFFFFu, v, 4, 16);
  v = __shfl_xor_sync(0xFFFFFFFFu, v, 16);
  v = __shfl_xor_sync(0xFFFFFFFFu, v, 1, 32);
  return v;
}

__global__ void device_probe(float* f, double* d, int* i, unsigned* u, long long* ll, unsigned long long* ull,
                             uint16_t* h16, uint16_t* b16, int64_t n) {
  __shared__ float smem[64];
  const int lane = threadIdx.x % 32;
  const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;

  // warp shuffles: 4- and 8-byte types, half and bf16
  f[t] = warp_ops(f[t], lane);
  d[t] = warp_ops(d[t], lane);
  i[t] = warp_ops(i[t], lane);
  u[t] = warp_ops(u[t], lane);
  ll[t] = warp_ops(ll[t], lane);
  ull[t] = warp_ops(ull[t], lane);
  const __half h = warp_ops(__ushort_as_half(h16[t]), lane);
  const __nv_bfloat16 b = warp_ops(__ushort_as_bfloat16(b16[t]), lane);

  // votes, masks, warp sync, warp reductions (sm_80)
  const unsigned ballot = __ballot_sync(0xFFFFFFFFu, f[t] > 0.0f);
  const int any = __any_sync(0xFFFFFFFFu, i[t] != 0);
  const int all = __all_sync(__activemask(), u[t] != 0u);
  __syncwarp();
  __syncwarp(0xFFFFFFFFu);
  const unsigned red = __reduce_add_sync(0xFFFFFFFFu, u[t]) + __reduce_min_sync(0xFFFFFFFFu, u[t]) +
                       __reduce_max_sync(0xFFFFFFFFu, u[t]) + __reduce_and_sync(0xFFFFFFFFu, u[t]) +
                       __reduce_or_sync(0xFFFFFFFFu, u[t]) + __reduce_xor_sync(0xFFFFFFFFu, u[t]);
  const int redi = __reduce_add_sync(0xFFFFFFFFu, i[t]) + __reduce_max_sync(0xFFFFFFFFu, i[t]);

  // block-level sync and votes, fences
  smem[threadIdx.x % 64] = f[t];
  __syncthreads();
  const int bor = __syncthreads_or(f[t] != 0.0f);
  const int band = __syncthreads_and(f[t] != 0.0f);
  const int bcount = __syncthreads_count(f[t] != 0.0f);
  __threadfence_block();
  __threadfence();

  // half / bf16 conversions
  const float hf = __half2float(h) + __half2float(__float2half_rn(f[t])) + __half2float(__float2half(f[t]));
  const __half2 h2 = __floats2half2_rn(hf, 1.0f);
  const float2 hf2 = __half22float2(h2);
  const __half hm = __hmax(__hmin(h, __float2half_rn(hf)), __hmax_nan(__hmin_nan(h, h), __habs(h)));
  const __half2 hm2 = __hmax2(__hmin2(h2, h2), __halves2half2(hm, __hneg(hm)));
  const unsigned short hbits = __half_as_ushort(__float2half_rn(hf2.x + __low2float(hm2) + __high2float(h2)));
  const __nv_bfloat16 bb = __float2bfloat16(f[t]);
  const __nv_bfloat162 b2 = __floats2bfloat162_rn(__bfloat162float(b), __bfloat162float(bb));
  const float2 bf2 = __bfloat1622float2(b2);
  const float bsum = bf2.x + bf2.y + __low2float(b2) + __high2float(b2) +
                     __bfloat162float(__float2bfloat16_rn(f[t])) + __bfloat162float(__float2bfloat16_rz(f[t])) +
                     __bfloat162float(__float22bfloat162_rn(bf2).x) + __bfloat162float(__float2bfloat162_rn(1.0f).y);
  const unsigned short bbits = __bfloat16_as_ushort(__float2bfloat16(bsum)) +
                               (unsigned short)__bfloat16_as_short(__short_as_bfloat16((short)1));

  // fp32 math with CUDA's rounding names, bit casts, integer intrinsics
  float x = f[t];
  x = __fadd_rn(x, __fmul_rn(x, 0.5f)) + __fsub_rn(x, 1.0f) + __fdiv_rn(x, 3.0f) + __fmaf_rn(x, x, 1.0f);
  x += __frcp_rn(x) + __fsqrt_rn(fabsf(x)) + __frsqrt_rn(fabsf(x) + 1.0f) + __fdividef(x, 7.0f) + __expf(x) +
       __logf(fabsf(x) + 1.0f) + __saturatef(x) + rsqrtf(fabsf(x) + 1.0f) + fmaxf(x, 0.0f) + fminf(x, 1.0f);
  x += __int2float_rn(__float2int_rn(x)) + __uint2float_rn(__float2uint_rn(fabsf(x))) +
       __int_as_float(__float_as_int(x)) + __uint_as_float(__float_as_uint(x)) + (float)__float2int_rz(x) +
       __double2float_rn(d[t]) + CUDART_PI_F;
  if (x == CUDART_INF_F || x != x || x == CUDART_NAN_F) x = CUDART_MAX_NORMAL_F + CUDART_MIN_DENORM_F;
  const unsigned bits = (unsigned)__popc(u[t]) + (unsigned)__popcll(ull[t]) + (unsigned)__clz((int)u[t]) +
                        (unsigned)__clzll(ll[t]) + (unsigned)__ffs((int)u[t]) + (unsigned)__ffsll(ll[t]) +
                        __brev(u[t]) + __byte_perm(u[t], u[t] >> 3, 0x3210u) + __funnelshift_l(u[t], u[t], 3) +
                        __funnelshift_r(u[t], u[t], 5) + __umulhi(u[t], 3u) +
                        (unsigned)__dp4a(i[t], i[t] >> 1, 7) + __dp4a(u[t], u[t] >> 1, 7u);

  // cache-hinted loads/stores, __ldg, atomics
  const float ldv = __bfloat162float(__ldg(reinterpret_cast<const __nv_bfloat16*>(b16) + t)) +
                    __half2float(__ldg(reinterpret_cast<const __half*>(h16) + t)) + __ldg(f + t) + __ldca(f + t) + __ldcg(f + t) + __ldcs(f + t) + __ldlu(f + t) + __ldcv(f + t);
  __stcs(f + t, ldv);
  __stcg(f + t, ldv + 1.0f);
  __stwb(f + t, ldv + 2.0f);
  __stwt(f + t, ldv + 3.0f);
  atomicAdd(f, x + hf + smem[lane]);
  atomicMax(i, (int)(ballot + (unsigned)any + (unsigned)all + red + (unsigned)redi + bits));
  atomicAdd(u, (unsigned)(bor + band + bcount) + hbits + bbits);
  atomicCAS(ull, 0ull, (unsigned long long)t);
  f[t] = x + (float)warpSize;
}

// Dynamic shared memory with an alignment, launched with a byte count.
__global__ void dynamic_smem_probe(float4* out) {
  extern __shared__ __align__(16) unsigned char dyn_smem[];
  float4* s = reinterpret_cast<float4*>(dyn_smem);
  s[threadIdx.x] = make_float4(1.0f, 2.0f, 3.0f, (float)threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

// Host names the compat header maps (compiled, never called).
int host_probe(int device, cudaStream_t stream, void* managed) {
  int v = 0, count = 0, cur = 0, rt = 0, drv = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  e = cudaGetDevice(&cur);
  e = cudaSetDevice(device);
  e = cudaRuntimeGetVersion(&rt);
  e = cudaDriverGetVersion(&drv);
  e = cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, device);
  const cudaDeviceAttr attrs[] = {cudaDevAttrMultiProcessorCount, cudaDevAttrMaxThreadsPerBlock,
                                  cudaDevAttrMaxThreadsPerMultiProcessor, cudaDevAttrMaxBlocksPerMultiprocessor,
                                  cudaDevAttrMaxSharedMemoryPerBlock, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                  cudaDevAttrMaxSharedMemoryPerMultiprocessor, cudaDevAttrMaxRegistersPerBlock,
                                  cudaDevAttrMaxBlockDimX, cudaDevAttrMaxGridDimX, cudaDevAttrMaxGridDimY,
                                  cudaDevAttrMaxGridDimZ, cudaDevAttrL2CacheSize, cudaDevAttrClockRate,
                                  cudaDevAttrMemoryClockRate, cudaDevAttrGlobalMemoryBusWidth,
                                  cudaDevAttrComputeCapabilityMajor, cudaDevAttrComputeCapabilityMinor,
                                  cudaDevAttrManagedMemory, cudaDevAttrConcurrentManagedAccess,
                                  cudaDevAttrPageableMemoryAccess, cudaDevAttrCooperativeLaunch,
                                  cudaDevAttrIntegrated, cudaDevAttrUnifiedAddressing};
  for (cudaDeviceAttr a : attrs) e = cudaDeviceGetAttribute(&v, a, device);
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, device);
  size_t free_b = 0, total_b = 0;
  e = cudaMemGetInfo(&free_b, &total_b);
  e = cudaPeekAtLastError();
  e = cudaGetLastError();
  const char* s = cudaGetErrorName(e);
  s = cudaGetErrorString(e);
  const cudaError_t codes[] = {cudaSuccess, cudaErrorInvalidValue, cudaErrorMemoryAllocation,
                               cudaErrorInitializationError, cudaErrorInsufficientDriver, cudaErrorNoDevice,
                               cudaErrorInvalidDevice, cudaErrorInvalidDevicePointer,
                               cudaErrorInvalidConfiguration, cudaErrorInvalidDeviceFunction,
                               cudaErrorNoKernelImageForDevice, cudaErrorInvalidResourceHandle, cudaErrorNotReady,
                               cudaErrorNotSupported, cudaErrorLaunchFailure, cudaErrorLaunchOutOfResources,
                               cudaErrorIllegalAddress, cudaErrorStreamCaptureUnsupported,
                               cudaErrorStreamCaptureInvalidated};

  // streams, events, graph capture
  cudaStream_t own = nullptr;
  e = cudaStreamCreateWithFlags(&own, cudaStreamNonBlocking);
  e = cudaStreamCreateWithFlags(&own, cudaStreamDefault);
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  e = cudaStreamIsCapturing(stream, &cap);
  const bool capturing = cap == cudaStreamCaptureStatusActive || cap == cudaStreamCaptureStatusInvalidated;
  cudaEvent_t ev0, ev1;
  e = cudaEventCreate(&ev0);
  e = cudaEventCreateWithFlags(&ev1, cudaEventDisableTiming | cudaEventDefault);
  e = cudaEventRecord(ev0, stream);
  e = cudaStreamWaitEvent(own, ev0, 0);
  e = cudaEventQuery(ev0);
  e = cudaEventSynchronize(ev0);
  float ms = 0.0f;
  e = cudaEventElapsedTime(&ms, ev0, ev1);
  e = cudaEventDestroy(ev0);
  e = cudaStreamQuery(own);
  e = cudaStreamSynchronize(cudaStreamPerThread);
  e = cudaStreamDestroy(own);
  e = cudaDeviceSynchronize();

  // memory: device, pinned host, managed (paged optimizers), copies
  void* p = nullptr;
  void* hp = nullptr;
  void* dp = nullptr;
  e = cudaMalloc(&p, 256);
  e = cudaMemsetAsync(p, 0, 256, stream);
  e = cudaMemset(p, 0, 256);
  e = cudaMemcpyAsync(p, managed, 256, cudaMemcpyDeviceToDevice, stream);
  e = cudaMemcpyAsync(p, managed, 256, cudaMemcpyDefault, stream);
  e = cudaMemcpy(&v, p, sizeof(v), cudaMemcpyDeviceToHost);
  e = cudaMemcpy(p, &v, sizeof(v), cudaMemcpyHostToDevice);
  e = cudaMemcpy(&ms, &v, sizeof(v), cudaMemcpyHostToHost);
  e = cudaMemcpy2DAsync(p, 16, managed, 16, 16, 4, cudaMemcpyDeviceToDevice, stream);
  e = cudaFree(p);
  e = cudaMallocHost(&hp, 256);
  e = cudaHostAlloc(&hp, 256, cudaHostAllocDefault | cudaHostAllocPortable | cudaHostAllocMapped);
  e = cudaHostGetDevicePointer(&dp, hp, 0);
  e = cudaFreeHost(hp);
  e = cudaHostRegister(&v, sizeof(v), cudaHostRegisterDefault);
  e = cudaHostUnregister(&v);
  e = cudaMallocManaged(&p, 1 << 20, cudaMemAttachGlobal);
  e = cudaMallocManaged(&p, 1 << 20, cudaMemAttachHost);
  // CUDA 13 form (a location; CUDA <= 12 took a device index, which hip_compat.h also accepts)
  cudaMemLocation on_device{cudaMemLocationTypeDevice, device};
  struct cudaMemLocation on_host = {cudaMemLocationTypeHost, 0};
  const cudaMemLocationType other[] = {cudaMemLocationTypeHostNuma, cudaMemLocationTypeHostNumaCurrent};
  e = cudaMemPrefetchAsync(p, 1 << 20, on_device, 0, stream);
  e = cudaMemPrefetchAsync(p, 1 << 20, on_host, 0, stream);
  const cudaMemoryAdvise advice[] = {cudaMemAdviseSetReadMostly, cudaMemAdviseUnsetReadMostly,
                                     cudaMemAdviseSetPreferredLocation, cudaMemAdviseUnsetPreferredLocation,
                                     cudaMemAdviseSetAccessedBy, cudaMemAdviseUnsetAccessedBy};
  for (cudaMemoryAdvise a : advice) e = cudaMemAdvise(p, 1 << 20, a, on_device);
  e = cudaMemAdvise(p, 1 << 20, cudaMemAdviseSetPreferredLocation, on_host);
  cudaPointerAttributes pa;
  e = cudaPointerGetAttributes(&pa, p);
  const int invalid = cudaInvalidDeviceId;

  // kernel attributes, occupancy, launch
  e = cudaFuncSetAttribute(device_probe, cudaFuncAttributeMaxDynamicSharedMemorySize, 48 * 1024);
  e = cudaFuncSetAttribute(device_probe, cudaFuncAttributePreferredSharedMemoryCarveout, 50);
  cudaFuncAttributes fa;
  e = cudaFuncGetAttributes(&fa, device_probe);
  int blocks = 0;
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, device_probe, 256, 0);
  int ws = 0;
  e = bnb_cuda::device_warp_size(device, &ws);
  device_probe<<<bnb_cuda::grid_for(1024, 256), 256, 0, stream>>>(nullptr, nullptr, nullptr, nullptr, nullptr,
                                                                  nullptr, nullptr, nullptr, 0);
  dynamic_smem_probe<<<1, 128, 128 * sizeof(float4), stream>>>(nullptr);
  e = cudaGetLastError();
  return (int)e + (int)codes[0] + (s != nullptr) + (int)capturing + invalid + blocks + ws + (int)fa.numRegs +
         (int)prop.multiProcessorCount + (int)other[0] + (int)(free_b + total_b) + cur + count + rt + drv + pa.device;
}

}  // namespace bnb_compat_probe
