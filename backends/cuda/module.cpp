// pybind11 module bnb_core._cuda (torch-free). Every kernel entry point takes (device index, raw stream
// handle, ...) with data pointers as ints and returns a status int; error_message(status) explains it.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.h"
#include "status.h"

#ifndef BNB_CUDA_ARCHS_STR
#define BNB_CUDA_ARCHS_STR "unknown"
#endif

namespace py = pybind11;

#if defined(BNB_HIP_HOST)
PYBIND11_MODULE(_hip, m) {
  m.doc() = "bnb-core HIP (ROCm) kernels, built from the CUDA sources (torch-free)";
  m.attr("PLATFORM") = "hip";
#elif defined(BNB_CUDA_EMU)
namespace bnb_cuda {
void bind_emu(py::module_& m);  // emu/bind_emu.cpp: the emulator's test knobs
}
PYBIND11_MODULE(_cuda_emu, m) {
  m.doc() = "bnb-core CUDA kernels run on CPU by the emulator (tests only; pointers are host pointers)";
  m.attr("PLATFORM") = "emu";
  bnb_cuda::bind_emu(m);
#else
PYBIND11_MODULE(_cuda, m) {
  m.doc() = "bnb-core CUDA kernels (torch-free; pointers and streams as ints, status codes as return values)";
  m.attr("PLATFORM") = "cuda";
#endif
  m.attr("ARCHS") = BNB_CUDA_ARCHS_STR;
  m.def("status_message", &bnb_cuda::status_message, py::arg("status"));
  m.def("error_message", &bnb_cuda::error_message, py::arg("status"));
  m.def("last_cuda_error", &bnb_cuda::last_cuda_error);
  m.def("runtime_version", []() {
    int v = 0;
    return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : -1;
  });
  m.def(
      "device_count",
      []() {
        int n = 0;
        return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
      },
      "Number of devices the runtime sees (0 when there is no driver or device).");

  bnb_cuda::bind_quant(m);
  bnb_cuda::bind_int8(m);
  bnb_cuda::bind_mm4(m);
  bnb_cuda::bind_optim(m);
}
