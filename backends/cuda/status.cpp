#include "status.h"

namespace bnb_cuda {

namespace {
thread_local cudaError_t g_last = cudaSuccess;
}

const char* status_message(int status) {
  switch (status) {
    case kOk:
      return "ok";
    case kNullPointer:
      return "bnb_core._cuda: a required pointer is null";
    case kBadDtype:
      return "bnb_core._cuda: unsupported dtype code (allowed: 0 float32, 1 float16, 2 bfloat16)";
    case kBadQuantType:
      return "bnb_core._cuda: unsupported quant_type code (allowed: 0 nf4, 1 fp4)";
    case kBadSize:
      return "bnb_core._cuda: bad size (negative, or inconsistent shapes)";
    case kBadBlocksize:
      return "bnb_core._cuda: unsupported blocksize";
    case kOutputTooSmall:
      return "bnb_core._cuda: the output buffer is too small";
    case kBadDevice:
      return "bnb_core._cuda: bad device index";
    case kBadOptimizerName:
      return "bnb_core._cuda: unknown optimizer code";
    case kCudaError:
      return "bnb_core._cuda: CUDA error";
    default:
      return "bnb_core._cuda: unknown status";
  }
}

std::string error_message(int status) {
  std::string m = status_message(status);
  if (status == kCudaError) {
    m += ": ";
    m += cudaGetErrorName(g_last);
    m += " (";
    m += cudaGetErrorString(g_last);
    m += ")";
  }
#if defined(BNB_PLATFORM_HIP)
  // the HIP build of these sources (backends/rocm): name its module and runtime
  if (m.compare(0, 14, "bnb_core._cuda") == 0) m.replace(0, 14, "bnb_core._hip");
  const size_t at = m.find("CUDA error");
  if (at != std::string::npos) m.replace(at, 4, "HIP");
#endif
  return m;
}

int last_cuda_error() { return (int)g_last; }

int record_cuda_error(cudaError_t err) {
  if (err == cudaSuccess) return kOk;
  g_last = err;
  return kCudaError;
}

}  // namespace bnb_cuda
