// Runs the MPS kernels on CPU: the assembled Metal source (BNB_KERNELS_SOURCE, written by
// tests/test_mps_kernels.py from bnb_core.backends.mps.shader_source("cpu")) compiled by g++ through
// bnb_metal_compat.h, and a small Metal-dispatch emulator with the calling convention of
// torch.mps.compile_shader: `lib.<kernel>(*args, threads=T, group_size=G)`, tensors bound as buffers in
// argument order, Python ints as 64-bit `long`, Python floats as 32-bit `float`.
//
// Dispatch: T threads in threadgroups of G (T must be a multiple of G: the MPS glue dispatches uniform grids);
// threadgroups run one after another; inside one, every thread is a fiber (ucontext) that runs until it
// finishes or reaches a threadgroup barrier / SIMD-group function, where it waits until every thread of its
// threadgroup / SIMD-group (32 lanes, as Apple GPUs) has arrived. No progress while threads wait = a barrier
// not reached by every thread: reported as an error. Deterministic and single-threaded.
//
// C API (ctypes): bnb_emu_launch(name, args, nargs, threads, group_size, err, errlen) -> 0 or -1 (err set).
// Each argument carries its kind (tensor / int / float) and, for tensors, a dtype tag; every kernel's adapter
// checks that the arguments have exactly the kinds and element types of the kernel's parameters, so a glue
// that passes a float where the kernel takes a long, or a bf16 tensor to an fp16 kernel, fails the test.
#include <setjmp.h>
#include <ucontext.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define BNB_EMU_FTZ 1
#endif

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bnb_metal_compat.h"
#include BNB_KERNELS_SOURCE
#include "bnb_metal_compat_end.h"

namespace bnb_emu {

constexpr uint32_t kSimdWidth = 32;
constexpr size_t kStackBytes = 64 * 1024;

struct Ids {
  uint32_t tid, nthreads, lid, group, group_size, ngroups, simd_lane, simd_id, simd_width;
};

enum State { kReady, kWaitGroup, kWaitSimd, kWaitEnd, kDone };

struct Fiber {
  ucontext_t ctx;  // first start only
  jmp_buf jb;      // every later switch
  char* stack = nullptr;  // kStackBytes, from the pool in launch()
  State state = kReady;
  bool started = false;
  uint64_t wait_gen = 0;
  Ids ids{};
};

// One fiber per thread of a threadgroup, reused for every threadgroup of the grid: it runs the kernel for
// threadgroup 0, waits at the end until every thread of it has finished (the next threadgroup reuses the
// `threadgroup` memory), then runs threadgroup 1, ...
struct Group {
  std::vector<Fiber> fibers;
  uint32_t ngroups = 0;
  uint32_t current = 0;  // the threadgroup being run
  uint64_t group_gen = 0, group_arrived = 0;  // threadgroup_barrier
  uint64_t end_gen = 0, end_arrived = 0;      // end of a threadgroup
  std::vector<uint64_t> simd_gen, simd_arrived;
  std::vector<uint32_t> simd_size;
  std::vector<uint32_t> slots[2];  // [parity][simd * kSimdWidth + lane]
};

static Group* g_group = nullptr;
static Fiber* g_current = nullptr;
static jmp_buf g_scheduler_jb;
static const std::function<void(const Ids&)>* g_body = nullptr;
static bool g_flush_subnormals = true;

// Switches: a fiber starts with setcontext (its own stack, made by makecontext); every later switch is
// _setjmp/_longjmp, which saves no signal mask (swapcontext makes a system call per switch).
static void suspend(Fiber* f, State why, uint64_t gen) {
  f->state = why;
  f->wait_gen = gen;
  if (!_setjmp(f->jb)) _longjmp(g_scheduler_jb, 1);
}

// Arrive at a collective point counted by (gen, arrived) for `size` participants; the last one releases all.
static void arrive(uint64_t& gen_counter, uint64_t& arrived, uint64_t size, State why) {
  const uint64_t gen = gen_counter;
  if (++arrived == size) {
    arrived = 0;
    ++gen_counter;
    return;
  }
  suspend(g_current, why, gen);
}

static void fiber_entry(unsigned hi, unsigned lo) {
  Fiber* f = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | static_cast<uintptr_t>(lo));
  Group& G = *g_group;
  for (uint32_t grp = 0; grp < G.ngroups; ++grp) {
    f->ids.group = grp;
    f->ids.tid = grp * f->ids.group_size + f->ids.lid;
    G.current = grp;
    (*g_body)(f->ids);
    arrive(G.end_gen, G.end_arrived, G.fibers.size(), kWaitEnd);
  }
  f->state = kDone;
  _longjmp(g_scheduler_jb, 1);
}

