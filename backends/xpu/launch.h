// The launch layer shared by the production module and the test harness.
//
// ops.h holds the entry points (argument validation, choice of the kernel instantiation, launch shape) as
// templates over a Launcher policy:
//
//   struct Launcher {
//     template <class F> int launch(const F& f, Range r);  // enqueue f on r; a Status, never throws
//     int finish();                                        // after the last launch of an op: kOk or an error
//   };
//
// Policies:
//   launch_queue.h   production (icpx -fsycl): q.parallel_for(nd_range, f) on torch's current XPU queue;
//                    finish() returns at once (the op is asynchronous on the stream, like every torch op).
//   launch_source.h  test harness (host code built by g++ against the intel-sycl-rt wheel): the kernel's
//                    header is compiled at run time by DPC++'s kernel compiler, f is launched as the
//                    free-function kernel run_functor<F> (run_functor.h); finish() waits for the queue.
//
// An op that launches several kernels relies on the queue being in order (torch's XPU streams are).
#pragma once

#include <stdint.h>

#include <atomic>

#include "common.h"

namespace bnb_xpu {

// Upper bound on the work-groups of one launch (kernels grid-stride beyond it). Tests lower it to run the
// multi-iteration paths of every grid loop on small inputs.
inline std::atomic<int64_t>& max_groups_setting() {
  static std::atomic<int64_t> v{1 << 16};
  return v;
}

inline Range make_range(int64_t work_groups, int64_t local) {
  int64_t cap = max_groups_setting().load(std::memory_order_relaxed);
  if (cap < 1) cap = 1;
  int64_t g = work_groups < 1 ? 1 : work_groups;
  return Range{g < cap ? g : cap, local};
}

}  // namespace bnb_xpu
