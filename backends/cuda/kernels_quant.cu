// Blockwise 8-bit and 4-bit (de)quantization kernels. Exact semantics: backends/common/bnb_quant_math.h
// (the same one-value math as the CPU backend and bnb_core/reference.py); compiled with -fmad=false.
//
// Quantize: one warp per quantization block, 8 consecutive elements per lane per step (128-bit loads when
// the input is aligned); pass 1 reduces absmax (NaN tracked separately), pass 2 re-reads the block (from
// L1/L2) and encodes. Dequantize: 8 elements per thread, the codebook in shared memory.
#include "common.cuh"
#include "kernels_quant.h"

namespace bnb_cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kQuantThreads = 256;  // 8 warps = 8 quantization blocks per CTA
constexpr int kDequantThreads = 256;

// Stores 8 values as the output dtype starting at element i.
template <int D>
__device__ __forceinline__ void store8(typename DT<D>::T* out, int64_t i, int count, bool vec, const float v[8]) {
  if (vec && count == 8) {
    if constexpr (D == 0) {
      reinterpret_cast<float4*>(out + i)[0] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(out + i)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      uint32_t w[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        w[k] = (uint32_t)DT<D>::to(v[2 * k]) | ((uint32_t)DT<D>::to(v[2 * k + 1]) << 16);
      }
      *reinterpret_cast<uint4*>(out + i) = make_uint4(w[0], w[1], w[2], w[3]);
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < 8; ++k)
    if (k < count) DT<D>::store(out, i + k, v[k]);
}

template <int D>
__device__ __forceinline__ bool aligned_for_vec(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (D == 0 ? 31u : 15u)) == 0;
}

// absmax of x[start, start + len) reduced over the warp; NaN (canonical) when any element is NaN.
template <int D>
__device__ __forceinline__ float warp_block_absmax(const typename DT<D>::T* x, int64_t start, int64_t len, bool vec,
                                                   int lane) {
  float m = 0.0f;
  bool nan = false;
  for (int64_t j = (int64_t)lane * 8; j < len; j += kWarp * 8) {
    float v[8];
    const int count = (int)min((int64_t)8, len - j);
    load8<D>(x, start + j, count, vec, v);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      nan |= bnb::is_nan(v[k]);
      m = fmaxf(m, fabsf(v[k]));
    }
  }
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o, kWarp));
  nan = __any_sync(0xFFFFFFFFu, nan);
  return nan ? bnb::canonical_nan() : m;
}

// ------------------------------------------------------------------------------------ 8-bit blockwise

