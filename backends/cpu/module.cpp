// pybind11 bindings of the CPU backend: bnb_core._cpu. Torch-free: data pointers are Python ints
// (tensor.data_ptr()), sizes int64. Every kernel releases the GIL and returns a status int.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "ops.h"

namespace py = pybind11;

namespace {
template <class T>
T* ptr(uint64_t p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}
}  // namespace

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "bnb-core CPU kernels (torch-free; pointers as ints, status codes as return values)";
  using G = py::call_guard<py::gil_scoped_release>;

  m.def(
      "quantize_blockwise",
      [](int dtype, uint64_t x, int64_t n, uint64_t code, int64_t blocksize, uint64_t out, uint64_t absmax,
         int nthreads) {
        return bnb_cpu::quantize_blockwise(dtype, ptr<const void>(x), n, ptr<const float>(code), blocksize,
                                           ptr<uint8_t>(out), ptr<float>(absmax), nthreads);
      },
      py::arg("dtype"), py::arg("x_ptr"), py::arg("n"), py::arg("code_ptr"), py::arg("blocksize"), py::arg("out_ptr"),
      py::arg("absmax_ptr"), py::arg("nthreads") = 1, G(),
      "8-bit blockwise quantization of n values (dtype 0 fp32, 1 fp16, 2 bf16) with an ascending fp32[256] code.");
  m.def(
      "dequantize_blockwise",
      [](int dtype_out, uint64_t q, int64_t n, uint64_t code, uint64_t absmax, int64_t blocksize, uint64_t out,
         int nthreads) {
        return bnb_cpu::dequantize_blockwise(dtype_out, ptr<const uint8_t>(q), n, ptr<const float>(code),
                                             ptr<const float>(absmax), blocksize, ptr<void>(out), nthreads);
      },
      py::arg("dtype_out"), py::arg("q_ptr"), py::arg("n"), py::arg("code_ptr"), py::arg("absmax_ptr"),
      py::arg("blocksize"), py::arg("out_ptr"), py::arg("nthreads") = 1, G());
  m.def(
      "quantize_4bit",
      [](int dtype, uint64_t x, int64_t n, int64_t blocksize, int quant_type, uint64_t out, int64_t out_nbytes,
         uint64_t absmax, int nthreads) {
        return bnb_cpu::quantize_4bit(dtype, ptr<const void>(x), n, blocksize, quant_type, ptr<uint8_t>(out),
                                      out_nbytes, ptr<float>(absmax), nthreads);
      },
      py::arg("dtype"), py::arg("x_ptr"), py::arg("n"), py::arg("blocksize"), py::arg("quant_type"), py::arg("out_ptr"),
      py::arg("out_nbytes"), py::arg("absmax_ptr"), py::arg("nthreads") = 1, G(),
      "4-bit (quant_type 0 nf4, 1 fp4) quantization; bytes past (n+1)//2 up to out_nbytes get the zero code.");
  m.def(
      "dequantize_4bit",
      [](int dtype_out, uint64_t q, int64_t n, uint64_t absmax, int64_t blocksize, int quant_type, uint64_t out,
         int nthreads) {
        return bnb_cpu::dequantize_4bit(dtype_out, ptr<const uint8_t>(q), n, ptr<const float>(absmax), blocksize,
                                        quant_type, ptr<void>(out), nthreads);
      },
      py::arg("dtype_out"), py::arg("q_ptr"), py::arg("n"), py::arg("absmax_ptr"), py::arg("blocksize"),
      py::arg("quant_type"), py::arg("out_ptr"), py::arg("nthreads") = 1, G());

  bnb_cpu::bind_mm4(m);
  bnb_cpu::bind_int8(m);
  bnb_cpu::bind_optim(m);

  m.def("status_message", &bnb_cpu::status_message, py::arg("status"));
  m.def("isa", &bnb_cpu::isa, "The active ISA path: amx, avx512vnni, avx512, avx2 (x86-64), neon (AArch64) or scalar.");
  m.def("available_isas", &bnb_cpu::available_isas, "ISA paths this build and CPU support, best first.");
  m.def("set_isa", &bnb_cpu::set_isa, py::arg("name"),
        "Switch the active ISA path (for tests); returns a status (7 when unknown or unsupported).");
  m.def("isa_warning", &bnb_cpu::isa_warning, "Why BNB_CPU_ISA was not honoured ('' when it was or is unset).");

  m.attr("STATUS_OK") = 0;
  m.attr("DTYPE_FLOAT32") = 0;
  m.attr("DTYPE_FLOAT16") = 1;
  m.attr("DTYPE_BFLOAT16") = 2;
  m.attr("QUANT_NF4") = 0;
  m.attr("QUANT_FP4") = 1;

  bnb_cpu::bind_memory(m);
}
