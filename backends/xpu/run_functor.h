// Free-function kernels (sycl_ext_oneapi_free_function_kernels) that run a kernel functor: what the test
// harness compiles at run time with DPC++'s kernel compiler and launches (launch_source.h). Only
// free-function kernels can be looked up by name in a bundle built from source; these wrappers make the
// production functors launchable that way unchanged. Local memory is its own kernel parameter (a
// local_accessor member of a functor is not a valid free-function kernel parameter).
#pragma once

#include <sycl/sycl.hpp>

namespace bnb_xpu {

template <class F>
SYCL_EXT_ONEAPI_FUNCTION_PROPERTY((sycl::ext::oneapi::experimental::nd_range_kernel<1>))
void run_functor(F f) {
  f(sycl::ext::oneapi::this_work_item::get_nd_item<1>());
}

template <class F>
SYCL_EXT_ONEAPI_FUNCTION_PROPERTY((sycl::ext::oneapi::experimental::nd_range_kernel<1>))
void run_functor_local(F f, sycl::local_accessor<float, 1> lm) {
  f(sycl::ext::oneapi::this_work_item::get_nd_item<1>(), lm.get_multi_ptr<sycl::access::decorated::no>().get());
}

}  // namespace bnb_xpu
