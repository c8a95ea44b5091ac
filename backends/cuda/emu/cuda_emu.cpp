// The runtime behind emu/cuda_emu.h: fibers, the block scheduler, barriers, warp collectives, cp.async
// groups and the emulated CUDA runtime API (one fake device, index 0). See cuda_emu.h for the model.
#include "cuda_emu.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#if !defined(__x86_64__) || defined(BNB_EMU_USE_UCONTEXT)
#include <ucontext.h>
#define BNB_EMU_UCONTEXT 1
#endif

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

// ------------------------------------------------------------------------------------ context switch
#if !defined(BNB_EMU_UCONTEXT)
// x86-64 System V: save the callee-saved registers, MXCSR and the x87 control word on the old stack, switch
// stacks, restore them from the new one. A new context starts in bnb_emu_fiber_start, which calls
// entry(arg) (r13, r12 of its initial frame) and never returns.
asm(R"(
  .pushsection .text
  .p2align 4
  .globl bnb_emu_switch_ctx
  .hidden bnb_emu_switch_ctx
  .type bnb_emu_switch_ctx,@function
bnb_emu_switch_ctx:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size bnb_emu_switch_ctx, .-bnb_emu_switch_ctx

  .p2align 4
  .globl bnb_emu_fiber_start
  .hidden bnb_emu_fiber_start
  .type bnb_emu_fiber_start,@function
bnb_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size bnb_emu_fiber_start, .-bnb_emu_fiber_start
  .popsection
)");
extern "C" __attribute__((visibility("hidden"))) void bnb_emu_switch_ctx(void** save_sp, void* new_sp);
extern "C" __attribute__((visibility("hidden"))) void bnb_emu_fiber_start();
#endif

namespace bnb_emu {
namespace {

#if !defined(BNB_EMU_UCONTEXT)
struct Context {
  void* sp = nullptr;
};

void ctx_init(Context& c, char* stack_lo, size_t size, void (*entry)(void*), void* arg) {
  uintptr_t top = ((uintptr_t)(stack_lo + size)) & ~(uintptr_t)15;
  uint64_t* f = reinterpret_cast<uint64_t*>(top - 64);
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  f[0] = (uint64_t)mxcsr | ((uint64_t)fpcw << 32);
  f[1] = 0;                                   // r15
  f[2] = 0;                                   // r14
  f[3] = (uint64_t)(uintptr_t)entry;          // r13
  f[4] = (uint64_t)(uintptr_t)arg;            // r12
  f[5] = 0;                                   // rbx
  f[6] = 0;                                   // rbp
  f[7] = (uint64_t)(uintptr_t)&bnb_emu_fiber_start;  // return address
  c.sp = f;
}

inline void ctx_switch(Context& from, Context& to) { bnb_emu_switch_ctx(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};

void ctx_trampoline(unsigned hi_e, unsigned lo_e, unsigned hi_a, unsigned lo_a) {
  auto entry = (void (*)(void*))(uintptr_t)(((uint64_t)hi_e << 32) | lo_e);
  void* arg = (void*)(uintptr_t)(((uint64_t)hi_a << 32) | lo_a);
  entry(arg);
  abort();
}

void ctx_init(Context& c, char* stack_lo, size_t size, void (*entry)(void*), void* arg) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack_lo;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  const uint64_t e = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
  makecontext(&c.uc, (void (*)())ctx_trampoline, 4, (unsigned)(e >> 32), (unsigned)e, (unsigned)(a >> 32),
              (unsigned)a);
}

inline void ctx_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ------------------------------------------------------------------------------------ state
enum class Wait : uint8_t { kNone, kBarrier, kWarp, kYield };
enum class State : uint8_t { kReady, kBlocked, kDone };

struct CpCopy {
  void* dst;
  const void* src;
  unsigned bytes;
  unsigned src_bytes;
};

struct Fiber {
  Context ctx;
  char* mem = nullptr;  // mapping: guard page, then the stack
  size_t mem_size = 0;
  uint3 tid{0, 0, 0};
  unsigned linear = 0;
  State state = State::kDone;
  Wait wait = Wait::kNone;
  int bar_kind = 0;
  int bar_result = 0;
  unsigned w_mask = 0;
  WarpFn w_fn = nullptr;
  const void* w_in = nullptr;
  void* w_out = nullptr;
  std::vector<CpCopy> cp;          // issued, not yet complete, in issue order
  std::vector<size_t> cp_groups;   // end (index into cp) of each committed group, oldest first
};

struct WarpState {
  unsigned present = 0;  // lanes that exist in the block
  unsigned exited = 0;
  unsigned waiting = 0;  // lanes posted at a warp collective
};

struct Launch {
  const char* name;
  void* static_smem = nullptr;  // this thread's TLS block of the kernel's module (its __shared__ variables)
  size_t static_smem_size = 0;
  dim3 grid, block;
  void (*body)(void*);
  void* ctx;
  bool aborted = false;
  cudaError_t err = cudaSuccess;
  std::string why;
};

size_t page_size() {
  static const size_t p = (size_t)sysconf(_SC_PAGESIZE);
  return p;
}

size_t stack_bytes() {
  static const size_t s = [] {
    size_t kb = 256;
    if (const char* e = getenv("BNB_EMU_STACK_KB")) kb = (size_t)strtoul(e, nullptr, 10);
    if (kb < 64) kb = 64;
    return kb * 1024;
  }();
  return s;
}

struct Runtime {
  Context sched;
  std::vector<Fiber*> pool;
  Fiber* cur = nullptr;
  Launch* L = nullptr;
  unsigned nthreads = 0, live = 0, done = 0;
  unsigned bar_arrived = 0, bar_count = 0;
  WarpState warps[32];
  uint64_t idle_yields = 0;  // yields since the last progress (livelock guard)
  // dynamic shared memory
  unsigned char* smem = nullptr;
  size_t smem_cap = 0, smem_size = 0;
  // settings and results
  unsigned max_grid = 0;
  int sched_mode = 0;
  uint64_t seed = 0, rng = 0;
  int block_order = 0;
  bool poison_shared = true;
  std::vector<unsigned> order;
  int device = 0;
  cudaError_t last_error = cudaSuccess;
  std::string failure;
  Stats stats;

