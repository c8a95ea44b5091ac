// pybind11 module of the XPU backend. Production: bnb_core._xpu, built by icpx -fsycl (CMakeLists.txt),
// launching on the sycl::queue that torch's current XPU stream holds (`torch.xpu.current_stream().sycl_queue`,
// passed as an int). Test harness (-DBNB_XPU_HARNESS, built by g++ against the intel-sycl-rt wheel, see
// tests/test_xpu_sycl.py): the same bindings and ops.h entry points with the run-time-compiling launcher
// (launch_source.h) on the harness's own queue on the OpenCL CPU device (queue_ptr()).
//
// Data pointers are ints (0 = absent); every function returns a status (0 = ok; status_message(status)).
// The GIL is released while an op runs.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "ops.h"

#if defined(BNB_XPU_HARNESS)
#include "launch_source.h"
#else
#include "launch_queue.h"
#endif

#ifndef BNB_XPU_MODULE_NAME
#define BNB_XPU_MODULE_NAME _xpu
#endif

namespace {

namespace py = pybind11;
using namespace bnb_xpu;

#if defined(BNB_XPU_HARNESS)
using Launcher = SourceLauncher;
#else
using Launcher = QueueLauncher;
#endif

template <class T = void>
T* ptr(uint64_t v) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(v));
}

// Run one op on the queue at address `queue`; every launch of it is finished (harness: waited for) even
// when a later one fails.
template <class Op>
int run(uint64_t queue, Op&& op) {
  if (queue == 0) return kNullPointer;
  try {
    Launcher l(ptr<sycl::queue>(queue));
    const int st = op(l);
    const int fin = l.finish();
    return st != kOk ? st : fin;
  } catch (...) {
    return kInternalError;
  }
}

}  // namespace

