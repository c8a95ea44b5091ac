// Self-test of the CUDA emulator (backends/cuda/emu) and of the PTX wrappers (backends/cuda/ptx.cuh).
//
// One CUDA source for both worlds:
//   * g++ -x c++ -DBNB_CUDA_EMU (tests/test_cuda_emu.py builds and runs it): the emulator's barriers, warp
//     intrinsics, atomics, conversions, launch checks, PTX fragment layouts and its failure reports;
//   * nvcc (on a machine with a GPU: `nvcc -std=c++17 -arch=sm_90 -Ibackends/common -Ibackends/cuda
//     tests/cuda_emu/selftest.cu -o selftest && ./selftest`): the same checks against the hardware, which is
//     how the emulator's semantics (shuffle segments, ldmatrix/mma layouts, rounding) are validated.
// Sections marked EMU ONLY test what only the emulator can show (deadlock and trap reports, scheduling order,
// deferred cp.async copies) or what would hang or kill a real context.
//
// Expected values are computed on the host from the CUDA / PTX documentation, independently of the emulator.
// Output: "ok test=NAME" per test, then "OK: N checks, F failures"; exit status 1 on any failure.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ptx.cuh"

static int g_checks = 0;
static int g_failures = 0;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    ++g_checks;                                            \
    if (!(cond)) {                                         \
      if (++g_failures <= 60) {                            \
        printf("FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
      }                                                    \
    }                                                      \
  } while (0)

#define CUDA_OK(x)                                                                   \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    CHECK(e_ == cudaSuccess, "%s -> %s", #x, cudaGetErrorName(e_));                  \
  } while (0)

#define SYNC()                           \
  do {                                   \
    CUDA_OK(cudaGetLastError());         \
    CUDA_OK(cudaDeviceSynchronize());    \
  } while (0)

