// pybind11 bindings of the fused 4-bit matmul family. Pointers and the stream are Python ints (0 = absent);
// launches are asynchronous, so the GIL is kept.
#include "bindings.h"
#include "kernels_mm4.h"

namespace py = pybind11;

namespace bnb_cuda {

void bind_mm4(py::module_& m) {
  m.def(
      "gemm_4bit",
      [](int device, uint64_t stream, int dtype, uint64_t A, int64_t M, int64_t K, uint64_t B, int64_t b_nbytes,
         int64_t N, uint64_t absmax, int64_t blocksize, uint64_t code, int quant_type, uint64_t absmax_8bit,
         uint64_t absmax_code, uint64_t absmax_offset, uint64_t bias, uint64_t out, uint64_t ws, int64_t ws_floats) {
        return gemm_4bit(device, ptr<void>(stream), dtype, ptr<const void>(A), M, K, ptr<const void>(B), b_nbytes, N,
                         ptr<const float>(absmax), blocksize, ptr<const float>(code), quant_type,
                         ptr<const uint8_t>(absmax_8bit), ptr<const float>(absmax_code),
                         ptr<const float>(absmax_offset), ptr<const void>(bias), ptr<void>(out), ptr<float>(ws),
                         ws_floats);
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"),
      py::arg("B_ptr"), py::arg("B_nbytes"), py::arg("N"), py::arg("absmax_ptr"), py::arg("blocksize"),
      py::arg("code_ptr"), py::arg("quant_type"), py::arg("absmax_8bit_ptr"), py::arg("absmax_code_ptr"),
      py::arg("absmax_offset_ptr"), py::arg("bias_ptr"), py::arg("out_ptr"), py::arg("ws_ptr"),
      py::arg("ws_floats"),
      "Fused 4-bit matmul out[M,N] = A[M,K] @ W[N,K].T (+ bias) from packed 4-bit B; pointers 0 = absent. "
      "code_ptr 0: the NF4/FP4 table of quant_type.");
  m.def(
      "gemm_4bit_splits",
      [](int device, int dtype, int64_t M, int64_t N, int64_t K) {
        int splits = 1;
        const int s = gemm_4bit_splits(device, dtype, M, N, K, &splits);
        return py::make_tuple(s, splits);
      },
      py::arg("device"), py::arg("dtype"), py::arg("M"), py::arg("N"), py::arg("K"),
      "(status, splits): the K splits gemm_4bit plans for this shape (workspace: splits * M * N floats if > 1).");
}

}  // namespace bnb_cuda
