// CUDA kernels on CPU: the compat header that lets g++ compile backends/cuda/kernels_*.cu as host C++
// (`g++ -x c++ -DBNB_CUDA_EMU`), the stand-in for <cuda_runtime.h>, <cuda_fp16.h> and <cuda_bf16.h>.
// common.cuh includes it when BNB_CUDA_EMU is defined. The runtime behind it is emu/cuda_emu.cpp.
//
// Execution model (docs/architecture.md, "CUDA kernels on CPU: the emulator"):
// * a launch runs synchronously on the calling host thread, one block after another;
// * every thread of a block is a fiber (its own stack, cooperative switches), so __syncthreads and the warp
//   intrinsics are real barriers: a thread runs until it reaches one, then the next thread runs;
// * `__shared__` variables are `static thread_local`: one copy per host thread, shared by all fibers of the
//   block being run (blocks run one at a time, so each block gets the storage to itself);
// * warp intrinsics work on logical 32-lane warps (lane = linear thread index % 32): every lane of the mask
//   posts its operand, the last one to arrive computes the result for all of them;
// * fp16/bf16 conversions are bit-exact to the hardware's (round to nearest even; NaN -> canonical 0x7FFF);
// * fp32 arithmetic is IEEE (build with -ffp-contract=off: the CUDA build uses -fmad=false).
// Not emulated: timing, occupancy, the memory model beyond barriers (all memory is coherent host memory),
// PTX beyond backends/cuda/ptx.cuh's documented fragment layouts, texture/surface, cooperative groups.
#pragma once

#include "cuda_emu_runtime.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "bnb_quant_math.h"  // the fp16/bf16 conversion math every backend shares

// ------------------------------------------------------------------------------------ qualifiers
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Per host thread, shared by the fibers of the block that runs (see above). `extern __shared__` (dynamic
// shared memory) does not compile with this definition: use BNB_DYNAMIC_SMEM (common.cuh).
#define __shared__ static thread_local
#define __CUDA_EMU__ 1

// ------------------------------------------------------------------------------------ vector types
// Same members, sizes and alignments as CUDA's vector_types.h.
#define BNB_EMU_VEC1(T, N, A) \
  struct __align__(A) N##1 { T x; };
#define BNB_EMU_VEC2(T, N, A) \
  struct __align__(A) N##2 { T x, y; };
#define BNB_EMU_VEC3(T, N) \
  struct N##3 { T x, y, z; };
#define BNB_EMU_VEC4(T, N, A) \
  struct __align__(A) N##4 { T x, y, z, w; };
#define BNB_EMU_VECS(T, N, A1, A2, A4) BNB_EMU_VEC1(T, N, A1) BNB_EMU_VEC2(T, N, A2) BNB_EMU_VEC3(T, N) \
  BNB_EMU_VEC4(T, N, A4)
BNB_EMU_VECS(signed char, char, 1, 2, 4)
BNB_EMU_VECS(unsigned char, uchar, 1, 2, 4)
BNB_EMU_VECS(short, short, 2, 4, 8)
BNB_EMU_VECS(unsigned short, ushort, 2, 4, 8)
BNB_EMU_VECS(int, int, 4, 8, 16)
BNB_EMU_VECS(unsigned int, uint, 4, 8, 16)
BNB_EMU_VECS(long long, longlong, 8, 16, 16)
BNB_EMU_VECS(unsigned long long, ulonglong, 8, 16, 16)
BNB_EMU_VECS(float, float, 4, 8, 16)
BNB_EMU_VECS(double, double, 8, 16, 16)
#undef BNB_EMU_VECS
#undef BNB_EMU_VEC1
#undef BNB_EMU_VEC2
#undef BNB_EMU_VEC3
#undef BNB_EMU_VEC4

#define BNB_EMU_MAKE(T, N)                                                                      \
  inline N##1 make_##N##1(T x) { return N##1{x}; }                                              \
  inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }                                      \
  inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }                              \
  inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
