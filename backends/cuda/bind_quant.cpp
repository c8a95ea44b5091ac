// pybind11 bindings of the (de)quantization family. Pointers and the stream are Python ints
// (tensor.data_ptr(), torch's current raw stream); launches are asynchronous, so the GIL is kept.
#include "bindings.h"
#include "kernels_quant.h"

namespace py = pybind11;

namespace bnb_cuda {

void bind_quant(py::module_& m) {
  m.def(
      "quantize_blockwise",
      [](int device, uint64_t stream, int dtype, uint64_t x, int64_t n, uint64_t code, int64_t blocksize,
         uint64_t out, uint64_t absmax) {
        return quantize_blockwise(device, ptr<void>(stream), dtype, ptr<const void>(x), n, ptr<const float>(code),
                                  blocksize, ptr<uint8_t>(out), ptr<float>(absmax));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype"), py::arg("x_ptr"), py::arg("n"), py::arg("code_ptr"),
      py::arg("blocksize"), py::arg("out_ptr"), py::arg("absmax_ptr"));
  m.def(
      "dequantize_blockwise",
      [](int device, uint64_t stream, int dtype_out, uint64_t q, int64_t n, uint64_t code, uint64_t absmax,
         int64_t blocksize, uint64_t out) {
        return dequantize_blockwise(device, ptr<void>(stream), dtype_out, ptr<const uint8_t>(q), n,
                                    ptr<const float>(code), ptr<const float>(absmax), blocksize, ptr<void>(out));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype_out"), py::arg("q_ptr"), py::arg("n"), py::arg("code_ptr"),
      py::arg("absmax_ptr"), py::arg("blocksize"), py::arg("out_ptr"));
  m.def(
      "quantize_4bit",
      [](int device, uint64_t stream, int dtype, uint64_t x, int64_t n, int64_t blocksize, int quant_type,
         uint64_t out, int64_t out_nbytes, uint64_t absmax) {
        return quantize_4bit(device, ptr<void>(stream), dtype, ptr<const void>(x), n, blocksize, quant_type,
                             ptr<uint8_t>(out), out_nbytes, ptr<float>(absmax));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype"), py::arg("x_ptr"), py::arg("n"), py::arg("blocksize"),
      py::arg("quant_type"), py::arg("out_ptr"), py::arg("out_nbytes"), py::arg("absmax_ptr"));
  m.def(
      "dequantize_4bit",
      [](int device, uint64_t stream, int dtype_out, uint64_t q, int64_t n, uint64_t absmax, int64_t blocksize,
         int quant_type, uint64_t out) {
        return dequantize_4bit(device, ptr<void>(stream), dtype_out, ptr<const uint8_t>(q), n,
                               ptr<const float>(absmax), blocksize, quant_type, ptr<void>(out));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype_out"), py::arg("q_ptr"), py::arg("n"), py::arg("absmax_ptr"),
      py::arg("blocksize"), py::arg("quant_type"), py::arg("out_ptr"));
}

}  // namespace bnb_cuda