  ~Runtime() {
    for (Fiber* f : pool) {
      if (f->mem) munmap(f->mem, f->mem_size);
      delete f;
    }
    free(smem);
  }

  Fiber* fiber(unsigned warp, unsigned lane) { return pool[warp * 32 + lane]; }
};

thread_local Runtime rt;

std::mutex g_attr_mu;
std::unordered_map<const void*, int> g_max_dyn_smem;  // cudaFuncSetAttribute(MaxDynamicSharedMemorySize)

constexpr size_t kDefaultDynSmem = 48 * 1024;
constexpr size_t kMaxDynSmemOptin = 227 * 1024;
constexpr uint64_t kLivelockYields = 50'000'000;

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) rt.last_error = e;
  return e;
}

std::string where() {
  char buf[160];
  snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x,
           threadIdx.y, threadIdx.z);
  return buf;
}

// Stops the launch: the current fiber (if any) is abandoned and never resumed.
[[noreturn]] void abort_launch(cudaError_t err, const std::string& why) {
  Launch* L = rt.L;
  if (L == nullptr) {
    fprintf(stderr, "bnb_emu: %s outside of a kernel\n", why.c_str());
    abort();
  }
  if (!L->aborted) {
    L->aborted = true;
    L->err = err;
    L->why = std::string("kernel ") + L->name + ": " + why;
  }
  Fiber* f = rt.cur;
  if (f == nullptr) {  // only the scheduler calls this without a current fiber; it never does
    fprintf(stderr, "bnb_emu: internal error: %s\n", why.c_str());
    abort();
  }
  f->state = State::kDone;
  ctx_switch(f->ctx, rt.sched);
  abort();  // unreachable: an aborted fiber is never resumed
}

Fiber* current(const char* what) {
  if (rt.cur == nullptr) {
    fprintf(stderr, "bnb_emu: %s called outside of a kernel\n", what);
    abort();
  }
  return rt.cur;
}

void block_current(Wait w) {
  Fiber* f = rt.cur;
  f->state = State::kBlocked;
  f->wait = w;
  ctx_switch(f->ctx, rt.sched);
}