BNB_EMU_MAKE(signed char, char)
BNB_EMU_MAKE(unsigned char, uchar)
BNB_EMU_MAKE(short, short)
BNB_EMU_MAKE(unsigned short, ushort)
BNB_EMU_MAKE(int, int)
BNB_EMU_MAKE(unsigned int, uint)
BNB_EMU_MAKE(long long, longlong)
BNB_EMU_MAKE(unsigned long long, ulonglong)
BNB_EMU_MAKE(float, float)
BNB_EMU_MAKE(double, double)
#undef BNB_EMU_MAKE

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

// Built-in variables: set by the emulator for the fiber that runs (one host thread runs one block's fibers).
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ------------------------------------------------------------------------------------ runtime internals
namespace bnb_emu {

// Arguments of a warp collective: for every participating lane (bit set in `lanes`) the operand it posted
// and where its result goes.
struct WarpArgs {
  unsigned lanes;
  const void* in[32];
  void* out[32];
};
using WarpFn = void (*)(const WarpArgs&);

namespace detail {
void run_kernel(const char* name, const void* func, dim3 grid, dim3 block, size_t smem, void (*body)(void*),
                void* ctx);
int block_barrier(int kind, int pred);  // kind: 0 __syncthreads, 1 _count, 2 _and, 3 _or
void warp_collective(unsigned mask, WarpFn fn, const void* in, void* out);
unsigned lane_id();
unsigned live_lanes();  // lanes of the caller's warp that exist and have not exited
void* dynamic_smem();
size_t dynamic_smem_size();
[[noreturn]] void trap(const char* what);
void yield();
uint64_t clock64();
void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes);
void cp_async_commit();
void cp_async_wait(int n);
void cp_async_wait_all();
}  // namespace detail

// kernel<<<grid, block, smem, stream>>>(args...): the arguments are converted to the kernel's parameter
// types once (as the runtime copies them into the parameter buffer); every thread gets its own copy.
template <class... P, class... A>
inline void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t,
                   A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  using Params = std::tuple<typename std::decay<P>::type...>;
  struct Ctx {
    void (*k)(P...);
    Params* p;
  };
  Params params(std::forward<A>(args)...);
  Ctx ctx{kernel, &params};
  detail::run_kernel(
      name, reinterpret_cast<const void*>(kernel), grid, block, smem,
      [](void* c) {
        Ctx* x = static_cast<Ctx*>(c);
        std::apply(x->k, *x->p);
      },
      &ctx);
}

}  // namespace bnb_emu

// ------------------------------------------------------------------------------------ synchronization
inline void __syncthreads() { bnb_emu::detail::block_barrier(0, 0); }
inline int __syncthreads_count(int pred) { return bnb_emu::detail::block_barrier(1, pred); }
inline int __syncthreads_and(int pred) { return bnb_emu::detail::block_barrier(2, pred); }
inline int __syncthreads_or(int pred) { return bnb_emu::detail::block_barrier(3, pred); }

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] inline void __trap() { bnb_emu::detail::trap("__trap()"); }
inline void __brkpt() { bnb_emu::detail::trap("__brkpt()"); }
// A scheduling point: spin-waits with __nanosleep make progress under the cooperative scheduler.
inline void __nanosleep(unsigned) { bnb_emu::detail::yield(); }
inline long long clock64() { return (long long)bnb_emu::detail::clock64(); }

