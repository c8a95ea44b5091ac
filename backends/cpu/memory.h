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

// Back the 2 MiB-aligned huge pages lying entirely inside [p, p + nbytes) (memory already written and read on
// every call afterwards: a quantized layer's weight) by transparent huge pages now, in place: madvise(MADV_COLLAPSE)
// (Linux >= 6.1) copies their contents onto fresh huge pages, so values and addresses stay as they are (in THP mode
// "madvise" the range gets MADV_HUGEPAGE first, as advise_hugepage, so khugepaged keeps it huge). Only acts
// when the THP mode is "madvise" or "always", nbytes >= kHugepageMinBytes and it is enabled (as advise_hugepage).
// Returns the bytes collapsed (0 when it did nothing, the kernel lacks MADV_COLLAPSE or it failed: a hint). Never
// throws.
int64_t collapse_hugepage(void* p, int64_t nbytes);

bool hugepage_enabled();
void set_hugepage_enabled(bool on);

// Large fresh outputs (>= kHugepageMinBytes) come from here instead of torch's allocator (glibc maps a block that
// large fresh on every call, and the first write of each 4 KiB page faults: ~1.2-1.5 us a page here, more than the
// kernels writing it). output_block_acquire returns memory of at least nbytes, 2 MiB-aligned and its own mapping
// (with MADV_HUGEPAGE while the hint is on in THP mode "madvise"), or nullptr when the cache is off (limit 0), this
// platform has no anonymous mmap or the mapping fails (the caller then allocates as usual). *mapped receives the
// length to give back.
// output_block_release(p, mapped) keeps the block for a later acquire of the same mapped length while the blocks
// kept total at most output_cache_limit() bytes (least recently released ones are unmapped first), else unmaps it.
// A kept block was released: its owner (a tensor) is gone, so a reuse never aliases live memory. Thread-safe.
void* output_block_acquire(int64_t nbytes, int64_t* mapped);
void output_block_release(void* p, int64_t mapped);
// Bytes of released blocks the cache may keep. Default: BNB_CPU_OUTPUT_CACHE_MB from the environment when set, else
// min(512 MiB, physical memory / 16): a 7B-13B QLoRA backward dequantizes at most ~150-250 MiB of distinct sizes
// per step, and held memory a user did not ask for should stay small against the model. Setting it lower unmaps the
// least recently released blocks beyond it; 0 turns the cache off (output_block_acquire returns nullptr; blocks
// still out are unmapped when released).
int64_t output_cache_limit();
void set_output_cache_limit(int64_t nbytes);
// Bytes and number of released blocks kept now; acquires served from them (hits) and by a new mapping (misses).
struct OutputCacheStats {
  int64_t held_bytes, held_blocks, hits, misses;
};
OutputCacheStats output_cache_stats();
// Unmap every kept block (what torch.cuda.empty_cache() does for CUDA's caching allocator).
void empty_output_cache();

// Outputs of at least this many bytes are written with non-temporal (streaming) stores by the kernels that only
// write them (dequantize_blockwise, dequantize_4bit): an output that size cannot stay in the last-level cache
// anyway, and streaming stores skip reading each line before writing it. Default: 3/4 of the last-level cache
// (glibc's memcpy threshold for the same choice; 24 MiB when the size is unknown). set_stream_min_bytes(-1)
// restores the default; 0 streams every aligned output (tests).
int64_t stream_min_bytes();
void set_stream_min_bytes(int64_t nbytes);
// Whether an output of nbytes at p with blocks of block_bytes is written with streaming stores: nbytes >=
// stream_min_bytes(), p 64-byte aligned and block_bytes a multiple of 64 (every vector store then aligned).
bool use_streaming_stores(const void* p, int64_t nbytes, int64_t block_bytes);

}  // namespace bnb_cpu