// ------------------------------------------------------------------------------------ barriers
void complete_barrier() {
  const unsigned total = rt.bar_arrived, count = rt.bar_count;
  for (unsigned i = 0; i < rt.nthreads; ++i) {
    Fiber* g = rt.pool[i];
    if (g->wait != Wait::kBarrier) continue;
    int r = 0;
    switch (g->bar_kind) {
      case 1: r = (int)count; break;
      case 2: r = count == total; break;
      case 3: r = count > 0; break;
      default: break;
    }
    g->bar_result = r;
    g->wait = Wait::kNone;
    if (g != rt.cur) g->state = State::kReady;
  }
  rt.bar_arrived = rt.bar_count = 0;
  rt.idle_yields = 0;
}

bool try_complete(unsigned w, unsigned lane) {
  WarpState& W = rt.warps[w];
  Fiber* ref = rt.fiber(w, lane);
  const unsigned m = (ref->w_mask & W.present & ~W.exited) | (1u << lane);
  if ((W.waiting & m) != m) return false;
  WarpArgs a;
  a.lanes = m;
  for (unsigned l = 0; l < 32; ++l) {
    a.in[l] = nullptr;
    a.out[l] = nullptr;
    if (!(m >> l & 1u)) continue;
    Fiber* g = rt.fiber(w, l);
    if (g->w_mask != ref->w_mask || g->w_fn != ref->w_fn) return false;  // another collective: keep waiting
    a.in[l] = g->w_in;
    a.out[l] = g->w_out;
  }
  ref->w_fn(a);
  for (unsigned l = 0; l < 32; ++l) {
    if (!(m >> l & 1u)) continue;
    Fiber* g = rt.fiber(w, l);
    g->wait = Wait::kNone;
    if (g != rt.cur) g->state = State::kReady;
  }
  W.waiting &= ~m;
  rt.idle_yields = 0;
  return true;
}

void try_complete_warp(unsigned w) {
  bool again = true;
  while (again) {
    again = false;
    for (unsigned l = 0; l < 32; ++l)
      if ((rt.warps[w].waiting >> l & 1u) && try_complete(w, l)) {
        again = true;
        break;
      }
  }
}