// ------------------------------------------------------------------------------------ warp intrinsics
namespace bnb_emu {
namespace detail {

template <class T>
struct ShflIn {
  T v;
  int arg;  // srcLane / delta / laneMask
  int width;
};

inline bool valid_width(int w) { return w >= 1 && w <= 32 && (w & (w - 1)) == 0; }

// MODE 0 idx, 1 up, 2 down, 3 xor. A source lane outside the participants gives the caller's own value
// (CUDA: undefined); a source outside the caller's width segment gives the own value as CUDA specifies.
template <class T, int MODE>
void shfl_fn(const WarpArgs& a) {
  for (int l = 0; l < 32; ++l) {
    if (!(a.lanes >> l & 1u)) continue;
    const ShflIn<T>& in = *static_cast<const ShflIn<T>*>(a.in[l]);
    if (!valid_width(in.width)) trap("__shfl*_sync: width must be a power of two in [1, 32]");
    const int w = in.width, base = l & ~(w - 1);
    int src;
    if (MODE == 0) {
      src = base + (in.arg & (w - 1));
    } else if (MODE == 1) {
      src = l - in.arg;
      if (src < base) src = l;
    } else if (MODE == 2) {
      src = l + in.arg;
      if (src >= base + w) src = l;
    } else {
      src = l ^ in.arg;
      if (src >= base + w) src = l;  // later segments are out of reach; earlier ones are readable
    }
    if (src < 0 || src > 31 || !(a.lanes >> src & 1u)) src = l;
    *static_cast<T*>(a.out[l]) = static_cast<const ShflIn<T>*>(a.in[src])->v;
  }
}

template <class T, int MODE>
inline T shfl(unsigned mask, T var, int arg, int width) {
  static_assert(std::is_trivially_copyable<T>::value, "__shfl*_sync needs a trivially copyable type");
  ShflIn<T> in{var, arg, width};
  T out;
  warp_collective(mask, &shfl_fn<T, MODE>, &in, &out);
  return out;
}

// 0 any, 1 all, 2 ballot, 3 syncwarp, 4 match_any, 5 reduce_add, 6 reduce_min, 7 reduce_max,
// 8 reduce_and, 9 reduce_or, 10 reduce_xor (int arithmetic on the 32-bit pattern)
template <int OP, class T>
void vote_fn(const WarpArgs& a) {
  unsigned ballot = 0;
  T acc{};
  bool first = true;
  for (int l = 0; l < 32; ++l) {
    if (!(a.lanes >> l & 1u)) continue;
    const T v = *static_cast<const T*>(a.in[l]);
    if (v) ballot |= 1u << l;
    if (first) {
      acc = v;
      first = false;
    } else if (OP == 5) {
      acc = (T)(acc + v);
    } else if (OP == 6) {
      acc = v < acc ? v : acc;
    } else if (OP == 7) {
      acc = v > acc ? v : acc;
    } else if (OP == 8) {
      acc = acc & v;
    } else if (OP == 9) {
      acc = acc | v;
    } else if (OP == 10) {
      acc = acc ^ v;
    }
  }
  for (int l = 0; l < 32; ++l) {
    if (!(a.lanes >> l & 1u)) continue;
    T r;
    if (OP == 0) r = ballot != 0;
    else if (OP == 1) r = ballot == a.lanes;
    else if (OP == 2 || OP == 3) r = (T)ballot;
    else if (OP == 4) {
      unsigned m = 0;
      const T v = *static_cast<const T*>(a.in[l]);
      for (int k = 0; k < 32; ++k)
        if ((a.lanes >> k & 1u) && *static_cast<const T*>(a.in[k]) == v) m |= 1u << k;
      r = (T)m;
    } else {
      r = acc;
    }
    *static_cast<T*>(a.out[l]) = r;
  }
}

template <int OP, class T>
inline T vote(unsigned mask, T v) {
  T out;
  warp_collective(mask, &vote_fn<OP, T>, &v, &out);
  return out;
}

template <class T>
void match_all_fn(const WarpArgs& a) {
  bool same = true;
  int first = -1;
  for (int l = 0; l < 32; ++l) {
    if (!(a.lanes >> l & 1u)) continue;
    if (first < 0) first = l;
    else if (!(*static_cast<const T*>(a.in[l]) == *static_cast<const T*>(a.in[first]))) same = false;
  }
  for (int l = 0; l < 32; ++l)
    if (a.lanes >> l & 1u) *static_cast<unsigned*>(a.out[l]) = same ? a.lanes : 0u;
}

}  // namespace detail
}  // namespace bnb_emu

