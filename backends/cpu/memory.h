// Memory helpers of the CPU backend (torch-free): transparent huge pages for freshly allocated outputs.
#pragma once

#include <stdint.h>

#include <string>

namespace bnb_cpu {

// The system's transparent-huge-page mode: "always", "madvise", "never", or "unavailable" (not Linux, or
// /sys/kernel/mm/transparent_hugepage/enabled unreadable). Read once.
std::string thp_mode();

// Smallest buffer advise_hugepage() acts on.
constexpr int64_t kHugepageMinBytes = int64_t(4) << 20;

// Hint that the memory [p, p + nbytes) (a freshly allocated, not yet written output) should be backed by
// transparent huge pages: madvise(MADV_HUGEPAGE) on the 2 MiB-aligned huge pages lying entirely inside the
// buffer (never on memory outside it). Only acts when the THP mode is "madvise" (under "always" the kernel
// already uses huge pages, under "never" it would not), nbytes >= kHugepageMinBytes, and it is enabled
// (set_hugepage_enabled; BNB_CPU_HUGEPAGE=0 in the environment disables it). Returns the number of bytes
// advised (0 when it did nothing or madvise failed: it is only a hint). Never throws.
int64_t advise_hugepage(void* p, int64_t nbytes);

bool hugepage_enabled();
void set_hugepage_enabled(bool on);

}  // namespace bnb_cpu
