// CPU emulation of the CUDA runtime API subset that bnb-core's host code uses (one fake device, index 0).
// Host-only header: the stand-in for <cuda_runtime.h> in host translation units built with -DBNB_CUDA_EMU
// (status.h, module.cpp, bind_*.cpp). Kernel translation units include emu/cuda_emu.h, which includes this.
//
// Streams are accepted and ignored: every launch runs synchronously on the calling thread, blocks one after
// another (backends/cuda/emu/README in docs/architecture.md, "CUDA kernels on CPU: the emulator").
// Error codes and names are CUDA's (driver_types.h numbering), so statuses and messages read the same.
#pragma once

#if !defined(BNB_CUDA_EMU)
#error "emu/cuda_emu_runtime.h is the CPU emulation of the CUDA runtime: build with -DBNB_CUDA_EMU"
#endif

#include <stddef.h>
#include <stdint.h>

#include <string>

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
} cudaError_t;

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

typedef enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
} cudaFuncAttribute;

typedef enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
} cudaDeviceAttr;

// The emulated architecture (what BNB_PTX_SM reports to kernels, see backends/cuda/ptx.cuh). A build may set
// -DBNB_EMU_SM=700 to exercise the SIMT fallback paths that pre-sm_75 GPUs and HIP take.
#ifndef BNB_EMU_SM
#define BNB_EMU_SM 900
#endif
#define BNB_EMU_RUNTIME_VERSION 1  // cudaRuntimeGetVersion() of the emulator (not a CUDA version)

// ------------------------------------------------------------------------------------ runtime API
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class F>
inline cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
// "Device" memory is host memory (tests; the library itself never allocates).
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = 0);

// ------------------------------------------------------------------------------------ emulator controls
// Test knobs (per host thread; bnb_core._cuda_emu exposes them). They never change what a correct kernel
// computes: grid-stride kernels must give the same result for any grid, and barriers must make results
// independent of the order in which threads run between them.
namespace bnb_emu {

// Clamp gridDim.x (and y, z) of every launch to at most `n` blocks (0 = no clamp): exercises grid-stride
// loops whose grids would otherwise cover the whole problem.
void set_max_grid(unsigned n);
unsigned max_grid();

// Thread scheduling order inside a block: 0 = ascending thread index, 1 = descending, 2 = pseudo-random
// (reshuffled at every scheduling round, seeded by `seed`). A kernel that reads shared or global memory
// written by another thread without a barrier in between gives order-dependent results.
void set_schedule(int mode, uint64_t seed = 0);
int schedule();

// Block order of a launch: 0 = ascending linear block index, 1 = descending.
void set_block_order(int order);

// Fill static `__shared__` variables with 0xFF at the start of every block (default on; see cuda_emu.cpp:
// needs the kernels in a module of their own, as backends/cuda/emu/CMakeLists.txt builds them).
void set_poison_shared(bool on);

// Description of the last failed launch on this host thread (deadlock, trap, bad configuration), "" if none.
std::string last_failure();

struct Stats {
  uint64_t launches = 0;
  uint64_t blocks = 0;
  uint64_t threads = 0;
  uint64_t switches = 0;  // fiber context switches (each thread switch in and out counts 2)
};
Stats stats();
void reset_stats();

}  // namespace bnb_emu