template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  return bnb_emu::detail::shfl<T, 0>(mask, var, srcLane, width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return bnb_emu::detail::shfl<T, 1>(mask, var, (int)delta, width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  return bnb_emu::detail::shfl<T, 2>(mask, var, (int)delta, width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  return bnb_emu::detail::shfl<T, 3>(mask, var, laneMask, width);
}
inline int __any_sync(unsigned mask, int pred) { return bnb_emu::detail::vote<0, int>(mask, pred != 0); }
inline int __all_sync(unsigned mask, int pred) { return bnb_emu::detail::vote<1, int>(mask, pred != 0); }
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return bnb_emu::detail::vote<2, unsigned>(mask, pred != 0);
}
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) { bnb_emu::detail::vote<3, unsigned>(mask, 0u); }
// Lanes that exist and have not exited (the emulator has no divergence: converged lanes = live lanes).
inline unsigned __activemask() { return bnb_emu::detail::live_lanes(); }
template <class T>
inline unsigned __match_any_sync(unsigned mask, T value) {
  unsigned out;
  bnb_emu::detail::warp_collective(mask, &bnb_emu::detail::vote_fn<4, T>, &value, &out);
  return out;
}
template <class T>
inline unsigned __match_all_sync(unsigned mask, T value, int* pred) {
  unsigned out;
  bnb_emu::detail::warp_collective(mask, &bnb_emu::detail::match_all_fn<T>, &value, &out);
  *pred = out != 0;
  return out;
}
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<5, unsigned>(mask, v); }
inline int __reduce_add_sync(unsigned mask, int v) { return (int)bnb_emu::detail::vote<5, unsigned>(mask, (unsigned)v); }
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<6, unsigned>(mask, v); }
inline int __reduce_min_sync(unsigned mask, int v) { return bnb_emu::detail::vote<6, int>(mask, v); }
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<7, unsigned>(mask, v); }
inline int __reduce_max_sync(unsigned mask, int v) { return bnb_emu::detail::vote<7, int>(mask, v); }
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<8, unsigned>(mask, v); }
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<9, unsigned>(mask, v); }
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) { return bnb_emu::detail::vote<10, unsigned>(mask, v); }

// ------------------------------------------------------------------------------------ atomics
// GCC's __atomic builtins on the plain object (what std::atomic_ref does, without needing C++20; the real
// build is C++17). All of them return the old value, as CUDA's do.
#define BNB_EMU_ATOMIC_INT(T)                                                                             \
  inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }                    \
  inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }                    \
  inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }                  \
  inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }                    \
  inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }                      \
  inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }                    \
  inline T atomicCAS(T* p, T compare, T v) {                                                              \
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);               \
    return compare;                                                                                       \
  }                                                                                                       \
  inline T atomicMin(T* p, T v) {                                                                         \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                         \
    while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) \
      ;                                                                                                   \
    return old;                                                                                           \
  }                                                                                                       \
  inline T atomicMax(T* p, T v) {                                                                         \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                         \
    while (v > old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) \
      ;                                                                                                   \
    return old;                                                                                           \
  }
BNB_EMU_ATOMIC_INT(int)
BNB_EMU_ATOMIC_INT(unsigned int)
BNB_EMU_ATOMIC_INT(unsigned long long)
BNB_EMU_ATOMIC_INT(long long)
#undef BNB_EMU_ATOMIC_INT
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return compare;
}
// ((old >= v) ? 0 : (old + 1)) and (((old == 0) || (old > v)) ? v : (old - 1)), as CUDA defines them.
inline unsigned atomicInc(unsigned* p, unsigned v) {
  unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, old >= v ? 0u : old + 1u, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
  return old;
}
inline unsigned atomicDec(unsigned* p, unsigned v) {
  unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, (old == 0u || old > v) ? v : old - 1u, true, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST))
    ;
  return old;
}
#define BNB_EMU_ATOMIC_FP(T)                                                                               \
  inline T atomicAdd(T* p, T v) {                                                                          \
    T old;                                                                                                 \
    __atomic_load(p, &old, __ATOMIC_SEQ_CST);                                                              \
    T next;                                                                                                \
    do {                                                                                                   \
      next = old + v;                                                                                      \
    } while (!__atomic_compare_exchange(p, &old, &next, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));        \
    return old;                                                                                            \
  }                                                                                                        \
  inline T atomicExch(T* p, T v) {                                                                         \
    T old;                                                                                                 \
    __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);                                                      \
    return old;                                                                                            \
  }
BNB_EMU_ATOMIC_FP(float)
BNB_EMU_ATOMIC_FP(double)
#undef BNB_EMU_ATOMIC_FP
// _block / _system scopes: one device, one coherent memory.
template <class T, class... A>
inline auto atomicAdd_block(T* p, A... a) -> decltype(atomicAdd(p, a...)) { return atomicAdd(p, a...); }
template <class T, class... A>
inline auto atomicAdd_system(T* p, A... a) -> decltype(atomicAdd(p, a...)) { return atomicAdd(p, a...); }
template <class T, class... A>
inline auto atomicCAS_block(T* p, A... a) -> decltype(atomicCAS(p, a...)) { return atomicCAS(p, a...); }
template <class T, class... A>
inline auto atomicMax_block(T* p, A... a) -> decltype(atomicMax(p, a...)) { return atomicMax(p, a...); }