void group_barrier() {
  Group& G = *g_group;
  arrive(G.group_gen, G.group_arrived, G.fibers.size(), kWaitGroup);
}

int simd_collect(uint32_t bits, uint32_t* lanes) {
  Group& G = *g_group;
  const uint32_t s = g_current->ids.simd_id, lane = g_current->ids.simd_lane;
  // double-buffered by generation: a lane can be at most one collective ahead of a lane still reading
  std::vector<uint32_t>& slot = G.slots[G.simd_gen[s] & 1];
  slot[s * kSimdWidth + lane] = bits;
  arrive(G.simd_gen[s], G.simd_arrived[s], G.simd_size[s], kWaitSimd);
  for (uint32_t i = 0; i < G.simd_size[s]; ++i) lanes[i] = slot[s * kSimdWidth + i];
  return static_cast<int>(G.simd_size[s]);
}

static bool runnable(const Group& G, const Fiber& f) {
  switch (f.state) {
    case kReady: return true;
    case kWaitGroup: return G.group_gen > f.wait_gen;
    case kWaitSimd: return G.simd_gen[f.ids.simd_id] > f.wait_gen;
    case kWaitEnd: return G.end_gen > f.wait_gen;
    default: return false;
  }
}

// Runs the grid; returns "" or an error message. (_setjmp returns "twice": the scheduler's frame is not
// touched while a fiber runs and no local is modified between _setjmp and the _longjmp back, so the
// clobbered warning does not apply.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
static std::string launch(uint64_t threads, uint64_t group_size, const std::function<void(const Ids&)>& body) {
  if (group_size == 0 || group_size > 1024) return "group_size must be in [1, 1024]";
  if (threads % group_size != 0) return "threads must be a multiple of group_size (uniform grid)";
  if (threads > 0xFFFFFFFFull) return "threads must fit in 32 bits (thread_position_in_grid is a uint)";
  if (threads == 0) return "threads must be > 0";
  const uint32_t gs = static_cast<uint32_t>(group_size);
  const uint32_t nsimd = (gs + kSimdWidth - 1) / kSimdWidth;
  // fiber stacks: one pool reused by every launch (uninitialized: zeroing fresh stacks costs more than most kernels)
  static std::vector<std::unique_ptr<char[]>> pool;
  while (pool.size() < gs) pool.emplace_back(new char[kStackBytes]);
  Group G;
  G.ngroups = static_cast<uint32_t>(threads / group_size);
  G.fibers.resize(gs);
  G.simd_gen.assign(nsimd, 0);
  G.simd_arrived.assign(nsimd, 0);
  G.simd_size.resize(nsimd);
  for (uint32_t s = 0; s < nsimd; ++s) G.simd_size[s] = (s + 1) * kSimdWidth <= gs ? kSimdWidth : gs - s * kSimdWidth;
  G.slots[0].assign(nsimd * kSimdWidth, 0);
  G.slots[1].assign(nsimd * kSimdWidth, 0);
#if BNB_EMU_FTZ
  // Apple GPUs flush fp32 subnormals to zero: so does the CPU while the kernels run (FTZ: results, DAZ: operands).
  // Set before getcontext: a fiber's first setcontext loads the MXCSR saved in its context.
  const unsigned int saved_csr = _mm_getcsr();
  if (g_flush_subnormals) _mm_setcsr(saved_csr | 0x8040u);
#endif
  for (uint32_t l = 0; l < gs; ++l) {
    Fiber& f = G.fibers[l];
    f.stack = pool[l].get();
    f.ids = Ids{l, static_cast<uint32_t>(threads), l, 0, gs, G.ngroups, l % kSimdWidth, l / kSimdWidth, kSimdWidth};
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;  // fibers never return: they _longjmp to the scheduler
    const uintptr_t p = reinterpret_cast<uintptr_t>(&f);
    makecontext(&f.ctx, reinterpret_cast<void (*)()>(fiber_entry), 2, static_cast<unsigned>(p >> 32),
                static_cast<unsigned>(p & 0xFFFFFFFFu));
  }
  g_group = &G;
  g_body = &body;
  std::string err;
  // Scheduling, chosen to expose missing barriers: SIMD-groups run one at a time, each as far as it can (until
  // every lane waits at a threadgroup barrier, the end of the threadgroup, or is done), so one SIMD-group gets
  // ahead of the others as far as a GPU allows it to; inside a SIMD-group every lane runs to its next
  // synchronization point in turn. Directions alternate between passes (SIMD-groups and lanes 0..n-1, then
  // n-1..0), so a thread that reads what a thread of higher OR lower index writes without a barrier between
  // them sees the stale value in one of the passes.
  auto resume = [&](Fiber& f) {
    f.state = kReady;
    g_current = &f;
    if (!_setjmp(g_scheduler_jb)) {
      if (!f.started) {
        f.started = true;
        setcontext(&f.ctx);
      }
      _longjmp(f.jb, 1);
    }
  };
  for (uint64_t pass = 0;; ++pass) {
    const bool down = (pass & 1) != 0;
    bool progress = false, all_done = true;
    for (uint32_t si = 0; si < nsimd; ++si) {
      const uint32_t s = down ? nsimd - 1 - si : si;
      for (bool moved = true; moved;) {
        moved = false;
        for (uint32_t li = 0; li < G.simd_size[s]; ++li) {
          Fiber& f = G.fibers[s * kSimdWidth + (down ? G.simd_size[s] - 1 - li : li)];
          if (f.state == kDone || !runnable(G, f)) continue;
          resume(f);
          moved = progress = true;
        }
      }
    }
    for (const Fiber& f : G.fibers) all_done = all_done && f.state == kDone;
    if (all_done) break;
    if (!progress) {
      err = "threadgroup " + std::to_string(G.current) +
            ": deadlock, a threadgroup barrier or SIMD-group function was not reached by every thread";
      break;
    }
  }
#if BNB_EMU_FTZ
  _mm_setcsr(saved_csr);
#endif
  g_group = nullptr;
  g_current = nullptr;
  g_body = nullptr;
  return err;
}
#pragma GCC diagnostic pop

}  // namespace bnb_emu

