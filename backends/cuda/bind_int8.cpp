// pybind11 bindings of the LLM.int8() family. Pointers and the stream are Python ints (tensor.data_ptr(),
// torch's current raw stream); launches are asynchronous, so the GIL is kept. Each returns a status.
#include "bindings.h"
#include "kernels_int8.h"

namespace py = pybind11;

namespace bnb_cuda {

void bind_int8(py::module_& m) {
  m.def("int8_outlier_workspace_bytes", &int8_outlier_workspace_bytes, py::arg("K"),
        "Bytes of the workspace int8_vectorwise_quant / int8_double_quant need when threshold > 0.");
  m.def(
      "int8_vectorwise_quant",
      [](int device, uint64_t stream, int dtype, uint64_t A, int64_t M, int64_t K, float threshold, uint64_t out,
         uint64_t stats, uint64_t workspace, uint64_t cols, uint64_t ncols) {
        return int8_vectorwise_quant(device, ptr<void>(stream), dtype, ptr<const void>(A), M, K, threshold,
                                     ptr<int8_t>(out), ptr<float>(stats), ptr<void>(workspace), ptr<int64_t>(cols),
                                     ptr<int64_t>(ncols));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"),
      py::arg("threshold"), py::arg("out_ptr"), py::arg("stats_ptr"), py::arg("workspace_ptr"), py::arg("cols_ptr"),
      py::arg("ncols_ptr"),
      "Row-wise int8 quantization of A[M, K]; threshold > 0 writes the outlier columns to cols_ptr and their "
      "count (int64) to ncols_ptr in device memory.");
  m.def(
      "int8_double_quant",
      [](int device, uint64_t stream, int dtype, uint64_t A, int64_t M, int64_t K, float threshold, uint64_t out_row,
         uint64_t out_col, uint64_t row_stats, uint64_t col_stats, uint64_t workspace, uint64_t cols,
         uint64_t ncols) {
        return int8_double_quant(device, ptr<void>(stream), dtype, ptr<const void>(A), M, K, threshold,
                                 ptr<int8_t>(out_row), ptr<int8_t>(out_col), ptr<float>(row_stats),
                                 ptr<float>(col_stats), ptr<void>(workspace), ptr<int64_t>(cols),
                                 ptr<int64_t>(ncols));
      },
      py::arg("device"), py::arg("stream"), py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"),
      py::arg("threshold"), py::arg("out_row_ptr"), py::arg("out_col_ptr"), py::arg("row_stats_ptr"),
      py::arg("col_stats_ptr"), py::arg("workspace_ptr"), py::arg("cols_ptr"), py::arg("ncols_ptr"));
  m.def(
      "int8_vectorwise_dequant",
      [](int device, uint64_t stream, uint64_t A, int64_t M, int64_t K, uint64_t stats, uint64_t out) {
        return int8_vectorwise_dequant(device, ptr<void>(stream), ptr<const int8_t>(A), M, K, ptr<const float>(stats),
                                       ptr<float>(out));
      },
      py::arg("device"), py::arg("stream"), py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("stats_ptr"),
      py::arg("out_ptr"));
  m.def("int8_gemm_splits", &int8_gemm_splits, py::arg("device"), py::arg("M"), py::arg("N"), py::arg("K"),
        "K splits of the int8 matmul for this problem (> 1: int8_scaled_mm needs an int32 [M, N] workspace).");
  m.def(
      "int8_gemm_config_name",
      [](int device, int64_t M, int64_t N, int64_t K, uint64_t A, uint64_t B) {
        return std::string(int8_gemm_config_name(device, M, N, K, ptr<const void>(A), ptr<const void>(B)));
      },
      py::arg("device"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("A_ptr") = 256, py::arg("B_ptr") = 256);
  m.def(
      "int8_linear_matmul",
      [](int device, uint64_t stream, uint64_t A, uint64_t B, int64_t M, int64_t N, int64_t K, uint64_t C) {
        return int8_linear_matmul(device, ptr<void>(stream), ptr<const int8_t>(A), ptr<const int8_t>(B), M, N, K,
                                  ptr<int32_t>(C));
      },
      py::arg("device"), py::arg("stream"), py::arg("A_ptr"), py::arg("B_ptr"), py::arg("M"), py::arg("N"),
      py::arg("K"), py::arg("C_ptr"), "Exact int32 C[M, N] = A[M, K] @ B[N, K]^T.");
  m.def(
      "int8_mm_dequant",
      [](int device, uint64_t stream, uint64_t acc, int64_t M, int64_t N, uint64_t row, uint64_t col, int bias_dtype,
         uint64_t bias, int out_dtype, uint64_t out) {
        return int8_mm_dequant(device, ptr<void>(stream), ptr<const int32_t>(acc), M, N, ptr<const float>(row),
                               ptr<const float>(col), bias_dtype, ptr<const void>(bias), out_dtype, ptr<void>(out));
      },
      py::arg("device"), py::arg("stream"), py::arg("acc_ptr"), py::arg("M"), py::arg("N"), py::arg("row_stats_ptr"),
      py::arg("col_stats_ptr"), py::arg("bias_dtype"), py::arg("bias_ptr"), py::arg("out_dtype"), py::arg("out_ptr"));
  m.def(
      "int8_scaled_mm",
      [](int device, uint64_t stream, uint64_t A, uint64_t B, int64_t M, int64_t N, int64_t K, uint64_t row,
         uint64_t col, int bias_dtype, uint64_t bias, int out_dtype, uint64_t out, uint64_t workspace) {
        return int8_scaled_mm(device, ptr<void>(stream), ptr<const int8_t>(A), ptr<const int8_t>(B), M, N, K,
                              ptr<const float>(row), ptr<const float>(col), bias_dtype, ptr<const void>(bias),
                              out_dtype, ptr<void>(out), ptr<int32_t>(workspace));
      },
      py::arg("device"), py::arg("stream"), py::arg("A_ptr"), py::arg("B_ptr"), py::arg("M"), py::arg("N"),
      py::arg("K"), py::arg("row_stats_ptr"), py::arg("col_stats_ptr"), py::arg("bias_dtype"), py::arg("bias_ptr"),
      py::arg("out_dtype"), py::arg("out_ptr"), py::arg("workspace_ptr"));
  m.def(
      "int8_outlier_operands",
      [](int device, uint64_t stream, int a_dtype, uint64_t A, uint64_t CB, uint64_t SCB, int64_t M, int64_t N,
         int64_t K, uint64_t cols, int64_t n_cols, uint64_t sub_a, uint64_t sub_b) {
        return int8_outlier_operands(device, ptr<void>(stream), a_dtype, ptr<const void>(A), ptr<const int8_t>(CB),
                                     ptr<const float>(SCB), M, N, K, ptr<const int64_t>(cols), n_cols,
                                     ptr<void>(sub_a), ptr<void>(sub_b));
      },
      py::arg("device"), py::arg("stream"), py::arg("a_dtype"), py::arg("A_ptr"), py::arg("CB_ptr"),
      py::arg("SCB_ptr"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("cols_ptr"), py::arg("n_cols"),
      py::arg("sub_a_ptr"), py::arg("sub_b_ptr"));
}

}  // namespace bnb_cuda
