// Fused 4-bit matmul host entry points (torch-free): validation, device query, plan, launches.
// The kernels and the plan live in mm4_impl.cuh (shared with the CPU emulator test, tests/cuda_emu).
#include "kernels_mm4.h"
#include "mm4_impl.cuh"

namespace bnb_cuda {
namespace {

// Compute capability and SM count per device, queried once (cudaDeviceGetAttribute does not synchronize).
constexpr int kMaxCachedDevices = 64;
std::atomic<int> g_cc[kMaxCachedDevices];   // 0 = not queried yet
std::atomic<int> g_sms[kMaxCachedDevices];

int device_info(int device, mm4::Device& dev) {
#if defined(__HIPCC__)
  dev.hip = true;
#else
  dev.hip = false;
#endif
  if (device < kMaxCachedDevices) {
    const int cc = g_cc[device].load(std::memory_order_relaxed);
    if (cc > 0) {
      dev.cc_major = cc;
      dev.sms = g_sms[device].load(std::memory_order_relaxed);
      return kOk;
    }
  }
  int cc = 0, sms = 0;
  cudaError_t e = cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e != cudaSuccess) return record_cuda_error(e);
  if (sms < 1) sms = 1;
  dev.cc_major = cc;
  dev.sms = sms;
  if (device < kMaxCachedDevices && cc > 0) {
    g_sms[device].store(sms, std::memory_order_relaxed);
    g_cc[device].store(cc, std::memory_order_relaxed);
  }
  return kOk;
}

}  // namespace

int gemm_4bit(int device, void* stream, int dtype, const void* A, int64_t M, int64_t K, const void* B,
              int64_t b_nbytes, int64_t N, const float* absmax, int64_t blocksize, const float* code, int quant_type,
              const uint8_t* absmax_8bit, const float* absmax_code, const float* absmax_offset, const void* bias,
              void* out, float* ws, int64_t ws_floats) {
  if (device < 0) return kBadDevice;
  const mm4::Call c{dtype, A, M, K, B, b_nbytes, N, absmax, blocksize, code, quant_type, absmax_8bit,
                    absmax_code, absmax_offset, bias, out, ws, ws_floats};
  bool nothing = false;
  if (int s = mm4::validate(c, &nothing)) return s;
  if (nothing) return kOk;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  mm4::Device dev;
  if (int s = device_info(device, dev)) return s;
  mm4::Params p;
  mm4::Plan pl;
  if (int s = mm4::build(c, dev, p, pl)) return s;
  return mm4::run(dtype, p, pl, device, stream);
}

int gemm_4bit_splits(int device, int dtype, int64_t M, int64_t N, int64_t K, int* splits) {
  if (device < 0) return kBadDevice;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (M < 0 || N < 0 || K < 0) return kBadSize;
  if (!splits) return kNullPointer;
  *splits = 1;
  if (M == 0 || N == 0 || K == 0) return kOk;
  mm4::Device dev;
  if (int s = device_info(device, dev)) return s;
  *splits = mm4::planned_splits(dtype, M, N, K, dev);
  return kOk;
}

}  // namespace bnb_cuda