// ---------------------------------------------------------------- arguments (ctypes layout)
extern "C" {
struct BnbEmuArg {
  int32_t kind;   // 0 tensor, 1 int (-> long), 2 float (-> float)
  char tag[8];    // tensor dtype: "f32", "f16", "bf16", "u8", ...
  void* ptr;      // tensor data
  int64_t nbytes; // tensor bytes
  int64_t i;
  double f;
};
}

namespace {

using bnb_emu::Ids;

struct Args {
  const BnbEmuArg* a;
  int n;
  std::string err;
  template <typename T>
  T* buf(int i, const char* tag) {
    if (!err.empty()) return nullptr;
    if (i >= n) { err = "missing argument " + std::to_string(i); return nullptr; }
    if (a[i].kind != 0) { err = "argument " + std::to_string(i) + " must be a tensor"; return nullptr; }
    if (strcmp(a[i].tag, tag) != 0) {
      err = "argument " + std::to_string(i) + " must be a " + tag + " tensor, got " + a[i].tag;
      return nullptr;
    }
    return static_cast<T*>(a[i].ptr);
  }
  long lng(int i) {
    if (!err.empty()) return 0;
    if (i >= n || a[i].kind != 1) { err = "argument " + std::to_string(i) + " must be an int (long)"; return 0; }
    return static_cast<long>(a[i].i);
  }
  bool done(int count) {
    if (err.empty() && n != count) err = "expected " + std::to_string(count) + " arguments, got " + std::to_string(n);
    return err.empty();
  }
};

#define BNB_EMU_GRID_PARAMS                                                                      \
  uint tid, uint nthreads, uint lid, uint group, uint group_size, uint ngroups, uint simd_lane, uint simd_id, \
      uint simd_width
#define BNB_IDS(d) d.tid, d.nthreads, d.lid, d.group, d.group_size, d.ngroups, d.simd_lane, d.simd_id, d.simd_width

typedef std::function<std::string(Args&, uint64_t, uint64_t)> Adapter;

#define DEQ4(NAME, T, TAG)                                                                                  \
  {#NAME, [](Args& x, uint64_t t, uint64_t g) -> std::string {                                              \
     auto A = x.buf<const uchar>(0, "u8");                                                                   \
     auto am = x.buf<const float>(1, "f32");                                                                 \
     auto out = x.buf<T>(2, TAG);                                                                            \
     long n = x.lng(3), l2 = x.lng(4), qt = x.lng(5);                                                        \
     if (!x.done(6)) return x.err;                                                                           \
     return bnb_emu::launch(t, g, [&](const Ids& d) { NAME(A, am, out, n, l2, qt, BNB_IDS(d)); });           \
   }}