// ------------------------------------------------------------------------------------ cp.async
void cp_perform(const CpCopy& c) {
  memcpy(c.dst, c.src, c.src_bytes);
  if (c.bytes > c.src_bytes) memset(static_cast<char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
}

void cp_complete_first(Fiber* f, size_t n) {
  for (size_t i = 0; i < n; ++i) cp_perform(f->cp[i]);
  f->cp.erase(f->cp.begin(), f->cp.begin() + (ptrdiff_t)n);
}

// ------------------------------------------------------------------------------------ fibers
void thread_exit(Fiber* f) {
  cp_complete_first(f, f->cp.size());  // the hardware completes outstanding copies of an exited thread
  f->cp_groups.clear();
  f->state = State::kDone;
  f->wait = Wait::kNone;
  ++rt.done;
  --rt.live;
  const unsigned w = f->linear / 32;
  rt.warps[w].exited |= 1u << (f->linear % 32);
  rt.idle_yields = 0;
  // Exited threads count as arrived at __syncthreads; a warp collective no longer waits for them.
  if (rt.bar_arrived > 0 && rt.bar_arrived == rt.live) complete_barrier();
  try_complete_warp(w);
  ctx_switch(f->ctx, rt.sched);
  abort();  // never resumed
}

void fiber_entry(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
  rt.L->body(rt.L->ctx);
  thread_exit(f);
}

void ensure_pool(unsigned n) {
  while (rt.pool.size() < n) {
    Fiber* f = new Fiber();
    const size_t pg = page_size();
    f->mem_size = stack_bytes() + pg;
    void* m = mmap(nullptr, f->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      fprintf(stderr, "bnb_emu: cannot map a fiber stack of %zu bytes\n", f->mem_size);
      abort();
    }
    f->mem = static_cast<char*>(m);
    mprotect(f->mem, pg, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting memory
    rt.pool.push_back(f);
  }
}

uint64_t next_rand() {  // xorshift64*
  uint64_t x = rt.rng ? rt.rng : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rt.rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

std::string describe_deadlock() {
  unsigned at_bar = 0, at_warp = 0;
  std::string warps;
  for (unsigned i = 0; i < rt.nthreads; ++i) {
    Fiber* g = rt.pool[i];
    if (g->state != State::kBlocked) continue;
    if (g->wait == Wait::kBarrier) ++at_bar;
    if (g->wait == Wait::kWarp) ++at_warp;
  }
  for (unsigned w = 0; w < (rt.nthreads + 31) / 32 && warps.size() < 400; ++w) {
    const WarpState& W = rt.warps[w];
    if (!W.waiting) continue;
    char buf[128];
    const Fiber* f = rt.fiber(w, (unsigned)__builtin_ctz(W.waiting));
    snprintf(buf, sizeof buf, " warp %u: lanes 0x%08x wait (lane %u's mask 0x%08x), exited 0x%08x;", w, W.waiting,
             (unsigned)__builtin_ctz(W.waiting), f->w_mask, W.exited);
    warps += buf;
  }
  char head[200];
  snprintf(head, sizeof head,
           "deadlock in block (%u,%u,%u): %u of %u live threads wait at __syncthreads (%u arrived), %u at a warp "
           "collective;",
           blockIdx.x, blockIdx.y, blockIdx.z, at_bar, rt.live, rt.bar_arrived, at_warp);
  return head + warps;
}

// ------------------------------------------------------------------------------------ static shared memory
// `__shared__` variables are the thread_local variables of the module that holds the kernels (that module holds
// no other thread_local: the runtime, host code and bindings live in other modules, see CMakeLists.txt). Every
// block starts with this host thread's copy of that module's TLS block filled with 0xFF, as a GPU block starts
// with undefined shared memory: a kernel that reads shared memory before writing it (a missing barrier) reads
// NaN / -1 instead of what the previous block left there.
struct TlsModule {
  size_t modid = 0;
  size_t size = 0;
};

struct TlsQuery {
  uintptr_t base;
  TlsModule found;
};

int find_tls(struct dl_phdr_info* info, size_t, void* data) {
  TlsQuery* q = static_cast<TlsQuery*>(data);
  uintptr_t lo = UINTPTR_MAX;
  const ElfW(Phdr)* tls = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && ph.p_vaddr < lo) lo = ph.p_vaddr;
    if (ph.p_type == PT_TLS) tls = &ph;
  }
  if (lo == UINTPTR_MAX || ((info->dlpi_addr + lo) & ~(uintptr_t)(page_size() - 1)) != q->base) return 0;
  if (tls) q->found = TlsModule{info->dlpi_tls_modid, (size_t)tls->p_memsz};
  return 1;
}

std::mutex g_tls_mu;
std::unordered_map<uintptr_t, TlsModule> g_tls_modules;  // module base -> its TLS segment

TlsModule tls_module_of(const void* func) {
  Dl_info info;
  if (!dladdr(func, &info) || !info.dli_fbase) return TlsModule();
  const uintptr_t base = (uintptr_t)info.dli_fbase;
  std::lock_guard<std::mutex> lock(g_tls_mu);
  auto it = g_tls_modules.find(base);
  if (it != g_tls_modules.end()) return it->second;
  TlsQuery q{base, TlsModule()};
  dl_iterate_phdr(&find_tls, &q);
  g_tls_modules[base] = q.found;
  return q.found;
}

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
struct TlsIndex {
  unsigned long module;
  unsigned long offset;
};
extern "C" void* __tls_get_addr(TlsIndex*);
void* tls_block(const TlsModule& m) {
  TlsIndex idx{m.modid, 0};  // allocates this thread's block of a dlopen'ed module if needed
  return __tls_get_addr(&idx);
}
#else
void* tls_block(const TlsModule&) { return nullptr; }
#endif

void run_block(Launch& L, unsigned nthreads) {
  rt.nthreads = nthreads;
  rt.live = nthreads;
  rt.done = 0;
  rt.bar_arrived = rt.bar_count = 0;
  rt.idle_yields = 0;
  for (unsigned w = 0; w < 32; ++w) {
    const unsigned first = w * 32;
    WarpState& W = rt.warps[w];
    W.present = first >= nthreads ? 0u : (nthreads - first >= 32 ? 0xFFFFFFFFu : (1u << (nthreads - first)) - 1u);
    W.exited = W.waiting = 0;
  }
  const unsigned bx = L.block.x, by = L.block.y;
  const size_t pg = page_size();
  for (unsigned i = 0; i < nthreads; ++i) {
    Fiber* f = rt.pool[i];
    f->tid = uint3{i % bx, (i / bx) % by, i / (bx * by)};
    f->linear = i;
    f->state = State::kReady;
    f->wait = Wait::kNone;
    f->cp.clear();
    f->cp_groups.clear();
    ctx_init(f->ctx, f->mem + pg, f->mem_size - pg, &fiber_entry, f);
  }
  if (rt.smem_size) memset(rt.smem, 0xFF, rt.smem_size);  // uninitialized shared memory reads as NaN / -1
  if (L.static_smem) memset(L.static_smem, 0xFF, L.static_smem_size);
  rt.order.resize(nthreads);
  for (unsigned i = 0; i < nthreads; ++i) rt.order[i] = rt.sched_mode == 1 ? nthreads - 1 - i : i;
  while (rt.done < nthreads) {
    if (rt.sched_mode == 2)
      for (unsigned i = nthreads; i > 1; --i) std::swap(rt.order[i - 1], rt.order[next_rand() % i]);
    bool ran = false;
    for (unsigned k = 0; k < nthreads; ++k) {
      Fiber* f = rt.pool[rt.order[k]];
      if (f->state != State::kReady) continue;
      ran = true;
      threadIdx = f->tid;
      rt.cur = f;
      rt.stats.switches += 2;
      ctx_switch(rt.sched, f->ctx);
      rt.cur = nullptr;
      if (L.aborted) return;
    }
    if (!ran) {
      L.aborted = true;
      L.err = cudaErrorLaunchFailure;
      L.why = std::string("kernel ") + L.name + ": " + describe_deadlock();
      return;
    }
    if (rt.idle_yields > kLivelockYields) {
      L.aborted = true;
      L.err = cudaErrorLaunchTimeout;
      L.why = std::string("kernel ") + L.name + ": no progress after " + std::to_string(kLivelockYields) +
              " __nanosleep yields (a spin-wait on another block? blocks run one at a time)";
      return;
    }
  }
  rt.stats.blocks += 1;
  rt.stats.threads += nthreads;
}

void fail_launch(cudaError_t err, const char* name, const std::string& why) {
  rt.failure = std::string("kernel ") + name + ": " + why;
  record(err);
}

}  // namespace