template <class T>
static T* dalloc(size_t n) {
  T* p = nullptr;
  CUDA_OK(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));
  CUDA_OK(cudaMemset(p, 0, (n ? n : 1) * sizeof(T)));
  return p;
}
template <class T>
static void upload(T* d, const std::vector<T>& h) {
  CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T>
static std::vector<T> download(const T* d, size_t n) {
  std::vector<T> h(n);
  CUDA_OK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// ------------------------------------------------------------------------------------ barriers

__global__ void k_barrier(int* out) {
  __shared__ int s[1024];
  const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int n = blockDim.x * blockDim.y * blockDim.z;
  s[t] = t * 3 + blockIdx.x;
  __syncthreads();
  const int v = s[(t + 1) % n];
  __syncthreads();
  s[t] = v + 1;
  __syncthreads();
  out[blockIdx.x * n + t] = s[(t + n - 1) % n];
  out[gridDim.x * n + blockIdx.x * n + t] = (int)(threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16);
}

__global__ void k_sync_reduce(int* out) {
  const int t = threadIdx.x, n = blockDim.x;
  int r[6];
  r[0] = __syncthreads_count(t % 3 == 0);
  r[1] = __syncthreads_and(t < n);
  r[2] = __syncthreads_and(t != 5);
  r[3] = __syncthreads_or(t == n - 1);
  r[4] = __syncthreads_or(0);
  r[5] = __syncthreads_count(1);
  for (int i = 0; i < 6; ++i) out[t * 6 + i] = r[i];
}

static void test_barriers() {
  const dim3 block(8, 5, 3);  // 120 threads: three full warps and one of 24 lanes
  const int n = 120, grid = 5;
  int* d = dalloc<int>(2 * grid * n);
  BNB_LAUNCH(k_barrier, grid, block, 0, 0, d);
  SYNC();
  auto h = download(d, 2 * grid * n);
  for (int b = 0; b < grid; ++b)
    for (int t = 0; t < n; ++t) {
      CHECK(h[b * n + t] == 3 * t + b + 1, "block %d thread %d: %d", b, t, h[b * n + t]);
      const int x = t % 8, y = t / 8 % 5, z = t / 40;
      CHECK(h[grid * n + b * n + t] == (x | y << 8 | z << 16), "threadIdx of linear %d", t);
    }
  cudaFree(d);

  const int m = 77;
  int* r = dalloc<int>(m * 6);
  BNB_LAUNCH(k_sync_reduce, 1, m, 0, 0, r);
  SYNC();
  auto hr = download(r, m * 6);
  for (int t = 0; t < m; ++t) {
    CHECK(hr[t * 6 + 0] == 26, "count(t %% 3 == 0) = %d", hr[t * 6]);
    CHECK(hr[t * 6 + 1] == 1 && hr[t * 6 + 2] == 0, "and: %d %d", hr[t * 6 + 1], hr[t * 6 + 2]);
    CHECK(hr[t * 6 + 3] == 1 && hr[t * 6 + 4] == 0, "or: %d %d", hr[t * 6 + 3], hr[t * 6 + 4]);
    CHECK(hr[t * 6 + 5] == m, "count(1) = %d", hr[t * 6 + 5]);
  }
  cudaFree(r);
}

// ------------------------------------------------------------------------------------ warp shuffles

constexpr int kShflTests = 14;

__global__ void k_shfl(float* out, double* outd, long long* outl) {
  const int t = threadIdx.x, lane = t % 32;
  const float v = t * 1.5f + 0.25f;
  float r[kShflTests];
  r[0] = __shfl_sync(0xFFFFFFFFu, v, (lane * 7 + 3) % 32);
  r[1] = __shfl_sync(0xFFFFFFFFu, v, lane + 37, 8);  // srcLane outside [0, width): modulo width
  r[2] = __shfl_sync(0xFFFFFFFFu, v, 5, 16);
  r[3] = __shfl_up_sync(0xFFFFFFFFu, v, 1);
  r[4] = __shfl_up_sync(0xFFFFFFFFu, v, 5, 8);
  r[5] = __shfl_down_sync(0xFFFFFFFFu, v, 3);
  r[6] = __shfl_down_sync(0xFFFFFFFFu, v, 3, 16);
  r[7] = __shfl_xor_sync(0xFFFFFFFFu, v, 1);
  r[8] = __shfl_xor_sync(0xFFFFFFFFu, v, 5, 8);
  r[9] = __shfl_xor_sync(0xFFFFFFFFu, v, 16, 8);  // lanes 0-15 reach the later segment: own value
  r[10] = __shfl_xor_sync(0xFFFFFFFFu, v, 31);
  r[11] = __shfl_sync(0xFFFFFFFFu, v, lane, 1);
  // divergent halves with their own masks (independent thread scheduling)
  if (lane < 16)
    r[12] = __shfl_xor_sync(0x0000FFFFu, v, 1);
  else
    r[12] = __shfl_down_sync(0xFFFF0000u, v, 2, 16);
  r[13] = v;
  for (int o = 16; o > 0; o >>= 1) r[13] += __shfl_xor_sync(0xFFFFFFFFu, r[13], o, 32);  // butterfly sum
  for (int i = 0; i < kShflTests; ++i) out[i * blockDim.x + t] = r[i];
  outd[t] = __shfl_xor_sync(0xFFFFFFFFu, (double)v * 1e300, 3);
  outl[t] = __shfl_down_sync(0xFFFFFFFFu, (long long)t << 40 | 7, 1);
}

static float shfl_expect(int test, int t, int nthreads) {
  auto val = [](int tt) { return tt * 1.5f + 0.25f; };
  const int lane = t % 32, warp0 = t - lane;
  auto seg = [&](int w) { return lane & ~(w - 1); };
  int src = lane;
  switch (test) {
    case 0: src = (lane * 7 + 3) % 32; break;
    case 1: src = seg(8) + (lane + 37) % 8; break;
    case 2: src = seg(16) + 5; break;
    case 3: src = lane - 1 >= seg(32) ? lane - 1 : lane; break;
    case 4: src = lane - 5 >= seg(8) ? lane - 5 : lane; break;
    case 5: src = lane + 3 < seg(32) + 32 ? lane + 3 : lane; break;
    case 6: src = lane + 3 < seg(16) + 16 ? lane + 3 : lane; break;
    case 7: src = lane ^ 1; break;
    case 8: src = (lane ^ 5) < seg(8) + 8 ? lane ^ 5 : lane; break;
    case 9: src = (lane ^ 16) < seg(8) + 8 ? lane ^ 16 : lane; break;
    case 10: src = lane ^ 31; break;
    case 11: src = lane; break;
    case 12:
      if (lane < 16) src = lane ^ 1;
      else src = lane + 2 < seg(16) + 16 ? lane + 2 : lane;
      break;
    case 13: {
      float s = 0;  // order-independent here: all values are exact multiples of 0.25 below 2^20
      for (int l = 0; l < 32; ++l) s += val(warp0 + l);
      return s;
    }
  }
  (void)nthreads;
  return val(warp0 + src);
}

static void test_shuffles() {
  const int n = 64;
  float* d = dalloc<float>(kShflTests * n);
  double* dd = dalloc<double>(n);
  long long* dl = dalloc<long long>(n);
  BNB_LAUNCH(k_shfl, 1, n, 0, 0, d, dd, dl);
  SYNC();
  auto h = download(d, kShflTests * n);
  auto hd = download(dd, n);
  auto hl = download(dl, n);
  for (int test = 0; test < kShflTests; ++test)
    for (int t = 0; t < n; ++t) {
      const float e = shfl_expect(test, t, n);
      CHECK(h[test * n + t] == e, "shfl test %d thread %d: %g != %g", test, t, h[test * n + t], e);
    }
  for (int t = 0; t < n; ++t) {
    const int src = (t & ~31) + ((t % 32) ^ 3);
    CHECK(hd[t] == (double)(src * 1.5f + 0.25f) * 1e300, "double shfl %d", t);
    const int srcl = t % 32 + 1 < 32 ? t + 1 : t;
    CHECK(hl[t] == ((long long)srcl << 40 | 7), "long long shfl %d", t);
  }
  cudaFree(d);
  cudaFree(dd);
  cudaFree(dl);
}

// ------------------------------------------------------------------------------------ votes

__global__ void k_vote(unsigned* out) {
  const int t = threadIdx.x, lane = t % 32;
  unsigned r[10];
  r[0] = __any_sync(0xFFFFFFFFu, lane == 17);
  r[1] = __all_sync(0xFFFFFFFFu, lane < 32);
  r[2] = __all_sync(0xFFFFFFFFu, lane != 3);
  r[3] = __ballot_sync(0xFFFFFFFFu, lane % 5 == 0);
  if (lane < 8)
    r[4] = __ballot_sync(0x000000FFu, lane % 2);
  else
    r[4] = __ballot_sync(0xFFFFFF00u, lane % 3 == 0);
  __syncwarp();
  r[5] = __match_any_sync(0xFFFFFFFFu, lane / 4);
  int pred = -1;
  r[6] = __match_all_sync(0xFFFFFFFFu, 42, &pred);
  r[7] = (unsigned)pred;
#if BNB_PTX_SM >= 800 || BNB_PTX_DECLARE  // __reduce_*_sync: sm_80+
  r[8] = __reduce_add_sync(0xFFFFFFFFu, (unsigned)lane);
  r[9] = __reduce_max_sync(0xFFFFFFFFu, (unsigned)(lane * 37 % 31));
#else
  r[8] = r[9] = 0xFFFFFFFFu;
#endif
  for (int i = 0; i < 10; ++i) out[i * blockDim.x + t] = r[i];
}

__global__ void k_partial_warp(unsigned* out) {  // 48 threads: warp 1 has lanes 0-15 only
  const unsigned act = __activemask();
  out[threadIdx.x] = act;
  out[48 + threadIdx.x] = __ballot_sync(act, 1);
  out[96 + threadIdx.x] = (unsigned)__shfl_down_sync(act, (int)threadIdx.x, 1);
}

static void test_votes() {
  int cc_major = 0;
  CUDA_OK(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, 0));
  const int n = 64;
  unsigned* d = dalloc<unsigned>(10 * n);
  BNB_LAUNCH(k_vote, 1, n, 0, 0, d);
  SYNC();
  auto h = download(d, 10 * n);
  unsigned ball5 = 0, b_lo = 0, b_hi = 0;
  for (int l = 0; l < 32; ++l) {
    if (l % 5 == 0) ball5 |= 1u << l;
    if (l < 8 && l % 2) b_lo |= 1u << l;
    if (l >= 8 && l % 3 == 0) b_hi |= 1u << l;
  }
  for (int t = 0; t < n; ++t) {
    const int lane = t % 32;
    CHECK(h[0 * n + t] == 1 && h[1 * n + t] == 1 && h[2 * n + t] == 0, "any/all lane %d", lane);
    CHECK(h[3 * n + t] == ball5, "ballot %08x", h[3 * n + t]);
    CHECK(h[4 * n + t] == (lane < 8 ? b_lo : b_hi), "partial-mask ballot lane %d: %08x", lane, h[4 * n + t]);
    CHECK(h[5 * n + t] == 0xFu << (4 * (lane / 4)), "match_any %08x", h[5 * n + t]);
    CHECK(h[6 * n + t] == 0xFFFFFFFFu && h[7 * n + t] == 1, "match_all %08x %u", h[6 * n + t], h[7 * n + t]);
    if (cc_major >= 8) {
      CHECK(h[8 * n + t] == 496, "reduce_add %u", h[8 * n + t]);
      CHECK(h[9 * n + t] == 30, "reduce_max %u", h[9 * n + t]);
    }
  }
  cudaFree(d);

  unsigned* p = dalloc<unsigned>(3 * 48);
  BNB_LAUNCH(k_partial_warp, 1, 48, 0, 0, p);
  SYNC();
  auto hp = download(p, 3 * 48);
  for (int t = 0; t < 48; ++t) {
    const unsigned want = t < 32 ? 0xFFFFFFFFu : 0xFFFFu;
    CHECK(hp[t] == want, "activemask thread %d: %08x", t, hp[t]);
    CHECK(hp[48 + t] == want, "ballot in a partial warp, thread %d: %08x", t, hp[48 + t]);
    if (t != 47)  // lane 15 of warp 1 would read lane 16, which does not exist (undefined)
      CHECK(hp[96 + t] == (unsigned)(t != 31 ? t + 1 : t), "shfl_down in a partial warp, thread %d: %u", t,
            hp[96 + t]);
  }
  cudaFree(p);
}

// ------------------------------------------------------------------------------------ atomics

__global__ void k_atomics(int* ci, float* cf, unsigned* cu, int* cm, unsigned long long* cl, int* block_sums) {
  __shared__ int s;
  const int t = threadIdx.x;
  const int g = blockIdx.x * blockDim.x + t;
  if (t == 0) s = 0;
  __syncthreads();
  atomicAdd(&s, t);
  atomicAdd(ci, 1);
  atomicAdd(cf, 0.5f);
  atomicInc(cu, 9u);
  atomicMax(cm, (g * 7919) % 1000);
  atomicAdd(cl, (unsigned long long)g << 33);
  int old = *ci, assumed;  // CAS loop: ci2 += 2 through atomicCAS
  do {
    assumed = old;
    old = atomicCAS(ci + 1, assumed, assumed + 2);
  } while (old != assumed);
  __syncthreads();
  if (t == 0) block_sums[blockIdx.x] = s;
}

static void test_atomics() {
  const int grid = 7, block = 96, total = grid * block;
  int* ci = dalloc<int>(2);
  float* cf = dalloc<float>(1);
  unsigned* cu = dalloc<unsigned>(1);
  int* cm = dalloc<int>(1);
  unsigned long long* cl = dalloc<unsigned long long>(1);
  int* bs = dalloc<int>(grid);
  BNB_LAUNCH(k_atomics, grid, block, 0, 0, ci, cf, cu, cm, cl, bs);
  SYNC();
  auto hi = download(ci, 2);
  CHECK(hi[0] == total && hi[1] == 2 * total, "atomicAdd int %d, CAS loop %d", hi[0], hi[1]);
  CHECK(download(cf, 1)[0] == 0.5f * total, "atomicAdd float %g", download(cf, 1)[0]);
  CHECK(download(cu, 1)[0] == (unsigned)(total % 10), "atomicInc wraps: %u", download(cu, 1)[0]);
  int mx = 0;
  unsigned long long sl = 0;
  for (int g = 0; g < total; ++g) {
    mx = std::max(mx, (g * 7919) % 1000);
    sl += (unsigned long long)g << 33;
  }
  CHECK(download(cm, 1)[0] == mx, "atomicMax %d != %d", download(cm, 1)[0], mx);
  CHECK(download(cl, 1)[0] == sl, "atomicAdd u64");
  auto hb = download(bs, grid);
  for (int b = 0; b < grid; ++b) CHECK(hb[b] == block * (block - 1) / 2, "shared atomicAdd block %d: %d", b, hb[b]);
  cudaFree(ci);
  cudaFree(cf);
  cudaFree(cu);
  cudaFree(cm);
  cudaFree(cl);
  cudaFree(bs);
}

// ------------------------------------------------------------------------------------ launch, shared memory

__global__ void k_dyn(float* out, int n) {
  BNB_DYNAMIC_SMEM(float, buf);
  for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = i * 0.5f + blockIdx.x;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[blockIdx.x * n + i] = buf[n - 1 - i] * 2.0f;
}

__global__ void k_noop(int* out) {
  if (out) out[0] = 1;
}

__global__ void k_gridstride(int* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = 2 * i + 1;
  if (blockIdx.x == 0 && threadIdx.x == 0) out[n] = (int)gridDim.x;
}

static void check_dyn(float* d, int n, int grid) {
  auto h = download(d, (size_t)n * grid);
  bool ok = true;
  for (int b = 0; b < grid; ++b)
    for (int i = 0; i < n; ++i) ok &= h[(size_t)b * n + i] == ((n - 1 - i) * 0.5f + b) * 2.0f;
  CHECK(ok, "dynamic shared memory contents (n=%d)", n);
}

static void test_launch() {
  const int n1 = 750;  // 3000 bytes
  float* d = dalloc<float>(25600 * 3);
  BNB_LAUNCH(k_dyn, 3, 128, n1 * 4, 0, d, n1);
  SYNC();
  check_dyn(d, n1, 3);

  const int n2 = 25600;  // 100 KiB: above the default 48 KiB until the kernel opts in
  BNB_LAUNCH(k_dyn, 2, 256, n2 * 4, 0, d, n2);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue, "100 KiB of dynamic shared memory without opting in");
  CUDA_OK(cudaFuncSetAttribute(k_dyn, cudaFuncAttributeMaxDynamicSharedMemorySize, n2 * 4));
  BNB_LAUNCH(k_dyn, 2, 256, n2 * 4, 0, d, n2);
  SYNC();
  check_dyn(d, n2, 2);
  cudaFree(d);

  BNB_LAUNCH(k_noop, 1, 2048, 0, 0, nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads per block");
  CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError clears the error");
  BNB_LAUNCH(k_noop, dim3(1, 1, 1), dim3(1, 1, 65), 0, 0, nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "blockDim.z 65");
  BNB_LAUNCH(k_noop, 0, 32, 0, 0, nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "empty grid");

  int dev = -1;
  CUDA_OK(cudaGetDevice(&dev));
  CHECK(dev == 0, "device %d", dev);
  int nd = 0;
  CUDA_OK(cudaGetDeviceCount(&nd));
  CHECK(nd >= 1, "device count %d", nd);
  CHECK(cudaSetDevice(nd) == cudaErrorInvalidDevice, "cudaSetDevice(count) must fail");
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice, "the failed call is the last error");
  CHECK(strcmp(cudaGetErrorName(cudaErrorInvalidDevice), "cudaErrorInvalidDevice") == 0, "error name");

  const int n = 100000;
  int* g = dalloc<int>(n + 1);
  BNB_LAUNCH(k_gridstride, (n + 255) / 256, 256, 0, 0, g, n);
  SYNC();
  auto hg = download(g, n + 1);
  bool ok = true;
  for (int i = 0; i < n; ++i) ok &= hg[i] == 2 * i + 1;
  CHECK(ok && hg[n] == (n + 255) / 256, "grid-stride, full grid (%d)", hg[n]);
#if defined(BNB_CUDA_EMU)  // EMU ONLY: the grid clamp
  CUDA_OK(cudaMemset(g, 0, (n + 1) * sizeof(int)));
  bnb_emu::reset_stats();
  bnb_emu::set_max_grid(3);
  BNB_LAUNCH(k_gridstride, (n + 255) / 256, 256, 0, 0, g, n);
  bnb_emu::set_max_grid(0);
  SYNC();
  hg = download(g, n + 1);
  ok = true;
  for (int i = 0; i < n; ++i) ok &= hg[i] == 2 * i + 1;
  CHECK(ok && hg[n] == 3, "grid-stride under set_max_grid(3): gridDim.x %d", hg[n]);
  CHECK(bnb_emu::stats().blocks == 3, "blocks run %llu", (unsigned long long)bnb_emu::stats().blocks);
#endif
  cudaFree(g);
}