// ------------------------------------------------------------------------------------ loads / stores
template <class T>
inline T __ldg(const T* p) { return *p; }
template <class T>
inline T __ldca(const T* p) { return *p; }
template <class T>
inline T __ldcg(const T* p) { return *p; }
template <class T>
inline T __ldcs(const T* p) { return *p; }
template <class T>
inline T __ldlu(const T* p) { return *p; }
template <class T>
inline T __ldcv(const T* p) { return *p; }
template <class T>
inline void __stwb(T* p, T v) { *p = v; }
template <class T>
inline void __stcg(T* p, T v) { *p = v; }
template <class T>
inline void __stcs(T* p, T v) { *p = v; }
template <class T>
inline void __stwt(T* p, T v) { *p = v; }
// Generic -> shared window address: identity (shared memory is ordinary memory here). ptx.cuh's wrappers
// take generic pointers, so kernels do not need this.
inline size_t __cvta_generic_to_shared(const void* p) { return (size_t)(uintptr_t)p; }

// ------------------------------------------------------------------------------------ integer intrinsics
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned long long __brevll(unsigned long long x) {
  return ((unsigned long long)__brev((unsigned)x) << 32) | __brev((unsigned)(x >> 32));
}
// r.byte[n] = ({y, x} as 8 bytes)[(s >> 4n) & 7]
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int n = 0; n < 4; ++n) r |= (unsigned)((v >> (8 * ((s >> (4 * n)) & 7u))) & 0xFFu) << (8 * n);
  return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)((v << (shift & 31u)) >> 32);
}
inline unsigned __funnelshift_lc(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)((v << (shift > 32u ? 32u : shift)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)(v >> (shift & 31u));
}
inline unsigned __funnelshift_rc(unsigned lo, unsigned hi, unsigned shift) {
  const unsigned long long v = ((unsigned long long)hi << 32) | lo;
  return (unsigned)(v >> (shift > 32u ? 32u : shift));
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int)((((long long)(a << 8) >> 8) * ((long long)(b << 8) >> 8))); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xFFFFFFu) * (b & 0xFFFFFFu); }
inline int __hadd(int a, int b) { return (int)(((long long)a + b) >> 1); }
inline int __rhadd(int a, int b) { return (int)(((long long)a + b + 1) >> 1); }
inline unsigned __uhadd(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a + b) >> 1); }
inline unsigned __urhadd(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a + b + 1) >> 1); }
inline unsigned __sad(int a, int b, unsigned c) { return c + (unsigned)(a > b ? (long long)a - b : (long long)b - a); }
inline unsigned __usad(unsigned a, unsigned b, unsigned c) { return c + (a > b ? a - b : b - a); }
// 4-way byte dot product + accumulator (wrapping int32 arithmetic, as dp4a).
inline int __dp4a(int a, int b, int c) {
  int s = 0;
  for (int k = 0; k < 4; ++k) s += (int)(signed char)(a >> (8 * k)) * (int)(signed char)(b >> (8 * k));
  return (int)((unsigned)c + (unsigned)s);
}
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  unsigned s = 0;
  for (int k = 0; k < 4; ++k) s += ((a >> (8 * k)) & 0xFFu) * ((b >> (8 * k)) & 0xFFu);
  return c + s;
}

// CUDA's min/max overloads (integer: exact; floating point: fminf/fmaxf, i.e. NaN loses).
template <class A, class B>
inline typename std::common_type<A, B>::type min(A a, B b) {
  using C = typename std::common_type<A, B>::type;
  if constexpr (std::is_floating_point<C>::value) return std::fmin((C)a, (C)b);
  else return (C)a < (C)b ? (C)a : (C)b;
}
template <class A, class B>
inline typename std::common_type<A, B>::type max(A a, B b) {
  using C = typename std::common_type<A, B>::type;
  if constexpr (std::is_floating_point<C>::value) return std::fmax((C)a, (C)b);
  else return (C)a > (C)b ? (C)a : (C)b;
}
inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long llmin(long long a, long long b) { return a < b ? a : b; }
inline long long llmax(long long a, long long b) { return a > b ? a : b; }

