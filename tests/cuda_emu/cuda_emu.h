// A small SIMT emulator that runs CUDA kernels on the CPU, for testing kernel sources without a GPU.
//
// A kernel written against the subset below compiles with a host C++ compiler (define BNB_CUDA_EMU and
// include this header instead of the CUDA headers). emu::launch runs the grid one CTA at a time; the
// threads of a CTA are fibers (ucontext) switched cooperatively at barriers, so shared memory is plain
// memory and __syncthreads / warp collectives have their CUDA meaning:
//   - __syncthreads(): every live thread of the CTA arrives (a thread stuck elsewhere = deadlock, reported);
//   - __shfl_xor_sync, mma_m16n8k16: warp collectives, every lane of the warp takes part;
//   - mma_m16n8k16: PTX mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16} with the fragment layouts of the
//     PTX ISA (A: a0..a7 in 4 registers, B: 2 registers, C/D: 4 floats), exact products summed in fp32;
//   - cp.async (16 bytes, zero fill): the copy lands when the issuing thread waits for its group
//     (mode kAsyncAtWait, the latest moment the hardware may complete it) or at issue (kAsyncAtIssue, the
//     earliest): a kernel correct under both does not read a stage before waiting for it and does not
//     overwrite a stage still being read;
//   - global memory: loads and stores through emu::load_global / store_global are checked against the
//     ranges registered with emu::allow (and for alignment); dynamic shared memory starts as 0xFF bytes
//     (NaN) in every CTA.
// Errors (bounds, alignment, deadlock) stop the launch; emu::error() holds the message.
#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "bnb_quant_math.h"

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

