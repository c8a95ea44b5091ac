// Shared pieces of the XPU (SYCL) kernels: status codes, the launch shape, work-group helpers.
//
// Torch-free. Kernels are functors (device-copyable structs of raw pointers and sizes) with
//   static constexpr int kLocalFloats;                     // fp32 words of work-group local memory (0: none)
//   void operator()(sycl::nd_item<1> it) const;            // kLocalFloats == 0
//   void operator()(sycl::nd_item<1> it, float* lm) const; // kLocalFloats > 0 (lm: the group's local memory)
//   static constexpr const char* kName;                    // the functor's qualified template name
//   using Family = ...;                                    // the header that defines it (see launch.h)
// They are launched by the code in ops.h through a launcher policy (launch.h): in production
// q.parallel_for(nd_range, functor) compiled by icpx -fsycl (launch_queue.h); in the test harness the same
// header is compiled at run time by DPC++'s kernel compiler and launched as a free-function kernel
// (launch_source.h). Kernels never throw; every grid loop is 64-bit and grid-strided, so any size runs
// with a bounded number of work-groups.
//
// The per-value arithmetic (block scale, nearest code, dtype conversions) is backends/common/
// bnb_quant_math.h and the tables backends/common/bnb_formats.h (generated from bnb_core/formats.py).
// Compile WITHOUT floating-point contraction and fast math (-ffp-contract=off -fno-fast-math).
#pragma once

#include <stdint.h>

#include <sycl/sycl.hpp>

#include "bnb_quant_math.h"

namespace bnb_xpu {

enum Status : int {
  kOk = 0,
  kNullPointer = 1,
  kBadDtype = 2,
  kBadQuantType = 3,
  kBadSize = 4,
  kBadBlocksize = 5,
  kOutputTooSmall = 6,
  kInternalError = 8,
  kBadOptimizerName = 20,
  kScratchTooSmall = 21,
  kLaunchFailed = 30,       // the SYCL runtime rejected a submission or reported an error
  kKernelUnavailable = 31,  // test harness: the kernel could not be compiled (see last_build_log())
};

inline const char* status_message(int status) {
  switch (status) {
    case kOk: return "ok";
    case kNullPointer: return "bnb_core._xpu: a data pointer (or the queue) is null while the tensor is not empty";
    case kBadDtype: return "bnb_core._xpu: unknown dtype code (expected 0 = float32, 1 = float16, 2 = bfloat16)";
    case kBadQuantType: return "bnb_core._xpu: unknown quant_type code (expected 0 = nf4, 1 = fp4)";
    case kBadSize: return "bnb_core._xpu: negative element or byte count, or a buffer smaller than its tensor";
    case kBadBlocksize: return "bnb_core._xpu: blocksize must be a power of two (4-bit: 32..4096)";
    case kOutputTooSmall: return "bnb_core._xpu: output buffer too small for (n + 1) // 2 packed bytes";
    case kInternalError: return "bnb_core._xpu: internal error";
    case kBadOptimizerName:
      return "bnb_core._xpu: unknown optimizer code (expected 0..7, the order of OPTIMIZER_NAMES)";
    case kScratchTooSmall: return "bnb_core._xpu: optimizer scratch buffer missing or smaller than OPTIM_SCRATCH_FLOATS";
    case kLaunchFailed: return "bnb_core._xpu: the SYCL runtime failed to launch the kernel";
    case kKernelUnavailable: return "bnb_core._xpu: kernel not available (run-time compilation failed)";
    default: return "bnb_core._xpu: unknown status";
  }
}

// The shape of one launch: `groups` work-groups of `local` work-items (1-D nd_range).
struct Range {
  int64_t groups;
  int64_t local;
};

constexpr int64_t kMaxLocal = 256;

BNB_QFN float f32_inf() { return bnb::f32_from_bits(0x7F800000u); }

BNB_QFN int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Absolute-value maximum of a block whose elements are spread over the work-group: every work-item
// passes the maximum of |x| over its non-NaN elements and whether it saw a NaN. Returns the block's
// absmax (canonical NaN when the block holds a NaN), the value every backend computes. Collective: every
// work-item of the group must call it.
template <class Group>
inline float group_absmax(const Group& g, float item_max, bool item_nan) {
  const bool nan = sycl::any_of_group(g, item_nan);
  const float m = sycl::reduce_over_group(g, item_max, sycl::maximum<float>());
  return nan ? bnb::canonical_nan() : m;
}

// Accumulate |v| into (m, nan) as group_absmax expects.
BNB_QFN void absmax_acc(float v, float& m, bool& nan) {
  const float a = sycl::fabs(v);
  if (bnb::is_nan(a))
    nan = true;
  else if (a > m)
    m = a;
}

// The 256-entry padded boundary table of an ascending 256-value code in local memory: the 255 fp32
// midpoints followed by +Inf (bnb::code_8bit_search's layout). Returns whether the boundaries are
// ascending (then the binary search is exact; otherwise callers count every boundary, as the CPU does).
// Collective.
template <class Group>
inline bool group_boundaries(const Group& g, int64_t lid, int64_t L, const float* code, float* padded) {
  for (int64_t k = lid; k < 256; k += L) padded[k] = k < 255 ? bnb::midpoint(code[k], code[k + 1]) : f32_inf();
  sycl::group_barrier(g);
  bool unsorted = false;
  for (int64_t k = lid; k < 254; k += L)
    if (!(padded[k] <= padded[k + 1])) unsorted = true;
  return !sycl::any_of_group(g, unsorted);
}

BNB_QFN int code_8bit(float y, const float* padded, bool sorted) {
  return sorted ? bnb::code_8bit_search(y, padded) : bnb::code_8bit_count(y, padded);
}

}  // namespace bnb_xpu