// ------------------------------------------------------------------------------------ fp16 / bf16

__global__ void k_h2f(const uint16_t* h, float* f, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    f[i] = __half2float(__ushort_as_half(h[i]));
  }
}
__global__ void k_f2h(const float* f, uint16_t* h, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    h[i] = __half_as_ushort(__float2half_rn(f[i]));
}
__global__ void k_bf2f(const uint16_t* h, float* f, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    f[i] = __bfloat162float(__ushort_as_bfloat16(h[i]));
}
__global__ void k_f2bf(const float* f, uint16_t* h, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    h[i] = __bfloat16_as_ushort(__float2bfloat16_rn(f[i]));
}

// IEEE binary16 / bfloat16 values from their bit patterns (independent of the emulator's code).
static double half_value(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp((double)m, -24) : ldexp((double)(1024 + m), e - 25);
  if (e == 31) v = m ? NAN : INFINITY;
  return s ? -v : v;
}
static double bf16_value(uint16_t h) { return (double)u2f((uint32_t)h << 16); }

// Round to nearest, ties to even, over the positive finite patterns [0, maxp] of a format whose values are
// `value(p)`; `inf_at` is the smallest magnitude that rounds to infinity (max + half an ulp).
template <class V>
static uint16_t round_rne(float f, V value, uint16_t maxp, double inf_at, uint16_t inf_bits) {
  const uint16_t sign = signbit(f) ? 0x8000 : 0;
  const double a = fabs((double)f);
  if (a >= inf_at) return sign | inf_bits;
  int lo = 0, hi = maxp;  // largest p with value(p) <= a
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (value((uint16_t)mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo == maxp) return sign | (uint16_t)lo;  // between max and inf_at
  const double d0 = a - value((uint16_t)lo), d1 = value((uint16_t)(lo + 1)) - a;
  uint16_t p = (uint16_t)lo;
  if (d1 < d0 || (d1 == d0 && (lo & 1))) p = (uint16_t)(lo + 1);
  return sign | p;
}

static void conversion_inputs(std::vector<float>& in, double (*value)(uint16_t), uint16_t maxp) {
  for (int p = 0; p <= maxp; ++p) {
    const float v = (float)value((uint16_t)p);
    in.push_back(v);
    if (p < maxp) {
      const float mid = (float)((value((uint16_t)p) + value((uint16_t)(p + 1))) / 2);  // exact in fp32
      in.push_back(mid);
      in.push_back(nextafterf(mid, 0.0f));
      in.push_back(nextafterf(mid, INFINITY));
    }
  }
  const size_t k = in.size();
  for (size_t i = 0; i < k; ++i) in.push_back(-in[i]);
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) in.push_back(u2f(rng()));
  for (float s : {1e-45f, 1e-40f, 1e30f, 3.4e38f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.996f, 65520.0f,
                  2.98023224e-8f /* 2^-25 */, 2.9802326e-8f, 1.4901161e-8f, -0.0f})
    in.push_back(s);
}