#define DEQ8(NAME, T, TAG)                                                                                  \
  {#NAME, [](Args& x, uint64_t t, uint64_t g) -> std::string {                                              \
     auto A = x.buf<const uchar>(0, "u8");                                                                   \
     auto am = x.buf<const float>(1, "f32");                                                                 \
     auto code = x.buf<const float>(2, "f32");                                                               \
     auto out = x.buf<T>(3, TAG);                                                                            \
     long n = x.lng(4), l2 = x.lng(5);                                                                       \
     if (!x.done(6)) return x.err;                                                                           \
     return bnb_emu::launch(t, g, [&](const Ids& d) { NAME(A, am, code, out, n, l2, BNB_IDS(d)); });         \
   }}

#define Q8(NAME, T, TAG)                                                                                    \
  {#NAME, [](Args& x, uint64_t t, uint64_t g) -> std::string {                                              \
     auto A = x.buf<const T>(0, TAG);                                                                        \
     auto code = x.buf<const float>(1, "f32");                                                               \
     auto out = x.buf<uchar>(2, "u8");                                                                       \
     auto am = x.buf<float>(3, "f32");                                                                       \
     long n = x.lng(4), l2 = x.lng(5);                                                                       \
     if (!x.done(6)) return x.err;                                                                           \
     return bnb_emu::launch(t, g, [&](const Ids& d) { NAME(A, code, out, am, n, l2, BNB_IDS(d)); });         \
   }}

#define GEMV4(NAME, T, TAG)                                                                                 \
  {#NAME, [](Args& x, uint64_t t, uint64_t g) -> std::string {                                              \
     auto A = x.buf<const T>(0, TAG);                                                                        \
     auto B = x.buf<const uchar>(1, "u8");                                                                   \
     auto am = x.buf<const float>(2, "f32");                                                                 \
     auto code = x.buf<const float>(3, "f32");                                                               \
     auto out = x.buf<T>(4, TAG);                                                                            \
     long M = x.lng(5), N = x.lng(6), K = x.lng(7), l2 = x.lng(8);                                           \
     if (!x.done(9)) return x.err;                                                                           \
     return bnb_emu::launch(t, g, [&](const Ids& d) { NAME(A, B, am, code, out, M, N, K, l2, BNB_IDS(d)); }); \
   }}

// Self-tests of the emulator itself (tests/test_mps_kernels.py): a barrier only some threads reach must be reported,
// and a threadgroup-memory exchange must need its barrier (without it a thread reads a stale value).
static void selftest_divergent_barrier(float* out, BNB_EMU_GRID_PARAMS) {
  static float shared[1024];
  if (lid == 0) return;  // thread 0 never reaches the barrier
  shared[lid] = 1.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[tid] = shared[lid];
}

static void selftest_exchange(float* out, long with_barrier, BNB_EMU_GRID_PARAMS) {
  static float shared[1024];
  shared[lid] = (float)tid;
  if (with_barrier) threadgroup_barrier(mem_flags::mem_threadgroup);
  // the neighbours' values, one up and one down
  out[2 * tid] = shared[(lid + 1) % group_size];
  out[2 * tid + 1] = shared[(lid + group_size - 1) % group_size];
  threadgroup_barrier(mem_flags::mem_threadgroup);  // before the next threadgroup overwrites `shared`
  shared[lid] = -1.0f;
}

static float selftest_simd_sum_value(float v) { return simd_sum(v); }