PYBIND11_MODULE(BNB_XPU_MODULE_NAME, m) {
  using G = py::call_guard<py::gil_scoped_release>;
  m.doc() = "bnb-core XPU (SYCL) kernels; torch-free: data pointers as ints, a sycl::queue* as an int";
  m.attr("OPTIM_SCRATCH_FLOATS") = (int64_t)kOptimScratchFloats;
#if defined(BNB_XPU_HARNESS)
  m.attr("HARNESS") = true;
#else
  m.attr("HARNESS") = false;
#endif
  m.def("status_message", &status_message, py::arg("status"));
  m.def(
      "set_max_groups", [](int64_t v) { max_groups_setting().store(v < 1 ? 1 : v); }, py::arg("groups"),
      "Upper bound on the work-groups of one launch (kernels grid-stride beyond it).");
  m.def("max_groups", []() { return (int64_t)max_groups_setting().load(); });

  m.def(
      "quantize_blockwise",
      [](uint64_t queue, int dtype, uint64_t x, int64_t n, uint64_t code, int64_t blocksize, uint64_t out,
         uint64_t absmax) {
        return run(queue, [&](Launcher& l) {
          return quantize_blockwise(l, dtype, ptr(x), n, ptr<const float>(code), blocksize, ptr<uint8_t>(out),
                                    ptr<float>(absmax));
        });
      },
      py::arg("queue"), py::arg("dtype"), py::arg("x"), py::arg("n"), py::arg("code"), py::arg("blocksize"),
      py::arg("out"), py::arg("absmax"), G());
  m.def(
      "dequantize_blockwise",
      [](uint64_t queue, int dtype_out, uint64_t q, int64_t n, uint64_t code, uint64_t absmax, int64_t blocksize,
         uint64_t out) {
        return run(queue, [&](Launcher& l) {
          return dequantize_blockwise(l, dtype_out, ptr<const uint8_t>(q), n, ptr<const float>(code),
                                      ptr<const float>(absmax), blocksize, ptr(out));
        });
      },
      py::arg("queue"), py::arg("dtype_out"), py::arg("q"), py::arg("n"), py::arg("code"), py::arg("absmax"),
      py::arg("blocksize"), py::arg("out"), G());
  m.def(
      "quantize_4bit",
      [](uint64_t queue, int dtype, uint64_t x, int64_t n, int64_t blocksize, int quant_type, uint64_t out,
         int64_t out_nbytes, uint64_t absmax) {
        return run(queue, [&](Launcher& l) {
          return quantize_4bit(l, dtype, ptr(x), n, blocksize, quant_type, ptr<uint8_t>(out), out_nbytes,
                               ptr<float>(absmax));
        });
      },
      py::arg("queue"), py::arg("dtype"), py::arg("x"), py::arg("n"), py::arg("blocksize"), py::arg("quant_type"),
      py::arg("out"), py::arg("out_nbytes"), py::arg("absmax"), G());
  m.def(
      "dequantize_4bit",
      [](uint64_t queue, int dtype_out, uint64_t q, int64_t n, uint64_t absmax, int64_t blocksize, int quant_type,
         uint64_t out) {
        return run(queue, [&](Launcher& l) {
          return dequantize_4bit(l, dtype_out, ptr<const uint8_t>(q), n, ptr<const float>(absmax), blocksize,
                                 quant_type, ptr(out));
        });
      },
      py::arg("queue"), py::arg("dtype_out"), py::arg("q"), py::arg("n"), py::arg("absmax"), py::arg("blocksize"),
      py::arg("quant_type"), py::arg("out"), G());
  m.def(
      "gemm_4bit",
      [](uint64_t queue, int dtype, uint64_t A, int64_t M, int64_t K, uint64_t B, int64_t b_nbytes, int64_t N,
         uint64_t absmax, int64_t blocksize, uint64_t code, uint64_t absmax_8bit, uint64_t absmax_code,
         uint64_t absmax_offset, uint64_t bias, uint64_t out) {
        return run(queue, [&](Launcher& l) {
          return gemm_4bit(l, dtype, ptr(A), M, K, ptr(B), b_nbytes, N, ptr<const float>(absmax), blocksize,
                           ptr<const float>(code), ptr<const uint8_t>(absmax_8bit), ptr<const float>(absmax_code),
                           ptr<const float>(absmax_offset), ptr(bias), ptr(out));
        });
      },
      py::arg("queue"), py::arg("dtype"), py::arg("A"), py::arg("M"), py::arg("K"), py::arg("B"), py::arg("B_nbytes"),
      py::arg("N"), py::arg("absmax"), py::arg("blocksize"), py::arg("code"), py::arg("absmax_8bit"),
      py::arg("absmax_code"), py::arg("absmax_offset"), py::arg("bias"), py::arg("out"), G(),
      "Fused 4-bit matmul out[M,N] = A[M,K] @ W[N,K].T (+ bias) from packed 4-bit B; pointers 0 = absent.");
  m.def(
      "optimizer_update_32bit",
      [](uint64_t queue, int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2,
         uint64_t unorm_vec, double max_unorm, double param_norm, double beta1, double beta2, double beta3,
         double alpha, double eps, double weight_decay, int64_t step, double lr, double gnorm_scale, bool skip_zeros,
         uint64_t scratch, int64_t scratch_floats) {
        return run(queue, [&](Launcher& l) {
          return optimizer_update_32bit(l, name, dtype, ptr(g), ptr(p), n, ptr<float>(state1), ptr<float>(state2),
                                        ptr<float>(unorm_vec), max_unorm, param_norm, beta1, beta2, beta3, alpha, eps,
                                        weight_decay, step, lr, gnorm_scale, skip_zeros, ptr<float>(scratch),
                                        scratch_floats);
        });
      },
      py::arg("queue"), py::arg("name"), py::arg("dtype"), py::arg("g"), py::arg("p"), py::arg("n"), py::arg("state1"),
      py::arg("state2"), py::arg("unorm_vec"), py::arg("max_unorm"), py::arg("param_norm"), py::arg("beta1"),
      py::arg("beta2"), py::arg("beta3"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("step"),
      py::arg("lr"), py::arg("gnorm_scale"), py::arg("skip_zeros"), py::arg("scratch"), py::arg("scratch_floats"),
      G());
  m.def(
      "optimizer_update_8bit_blockwise",
      [](uint64_t queue, int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2,
         double beta1, double beta2, double beta3, double alpha, double eps, int64_t step, double lr, uint64_t qmap1,
         uint64_t qmap2, uint64_t absmax1, uint64_t absmax2, double weight_decay, double gnorm_scale,
         bool skip_zeros) {
        return run(queue, [&](Launcher& l) {
          return optimizer_update_8bit_blockwise(l, name, dtype, ptr(g), ptr(p), n, ptr<uint8_t>(state1),
                                                 ptr<uint8_t>(state2), beta1, beta2, beta3, alpha, eps, step, lr,
                                                 ptr<const float>(qmap1), ptr<const float>(qmap2), ptr<float>(absmax1),
                                                 ptr<float>(absmax2), weight_decay, gnorm_scale, skip_zeros);
        });
      },
      py::arg("queue"), py::arg("name"), py::arg("dtype"), py::arg("g"), py::arg("p"), py::arg("n"), py::arg("state1"),
      py::arg("state2"), py::arg("beta1"), py::arg("beta2"), py::arg("beta3"), py::arg("alpha"), py::arg("eps"),
      py::arg("step"), py::arg("lr"), py::arg("qmap1"), py::arg("qmap2"), py::arg("absmax1"), py::arg("absmax2"),
      py::arg("weight_decay"), py::arg("gnorm_scale"), py::arg("skip_zeros"), G());

#if defined(BNB_XPU_HARNESS)
  auto& sk = SourceKernels::instance();
  m.def(
      "configure",
      [&sk](const std::vector<std::string>& include_dirs, const std::vector<std::string>& options) {
        sk.configure(include_dirs, options);
      },
      py::arg("include_dirs"), py::arg("options") = std::vector<std::string>{},
      "Directories of the kernel headers (backends/xpu, backends/common) and extra kernel-compiler options.");
  m.def("queue_ptr", [&sk]() { return (uint64_t)(uintptr_t)sk.queue(); },
        "Address of the harness's in-order sycl::queue on the OpenCL CPU device (0 if none).");
  m.def("device_name", [&sk]() { return sk.device_name(); });
  m.def("last_build_log", [&sk]() { return sk.last_build_log(); });
  m.def(
      "build_family",
      [&sk](const std::string& family) {
        if (family == QuantFamily::kHeader) return sk.build_family<QuantFamily>();
        if (family == Mm4Family::kHeader) return sk.build_family<Mm4Family>();
        if (family == OptimFamily::kHeader) return sk.build_family<OptimFamily>();
        return (int)kBadSize;
      },
      py::arg("family"), G(), "Compile one kernel header now (kernels_quant.h, kernels_mm4.h, kernels_optim.h).");
  m.attr("FAMILIES") = std::vector<std::string>{QuantFamily::kHeader, Mm4Family::kHeader, OptimFamily::kHeader};
#endif
}
