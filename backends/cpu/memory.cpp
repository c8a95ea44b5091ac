#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>
#include <vector>

#if defined(__linux__) || defined(__APPLE__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace bnb_cpu {
namespace {

constexpr uintptr_t kHuge = uintptr_t(2) << 20;

std::string read_thp_mode() {
#if defined(__linux__)
  FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == nullptr) return "unavailable";
  char buf[128] = {0};
  size_t got = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[got] = '\0';
  // e.g. "always [madvise] never": the active mode is bracketed
  const char* lb = strchr(buf, '[');
  const char* rb = lb ? strchr(lb, ']') : nullptr;
  if (lb == nullptr || rb == nullptr) return "unavailable";
  return std::string(lb + 1, rb);
#else
  return "unavailable";
#endif
}

const std::string& mode_cached() {
  static const std::string m = read_thp_mode();
  return m;
}

bool env_enabled() {
  const char* e = getenv("BNB_CPU_HUGEPAGE");
  return !(e != nullptr && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0 || strcmp(e, "false") == 0));
}

std::atomic<bool> g_enabled{env_enabled()};

}  // namespace

std::string thp_mode() {
  try {
    return mode_cached();
  } catch (...) {
    return "unavailable";
  }
}

bool hugepage_enabled() { return g_enabled.load(); }
void set_hugepage_enabled(bool on) { g_enabled.store(on); }

namespace {
// the size of one last-level cache instance: sysfs (what lscpu shows; sysconf reported 384 MiB for a 32 MiB L3
// slice of a VM here), else sysconf, else 0
int64_t llc_bytes() {
  int64_t b = 0;
#if defined(__linux__)
  for (int idx = 3; idx >= 2 && b <= 0; --idx) {
    char path[96];
    snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
    if (FILE* f = fopen(path, "r")) {
      long v = 0;
      char unit = 0;
      if (fscanf(f, "%ld%c", &v, &unit) >= 1 && v > 0)
        b = (int64_t)v * (unit == 'K' ? 1024 : unit == 'M' ? (1 << 20) : 1);
      fclose(f);
    }
  }
#if defined(_SC_LEVEL3_CACHE_SIZE)
  if (b <= 0) b = (int64_t)sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#endif
  return b > 0 ? b : 0;
}
int64_t default_stream_min_bytes() {
  const int64_t llc = llc_bytes();
  return llc > 0 ? llc / 4 * 3 : (int64_t(24) << 20);
}
std::atomic<int64_t> g_stream_min{-1};
}  // namespace

int64_t stream_min_bytes() {
  int64_t v = g_stream_min.load();
  if (v < 0) {
    static const int64_t d = default_stream_min_bytes();
    v = d;
  }
  return v;
}
void set_stream_min_bytes(int64_t nbytes) { g_stream_min.store(nbytes < 0 ? -1 : nbytes); }

bool use_streaming_stores(const void* p, int64_t nbytes, int64_t block_bytes) {
  return nbytes >= stream_min_bytes() && ((uintptr_t)p & 63) == 0 && block_bytes % 64 == 0;
}

namespace {
// madvise on the 2 MiB pages lying entirely inside [p, p + nbytes) (none below kHugepageMinBytes or with the hints
// switched off): MADV_HUGEPAGE (THP mode "madvise" only), then, for `collapse`, MADV_COLLAPSE (modes "madvise" and
// "always"). Returns the bytes advised, 0 when nothing was done or madvise failed.
int64_t advise_inner_pages(void* p, int64_t nbytes, bool collapse) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  try {
#if defined(MADV_COLLAPSE)
    constexpr int kMadvCollapse = MADV_COLLAPSE;
#else
    constexpr int kMadvCollapse = 25;  // asm-generic/mman-common.h (glibc's headers may lack it)
#endif
    static const bool madvise_mode = mode_cached() == "madvise";
    static const bool always_mode = mode_cached() == "always";
    if (p == nullptr || nbytes < kHugepageMinBytes || !g_enabled.load()) return 0;
    if (!(madvise_mode || (collapse && always_mode))) return 0;
    const uintptr_t s = ((uintptr_t)p + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t e = ((uintptr_t)p + (uintptr_t)nbytes) & ~(kHuge - 1);
    if (e <= s) return 0;
    // for a collapse, marked first too: a page it cannot get now (no free huge page) is collapsed by khugepaged
    // later, and the range is its own mapping in /proc/self/smaps
    if (madvise_mode && madvise((void*)s, e - s, MADV_HUGEPAGE) != 0) return 0;
    if (collapse && madvise((void*)s, e - s, kMadvCollapse) != 0) return 0;
    return (int64_t)(e - s);
  } catch (...) {
    return 0;
  }
#else
  (void)p;
  (void)nbytes;
  (void)collapse;
  return 0;
#endif
}
}  // namespace

int64_t advise_hugepage(void* p, int64_t nbytes) { return advise_inner_pages(p, nbytes, false); }

int64_t collapse_hugepage(void* p, int64_t nbytes) { return advise_inner_pages(p, nbytes, true); }

// ------------------------------------------------------------------------------------ output block cache

#if defined(__linux__) || defined(__APPLE__)
#define BNB_HAVE_MMAP 1
#endif

