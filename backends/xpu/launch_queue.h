// Production launcher (launch.h): the functor is a SYCL kernel compiled ahead by icpx -fsycl and enqueued
// with q.parallel_for on torch's current XPU queue (`torch.xpu.current_stream().sycl_queue`). Asynchronous:
// finish() returns at once, like every torch op on a stream.
#pragma once

#include "launch.h"

namespace bnb_xpu {

struct QueueLauncher {
  sycl::queue* q;

  explicit QueueLauncher(sycl::queue* queue) : q(queue) {}

  template <class F>
  int launch(const F& f, Range r) {
    try {
      const sycl::nd_range<1> nd(sycl::range<1>((size_t)(r.groups * r.local)), sycl::range<1>((size_t)r.local));
      if constexpr (F::kLocalFloats > 0) {
        q->submit([&](sycl::handler& h) {
          sycl::local_accessor<float, 1> lm(sycl::range<1>(F::kLocalFloats), h);
          h.parallel_for(nd, [=](sycl::nd_item<1> it) {
            f(it, lm.template get_multi_ptr<sycl::access::decorated::no>().get());
          });
        });
      } else {
        q->parallel_for(nd, f);
      }
      return kOk;
    } catch (const sycl::exception&) {
      return kLaunchFailed;
    } catch (...) {
      return kInternalError;
    }
  }

  int finish() { return kOk; }
};

}  // namespace bnb_xpu