static void check_conversions(const char* what, void (*to16)(const float*, uint16_t*, int),
                              void (*to32)(const uint16_t*, float*, int), double (*value)(uint16_t), uint16_t maxp,
                              double inf_at, uint16_t inf_bits) {
  // widening: every pattern
  std::vector<uint16_t> pat(65536);
  for (int i = 0; i < 65536; ++i) pat[i] = (uint16_t)i;
  uint16_t* dp = dalloc<uint16_t>(65536);
  float* df = dalloc<float>(65536);
  upload(dp, pat);
  to32(dp, df, 65536);
  SYNC();
  auto hf = download(df, 65536);
  int bad = 0;
  for (int i = 0; i < 65536; ++i) {
    const double v = value((uint16_t)i);
    const bool ok = std::isnan(v) ? std::isnan(hf[i]) : (double)hf[i] == v && signbit(hf[i]) == signbit(v);
    if (!ok && bad++ < 5) printf("  %s widen 0x%04x: %a != %a\n", what, i, hf[i], v);
  }
  CHECK(bad == 0, "%s widening: %d of 65536 patterns wrong", what, bad);
  cudaFree(dp);
  cudaFree(df);

  // narrowing: every value, every midpoint and its neighbours, random floats, specials
  std::vector<float> in;
  conversion_inputs(in, value, maxp);
  const int n = (int)in.size();
  float* di = dalloc<float>(n);
  uint16_t* dout = dalloc<uint16_t>(n);
  upload(di, in);
  to16(di, dout, n);
  SYNC();
  auto h = download(dout, n);
  bad = 0;
  int nan_canonical = 0, nans = 0;
  for (int i = 0; i < n; ++i) {
    bool ok;
    if (std::isnan(in[i])) {
      ++nans;
      ok = std::isnan(value(h[i]));
      nan_canonical += h[i] == 0x7FFF;
    } else {
      const uint16_t e = round_rne(in[i], value, maxp, inf_at, inf_bits);
      ok = h[i] == e;
      if (!ok && bad < 5) printf("  %s narrow %a: 0x%04x != 0x%04x\n", what, in[i], h[i], e);
    }
    bad += !ok;
  }
  CHECK(bad == 0, "%s narrowing: %d of %d values wrong", what, bad, n);
  // The emulator's documented choice (CUDA's host conversions and cvt.rn give the canonical NaN 0x7FFF).
  CHECK(nan_canonical == nans, "%s: %d of %d NaNs narrowed to 0x7FFF", what, nan_canonical, nans);
  cudaFree(di);
  cudaFree(dout);
}

static void run_h2f(const uint16_t* h, float* f, int n) { BNB_LAUNCH(k_h2f, 64, 256, 0, 0, h, f, n); }
static void run_f2h(const float* f, uint16_t* h, int n) { BNB_LAUNCH(k_f2h, 64, 256, 0, 0, f, h, n); }
static void run_bf2f(const uint16_t* h, float* f, int n) { BNB_LAUNCH(k_bf2f, 64, 256, 0, 0, h, f, n); }
static void run_f2bf(const float* f, uint16_t* h, int n) { BNB_LAUNCH(k_f2bf, 64, 256, 0, 0, f, h, n); }

static void test_conversions() {
  check_conversions("fp16", run_f2h, run_h2f, half_value, 0x7BFF, 65520.0, 0x7C00);
  check_conversions("bf16", run_f2bf, run_bf2f, bf16_value, 0x7F7F, (double)u2f(0x7F7F0000u) + ldexp(1.0, 119),
                    0x7F80);
}

// ------------------------------------------------------------------------------------ math intrinsics

__global__ void k_math(const float* x, int n, int* oi, unsigned* ou, float* of) {
  const int i = threadIdx.x;
  if (i < n) {
    oi[4 * i + 0] = __float2int_rn(x[i]);
    oi[4 * i + 1] = __float2int_rz(x[i]);
    oi[4 * i + 2] = __float2int_rd(x[i]);
    oi[4 * i + 3] = __float2int_ru(x[i]);
    ou[i] = __float2uint_rn(x[i]);
    of[2 * i] = __saturatef(x[i]);
    of[2 * i + 1] = sqrtf(fabsf(x[i]));
  }
  if (i == 0) {
    unsigned* u = ou + n;
    u[0] = __byte_perm(0x33221100u, 0x77665544u, 0x7351u);
    u[1] = __byte_perm(0x33221100u, 0x77665544u, 0x0246u);
    u[2] = __funnelshift_l(0x89ABCDEFu, 0x01234567u, 8);
    u[3] = __funnelshift_r(0x89ABCDEFu, 0x01234567u, 36);
    u[4] = __funnelshift_rc(0x89ABCDEFu, 0x01234567u, 36);
    u[5] = __brev(0x00000001u);
    u[6] = (unsigned)__popc(0xF0F0F0F1u);
    u[7] = (unsigned)__clz(0);
    u[8] = (unsigned)__clz(0x00010000);
    u[9] = (unsigned)__ffs(0);
    u[10] = (unsigned)__ffs(0x00000008);
    u[11] = (unsigned)__dp4a((int)0x01FF7F80, (int)0x0202FF80, 5);
    u[12] = __umulhi(0xFFFFFFFFu, 0xFFFFFFFFu);
    u[13] = (unsigned)__mulhi(-2, 0x40000000);
    u[14] = (unsigned)min(-3, 5);
    u[15] = (unsigned)max((long long)7, (long long)-9);
  }
}