// ------------------------------------------------------------------------------------ float intrinsics
// The C library's float functions (fmaxf, fabsf, sqrtf, expf, ...) come from <math.h>; sqrtf and the
// arithmetic below are correctly rounded, as CUDA's _rn forms and IEEE-compliant defaults (no fast math).
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float f) { int x; memcpy(&x, &f, 4); return x; }
inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned x; memcpy(&x, &f, 4); return x; }
inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double d) { long long x; memcpy(&x, &d, 8); return x; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
// Approximate on the GPU (documented maximum error); exact here. A kernel must not depend on the error.
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float a) { return expf(a); }
inline float __exp10f(float a) { return powf(10.0f, a); }
inline float __logf(float a) { return logf(a); }
inline float __log2f(float a) { return log2f(a); }
inline float __log10f(float a) { return log10f(a); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __sinf(float a) { return sinf(a); }
inline float __cosf(float a) { return cosf(a); }
inline float __tanf(float a) { return tanf(a); }
inline float __saturatef(float a) { return a != a ? 0.0f : (a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : a)); }
// float -> integer: NaN gives 0, out-of-range values saturate (cvt.rni/rzi/rmi/rpi.s32.f32).
namespace bnb_emu {
namespace detail {
template <class I>
inline I f2i(double r) {
  if (r != r) return 0;
  if (r <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
  if (r >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
  return (I)r;
}
}  // namespace detail
}  // namespace bnb_emu
inline int __float2int_rn(float a) { return bnb_emu::detail::f2i<int>(nearbyint((double)a)); }
inline int __float2int_rz(float a) { return bnb_emu::detail::f2i<int>(trunc((double)a)); }
inline int __float2int_rd(float a) { return bnb_emu::detail::f2i<int>(floor((double)a)); }
inline int __float2int_ru(float a) { return bnb_emu::detail::f2i<int>(ceil((double)a)); }
inline unsigned __float2uint_rn(float a) { return bnb_emu::detail::f2i<unsigned>(nearbyint((double)a)); }
inline unsigned __float2uint_rz(float a) { return bnb_emu::detail::f2i<unsigned>(trunc((double)a)); }
inline unsigned __float2uint_rd(float a) { return bnb_emu::detail::f2i<unsigned>(floor((double)a)); }
inline unsigned __float2uint_ru(float a) { return bnb_emu::detail::f2i<unsigned>(ceil((double)a)); }
inline long long __float2ll_rn(float a) { return bnb_emu::detail::f2i<long long>(nearbyint((double)a)); }
inline long long __float2ll_rz(float a) { return bnb_emu::detail::f2i<long long>(trunc((double)a)); }
inline float __int2float_rn(int a) { return (float)a; }
inline float __uint2float_rn(unsigned a) { return (float)a; }
inline float __ll2float_rn(long long a) { return (float)a; }
inline float __double2float_rn(double a) { return (float)a; }

// ------------------------------------------------------------------------------------ fp16 / bf16
// Storage-compatible with CUDA's __half / __nv_bfloat16 (one 16-bit pattern). Conversions: round to nearest
// even with subnormals and overflow to Inf (bnb_quant_math.h, the same math as every backend); a NaN
// becomes the canonical 0x7FFF, as cvt.rn.f16.f32 / cvt.rn.bf16.f32 give on the GPU.
namespace bnb_emu {
inline unsigned short f32_to_f16_rn(float f) { return f != f ? (unsigned short)0x7FFF : bnb::f32_to_f16(f); }
inline unsigned short f32_to_bf16_rn(float f) { return f != f ? (unsigned short)0x7FFF : bnb::f32_to_bf16(f); }
}  // namespace bnb_emu

struct __half_raw {
  unsigned short x;
};
struct __nv_bfloat16_raw {
  unsigned short x;
};
struct __align__(2) __half {
  unsigned short __x;
  __half() = default;
  constexpr __half(const __half_raw& r) : __x(r.x) {}
  __half(float f) : __x(bnb_emu::f32_to_f16_rn(f)) {}
  __half(double f) : __x(bnb_emu::f32_to_f16_rn((float)f)) {}
  operator float() const { return bnb::f16_to_f32(__x); }
  operator __half_raw() const { return __half_raw{__x}; }
};
struct __align__(2) __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  constexpr __nv_bfloat16(const __nv_bfloat16_raw& r) : __x(r.x) {}
  __nv_bfloat16(float f) : __x(bnb_emu::f32_to_bf16_rn(f)) {}
  __nv_bfloat16(double f) : __x(bnb_emu::f32_to_bf16_rn((float)f)) {}
  operator float() const { return bnb::bf16_to_f32(__x); }
  operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};
struct __align__(4) __half2 {
  __half x, y;
};
struct __align__(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

inline __half __ushort_as_half(unsigned short u) { return __half(__half_raw{u}); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __short_as_half(short s) { return __half(__half_raw{(unsigned short)s}); }
inline short __half_as_short(__half h) { return (short)h.__x; }
inline float __half2float(__half h) { return bnb::f16_to_f32(h.__x); }
inline __half __float2half(float f) { return __half(__half_raw{bnb_emu::f32_to_f16_rn(f)}); }
inline __half __float2half_rn(float f) { return __half(__half_raw{bnb_emu::f32_to_f16_rn(f)}); }
inline __half2 __floats2half2_rn(float a, float b) { return __half2{__float2half_rn(a), __float2half_rn(b)}; }
inline __half2 __float2half2_rn(float a) { return __half2{__float2half_rn(a), __float2half_rn(a)}; }
inline __half2 __float22half2_rn(float2 v) { return __floats2half2_rn(v.x, v.y); }
inline float2 __half22float2(__half2 h) { return float2{__half2float(h.x), __half2float(h.y)}; }
inline float __low2float(__half2 h) { return __half2float(h.x); }
inline float __high2float(__half2 h) { return __half2float(h.y); }
inline __half __low2half(__half2 h) { return h.x; }
inline __half __high2half(__half2 h) { return h.y; }
inline __half2 __halves2half2(__half a, __half b) { return __half2{a, b}; }
inline bool __hisnan(__half h) { return (h.__x & 0x7FFFu) > 0x7C00u; }
// Exactly rounded: fp16 sums are exact in double, fp16 products exact in float.
inline __half __hadd(__half a, __half b) {
  return __half(__half_raw{bnb_emu::f32_to_f16_rn((float)((double)__half2float(a) + (double)__half2float(b)))});
}
inline __half __hsub(__half a, __half b) {
  return __half(__half_raw{bnb_emu::f32_to_f16_rn((float)((double)__half2float(a) - (double)__half2float(b)))});
}
inline __half __hmul(__half a, __half b) { return __float2half_rn(__half2float(a) * __half2float(b)); }
inline __half __hneg(__half a) { return __ushort_as_half((unsigned short)(a.__x ^ 0x8000u)); }

inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16(__nv_bfloat16_raw{u}); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __short_as_bfloat16(short s) { return __nv_bfloat16(__nv_bfloat16_raw{(unsigned short)s}); }
inline short __bfloat16_as_short(__nv_bfloat16 h) { return (short)h.__x; }
inline float __bfloat162float(__nv_bfloat16 h) { return bnb::bf16_to_f32(h.__x); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(__nv_bfloat16_raw{bnb_emu::f32_to_bf16_rn(f)}); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  return __nv_bfloat16(__nv_bfloat16_raw{bnb_emu::f32_to_bf16_rn(f)});
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return __nv_bfloat162{__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
inline __nv_bfloat162 __float2bfloat162_rn(float a) {
  return __nv_bfloat162{__float2bfloat16_rn(a), __float2bfloat16_rn(a)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return __floats2bfloat162_rn(v.x, v.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline float __low2float(__nv_bfloat162 h) { return __bfloat162float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return __bfloat162float(h.y); }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return __nv_bfloat162{a, b}; }
inline bool __hisnan(__nv_bfloat16 h) { return (h.__x & 0x7FFFu) > 0x7F80u; }