// ------------------------------------------------------------------------------------ kernel-side API
namespace detail {

void run_kernel(const char* name, const void* func, dim3 grid, dim3 block, size_t smem, void (*body)(void*),
                void* ctx) {
  rt.stats.launches += 1;
  if (rt.L != nullptr) {
    fail_launch(cudaErrorNotSupported, name, "launch from inside a kernel (dynamic parallelism) is not emulated");
    return;
  }
  const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 || threads > 1024 ||
      block.z > 64 || grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) {
    char buf[160];
    snprintf(buf, sizeof buf, "invalid configuration grid (%u,%u,%u) block (%u,%u,%u)", grid.x, grid.y, grid.z,
             block.x, block.y, block.z);
    fail_launch(cudaErrorInvalidConfiguration, name, buf);
    return;
  }
  size_t limit = kDefaultDynSmem;
  {
    std::lock_guard<std::mutex> lock(g_attr_mu);
    auto it = g_max_dyn_smem.find(func);
    if (it != g_max_dyn_smem.end()) limit = (size_t)it->second;
  }
  if (smem > limit) {
    fail_launch(cudaErrorInvalidValue, name,
                std::to_string(smem) + " bytes of dynamic shared memory > the kernel's limit " + std::to_string(limit) +
                    " (cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises it up to 227 KiB)");
    return;
  }
  if (rt.max_grid) {
    grid.x = grid.x < rt.max_grid ? grid.x : rt.max_grid;
    grid.y = grid.y < rt.max_grid ? grid.y : rt.max_grid;
    grid.z = grid.z < rt.max_grid ? grid.z : rt.max_grid;
  }
  if (smem > rt.smem_cap) {
    free(rt.smem);
    rt.smem_cap = (smem + 4095) & ~(size_t)4095;
    rt.smem = static_cast<unsigned char*>(aligned_alloc(128, rt.smem_cap));
  }
  rt.smem_size = smem;
  ensure_pool((unsigned)threads);