static void test_math() {
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.49999f, 1e10f, -1e10f, NAN, 0.0f,
                                -0.0f, 0.75f, 1.0f, 1.25f, -7.5f, 4294967296.0f, 2.0f};
  const int n = (int)x.size();
  float* dx = dalloc<float>(n);
  int* oi = dalloc<int>(4 * n);
  unsigned* ou = dalloc<unsigned>(n + 16);
  float* of = dalloc<float>(2 * n);
  upload(dx, x);
  BNB_LAUNCH(k_math, 1, 32, 0, 0, dx, n, oi, ou, of);
  SYNC();
  auto hi = download(oi, 4 * n);
  auto hu = download(ou, n + 16);
  auto hf = download(of, 2 * n);
  auto sat_i = [](double r) -> int {
    if (std::isnan(r)) return 0;
    if (r >= 2147483647.0) return 2147483647;
    if (r <= -2147483648.0) return (int)-2147483648LL;
    return (int)r;
  };
  for (int i = 0; i < n; ++i) {
    const double v = x[i];
    CHECK(hi[4 * i + 0] == sat_i(nearbyint(v)), "__float2int_rn(%g) = %d", v, hi[4 * i]);
    CHECK(hi[4 * i + 1] == sat_i(trunc(v)), "__float2int_rz(%g) = %d", v, hi[4 * i + 1]);
    CHECK(hi[4 * i + 2] == sat_i(floor(v)), "__float2int_rd(%g) = %d", v, hi[4 * i + 2]);
    CHECK(hi[4 * i + 3] == sat_i(ceil(v)), "__float2int_ru(%g) = %d", v, hi[4 * i + 3]);
    const double r = nearbyint(v);
    const unsigned eu = std::isnan(r) || r <= 0 ? 0u : (r >= 4294967295.0 ? 0xFFFFFFFFu : (unsigned)r);
    CHECK(hu[i] == eu, "__float2uint_rn(%g) = %u", v, hu[i]);
    const float es = std::isnan(v) ? 0.0f : (float)fmin(fmax(v, 0.0), 1.0);
    CHECK(hf[2 * i] == es, "__saturatef(%g) = %g", v, hf[2 * i]);
    CHECK(f2u(hf[2 * i + 1]) == f2u(sqrtf(fabsf(x[i]))), "sqrtf(%g) not correctly rounded", v);
  }
  const unsigned* u = hu.data() + n;
  CHECK(u[0] == 0x77335511u, "__byte_perm 0x7351: %08x", u[0]);
  CHECK(u[1] == 0x00224466u, "__byte_perm 0x0246: %08x", u[1]);
  CHECK(u[2] == 0x23456789u, "__funnelshift_l: %08x", u[2]);
  CHECK(u[3] == 0x789ABCDEu, "__funnelshift_r (shift & 31): %08x", u[3]);
  CHECK(u[4] == 0x01234567u, "__funnelshift_rc (clamped to 32): %08x", u[4]);
  CHECK(u[5] == 0x80000000u, "__brev %08x", u[5]);
  CHECK(u[6] == 17 && u[7] == 32 && u[8] == 15 && u[9] == 0 && u[10] == 4, "popc/clz/ffs %u %u %u %u %u", u[6], u[7],
        u[8], u[9], u[10]);
  CHECK((int)u[11] == 1 * 2 + (-1) * 2 + 127 * (-1) + (-128) * (-128) + 5, "__dp4a %d", (int)u[11]);
  CHECK(u[12] == 0xFFFFFFFEu && (int)u[13] == -1, "__umulhi %08x __mulhi %d", u[12], (int)u[13]);
  CHECK((int)u[14] == -3 && u[15] == 7, "min/max %d %u", (int)u[14], u[15]);
  cudaFree(dx);
  cudaFree(oi);
  cudaFree(ou);
  cudaFree(of);
}

// ------------------------------------------------------------------------------------ ldmatrix

// Four 8x8 matrices of 16-bit elements, rows padded to 16 elements (32 bytes): element (j, r, c) holds
// j << 12 | r << 4 | c. variant: 0 x1, 1 x2, 2 x4, 3 x1.trans, 4 x2.trans, 5 x4.trans.
__global__ void k_ldmatrix(uint32_t* out) {
  __shared__ __align__(16) uint16_t s[4 * 8 * 16];
  for (int i = threadIdx.x; i < 4 * 8 * 16; i += blockDim.x) {
    const int j = i / 128, r = i / 16 % 8, c = i % 16;
    s[i] = (uint16_t)(j << 12 | r << 4 | c);
  }
  __syncthreads();
#if BNB_HAS_LDMATRIX
  const int lane = threadIdx.x;
  const uint16_t* row = &s[(lane / 8) * 128 + (lane % 8) * 16];
  uint32_t r[4] = {0, 0, 0, 0};
  bnb_cuda::ptx::ldmatrix_x1(r, row);
  out[0 * 128 + lane * 4] = r[0];
  bnb_cuda::ptx::ldmatrix_x2(r, row);
  for (int j = 0; j < 2; ++j) out[1 * 128 + lane * 4 + j] = r[j];
  bnb_cuda::ptx::ldmatrix_x4(r, row);
  for (int j = 0; j < 4; ++j) out[2 * 128 + lane * 4 + j] = r[j];
  bnb_cuda::ptx::ldmatrix_x1_trans(r, row);
  out[3 * 128 + lane * 4] = r[0];
  bnb_cuda::ptx::ldmatrix_x2_trans(r, row);
  for (int j = 0; j < 2; ++j) out[4 * 128 + lane * 4 + j] = r[j];
  bnb_cuda::ptx::ldmatrix_x4_trans(r, row);
  for (int j = 0; j < 4; ++j) out[5 * 128 + lane * 4 + j] = r[j];
#else
  (void)out;
#endif
}