// Subnormal arithmetic: 2^-149 * 3 is 0 where subnormals are flushed; bnb::mul_exact gives 3 * 2^-149 regardless.
static void selftest_subnormal(float* out, BNB_EMU_GRID_PARAMS) {
  volatile float tiny = as_type<float>(1u), three = 3.0f;
  out[2 * tid] = tiny * three;
  out[2 * tid + 1] = bnb::mul_exact(tiny, 3.0f);
}

static void selftest_simd(float* out, BNB_EMU_GRID_PARAMS) {
  out[tid] = selftest_simd_sum_value((float)simd_lane) + (simd_any(simd_lane == 5) ? 1000.0f : 0.0f) +
             simd_max((float)(simd_id * 100 + simd_lane)) * 1e-6f;
}

const std::map<std::string, Adapter>& kernels() {
  static const std::map<std::string, Adapter> table = {
      DEQ4(bnb_dequantize_4bit_f32, float, "f32"),
      DEQ4(bnb_dequantize_4bit_f16, half, "f16"),
      DEQ4(bnb_dequantize_4bit_bf16, ushort, "bf16"),
      DEQ8(bnb_dequantize_blockwise_f32, float, "f32"),
      DEQ8(bnb_dequantize_blockwise_f16, half, "f16"),
      DEQ8(bnb_dequantize_blockwise_bf16, ushort, "bf16"),
      Q8(bnb_quantize_blockwise_f32, float, "f32"),
      Q8(bnb_quantize_blockwise_f16, half, "f16"),
      Q8(bnb_quantize_blockwise_bf16, ushort, "bf16"),
      GEMV4(bnb_gemv_4bit_f32, float, "f32"),
      GEMV4(bnb_gemv_4bit_f16, half, "f16"),
      GEMV4(bnb_gemv_4bit_bf16, ushort, "bf16"),
      {"emu_selftest_divergent_barrier", [](Args& x, uint64_t t, uint64_t g) -> std::string {
         auto out = x.buf<float>(0, "f32");
         if (!x.done(1)) return x.err;
         return bnb_emu::launch(t, g, [&](const Ids& d) { selftest_divergent_barrier(out, BNB_IDS(d)); });
       }},
      {"emu_selftest_exchange", [](Args& x, uint64_t t, uint64_t g) -> std::string {
         auto out = x.buf<float>(0, "f32");
         long with_barrier = x.lng(1);
         if (!x.done(2)) return x.err;
         return bnb_emu::launch(t, g, [&](const Ids& d) { selftest_exchange(out, with_barrier, BNB_IDS(d)); });
       }},
      {"emu_selftest_subnormal", [](Args& x, uint64_t t, uint64_t g) -> std::string {
         auto out = x.buf<float>(0, "f32");
         if (!x.done(1)) return x.err;
         return bnb_emu::launch(t, g, [&](const Ids& d) { selftest_subnormal(out, BNB_IDS(d)); });
       }},
      {"emu_selftest_simd", [](Args& x, uint64_t t, uint64_t g) -> std::string {
         auto out = x.buf<float>(0, "f32");
         if (!x.done(1)) return x.err;
         return bnb_emu::launch(t, g, [&](const Ids& d) { selftest_simd(out, BNB_IDS(d)); });
       }},
  };
  return table;
}

}  // namespace

extern "C" {

int bnb_emu_launch(const char* name, const BnbEmuArg* args, int nargs, uint64_t threads, uint64_t group_size,
                   char* err, int errlen) {
  std::string e;
  auto it = kernels().find(name);
  if (it == kernels().end()) {
    e = std::string("no kernel named ") + name;
  } else {
    Args x{args, nargs, ""};
    e = it->second(x, threads, group_size);
  }
  if (e.empty()) return 0;
  snprintf(err, static_cast<size_t>(errlen), "%s: %s", name, e.c_str());
  return -1;
}

// Whether kernels run with fp32 subnormals flushed to zero (default: yes, where the CPU can: x86). Returns
// whether this build can flush.
int bnb_emu_set_flush_subnormals(int on) {
  bnb_emu::g_flush_subnormals = on != 0;
#if BNB_EMU_FTZ
  return 1;
#else
  return 0;
#endif
}

int bnb_emu_kernel_count() { return static_cast<int>(kernels().size()); }

const char* bnb_emu_kernel_name(int i) {
  auto it = kernels().begin();
  std::advance(it, i);
  return it->first.c_str();
}

}  // extern "C"
