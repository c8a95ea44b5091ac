// pybind11 bindings of the optimizer family and of the managed memory behind paged optimizers. Pointers and the
// stream are Python ints (tensor.data_ptr(), torch's current raw stream); launches are asynchronous, so the GIL
// is kept for them (the host emulation, which computes on the CPU, releases it).
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "kernels_optim.h"
#include "paged_memory.h"
#include "status.h"

namespace py = pybind11;

namespace bnb_cuda {
namespace {

// One managed allocation, owned by this object: freed (cudaFree, which waits for the device) when the last
// reference goes. torch.as_tensor(buffer, device="cuda") reads __cuda_array_interface__ and keeps a reference to
// the buffer for the life of the tensor's storage (torch/csrc/utils/tensor_numpy.cpp: Py_INCREF(obj), the
// storage deleter Py_DECREFs it), so every view of that tensor keeps the memory alive.
class ManagedBuffer {
 public:
  ManagedBuffer(void* p, uint64_t nbytes, int device) : ptr_(p), nbytes_(nbytes), device_(device) {}
  ~ManagedBuffer() { managed_free(ptr_); }
  ManagedBuffer(const ManagedBuffer&) = delete;
  ManagedBuffer& operator=(const ManagedBuffer&) = delete;
  uint64_t ptr() const { return (uint64_t)(uintptr_t)ptr_; }
  uint64_t nbytes() const { return nbytes_; }
  int device() const { return device_; }