  Launch L;
  L.name = name;
  if (rt.poison_shared) {
    const TlsModule m = tls_module_of(func);
    if (m.modid && m.size) {
      L.static_smem = tls_block(m);
      L.static_smem_size = L.static_smem ? m.size : 0;
    }
  }
  L.grid = grid;
  L.block = block;
  L.body = body;
  L.ctx = ctx;
  rt.L = &L;
  blockDim = block;
  gridDim = grid;
  const unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
  for (unsigned long long k = 0; k < nblocks && !L.aborted; ++k) {
    const unsigned long long b = rt.block_order == 1 ? nblocks - 1 - k : k;
    blockIdx = uint3{(unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y), (unsigned)(b / (grid.x * grid.y))};
    run_block(L, (unsigned)threads);
  }
  rt.L = nullptr;
  rt.cur = nullptr;
  rt.smem_size = 0;
  if (L.aborted) {
    rt.failure = L.why;
    record(L.err);
  }
}

int block_barrier(int kind, int pred) {
  Fiber* f = current("__syncthreads");
  f->bar_kind = kind;
  f->wait = Wait::kBarrier;
  ++rt.bar_arrived;
  if (pred) ++rt.bar_count;
  if (rt.bar_arrived == rt.live) {
    complete_barrier();
  } else {
    block_current(Wait::kBarrier);
  }
  return f->bar_result;
}

void warp_collective(unsigned mask, WarpFn fn, const void* in, void* out) {
  Fiber* f = current("a warp intrinsic");
  const unsigned w = f->linear / 32, lane = f->linear % 32;
  f->w_mask = mask;
  f->w_fn = fn;
  f->w_in = in;
  f->w_out = out;
  f->wait = Wait::kWarp;
  rt.warps[w].waiting |= 1u << lane;
  if (try_complete(w, lane)) return;
  block_current(Wait::kWarp);
}

unsigned lane_id() { return current("lane_id")->linear % 32; }

unsigned live_lanes() {
  const WarpState& W = rt.warps[current("__activemask")->linear / 32];
  return W.present & ~W.exited;
}

void* dynamic_smem() {
  current("dynamic shared memory");
  return rt.smem;
}
size_t dynamic_smem_size() { return rt.smem_size; }

void trap(const char* what) {
  current(what);
  abort_launch(cudaErrorLaunchFailure, std::string(what) + " at " + where());
}

void yield() {
  Fiber* f = current("__nanosleep");
  ++rt.idle_yields;
  f->state = State::kReady;
  f->wait = Wait::kYield;
  ctx_switch(f->ctx, rt.sched);
  f->wait = Wait::kNone;
}

uint64_t clock64() {
  return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  Fiber* f = current("cp.async");
  if (!(bytes == 4 || bytes == 8 || bytes == 16) || src_bytes > bytes)
    abort_launch(cudaErrorIllegalInstruction, "cp.async: cp-size must be 4, 8 or 16 and src-size <= cp-size at " + where());
  if (((uintptr_t)dst | (uintptr_t)src) & (bytes - 1))
    abort_launch(cudaErrorMisalignedAddress, "cp.async: source and destination must be aligned to cp-size (" +
                                                 std::to_string(bytes) + " bytes) at " + where());
  f->cp.push_back(CpCopy{dst, src, bytes, src_bytes});
}

void cp_async_commit() {
  Fiber* f = current("cp.async.commit_group");
  f->cp_groups.push_back(f->cp.size());
}

void cp_async_wait(int n) {
  Fiber* f = current("cp.async.wait_group");
  const size_t g = f->cp_groups.size();
  if (n < 0 || g <= (size_t)n) return;
  const size_t k = g - (size_t)n;  // complete the k oldest groups
  const size_t upto = f->cp_groups[k - 1];
  cp_complete_first(f, upto);
  f->cp_groups.erase(f->cp_groups.begin(), f->cp_groups.begin() + (ptrdiff_t)k);
  for (size_t& e : f->cp_groups) e -= upto;
}

