// Status codes of the CUDA backend's host entry points (host-only header, also used by module.cpp).
#pragma once

#if defined(__HIPCC__) || defined(BNB_HIP_HOST)
#include "../rocm/hip_compat.h"
#elif defined(BNB_CUDA_EMU)
#include "emu/cuda_emu_runtime.h"  // the CPU emulator's runtime (tests/test_cuda_emu.py)
#else
#include <cuda_runtime.h>
#endif

#include <string>

namespace bnb_cuda {

// 0 = ok. Python raises RuntimeError(error_message(status)).
enum Status : int {
  kOk = 0,
  kNullPointer = 1,
  kBadDtype = 2,
  kBadQuantType = 3,
  kBadSize = 4,
  kBadBlocksize = 5,
  kOutputTooSmall = 6,
  kBadDevice = 7,
  kBadOptimizerName = 20,
  kCudaError = 100,  // the CUDA error is recorded per host thread: last_cuda_error()
};

const char* status_message(int status);
// status_message, and for kCudaError the CUDA error name and string recorded on this host thread.
std::string error_message(int status);
// The CUDA error behind the last kCudaError status returned on this host thread (cudaSuccess if none).
int last_cuda_error();
// Records `err` for last_cuda_error(); returns kCudaError, or kOk for cudaSuccess.
int record_cuda_error(cudaError_t err);

}  // namespace bnb_cuda
