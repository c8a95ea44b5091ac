// Test-harness launcher (launch.h): runs the production kernels without icpx.
//
// The host code (this header, ops.h, module.cpp) is built by g++ against the intel-sycl-rt wheel's
// libsycl (no device compiler). On the first launch of a kernel of a family, the family's header
// (F::Family::kHeader, e.g. kernels_quant.h) is compiled at run time by DPC++'s kernel compiler
// (sycl_ext_oneapi_kernel_compiler, libsycl-jit) together with run_functor.h, instantiating
// run_functor<F> / run_functor_local<F> for every kernel type the family lists (Family::for_each); the
// kernel is then looked up by that name and launched with the functor as its argument on an in-order
// queue on the OpenCL CPU device (Intel's CPU runtime, the intel-opencl-rt wheel). Set
// SYCL_CACHE_PERSISTENT=1 and SYCL_CACHE_DIR to reuse compiled bundles across processes.
//
// Nothing here throws to the caller: SYCL exceptions (including asynchronous ones, caught by the queue's
// handler) become statuses; a failed build leaves its log in last_build_log().
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "launch.h"

namespace bnb_xpu {

namespace source_detail {

// "bnb_xpu::Quant4<0, 1>" for Quant4<0, 1> (kernel functors are templates over ints, or plain structs)
template <class F>
struct TemplateArgs {
  static std::string str() { return ""; }
};
template <template <int...> class T, int... I>
struct TemplateArgs<T<I...>> {
  static std::string str() {
    std::string s = "<";
    bool first = true;
    for (int v : {I...}) {
      s += (first ? "" : ", ") + std::to_string(v);
      first = false;
    }
    return s + ">";
  }
};

template <class F>
std::string functor_name() {
  return std::string(F::kName) + TemplateArgs<F>::str();
}

// The free-function kernel that runs F, and its explicit instantiation.
template <class F>
std::string kernel_name() {
  return std::string(F::kLocalFloats > 0 ? "bnb_xpu::run_functor_local<" : "bnb_xpu::run_functor<") +
         functor_name<F>() + ">";
}
template <class F>
std::string instantiation() {
  return "template void " + kernel_name<F>() + "(" + functor_name<F>() +
         (F::kLocalFloats > 0 ? ", sycl::local_accessor<float, 1>);\n" : ");\n");
}

struct Collect {
  std::string source;
  std::vector<std::string> names;
  template <class F>
  void add() {
    source += instantiation<F>();
    names.push_back(kernel_name<F>());
  }
};

}  // namespace source_detail

class SourceKernels {
 public:
  // Never destroyed: SYCL objects must not outlive the SYCL runtime, whose own teardown at process exit
  // may run before a static destructor of this module would.
  static SourceKernels& instance() {
    static SourceKernels* s = new SourceKernels();
    return *s;
  }

  // Directories holding the kernel headers (backends/xpu, backends/common) and extra build options.
  void configure(const std::vector<std::string>& include_dirs, const std::vector<std::string>& extra_options) {
    std::lock_guard<std::mutex> g(mu_);
    options_ = {"-ffp-contract=off", "-fno-fast-math"};
    for (const std::string& d : include_dirs) options_.push_back("-I" + d);
    for (const std::string& o : extra_options) options_.push_back(o);
    bundles_.clear();
    kernels_.clear();
    failed_.clear();
  }

  // The harness's queue (in order, on the OpenCL CPU device); null when none could be created.
  sycl::queue* queue() {
    std::lock_guard<std::mutex> g(mu_);
    if (!queue_) {
      try {
        queue_.reset(new sycl::queue(sycl::cpu_selector_v, async_handler(), sycl::property::queue::in_order()));
      } catch (const sycl::exception& e) {
        last_log_ = std::string("no SYCL CPU device: ") + e.what();
        return nullptr;
      }
    }
    return queue_.get();
  }

  std::string device_name() {
    sycl::queue* q = queue();
    if (!q) return "";
    const sycl::device d = q->get_device();
    return d.get_info<sycl::info::device::name>() + " (" + d.get_platform().get_info<sycl::info::platform::name>() +
           ", " + d.get_info<sycl::info::device::driver_version>() + ")";
  }

  std::string last_build_log() {
    std::lock_guard<std::mutex> g(mu_);
    return last_log_;
  }

  // Compile family Fam now (tests time and check the build on its own); a Status.
  template <class Fam>
  int build_family() {
    std::lock_guard<std::mutex> g(mu_);
    return build_locked<Fam>() ? kOk : kKernelUnavailable;
  }