namespace {

int64_t default_output_cache_limit() {
  if (const char* e = getenv("BNB_CPU_OUTPUT_CACHE_MB")) {
    char* end = nullptr;
    const long long mb = strtoll(e, &end, 10);
    if (end != e && *end == '\0' && mb >= 0) return (int64_t)mb << 20;
  }
  int64_t phys = 0;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) phys = (int64_t)pages * page;
#endif
  const int64_t cap = int64_t(512) << 20;
  return phys > 0 && phys / 16 < cap ? phys / 16 : cap;
}

struct Block {
  void* p;
  int64_t mapped;
};

// Released blocks, least recently released first. Never destroyed: tensors may release blocks during
// interpreter shutdown, after static destructors would have run.
struct OutputCache {
  std::mutex mu;
  std::vector<Block> free;  // a handful of entries: linear search
  int64_t held = 0, hits = 0, misses = 0;
  std::atomic<int64_t> limit{default_output_cache_limit()};
};

OutputCache& cache();

OutputCache* make_cache() {
  OutputCache* c = new OutputCache();
#if defined(BNB_HAVE_MMAP)
  // fork() while another thread holds the lock would leave it held forever in the child (DataLoader workers fork):
  // the forking thread takes it around fork, and both sides release it
  pthread_atfork([] { cache().mu.lock(); }, [] { cache().mu.unlock(); }, [] { cache().mu.unlock(); });
#endif
  return c;
}

OutputCache& cache() {
  static OutputCache* c = make_cache();
  return *c;
}

void unmap(const std::vector<Block>& blocks) {
#if defined(BNB_HAVE_MMAP)
  for (const Block& b : blocks) munmap(b.p, (size_t)b.mapped);
#else
  (void)blocks;
#endif
}

// moves the least recently released blocks beyond `limit` out of the cache (caller holds the lock)
std::vector<Block> take_beyond(OutputCache& c, int64_t limit) {
  std::vector<Block> out;
  size_t k = 0;
  while (c.held > limit && k < c.free.size()) {
    out.push_back(c.free[k]);
    c.held -= c.free[k].mapped;
    ++k;
  }
  c.free.erase(c.free.begin(), c.free.begin() + (std::ptrdiff_t)k);
  return out;
}

}  // namespace

void* output_block_acquire(int64_t nbytes, int64_t* mapped) {
#if defined(BNB_HAVE_MMAP)
  try {
    OutputCache& c = cache();
    if (nbytes <= 0 || mapped == nullptr || c.limit.load() == 0) return nullptr;
    const int64_t page = 4096;
    const int64_t len = (nbytes + page - 1) / page * page;
    {
      std::lock_guard<std::mutex> g(c.mu);
      for (size_t i = c.free.size(); i-- > 0;) {  // the most recently released block of this length
        if (c.free[i].mapped == len) {
          void* p = c.free[i].p;
          c.held -= len;
          c.free.erase(c.free.begin() + (std::ptrdiff_t)i);
          ++c.hits;
          *mapped = len;
          return p;
        }
      }
      ++c.misses;
    }
    // map 2 MiB more and trim, so the block starts on a huge-page boundary and all of it can be huge pages
    const size_t span = (size_t)len + kHuge;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t s = ((uintptr_t)raw + kHuge - 1) & ~(kHuge - 1);
    if (s > (uintptr_t)raw) munmap(raw, s - (uintptr_t)raw);
    const uintptr_t e = (uintptr_t)raw + span;
    if (e > s + (uintptr_t)len) munmap((void*)(s + (uintptr_t)len), e - (s + (uintptr_t)len));
    advise_hugepage((void*)s, len);  // (the block is 2 MiB-aligned: all its whole huge pages)
    *mapped = len;
    return (void*)s;
  } catch (...) {
    return nullptr;
  }
#else
  (void)nbytes;
  (void)mapped;
  return nullptr;
#endif
}

void output_block_release(void* p, int64_t mapped) {
  if (p == nullptr || mapped <= 0) return;
  OutputCache& c = cache();
  std::vector<Block> drop;
  try {
    std::lock_guard<std::mutex> g(c.mu);
    if (mapped > c.limit.load()) {
      drop.push_back({p, mapped});
    } else {
      c.free.push_back({p, mapped});
      c.held += mapped;
      drop = take_beyond(c, c.limit.load());
    }
  } catch (...) {  // (allocation of the list failed: give the memory back instead)
    drop.assign(1, Block{p, mapped});
  }
  unmap(drop);
}

int64_t output_cache_limit() { return cache().limit.load(); }

void set_output_cache_limit(int64_t nbytes) {
  OutputCache& c = cache();
  std::vector<Block> drop;
  {
    std::lock_guard<std::mutex> g(c.mu);
    c.limit.store(nbytes < 0 ? 0 : nbytes);
    drop = take_beyond(c, c.limit.load());
  }
  unmap(drop);
}

OutputCacheStats output_cache_stats() {
  OutputCache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  return {c.held, (int64_t)c.free.size(), c.hits, c.misses};
}

void empty_output_cache() {
  OutputCache& c = cache();
  std::vector<Block> drop;
  {
    std::lock_guard<std::mutex> g(c.mu);
    drop = take_beyond(c, 0);
  }
  unmap(drop);
}

}  // namespace bnb_cpu