template <int D>
__global__ void __launch_bounds__(kQuantThreads) quantize_blockwise_kernel(const typename DT<D>::T* __restrict__ x,
                                                                          int64_t n, const float* __restrict__ code,
                                                                          int64_t blocksize, uint8_t* __restrict__ out,
                                                                          float* __restrict__ absmax) {
  __shared__ float bounds[256];  // 255 fp32 midpoints, then +Inf (binary-search padding)
  for (int i = threadIdx.x; i < 256; i += blockDim.x)
    bounds[i] = i < 255 ? bnb::midpoint(code[i], code[i + 1]) : __int_as_float(0x7F800000);
  __syncthreads();
  // Binary search equals the counting definition only for ascending boundaries: check once per CTA.
  int unsorted = 0;
  for (int i = threadIdx.x; i < 254; i += blockDim.x) unsorted |= !(bounds[i] <= bounds[i + 1]);
  const bool sorted = __syncthreads_or(unsorted) == 0;

  const int lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  const bool vec = aligned_for_vec<D>(x);
  const bool vec_out = (reinterpret_cast<uintptr_t>(out) & 7u) == 0;
  for (int64_t b = (int64_t)blockIdx.x * warps + threadIdx.x / kWarp; b < nblocks; b += (int64_t)gridDim.x * warps) {
    const int64_t start = b * blocksize;
    const int64_t len = min(blocksize, n - start);
    const float am = warp_block_absmax<D>(x, start, len, vec, lane);
    if (lane == 0) absmax[b] = am;
    const bnb::BlockScale sc = bnb::block_scale(am);
    for (int64_t j = (int64_t)lane * 8; j < len; j += kWarp * 8) {
      float v[8];
      const int count = (int)min((int64_t)8, len - j);
      load8<D>(x, start + j, count, vec, v);
      uint8_t q[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float y = bnb::scale_value(v[k], sc);
        q[k] = (uint8_t)(sorted ? bnb::code_8bit_search(y, bounds) : bnb::code_8bit_count(y, bounds));
      }
      if (vec_out && count == 8) {
        uint2 w;
        w.x = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
        w.y = (uint32_t)q[4] | ((uint32_t)q[5] << 8) | ((uint32_t)q[6] << 16) | ((uint32_t)q[7] << 24);
        *reinterpret_cast<uint2*>(out + start + j) = w;
      } else {
        for (int k = 0; k < count; ++k) out[start + j + k] = q[k];
      }
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kDequantThreads) dequantize_blockwise_kernel(const uint8_t* __restrict__ q, int64_t n,
                                                                              const float* __restrict__ code,
                                                                              const float* __restrict__ absmax,
                                                                              int log2_blocksize,
                                                                              typename DT<D>::T* __restrict__ out) {
  __shared__ float cb[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) cb[i] = code[i];
  __syncthreads();
  const bool vec_in = (reinterpret_cast<uintptr_t>(q) & 7u) == 0;
  const bool vec_out = aligned_for_vec<D>(out);
  const int64_t groups = (n + 7) / 8;
  for (int64_t g = global_thread_id(); g < groups; g += grid_threads()) {
    const int64_t i = g * 8;
    const int count = (int)min((int64_t)8, n - i);
    uint8_t c[8];
    if (vec_in && count == 8) {
      const uint2 w = *reinterpret_cast<const uint2*>(q + i);
#pragma unroll
      for (int k = 0; k < 4; ++k) c[k] = (uint8_t)(w.x >> (8 * k)), c[4 + k] = (uint8_t)(w.y >> (8 * k));
    } else {
#pragma unroll
      for (int k = 0; k < 8; ++k) c[k] = k < count ? q[i + k] : 0;
    }
    float v[8];
    const float a = absmax[i >> log2_blocksize];  // blocksize: a power of two >= 16, so 8 codes share a block
#pragma unroll
    for (int k = 0; k < 8; ++k) v[k] = cb[c[k]] * a;
    store8<D>(out, i, count, vec_out, v);
  }
}

// ------------------------------------------------------------------------------------ 4-bit

template <int D, int QT>
__global__ void __launch_bounds__(kQuantThreads) quantize_4bit_kernel(const typename DT<D>::T* __restrict__ x, int64_t n,
                                                                     int64_t blocksize, uint8_t* __restrict__ out,
                                                                     int64_t out_nbytes, float* __restrict__ absmax) {
  const int lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  const bool vec = aligned_for_vec<D>(x);
  const bool vec_out = (reinterpret_cast<uintptr_t>(out) & 3u) == 0;
  const uint8_t zero = (uint8_t)bnb::zero_code_4bit(QT);
  for (int64_t b = (int64_t)blockIdx.x * warps + threadIdx.x / kWarp; b < nblocks; b += (int64_t)gridDim.x * warps) {
    const int64_t start = b * blocksize;  // even: blocksize >= 32 is even, so a byte never spans two blocks
    const int64_t len = min(blocksize, n - start);
    const float am = warp_block_absmax<D>(x, start, len, vec, lane);
    if (lane == 0) absmax[b] = am;
    const bnb::BlockScale sc = bnb::block_scale(am);
    for (int64_t j = (int64_t)lane * 8; j < len; j += kWarp * 8) {
      float v[8];
      const int count = (int)min((int64_t)8, len - j);
      load8<D>(x, start + j, count, vec, v);
      uint8_t c[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) c[k] = k < count ? (uint8_t)bnb::code_4bit(bnb::scale_value(v[k], sc), QT) : zero;
      const int64_t byte = (start + j) / 2;
      if (vec_out && count == 8) {
        const uint32_t w = (uint32_t)((c[0] << 4) | c[1]) | ((uint32_t)((c[2] << 4) | c[3]) << 8) |
                           ((uint32_t)((c[4] << 4) | c[5]) << 16) | ((uint32_t)((c[6] << 4) | c[7]) << 24);
        *reinterpret_cast<uint32_t*>(out + byte) = w;
      } else {
        for (int k = 0; k < (count + 1) / 2; ++k) out[byte + k] = (uint8_t)((c[2 * k] << 4) | c[2 * k + 1]);
      }
    }
  }
  // storage padding past the last code byte
  const uint8_t pad = (uint8_t)((zero << 4) | zero);
  for (int64_t i = (n + 1) / 2 + global_thread_id(); i < out_nbytes; i += grid_threads()) out[i] = pad;
}

template <int D, int QT>
__global__ void __launch_bounds__(kDequantThreads) dequantize_4bit_kernel(const uint8_t* __restrict__ q, int64_t n,
                                                                         const float* __restrict__ absmax,
                                                                         int log2_blocksize,
                                                                         typename DT<D>::T* __restrict__ out) {
  __shared__ float cb[16];
  if (threadIdx.x < 16) cb[threadIdx.x] = bnb::codebook_4bit(QT)[threadIdx.x];
  __syncthreads();
  const bool vec_in = (reinterpret_cast<uintptr_t>(q) & 3u) == 0;
  const bool vec_out = aligned_for_vec<D>(out);
  const int64_t groups = (n + 7) / 8;
  for (int64_t g = global_thread_id(); g < groups; g += grid_threads()) {
    const int64_t i = g * 8;  // 8 elements = 4 bytes, inside one block (blocksize is a multiple of 32)
    const int count = (int)min((int64_t)8, n - i);
    uint32_t w;
    if (vec_in && count == 8) {
      w = *reinterpret_cast<const uint32_t*>(q + i / 2);
    } else {
      w = 0;
      for (int k = 0; k < (count + 1) / 2; ++k) w |= (uint32_t)q[i / 2 + k] << (8 * k);
    }
    const float a = absmax[i >> log2_blocksize];
    float v[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t byte = (w >> (8 * k)) & 0xFFu;
      v[2 * k] = cb[byte >> 4] * a;
      v[2 * k + 1] = cb[byte & 0xFu] * a;
    }
    store8<D>(out, i, count, vec_out, v);
  }
}

// Blocksizes are powers of two (bnb_core/formats.py): >= 16 for 8-bit, 32..4096 for 4-bit.
int check_common(int device, int dtype, int64_t n, int64_t blocksize, int64_t min_blocksize) {
  if (device < 0) return kBadDevice;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (n < 0) return kBadSize;
  if (blocksize < min_blocksize || blocksize > (int64_t(1) << 30) || (blocksize & (blocksize - 1)) != 0)
    return kBadBlocksize;
  return kOk;
}

int log2_of(int64_t pow2) {
  int l = 0;
  while ((int64_t(1) << l) < pow2) ++l;
  return l;
}

int64_t quant_grid(int64_t nblocks) {
  const int warps = kQuantThreads / kWarp;
  int64_t g = (nblocks + warps - 1) / warps;
  return g < 1 ? 1 : (g > (int64_t(1) << 20) ? (int64_t(1) << 20) : g);
}

}  // namespace

int quantize_blockwise(int device, void* stream, int dtype, const void* x, int64_t n, const float* code,
                       int64_t blocksize, uint8_t* out, float* absmax) {
  if (int s = check_common(device, dtype, n, blocksize, BNB_MIN_BLOCKSIZE_8BIT)) return s;
  if (n == 0) return kOk;
  if (!x || !code || !out || !absmax) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  const unsigned grid = (unsigned)quant_grid((n + blocksize - 1) / blocksize);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int s = dispatch_dtype(dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    BNB_LAUNCH(quantize_blockwise_kernel<D>, grid, kQuantThreads, 0, st, static_cast<const typename DT<D>::T*>(x), n,
               code, blocksize, out, absmax);
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

int dequantize_blockwise(int device, void* stream, int dtype_out, const uint8_t* q, int64_t n, const float* code,
                         const float* absmax, int64_t blocksize, void* out) {
  if (int s = check_common(device, dtype_out, n, blocksize, BNB_MIN_BLOCKSIZE_8BIT)) return s;
  if (n == 0) return kOk;
  if (!q || !code || !out || !absmax) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  const unsigned grid = grid_for((n + 7) / 8, kDequantThreads);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int s = dispatch_dtype(dtype_out, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    BNB_LAUNCH(dequantize_blockwise_kernel<D>, grid, kDequantThreads, 0, st, q, n, code, absmax, log2_of(blocksize),
               static_cast<typename DT<D>::T*>(out));
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

int quantize_4bit(int device, void* stream, int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type,
                  uint8_t* out, int64_t out_nbytes, float* absmax) {
  if (int s = check_common(device, dtype, n, blocksize, BNB_MIN_BLOCKSIZE_4BIT)) return s;
  if (blocksize > BNB_MAX_BLOCKSIZE_4BIT) return kBadBlocksize;
  if (quant_type != 0 && quant_type != 1) return kBadQuantType;
  if (out_nbytes < (n + 1) / 2) return kOutputTooSmall;
  if (n == 0 && out_nbytes == 0) return kOk;
  if (!out || (n > 0 && (!x || !absmax))) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  const unsigned grid = (unsigned)quant_grid((n + blocksize - 1) / blocksize);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int s = dispatch_dtype(dtype, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    using T = typename DT<D>::T;
    if (quant_type == 0)
      BNB_LAUNCH((quantize_4bit_kernel<D, 0>), grid, kQuantThreads, 0, st, static_cast<const T*>(x), n, blocksize, out,
                 out_nbytes, absmax);
    else
      BNB_LAUNCH((quantize_4bit_kernel<D, 1>), grid, kQuantThreads, 0, st, static_cast<const T*>(x), n, blocksize, out,
                 out_nbytes, absmax);
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

int dequantize_4bit(int device, void* stream, int dtype_out, const uint8_t* q, int64_t n, const float* absmax,
                    int64_t blocksize, int quant_type, void* out) {
  if (int s = check_common(device, dtype_out, n, blocksize, BNB_MIN_BLOCKSIZE_4BIT)) return s;
  if (blocksize > BNB_MAX_BLOCKSIZE_4BIT) return kBadBlocksize;
  if (quant_type != 0 && quant_type != 1) return kBadQuantType;
  if (n == 0) return kOk;
  if (!q || !absmax || !out) return kNullPointer;
  DeviceGuard guard(device);
  if (guard.error() != cudaSuccess) return record_cuda_error(guard.error());
  const unsigned grid = grid_for((n + 7) / 8, kDequantThreads);
  const int lg = log2_of(blocksize);
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int s = dispatch_dtype(dtype_out, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    using T = typename DT<D>::T;
    if (quant_type == 0)
      BNB_LAUNCH((dequantize_4bit_kernel<D, 0>), grid, kDequantThreads, 0, st, q, n, absmax, lg, static_cast<T*>(out));
    else
      BNB_LAUNCH((dequantize_4bit_kernel<D, 1>), grid, kDequantThreads, 0, st, q, n, absmax, lg, static_cast<T*>(out));
    return kOk;
  });
  return s != kOk ? s : launch_status();
}

}  // namespace bnb_cuda