static void test_ldmatrix() {
#if BNB_HAS_LDMATRIX || !defined(BNB_CUDA_EMU)
  uint32_t* d = dalloc<uint32_t>(6 * 128);
  BNB_LAUNCH(k_ldmatrix, 1, 32, 0, 0, d);
  SYNC();
  auto h = download(d, 6 * 128);
  auto elem = [](int j, int r, int c) { return (uint32_t)(j << 12 | r << 4 | c); };
  const int nums[3] = {1, 2, 4};
  for (int v = 0; v < 6; ++v) {
    const bool trans = v >= 3;
    const int num = nums[v % 3];
    for (int lane = 0; lane < 32; ++lane)
      for (int j = 0; j < num; ++j) {
        uint32_t want = 0;
        for (int hh = 0; hh < 2; ++hh) {
          const int r = trans ? 2 * (lane % 4) + hh : lane / 4;
          const int c = trans ? lane / 4 : 2 * (lane % 4) + hh;
          want |= elem(j, r, c) << (16 * hh);
        }
        CHECK(h[v * 128 + lane * 4 + j] == want, "ldmatrix x%d%s lane %d reg %d: %08x != %08x", num,
              trans ? ".trans" : "", lane, j, h[v * 128 + lane * 4 + j], want);
      }
  }
  cudaFree(d);
#endif
}

// ------------------------------------------------------------------------------------ mma

// The documented fragment layouts, written out per element (test code, independent of ptx.cuh).
__device__ __forceinline__ uint32_t pack16(uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; }
__device__ __forceinline__ uint32_t pack8(const int8_t* p) {
  return (uint32_t)(uint8_t)p[0] | (uint32_t)(uint8_t)p[1] << 8 | (uint32_t)(uint8_t)p[2] << 16 |
         (uint32_t)(uint8_t)p[3] << 24;
}