 private:
  void* ptr_;
  uint64_t nbytes_;
  int device_;
};

}  // namespace

void bind_optim(py::module_& m) {
  m.def("optimizer_32bit_workspace_len", &optimizer_32bit_workspace_len, py::arg("n"),
        "fp64 values of workspace optimizer_update_32bit needs when max_unorm > 0 (0 for n == 0).");
  m.def(
      "optimizer_update_32bit",
      [](int device, uint64_t stream, int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1,
         uint64_t state2, uint64_t unorm_vec, double max_unorm, double param_norm, double beta1, double beta2,
         double beta3, double alpha, double eps, double weight_decay, int64_t step, double lr, double gnorm_scale,
         bool skip_zeros, uint64_t workspace, int64_t workspace_len) {
        return optimizer_update_32bit(device, ptr<void>(stream), name, dtype, ptr<const void>(g), ptr<void>(p), n,
                                      ptr<float>(state1), ptr<float>(state2), ptr<float>(unorm_vec), max_unorm,
                                      param_norm, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr,
                                      gnorm_scale, skip_zeros, ptr<double>(workspace), workspace_len);
      },
      py::arg("device"), py::arg("stream"), py::arg("name"), py::arg("dtype"), py::arg("g_ptr"), py::arg("p_ptr"),
      py::arg("n"), py::arg("state1_ptr"), py::arg("state2_ptr"), py::arg("unorm_vec_ptr"), py::arg("max_unorm"),
      py::arg("param_norm"), py::arg("beta1"), py::arg("beta2"), py::arg("beta3"), py::arg("alpha"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("step"), py::arg("lr"), py::arg("gnorm_scale"), py::arg("skip_zeros"),
      py::arg("workspace_ptr"), py::arg("workspace_len"),
      "One optimizer step with fp32 state (name = index in OPTIMIZER_NAMES; dtype of p/g 0 fp32, 1 fp16, 2 bf16).");
  m.def(
      "optimizer_update_8bit_blockwise",
      [](int device, uint64_t stream, int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1,
         uint64_t state2, double beta1, double beta2, double beta3, double alpha, double eps, int64_t step, double lr,
         uint64_t qmap1, uint64_t qmap2, uint64_t absmax1, uint64_t absmax2, double weight_decay, double gnorm_scale,
         bool skip_zeros) {
        return optimizer_update_8bit_blockwise(device, ptr<void>(stream), name, dtype, ptr<const void>(g),
                                               ptr<void>(p), n, ptr<uint8_t>(state1), ptr<uint8_t>(state2), beta1,
                                               beta2, beta3, alpha, eps, step, lr, ptr<const float>(qmap1),
                                               ptr<const float>(qmap2), ptr<float>(absmax1), ptr<float>(absmax2),
                                               weight_decay, gnorm_scale, skip_zeros);
      },
      py::arg("device"), py::arg("stream"), py::arg("name"), py::arg("dtype"), py::arg("g_ptr"), py::arg("p_ptr"),
      py::arg("n"), py::arg("state1_ptr"), py::arg("state2_ptr"), py::arg("beta1"), py::arg("beta2"),
      py::arg("beta3"), py::arg("alpha"), py::arg("eps"), py::arg("step"), py::arg("lr"), py::arg("qmap1_ptr"),
      py::arg("qmap2_ptr"), py::arg("absmax1_ptr"), py::arg("absmax2_ptr"), py::arg("weight_decay"),
      py::arg("gnorm_scale"), py::arg("skip_zeros"),
      "Fused blockwise (256) 8-bit optimizer step: dequantize, update, new absmax, requantize, in one pass.");

  using G = py::call_guard<py::gil_scoped_release>;
  m.def(
      "emulate_optimizer_update_32bit",
      [](int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2, uint64_t unorm_vec,
         double max_unorm, double param_norm, double beta1, double beta2, double beta3, double alpha, double eps,
         double weight_decay, int64_t step, double lr, double gnorm_scale, bool skip_zeros) {
        return emulate_optimizer_update_32bit(name, dtype, ptr<const void>(g), ptr<void>(p), n, ptr<float>(state1),
                                              ptr<float>(state2), ptr<float>(unorm_vec), max_unorm, param_norm, beta1,
                                              beta2, beta3, alpha, eps, weight_decay, step, lr, gnorm_scale,
                                              skip_zeros);
      },
      G(), "Host emulation of optimizer_update_32bit's kernels on HOST pointers (tests; no GPU needed).");
  m.def(
      "emulate_optimizer_update_8bit_blockwise",
      [](int name, int dtype, uint64_t g, uint64_t p, int64_t n, uint64_t state1, uint64_t state2, double beta1,
         double beta2, double beta3, double alpha, double eps, int64_t step, double lr, uint64_t qmap1, uint64_t qmap2,
         uint64_t absmax1, uint64_t absmax2, double weight_decay, double gnorm_scale, bool skip_zeros) {
        return emulate_optimizer_update_8bit_blockwise(
            name, dtype, ptr<const void>(g), ptr<void>(p), n, ptr<uint8_t>(state1), ptr<uint8_t>(state2), beta1,
            beta2, beta3, alpha, eps, step, lr, ptr<const float>(qmap1), ptr<const float>(qmap2), ptr<float>(absmax1),
            ptr<float>(absmax2), weight_decay, gnorm_scale, skip_zeros);
      },
      G(), "Host emulation of optimizer_update_8bit_blockwise's kernel on HOST pointers (tests; no GPU needed).");

  // ---------------------------------------------------------------- managed memory (paged optimizers)
  py::class_<ManagedBuffer>(m, "ManagedBuffer",
                            "One CUDA managed allocation (freed with the last reference); torch.as_tensor(buf, "
                            "device='cuda') views it as a uint8 tensor that keeps it alive.")
      .def_property_readonly("ptr", &ManagedBuffer::ptr)
      .def_property_readonly("nbytes", &ManagedBuffer::nbytes)
      .def_property_readonly("device", &ManagedBuffer::device)
      .def_property_readonly("__cuda_array_interface__", [](const ManagedBuffer& b) {
        py::dict d;
        d["shape"] = py::make_tuple(b.nbytes());
        d["typestr"] = "|u1";
        d["data"] = py::make_tuple(b.ptr(), false);
        d["strides"] = py::none();
        d["stream"] = py::none();  // nothing to wait for: the memory is not being written
        d["version"] = 3;
        return d;
      });
  m.def(
      "managed_alloc",
      [](int device, uint64_t nbytes) -> py::tuple {
        void* p = nullptr;
        const int s = managed_alloc(device, nbytes, &p);
        if (s != kOk) return py::make_tuple(s, py::none());
        return py::make_tuple(s, py::cast(new ManagedBuffer(p, nbytes, device), py::return_value_policy::take_ownership));
      },
      py::arg("device"), py::arg("nbytes"), "(status, ManagedBuffer or None): cudaMallocManaged on `device`.");
  m.def(
      "mem_get_info",
      [](int device) {
        uint64_t f = 0, t = 0;
        const int s = mem_get_info(device, &f, &t);
        return py::make_tuple(s, f, t);
      },
      py::arg("device"), "(status, free bytes, total bytes) of `device`.");
  m.def(
      "managed_caps",
      [](int device) {
        int managed = 0, concurrent = 0;
        const int s = managed_caps(device, &managed, &concurrent);
        return py::make_tuple(s, managed != 0, concurrent != 0);
      },
      py::arg("device"), "(status, managed memory supported, concurrent managed access: on-demand paging, prefetch).");
  m.def(
      "managed_prefetch",
      [](uint64_t p, uint64_t nbytes, int location, int device, uint64_t stream) {
        return managed_prefetch(ptr<void>(p), nbytes, location, device, ptr<void>(stream));
      },
      py::arg("ptr"), py::arg("nbytes"), py::arg("location"), py::arg("device"), py::arg("stream"),
      "Asynchronous prefetch of managed memory to `location` (device index, or -1 = host) on `stream` of `device`.");
  m.def(
      "managed_advise_preferred",
      [](uint64_t p, uint64_t nbytes, int location) { return managed_advise_preferred(ptr<void>(p), nbytes, location); },
      py::arg("ptr"), py::arg("nbytes"), py::arg("location"),
      "Preferred location of managed memory: a device index, -1 = host, -2 = unset.");
}

}  // namespace bnb_cuda