  // The kernel that runs F (its family compiled on first use), or null.
  template <class F>
  sycl::kernel* get() {
    std::lock_guard<std::mutex> g(mu_);
    const std::string name = source_detail::kernel_name<F>();
    auto it = kernels_.find(name);
    if (it != kernels_.end()) return it->second.get();
    if (!build_locked<typename F::Family>()) return nullptr;
    auto b = bundles_.find(F::Family::kHeader);
    try {
      std::unique_ptr<sycl::kernel> k(new sycl::kernel(b->second->ext_oneapi_get_kernel(name)));
      sycl::kernel* raw = k.get();
      kernels_[name] = std::move(k);
      return raw;
    } catch (const sycl::exception& e) {
      last_log_ = "kernel " + name + " not found in the bundle of " + F::Family::kHeader + ": " + e.what();
      return nullptr;
    }
  }

  // Asynchronous errors reported since the last call (and clears them).
  bool take_async_error() {
    std::lock_guard<std::mutex> g(async_mu_);
    const bool e = async_error_;
    async_error_ = false;
    return e;
  }

 private:
  using Bundle = sycl::kernel_bundle<sycl::bundle_state::executable>;

  sycl::async_handler async_handler() {
    return [this](sycl::exception_list errors) {
      std::lock_guard<std::mutex> g(async_mu_);
      for (auto& e : errors) {
        (void)e;
        async_error_ = true;
      }
    };
  }

  template <class Fam>
  bool build_locked() {
    namespace syclex = sycl::ext::oneapi::experimental;
    const std::string header = Fam::kHeader;
    if (bundles_.count(header)) return true;
    if (failed_.count(header)) return false;
    if (!queue_) {
      try {
        queue_.reset(new sycl::queue(sycl::cpu_selector_v, async_handler(), sycl::property::queue::in_order()));
      } catch (const sycl::exception& e) {
        last_log_ = std::string("no SYCL CPU device: ") + e.what();
        return false;
      }
    }
    source_detail::Collect c;
    Fam::for_each(c);
    const std::string src = "#include <sycl/sycl.hpp>\n#include \"run_functor.h\"\n#include \"" + header + "\"\n" + c.source;
    std::string log;
    try {
      auto kb = syclex::create_kernel_bundle_from_source(queue_->get_context(), syclex::source_language::sycl, src);
      std::unique_ptr<Bundle> exe(new Bundle(syclex::build(
          kb, syclex::properties{syclex::build_options{options_}, syclex::save_log{&log}, syclex::registered_names{c.names}})));
      bundles_[header] = std::move(exe);
      last_log_ = log;
      return true;
    } catch (const sycl::exception& e) {
      last_log_ = "building " + header + " failed: " + e.what() + "\n" + log;
      failed_[header] = true;
      return false;
    }
  }

  std::mutex mu_;
  std::vector<std::string> options_{"-ffp-contract=off", "-fno-fast-math"};
  std::unique_ptr<sycl::queue> queue_;
  std::map<std::string, std::unique_ptr<Bundle>> bundles_;
  std::map<std::string, std::unique_ptr<sycl::kernel>> kernels_;
  std::map<std::string, bool> failed_;
  std::string last_log_;
  std::mutex async_mu_;
  bool async_error_ = false;
};

struct SourceLauncher {
  sycl::queue* q;

  explicit SourceLauncher(sycl::queue* queue) : q(queue) {}

  template <class F>
  int launch(const F& f, Range r) {
    try {
      sycl::kernel* k = SourceKernels::instance().get<F>();
      if (k == nullptr) return kKernelUnavailable;
      const sycl::nd_range<1> nd(sycl::range<1>((size_t)(r.groups * r.local)), sycl::range<1>((size_t)r.local));
      q->submit([&](sycl::handler& h) {
        if constexpr (F::kLocalFloats > 0) {
          sycl::local_accessor<float, 1> lm(sycl::range<1>(F::kLocalFloats), h);
          h.set_args(f, lm);
        } else {
          h.set_args(f);
        }
        h.parallel_for(nd, *k);
      });
      return kOk;
    } catch (const sycl::exception&) {
      return kLaunchFailed;
    } catch (...) {
      return kInternalError;
    }
  }

  // Waits for the op's kernels (the harness reads results right after the call).
  int finish() {
    try {
      q->wait_and_throw();
    } catch (const sycl::exception&) {
      return kLaunchFailed;
    } catch (...) {
      return kInternalError;
    }
    return SourceKernels::instance().take_async_error() ? kLaunchFailed : kOk;
  }
};

}  // namespace bnb_xpu