// A 16x16 row-major, B 16x8 row-major ([k][n]), C/D 16x8 row-major, 16-bit patterns (fp16 or bf16).
// mode 0: fragments per the PTX tables; 1: ldmatrix.x4 (A) + ldmatrix.x2.trans (B [k][n]);
// 2: ldmatrix.x4 (A) + ldmatrix.x2 (B^T stored [n][k]).
template <bool BF16>
__global__ void k_mma_f16(const uint16_t* A, const uint16_t* B, const float* C, float* D, int mode) {
#if BNB_HAS_MMA_M16N8K16
  __shared__ __align__(16) uint16_t As[16 * 16];
  __shared__ __align__(16) uint16_t Bs[16 * 8];
  __shared__ __align__(16) uint16_t Bt[8 * 16];
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  for (int i = lane; i < 256; i += 32) As[i] = A[i];
  for (int i = lane; i < 128; i += 32) {
    Bs[i] = B[i];
    Bt[(i % 8) * 16 + i / 8] = B[i];
  }
  __syncthreads();
  uint32_t a[4], b[2];
  if (mode == 0) {
    // a_i: row g (+8 for i in {2,3,6,7}), col 2t + (i & 1) (+8 for i >= 4)
    a[0] = pack16(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
    a[1] = pack16(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
    a[2] = pack16(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
    a[3] = pack16(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
    // b_i: row (k) 2t + (i & 1) (+8 for i >= 2), col (n) g
    b[0] = pack16(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
    b[1] = pack16(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
  } else {
    bnb_cuda::ptx::ldmatrix_x4(a, &As[(lane % 16) * 16 + (lane / 16) * 8]);
    if (mode == 1)
      bnb_cuda::ptx::ldmatrix_x2_trans(b, &Bs[(lane % 16) * 8]);
    else
      bnb_cuda::ptx::ldmatrix_x2(b, &Bt[(lane % 8) * 16 + ((lane / 8) % 2) * 8]);
  }
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
  if (BF16)
    bnb_cuda::ptx::mma_m16n8k16_bf16_f32(d, a, b, c);
  else
    bnb_cuda::ptx::mma_m16n8k16_f16_f32(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
#else
  (void)A, (void)B, (void)C, (void)D, (void)mode;
#endif
}

// A 16x32 s8 row-major, B 32x8 s8 row-major ([k][n]); mode 0 fragments per the table, 1 ldmatrix (b16 view:
// A rows of 32 bytes, B^T rows [n][k]).
__global__ void k_mma_s8(const int8_t* A, const int8_t* B, const int32_t* C, int32_t* D, int mode) {
#if BNB_HAS_MMA_S8_M16N8K32
  __shared__ __align__(16) int8_t As[16 * 32];
  __shared__ __align__(16) int8_t Bt[8 * 32];
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  for (int i = lane; i < 512; i += 32) As[i] = A[i];
  for (int i = lane; i < 256; i += 32) Bt[(i % 8) * 32 + i / 8] = B[i];
  __syncthreads();
  uint32_t a[4], b[2];
  if (mode == 0) {
    // a_i: row g (+8 for i in [4,8) and [12,16)), col 4t + (i & 3) (+16 for i >= 8)
    a[0] = pack8(&A[g * 32 + 4 * t]);
    a[1] = pack8(&A[(g + 8) * 32 + 4 * t]);
    a[2] = pack8(&A[g * 32 + 4 * t + 16]);
    a[3] = pack8(&A[(g + 8) * 32 + 4 * t + 16]);
    // b_i: row (k) 4t + (i & 3) (+16 for i >= 4), col (n) g
    int8_t bb[8];
    for (int i = 0; i < 8; ++i) bb[i] = B[(4 * t + (i & 3) + 16 * (i >> 2)) * 8 + g];
    b[0] = pack8(bb);
    b[1] = pack8(bb + 4);
  } else {
    bnb_cuda::ptx::ldmatrix_x4(a, &As[(lane % 16) * 32 + (lane / 16) * 16]);
    bnb_cuda::ptx::ldmatrix_x2(b, &Bt[(lane % 8) * 32 + ((lane / 8) % 2) * 16]);
  }
  int32_t c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
  bnb_cuda::ptx::mma_m16n8k32_s8_s32(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
#else
  (void)A, (void)B, (void)C, (void)D, (void)mode;
#endif
}

// A 8x16 s8, B 16x8 s8 ([k][n]), C/D 8x8 s32.
__global__ void k_mma_s8_m8n8k16(const int8_t* A, const int8_t* B, const int32_t* C, int32_t* D) {
#if BNB_HAS_MMA_S8_M8N8K16
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  const uint32_t a = pack8(&A[g * 16 + 4 * t]);
  int8_t bb[4];
  for (int i = 0; i < 4; ++i) bb[i] = B[(4 * t + i) * 8 + g];
  const uint32_t b = pack8(bb);
  int32_t c[2] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1]}, d[2];
  bnb_cuda::ptx::mma_m8n8k16_s8_s32(d, a, b, c);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
#else
  (void)A, (void)B, (void)C, (void)D;
#endif
}

static uint16_t half_bits_of(double v) { return round_rne((float)v, half_value, 0x7BFF, 65520.0, 0x7C00); }

static void test_mma() {
#if BNB_HAS_MMA_M16N8K16 || !defined(BNB_CUDA_EMU)
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(-64, 64);
  for (int bf = 0; bf < 2; ++bf) {
    std::vector<uint16_t> A(256), B(128);
    std::vector<float> C(128);
    std::vector<double> Av(256), Bv(128);
    for (int i = 0; i < 256; ++i) {
      const double v = small(rng) / 16.0;  // exact in fp16 and bf16
      A[i] = bf ? (uint16_t)(f2u((float)v) >> 16) : half_bits_of(v);
      Av[i] = v;
    }
    for (int i = 0; i < 128; ++i) {
      const double v = small(rng) / 8.0;
      B[i] = bf ? (uint16_t)(f2u((float)v) >> 16) : half_bits_of(v);
      Bv[i] = v;
      C[i] = (float)(small(rng) / 4.0);
    }
    uint16_t *dA = dalloc<uint16_t>(256), *dB = dalloc<uint16_t>(128);
    float *dC = dalloc<float>(128), *dD = dalloc<float>(128);
    upload(dA, A);
    upload(dB, B);
    upload(dC, C);
    for (int mode = 0; mode < 3; ++mode) {
      CUDA_OK(cudaMemset(dD, 0, 128 * sizeof(float)));
      if (bf)
        BNB_LAUNCH(k_mma_f16<true>, 1, 32, 0, 0, dA, dB, dC, dD, mode);
      else
        BNB_LAUNCH(k_mma_f16<false>, 1, 32, 0, 0, dA, dB, dC, dD, mode);
      SYNC();
      auto D = download(dD, 128);
      int bad = 0;
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
          double e = C[m * 8 + n];
          for (int k = 0; k < 16; ++k) e += Av[m * 16 + k] * Bv[k * 8 + n];
          // small multiples of 1/128: every partial sum is exact in fp32, so any order gives e exactly
          if ((double)D[m * 8 + n] != e && bad++ < 3)
            printf("  mma %s mode %d D[%d][%d] = %g != %g\n", bf ? "bf16" : "f16", mode, m, n, D[m * 8 + n], e);
        }
      CHECK(bad == 0, "mma.m16n8k16 %s mode %d: %d wrong outputs", bf ? "bf16" : "f16", mode, bad);
    }
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    cudaFree(dD);
  }
#endif
#if BNB_HAS_MMA_S8_M16N8K32 || !defined(BNB_CUDA_EMU)
  {
    std::mt19937 rng(11);
    std::vector<int8_t> A(512), B(256);
    std::vector<int32_t> C(128);
    for (auto& v : A) v = (int8_t)(rng() & 0xFF);
    for (auto& v : B) v = (int8_t)(rng() & 0xFF);
    A[0] = -128, B[0] = -128, A[1] = 127, B[8] = 127;
    for (auto& v : C) v = (int32_t)(rng() % 2000001) - 1000000;
    C[0] = 0x7FFFFFF0;  // wraps: s32 accumulation without .satfinite
    int8_t *dA = dalloc<int8_t>(512), *dB = dalloc<int8_t>(256);
    int32_t *dC = dalloc<int32_t>(128), *dD = dalloc<int32_t>(128);
    upload(dA, A);
    upload(dB, B);
    upload(dC, C);
    for (int mode = 0; mode < 2; ++mode) {
      BNB_LAUNCH(k_mma_s8, 1, 32, 0, 0, dA, dB, dC, dD, mode);
      SYNC();
      auto D = download(dD, 128);
      int bad = 0;
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
          uint32_t e = (uint32_t)C[m * 8 + n];
          for (int k = 0; k < 32; ++k) e += (uint32_t)(A[m * 32 + k] * B[k * 8 + n]);
          bad += D[m * 8 + n] != (int32_t)e;
        }
      CHECK(bad == 0, "mma.m16n8k32.s8 mode %d: %d wrong outputs", mode, bad);
    }
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    cudaFree(dD);
  }
#endif
#if BNB_HAS_MMA_S8_M8N8K16 || !defined(BNB_CUDA_EMU)
  {
    std::mt19937 rng(13);
    std::vector<int8_t> A(128), B(128);
    std::vector<int32_t> C(64);
    for (auto& v : A) v = (int8_t)(rng() & 0xFF);
    for (auto& v : B) v = (int8_t)(rng() & 0xFF);
    for (auto& v : C) v = (int32_t)(rng() % 20001) - 10000;
    int8_t *dA = dalloc<int8_t>(128), *dB = dalloc<int8_t>(128);
    int32_t *dC = dalloc<int32_t>(64), *dD = dalloc<int32_t>(64);
    upload(dA, A);
    upload(dB, B);
    upload(dC, C);
    BNB_LAUNCH(k_mma_s8_m8n8k16, 1, 32, 0, 0, dA, dB, dC, dD);
    SYNC();
    auto D = download(dD, 64);
    int bad = 0;
    for (int m = 0; m < 8; ++m)
      for (int n = 0; n < 8; ++n) {
        int32_t e = C[m * 8 + n];
        for (int k = 0; k < 16; ++k) e += A[m * 16 + k] * B[k * 8 + n];
        bad += D[m * 8 + n] != e;
      }
    CHECK(bad == 0, "mma.m8n8k16.s8: %d wrong outputs", bad);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    cudaFree(dD);
  }
#endif
}

// ------------------------------------------------------------------------------------ cp.async

// 64 threads; group 0: 16-byte .ca copies (s[0..255]); group 1: 16-byte .cg with src-size 0..16 (zero fill,
// s[256..511]); group 2: 8-byte and 4-byte .ca copies (s[512..767]). before[]: what each thread read from its
// group-0 destination before waiting (EMU ONLY: still the old contents).
__global__ void k_cp_async(const float* g, float* out, float* before) {
#if BNB_HAS_CP_ASYNC
  __shared__ __align__(16) float s[768];
  const int t = threadIdx.x;
  for (int i = t; i < 768; i += blockDim.x) s[i] = -1.0f;
  __syncthreads();
  bnb_cuda::ptx::cp_async_ca<16>(&s[4 * t], &g[4 * t]);
  bnb_cuda::ptx::cp_async_commit();
  bnb_cuda::ptx::cp_async_cg_16_zfill(&s[256 + 4 * t], &g[256 + 4 * t], 4 * (t % 5));
  bnb_cuda::ptx::cp_async_commit();
  bnb_cuda::ptx::cp_async_ca<8>(&s[512 + 4 * t], &g[512 + 4 * t]);
  bnb_cuda::ptx::cp_async_ca<4>(&s[512 + 4 * t + 2], &g[512 + 4 * t + 2]);
  bnb_cuda::ptx::cp_async_ca_zfill<4>(&s[512 + 4 * t + 3], &g[512 + 4 * t + 3], 0);
  bnb_cuda::ptx::cp_async_commit();
  before[t] = s[4 * t];
  bnb_cuda::ptx::cp_async_wait<2>();  // group 0 complete
  __syncthreads();
  out[t] = s[(4 * t + 4) % 256];  // another thread's group-0 copy
  bnb_cuda::ptx::cp_async_wait<0>();
  __syncthreads();
  for (int i = t; i < 768; i += blockDim.x) out[64 + i] = s[i];
#else
  (void)g, (void)out, (void)before;
#endif
}

static void test_cp_async() {
#if BNB_HAS_CP_ASYNC || !defined(BNB_CUDA_EMU)
  std::vector<float> g(768);
  for (int i = 0; i < 768; ++i) g[i] = i + 0.5f;
  float *dg = dalloc<float>(768), *dout = dalloc<float>(64 + 768), *db = dalloc<float>(64);
  upload(dg, g);
  BNB_LAUNCH(k_cp_async, 1, 64, 0, 0, dg, dout, db);
  SYNC();
  auto h = download(dout, 64 + 768);
  for (int t = 0; t < 64; ++t) CHECK(h[t] == g[(4 * t + 4) % 256], "group 0 after wait_group 2, thread %d", t);
  int bad = 0;
  for (int i = 0; i < 768; ++i) {
    float want = g[i];
    if (i >= 256 && i < 512) {
      const int t = (i - 256) / 4, k = (i - 256) % 4;
      if (k >= t % 5) want = 0.0f;  // zero-filled past src-size
    }
    if (i >= 512 && (i - 512) % 4 == 3) want = 0.0f;  // src-size 0
    bad += h[64 + i] != want;
  }
  CHECK(bad == 0, "cp.async destinations: %d wrong", bad);
#if defined(BNB_CUDA_EMU)  // EMU ONLY: a copy lands when its wait completes it, never earlier
  auto hb = download(db, 64);
  bool all_old = true;
  for (int t = 0; t < 64; ++t) all_old &= hb[t] == -1.0f;
  CHECK(all_old, "the emulator completed a cp.async before its wait_group");
#endif
  cudaFree(dg);
  cudaFree(dout);
  cudaFree(db);
#endif
}

// ------------------------------------------------------------------------------------ EMU ONLY

#if defined(BNB_CUDA_EMU)
__global__ void k_deadlock(int* out) {
  if (threadIdx.x % 32 == 0)
    out[threadIdx.x] = __shfl_sync(0xFFFFFFFFu, 1, 0);
  else
    __syncthreads();
}

__global__ void k_trap(int* out) {
  if (blockIdx.x == 2 && threadIdx.x == 37) __trap();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void k_early_exit(int* out) {
  const int t = threadIdx.x;
  if (t >= 40) return;  // exited threads count as arrived at __syncthreads
  __syncthreads();
  out[t] = __syncthreads_count(1);
}

__global__ void k_race(int* out, int sync) {
  __shared__ int s[256];
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = -5;  // a known stale value
  __syncthreads();
  s[t] = 1000 + t;
  if (sync) __syncthreads();  // without it, out[t] is -5 or 1000 + t + 1 depending on who ran first
  out[t] = s[(t + 1) % n];
}

__global__ void k_spin(int* out) {
  __shared__ volatile int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  if (threadIdx.x == 0) {
    while (flag == 0) __nanosleep(100);  // waits for thread 33 (a scheduling point in the emulator)
    out[0] = flag;
  } else if (threadIdx.x == 33) {
    flag = 7;
  }
}

__global__ void k_smem_stale(int* out) {
  __shared__ int s[4];
  if (threadIdx.x == 0) out[blockIdx.x] = s[1];  // read before any write: undefined on a GPU, -1 here
  __syncthreads();
  s[threadIdx.x % 4] = 1234;  // what the next block would otherwise find
}

__global__ void k_mma_partial(float* out) {
  uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
  float c[4] = {0, 0, 0, 0}, d[4];
  bnb_cuda::ptx::mma_m16n8k16_f16_f32(d, a, b, c);
  out[threadIdx.x] = d[0];
}

__global__ void k_cp_misaligned(const float* g) {
  __shared__ __align__(16) float s[8];
  bnb_cuda::ptx::cp_async_ca<16>(&s[1], g);
  bnb_cuda::ptx::cp_async_wait_all();
}

static void test_emu_failures() {
  int* d = dalloc<int>(4096);
  BNB_LAUNCH(k_deadlock, 1, 64, 0, 0, d);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "deadlock reported as a launch failure");
  CHECK(bnb_emu::last_failure().find("deadlock") != std::string::npos, "deadlock message: %s",
        bnb_emu::last_failure().c_str());

  BNB_LAUNCH(k_trap, 4, 64, 0, 0, d);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "__trap reported as a launch failure");
  CHECK(bnb_emu::last_failure().find("block (2,0,0) thread (37,0,0)") != std::string::npos, "trap message: %s",
        bnb_emu::last_failure().c_str());

  BNB_LAUNCH(k_early_exit, 1, 64, 0, 0, d);
  SYNC();
  auto h = download(d, 40);
  bool ok = true;
  for (int t = 0; t < 40; ++t) ok &= h[t] == 40;
  CHECK(ok, "__syncthreads_count after 24 threads exited: %d", h[0]);

  BNB_LAUNCH(k_spin, 1, 64, 0, 0, d);
  SYNC();
  CHECK(download(d, 1)[0] == 7, "spin-wait with __nanosleep");

  BNB_LAUNCH(k_smem_stale, 3, 4, 0, 0, d);
  SYNC();
  auto hs = download(d, 3);
  CHECK(hs[0] == -1 && hs[1] == -1 && hs[2] == -1, "static __shared__ not reset per block: %d %d %d", hs[0], hs[1],
        hs[2]);

  float* f = dalloc<float>(64);
  BNB_LAUNCH(k_mma_partial, 1, 16, 0, 0, f);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "mma in a 16-thread block is an error");
  CHECK(bnb_emu::last_failure().find("32 lanes") != std::string::npos, "mma message: %s",
        bnb_emu::last_failure().c_str());
  BNB_LAUNCH(k_cp_misaligned, 1, 1, 0, 0, f);
  CHECK(cudaGetLastError() == cudaErrorMisalignedAddress, "misaligned cp.async");
  cudaFree(f);

  // A missing barrier shows up as a result that depends on the scheduling order; with barriers it does not.
  std::vector<int> res[2][3];
  for (int sync = 0; sync < 2; ++sync)
    for (int mode = 0; mode < 3; ++mode) {
      bnb_emu::set_schedule(mode, 99);
      CUDA_OK(cudaMemset(d, 0, 4096 * sizeof(int)));
      BNB_LAUNCH(k_race, 1, 256, 0, 0, d, sync);
      SYNC();
      res[sync][mode] = download(d, 256);
    }
  bnb_emu::set_schedule(0);
  CHECK(res[1][0] == res[1][1] && res[1][0] == res[1][2], "barrier-correct kernel depends on the schedule");
  bool good = true;
  for (int t = 0; t < 256; ++t) good &= res[1][0][t] == 1000 + (t + 1) % 256;
  CHECK(good, "barrier-correct kernel result");
  CHECK(res[0][0] != res[0][1], "the racy kernel gives the same result in ascending and descending order");
  cudaFree(d);
}
#endif

// ------------------------------------------------------------------------------------ main

int main(int argc, char** argv) {
  struct Test {
    const char* name;
    void (*fn)();
  };
  const Test tests[] = {
      {"barriers", test_barriers},   {"shuffles", test_shuffles}, {"votes", test_votes},
      {"atomics", test_atomics},     {"launch", test_launch},     {"conversions", test_conversions},
      {"math", test_math},           {"ldmatrix", test_ldmatrix}, {"mma", test_mma},
      {"cp_async", test_cp_async},
#if defined(BNB_CUDA_EMU)
      {"emu_failures", test_emu_failures},
#endif
  };
  const char* only = argc > 1 ? argv[1] : nullptr;
  for (const Test& t : tests) {
    if (only && strcmp(only, t.name) != 0) continue;
    const int before = g_failures;
    t.fn();
    if (g_failures == before) printf("ok test=%s\n", t.name);
    else printf("FAILED test=%s\n", t.name);
  }
  printf("%s: %d checks, %d failures\n", g_failures ? "FAILED" : "OK", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