void cp_async_wait_all() {
  Fiber* f = current("cp.async.wait_all");
  cp_complete_first(f, f->cp.size());
  f->cp_groups.clear();
}

}  // namespace detail

// ------------------------------------------------------------------------------------ controls
void set_max_grid(unsigned n) { rt.max_grid = n; }
unsigned max_grid() { return rt.max_grid; }
void set_schedule(int mode, uint64_t seed) {
  rt.sched_mode = mode;
  rt.seed = seed;
  rt.rng = seed * 0x9E3779B97F4A7C15ull + 1;
}
int schedule() { return rt.sched_mode; }
void set_block_order(int order) { rt.block_order = order; }
void set_poison_shared(bool on) { rt.poison_shared = on; }
std::string last_failure() { return rt.failure; }
Stats stats() { return rt.stats; }
void reset_stats() { rt.stats = Stats(); }

}  // namespace bnb_emu

// ------------------------------------------------------------------------------------ runtime API
using bnb_emu::rt;

cudaError_t cudaGetDevice(int* device) {
  if (!device) return bnb_emu::record(cudaErrorInvalidValue);
  *device = rt.device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0) return bnb_emu::record(cudaErrorInvalidDevice);
  rt.device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return bnb_emu::record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = rt.last_error;
  rt.last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return rt.last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
#define BNB_EMU_NAME(e) \
  case e:               \
    return #e;
    BNB_EMU_NAME(cudaSuccess)
    BNB_EMU_NAME(cudaErrorInvalidValue)
    BNB_EMU_NAME(cudaErrorMemoryAllocation)
    BNB_EMU_NAME(cudaErrorInitializationError)
    BNB_EMU_NAME(cudaErrorInvalidConfiguration)
    BNB_EMU_NAME(cudaErrorInvalidDeviceFunction)
    BNB_EMU_NAME(cudaErrorNoDevice)
    BNB_EMU_NAME(cudaErrorInvalidDevice)
    BNB_EMU_NAME(cudaErrorInvalidResourceHandle)
    BNB_EMU_NAME(cudaErrorNotReady)
    BNB_EMU_NAME(cudaErrorIllegalAddress)
    BNB_EMU_NAME(cudaErrorLaunchOutOfResources)
    BNB_EMU_NAME(cudaErrorAssert)
    BNB_EMU_NAME(cudaErrorIllegalInstruction)
    BNB_EMU_NAME(cudaErrorMisalignedAddress)
    BNB_EMU_NAME(cudaErrorLaunchFailure)
    BNB_EMU_NAME(cudaErrorNotSupported)
    BNB_EMU_NAME(cudaErrorUnknown)
    BNB_EMU_NAME(cudaErrorLaunchTimeout)
#undef BNB_EMU_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "unknown error";
  }
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (!version) return bnb_emu::record(cudaErrorInvalidValue);
  *version = BNB_EMU_RUNTIME_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) { return cudaRuntimeGetVersion(version); }

cudaError_t cudaDeviceSynchronize() { return rt.last_error; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return rt.last_error; }

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return bnb_emu::record(cudaErrorInvalidValue);
  if (device != 0) return bnb_emu::record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxGridDimX: *value = 0x7FFFFFFF; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)bnb_emu::kDefaultDynSmem; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = BNB_EMU_SM / 100; break;
    case cudaDevAttrComputeCapabilityMinor: *value = BNB_EMU_SM % 100 / 10; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = 228 * 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)bnb_emu::kMaxDynSmemOptin; break;
    default: return bnb_emu::record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return bnb_emu::record(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || (size_t)value > bnb_emu::kMaxDynSmemOptin) return bnb_emu::record(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(bnb_emu::g_attr_mu);
    bnb_emu::g_max_dyn_smem[func] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return bnb_emu::record(cudaErrorInvalidValue);
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return bnb_emu::record(cudaErrorInvalidValue);
  *ptr = aligned_alloc(256, ((bytes ? bytes : 1) + 255) & ~(size_t)255);
  return *ptr ? cudaSuccess : bnb_emu::record(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes && (!dst || !src)) return bnb_emu::record(cudaErrorInvalidValue);
  if (bytes) memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes && !dst) return bnb_emu::record(cudaErrorInvalidValue);
  if (bytes) memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) { return cudaMemset(dst, value, bytes); }