// The built-in index variables: set by the scheduler before it resumes a thread.
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {

enum AsyncMode { kAsyncAtWait = 0, kAsyncAtIssue = 1 };

struct Copy {
  void* dst;
  const void* src;
  bool valid;
};

enum State { kRunnable, kAtBlockBarrier, kAtWarpBarrier, kFinished };

struct Thread {
  ucontext_t ctx;
  State state = kRunnable;
  unsigned tid = 0;
  uint64_t collectives = 0;  // warp collectives this thread has entered (selects the exchange buffer)
  std::vector<Copy> open;    // cp.async not yet committed
  std::vector<std::vector<Copy>> groups;
};

struct Range {
  uintptr_t lo, hi;
  bool writable;
};

struct State_ {
  std::vector<Thread> threads;
  std::vector<std::vector<char>> stacks;
  ucontext_t sched;
  unsigned current = 0;
  unsigned nthreads = 0;
  std::function<void()> body;
  std::vector<unsigned char> dsmem;
  // warp exchange: [warp][parity][lane][16 words]
  std::vector<uint32_t> xbuf;
  std::vector<Range> ranges;
  std::string error;
  AsyncMode async_mode = kAsyncAtWait;
  uint64_t launches = 0;
  uint64_t ctas = 0;
  // shared-memory loads through load_shared, per thread (address, bytes), analysed per warp instruction
  bool record_smem = false;
  std::vector<std::vector<std::pair<uintptr_t, unsigned>>> smem_log;
  uint64_t smem_requests = 0, smem_wavefronts = 0, smem_ideal = 0, smem_divergent = 0;
};

inline State_& st() {
  static State_ s;
  return s;
}

inline void allow(const void* p, size_t nbytes, bool writable) {
  st().ranges.push_back(Range{(uintptr_t)p, (uintptr_t)p + nbytes, writable});
}
inline void clear_ranges() { st().ranges.clear(); }
inline void set_async_mode(AsyncMode m) { st().async_mode = m; }
inline void record_smem(bool on) {
  State_& s = st();
  s.record_smem = on;
  s.smem_requests = s.smem_wavefronts = s.smem_ideal = s.smem_divergent = 0;
}
inline const std::string& error() { return st().error; }
inline void clear_error() { st().error.clear(); }

inline Thread& self() { return st().threads[st().current]; }

// Records the first error and ends the calling thread (the scheduler then stops the launch).
[[noreturn]] inline void fail(const std::string& msg) {
  State_& s = st();
  if (s.error.empty()) {
    char where[96];
    snprintf(where, sizeof where, " (block %u,%u,%u thread %u)", blockIdx.x, blockIdx.y, blockIdx.z,
             threadIdx.x);
    s.error = msg + where;
  }
  self().state = kFinished;
  swapcontext(&self().ctx, &s.sched);
  __builtin_unreachable();
}

inline void check_access(const void* p, size_t n, size_t align, bool write) {
  const uintptr_t a = (uintptr_t)p;
  if (align > 1 && a % align != 0) {
    char m[128];
    snprintf(m, sizeof m, "misaligned %zu-byte %s at %p", n, write ? "store" : "load", p);
    fail(m);
  }
  for (const Range& r : st().ranges)
    if (a >= r.lo && a + n <= r.hi) {
      if (write && !r.writable) fail("store to a read-only tensor");
      return;
    }
  char m[128];
  snprintf(m, sizeof m, "out-of-bounds %zu-byte global %s at %p", n, write ? "store" : "load", p);
  fail(m);
}

template <class T>
inline T load_global(const T* p) {
  check_access(p, sizeof(T), alignof(T), false);
  T v;
  memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
inline void store_global(T* p, T v) {
  check_access(p, sizeof(T), alignof(T), true);
  memcpy(p, &v, sizeof(T));
}

inline unsigned char* dynamic_smem() { return st().dsmem.data(); }

// A shared-memory load of T (the kernel's hot-loop reads go through this to be counted).
template <class T>
inline T load_shared(const void* p) {
  State_& s = st();
  if (s.record_smem) s.smem_log[s.current].push_back({(uintptr_t)p, (unsigned)sizeof(T)});
  T v;
  memcpy(&v, p, sizeof(T));
  return v;
}

// Bank model: 32 banks of 4 bytes; a request of B bytes per lane is served in phases of 128 / B lanes, each
// phase taking as many wavefronts as the most-used bank has distinct 4-byte words (same word: broadcast).
inline void analyse_smem_log() {
  State_& s = st();
  const unsigned n = s.nthreads;
  for (unsigned w = 0; w < n / 32; ++w) {
    size_t len = s.smem_log[w * 32].size();
    for (unsigned l = 1; l < 32; ++l) len = std::min(len, s.smem_log[w * 32 + l].size());
    for (unsigned l = 0; l < 32; ++l)
      if (s.smem_log[w * 32 + l].size() != len) ++s.smem_divergent;
    for (size_t i = 0; i < len; ++i) {
      const unsigned bytes = s.smem_log[w * 32][i].second;
      const unsigned per_phase = 128 / bytes;
      uint64_t waves = 0;
      for (unsigned p0 = 0; p0 < 32; p0 += per_phase) {
        std::vector<uintptr_t> words[32];
        for (unsigned l = p0; l < p0 + per_phase; ++l) {
          const uintptr_t a = s.smem_log[w * 32 + l][i].first;
          for (unsigned b = 0; b < bytes; b += 4) {
            const uintptr_t word = (a + b) / 4;
            auto& v = words[word % 32];
            if (std::find(v.begin(), v.end(), word) == v.end()) v.push_back(word);
          }
        }
        size_t most = 0;
        for (auto& v : words) most = std::max(most, v.size());
        waves += most;
      }
      s.smem_requests += 1;
      s.smem_wavefronts += waves;
      s.smem_ideal += 32 / per_phase;
    }
  }
}

inline void yield_to_scheduler(State why) {
  Thread& t = self();
  t.state = why;
  swapcontext(&t.ctx, &st().sched);
}

inline void block_barrier() { yield_to_scheduler(kAtBlockBarrier); }
inline void warp_barrier() { yield_to_scheduler(kAtWarpBarrier); }

// This lane's slot of the exchange buffer of the current collective (double-buffered by parity: a lane
// can only run one collective ahead of the slowest lane of its warp).
inline uint32_t* my_slot(uint64_t parity_of, unsigned lane) {
  State_& s = st();
  const unsigned warp = self().tid / 32;
  return &s.xbuf[(((size_t)warp * 2 + (parity_of & 1)) * 32 + lane) * 16];
}

inline uint32_t* enter_collective(uint64_t* parity) {
  Thread& t = self();
  *parity = t.collectives++;
  return my_slot(*parity, t.tid % 32);
}

template <class T>
inline T shfl_xor(T v, int lanemask, int width) {
  static_assert(sizeof(T) <= 16 * 4, "value too large");
  uint64_t par;
  uint32_t* slot = enter_collective(&par);
  memcpy(slot, &v, sizeof(T));
  warp_barrier();
  const unsigned lane = self().tid % 32;
  const unsigned base = lane & ~(unsigned)(width - 1);
  const unsigned src = base | ((lane ^ (unsigned)lanemask) & (unsigned)(width - 1));
  T r;
  memcpy(&r, my_slot(par, src), sizeof(T));
  return r;
}

inline float half_bits_to_f32(uint32_t h, bool bf16) {
  return bf16 ? bnb::bf16_to_f32((uint16_t)h) : bnb::f16_to_f32((uint16_t)h);
}

// D = A (16x16, row) * B (16x8, col) + C, fp32 accumulate; fragment layouts of the PTX ISA for
// mma.m16n8k16 with .f16/.bf16 inputs (g = lane / 4, t = lane % 4):
//   A reg i (i = 0..3) holds rows g + 8*(i & 1), columns 2t + 8*(i >> 1) + {0, 1} (low half first);
//   B reg i (i = 0..1) holds rows (k) 2t + 8*i + {0, 1}, column g;
//   C/D element i holds row g + 8*(i >> 1), column 2t + (i & 1).
inline void mma_m16n8k16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1, bool bf16) {
  uint64_t par;
  uint32_t* slot = enter_collective(&par);
  for (int i = 0; i < 4; ++i) slot[i] = a[i];
  slot[4] = b0;
  slot[5] = b1;
  warp_barrier();
  auto A = [&](int row, int k) {
    const unsigned lane = (unsigned)((row % 8) * 4 + (k % 8) / 2);
    const int reg = (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
    return half_bits_to_f32((my_slot(par, lane)[reg] >> (16 * (k & 1))) & 0xFFFFu, bf16);
  };
  auto B = [&](int k, int col) {
    const unsigned lane = (unsigned)(col * 4 + (k % 8) / 2);
    const int reg = 4 + (k >= 8 ? 1 : 0);
    return half_bits_to_f32((my_slot(par, lane)[reg] >> (16 * (k & 1))) & 0xFFFFu, bf16);
  };
  const unsigned lane = self().tid % 32;
  const int g = (int)lane / 4, t = (int)lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
    float s = c[i];
    for (int k = 0; k < 16; ++k) s += A(row, k) * B(k, col);  // products of 16-bit values are exact in fp32
    c[i] = s;
  }
}

inline void apply(const Copy& c) {
  if (c.valid)
    memcpy(c.dst, c.src, 16);
  else
    memset(c.dst, 0, 16);
}

inline void cp_async16(void* dst, const void* src, bool valid) {
  State_& s = st();
  const uintptr_t d = (uintptr_t)dst;
  if (d % 16 || d < (uintptr_t)s.dsmem.data() || d + 16 > (uintptr_t)s.dsmem.data() + s.dsmem.size())
    fail("cp.async destination outside dynamic shared memory or misaligned");
  if (valid) check_access(src, 16, 16, false);
  const Copy c{dst, src, valid};
  if (s.async_mode == kAsyncAtIssue)
    apply(c);
  else
    self().open.push_back(c);
}
inline void cp_async_commit() {
  Thread& t = self();
  t.groups.push_back(std::move(t.open));
  t.open.clear();
}
inline void cp_async_wait(int pending) {
  Thread& t = self();
  while ((int)t.groups.size() > pending) {
    for (const Copy& c : t.groups.front()) apply(c);
    t.groups.erase(t.groups.begin());
  }
}

inline void fiber_main() {
  State_& s = st();
  s.body();
  Thread& t = self();
  t.state = kFinished;
  swapcontext(&t.ctx, &s.sched);
}

// Runs body() as every thread of every CTA of the grid; smem bytes of dynamic shared memory per CTA.
// Returns false (error() says why) on an error.
inline bool launch(dim3 grid, dim3 block, size_t smem, std::function<void()> body) {
  State_& s = st();
  if (!s.error.empty()) return false;
  const unsigned n = block.x * block.y * block.z;
  if (block.y != 1 || block.z != 1 || n == 0 || n % 32 != 0 || n > 1024) {
    s.error = "emu: blocks must be 1-D with a multiple of 32 threads (<= 1024)";
    return false;
  }
  constexpr size_t kStack = 256 * 1024;
  s.body = std::move(body);
  s.nthreads = n;
  s.threads.assign(n, Thread{});
  if (s.stacks.size() < n) s.stacks.resize(n);
  for (auto& stk : s.stacks)
    if (stk.size() != kStack) stk.assign(kStack, 0);
  s.xbuf.assign((size_t)(n / 32) * 2 * 32 * 16, 0);
  blockDim = block;
  gridDim = grid;
  ++s.launches;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = uint3{bx, by, bz};
        ++s.ctas;
        s.dsmem.assign(smem + 16, 0xFF);
        if (s.record_smem) s.smem_log.assign(n, {});
        for (unsigned i = 0; i < n; ++i) {
          Thread& t = s.threads[i];
          t = Thread{};
          t.tid = i;
          getcontext(&t.ctx);
          t.ctx.uc_stack.ss_sp = s.stacks[i].data();
          t.ctx.uc_stack.ss_size = kStack;
          t.ctx.uc_link = nullptr;
          makecontext(&t.ctx, fiber_main, 0);
        }
        unsigned finished = 0;
        while (finished < n && s.error.empty()) {
          bool ran = false;
          for (unsigned i = 0; i < n && s.error.empty(); ++i) {
            if (s.threads[i].state != kRunnable) continue;
            s.current = i;
            threadIdx = uint3{i, 0, 0};
            swapcontext(&s.sched, &s.threads[i].ctx);
            ran = true;
          }
          if (!s.error.empty()) break;
          finished = 0;
          unsigned at_block = 0;
          for (auto& t : s.threads) finished += t.state == kFinished, at_block += t.state == kAtBlockBarrier;
          bool released = false;
          for (unsigned w = 0; w < n / 32; ++w) {
            unsigned at = 0, live = 0;
            for (unsigned l = 0; l < 32; ++l) {
              const State x = s.threads[w * 32 + l].state;
              live += x != kFinished;
              at += x == kAtWarpBarrier;
            }
            if (at > 0 && at == live) {
              for (unsigned l = 0; l < 32; ++l)
                if (s.threads[w * 32 + l].state == kAtWarpBarrier) s.threads[w * 32 + l].state = kRunnable;
              released = true;
            }
          }
          if (at_block > 0 && at_block + finished == n) {
            for (auto& t : s.threads)
              if (t.state == kAtBlockBarrier) t.state = kRunnable;
            released = true;
          }
          if (!ran && !released && finished < n && s.error.empty()) {
            char m[128];
            snprintf(m, sizeof m, "deadlock: no thread can run (block %u,%u,%u, %u at __syncthreads, %u finished)",
                     bx, by, bz, at_block, finished);
            s.error = m;
          }
        }
        if (!s.error.empty()) return false;
        if (s.record_smem) analyse_smem_log();
      }
  return true;
}

}  // namespace emu

// ---------------------------------------------------------------------------------- CUDA spellings

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n) __attribute__((aligned(n)))

inline void __syncthreads() { emu::block_barrier(); }
template <class T>
inline T __shfl_xor_sync(unsigned /*mask*/, T v, int lanemask, int width = 32) {
  return emu::shfl_xor(v, lanemask, width);
}
inline float __uint_as_float(unsigned u) { return bnb::f32_from_bits(u); }
inline unsigned __float_as_uint(float f) { return bnb::f32_bits(f); }
