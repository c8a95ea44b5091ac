#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>

#if defined(__linux__)
#include <sys/mman.h>
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

int64_t advise_hugepage(void* p, int64_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  try {
    if (p == nullptr || nbytes < kHugepageMinBytes || !g_enabled.load()) return 0;
    static const bool madvise_mode = mode_cached() == "madvise";
    if (!madvise_mode) return 0;
    const uintptr_t s = ((uintptr_t)p + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t e = ((uintptr_t)p + (uintptr_t)nbytes) & ~(kHuge - 1);
    if (e <= s) return 0;
    if (madvise((void*)s, e - s, MADV_HUGEPAGE) != 0) return 0;
    return (int64_t)(e - s);
  } catch (...) {
    return 0;
  }
#else
  (void)p;
  (void)nbytes;
  return 0;
#endif
}

}  // namespace bnb_cpu
