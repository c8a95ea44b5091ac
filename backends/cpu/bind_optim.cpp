// pybind11 bindings of the optimizer kernels (bnb_core._cpu.optimizer_update_32bit / _8bit_blockwise).
// Torch-free: data pointers are Python ints (0 for an absent tensor); each call releases the GIL.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "ops_optim.h"

namespace py = pybind11;

namespace bnb_cpu {
namespace {
template <class T>
T* optr(uint64_t p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}
}  // namespace

void bind_optim(py::module_& m) {
  using G = py::call_guard<py::gil_scoped_release>;
  m.def(
      "optimizer_update_32bit",
      [](int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2, uint64_t unorm_vec,
         double max_unorm, double param_norm, double beta1, double beta2, double beta3, double alpha, double eps,
         double weight_decay, int64_t step, double lr, double gnorm_scale, bool skip_zeros, int nthreads) {
        return optimizer_update_32bit(name, dtype, optr<const void>(g), optr<void>(p), n, optr<float>(state1),
                                      optr<float>(state2), optr<float>(unorm_vec), max_unorm, param_norm, beta1, beta2,
                                      beta3, alpha, eps, weight_decay, step, lr, gnorm_scale, skip_zeros, nthreads);
      },
      py::arg("name"), py::arg("dtype"), py::arg("g_ptr"), py::arg("p_ptr"), py::arg("n"), py::arg("state1_ptr"),
      py::arg("state2_ptr"), py::arg("unorm_vec_ptr"), py::arg("max_unorm"), py::arg("param_norm"), py::arg("beta1"),
      py::arg("beta2"), py::arg("beta3"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"), py::arg("step"),
      py::arg("lr"), py::arg("gnorm_scale"), py::arg("skip_zeros"), py::arg("nthreads") = 1, G(),
      "One optimizer step with fp32 state (name = index in OPTIMIZER_NAMES; dtype of p/g 0 fp32, 1 fp16, 2 bf16).");
  m.def(
      "optimizer_update_8bit_blockwise",
      [](int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2, double beta1,
         double beta2, double beta3, double alpha, double eps, int64_t step, double lr, uint64_t qmap1, uint64_t qmap2,
         uint64_t absmax1, uint64_t absmax2, double weight_decay, double gnorm_scale, bool skip_zeros, int nthreads) {
        return optimizer_update_8bit_blockwise(name, dtype, optr<const void>(g), optr<void>(p), n, optr<uint8_t>(state1),
                                               optr<uint8_t>(state2), beta1, beta2, beta3, alpha, eps, step, lr,
                                               optr<const float>(qmap1), optr<const float>(qmap2),
                                               optr<float>(absmax1), optr<float>(absmax2), weight_decay, gnorm_scale,
                                               skip_zeros, nthreads);
      },
      py::arg("name"), py::arg("dtype"), py::arg("g_ptr"), py::arg("p_ptr"), py::arg("n"), py::arg("state1_ptr"),
      py::arg("state2_ptr"), py::arg("beta1"), py::arg("beta2"), py::arg("beta3"), py::arg("alpha"), py::arg("eps"),
      py::arg("step"), py::arg("lr"), py::arg("qmap1_ptr"), py::arg("qmap2_ptr"), py::arg("absmax1_ptr"),
      py::arg("absmax2_ptr"), py::arg("weight_decay"), py::arg("gnorm_scale"), py::arg("skip_zeros"),
      py::arg("nthreads") = 1, G(),
      "Fused blockwise (256) 8-bit optimizer step: dequantize, update, new absmax, requantize, in one pass.");
}

}  // namespace bnb_cpu
