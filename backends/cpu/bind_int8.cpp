// pybind11 bindings of the LLM.int8() family (pointers as ints; each returns a status, or (status, count)).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "ops_int8.h"

namespace py = pybind11;

namespace bnb_cpu {
namespace {
template <class T>
T* p_(uint64_t p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}
}  // namespace

void bind_int8(py::module_& m) {
  using G = py::call_guard<py::gil_scoped_release>;
  m.def(
      "int8_vectorwise_quant",
      [](int dtype, uint64_t A, int64_t M, int64_t K, float threshold, uint64_t out, uint64_t stats, uint64_t cols,
         int nthreads) {
        int64_t n = 0;
        int st = int8_vectorwise_quant(dtype, p_<const void>(A), M, K, threshold, p_<int8_t>(out), p_<float>(stats),
                                       p_<int64_t>(cols), &n, nthreads);
        return std::make_pair(st, n);
      },
      py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("threshold"), py::arg("out_ptr"),
      py::arg("stats_ptr"), py::arg("cols_ptr"), py::arg("nthreads") = 1, G(),
      "Row-wise int8 quantization of A[M, K]; returns (status, number of outlier columns written to cols_ptr).");
  m.def(
      "int8_double_quant",
      [](int dtype, uint64_t A, int64_t M, int64_t K, float threshold, uint64_t out_row, uint64_t out_col,
         uint64_t row_stats, uint64_t col_stats, uint64_t cols, int nthreads) {
        int64_t n = 0;
        int st = int8_double_quant(dtype, p_<const void>(A), M, K, threshold, p_<int8_t>(out_row), p_<int8_t>(out_col),
                                   p_<float>(row_stats), p_<float>(col_stats), p_<int64_t>(cols), &n, nthreads);
        return std::make_pair(st, n);
      },
      py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("threshold"), py::arg("out_row_ptr"),
      py::arg("out_col_ptr"), py::arg("row_stats_ptr"), py::arg("col_stats_ptr"), py::arg("cols_ptr"),
      py::arg("nthreads") = 1, G());
  m.def(
      "int8_vectorwise_dequant",
      [](uint64_t A, int64_t M, int64_t K, uint64_t stats, uint64_t out, int nthreads) {
        return int8_vectorwise_dequant(p_<const int8_t>(A), M, K, p_<const float>(stats), p_<float>(out), nthreads);
      },
      py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("stats_ptr"), py::arg("out_ptr"), py::arg("nthreads") = 1,
      G());
  m.def(
      "int8_linear_matmul",
      [](uint64_t A, uint64_t B, int64_t M, int64_t N, int64_t K, uint64_t C, int nthreads) {
        return int8_linear_matmul(p_<const int8_t>(A), p_<const int8_t>(B), M, N, K, p_<int32_t>(C), nthreads);
      },
      py::arg("A_ptr"), py::arg("B_ptr"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("C_ptr"),
      py::arg("nthreads") = 1, G(), "Exact int32 C[M, N] = A[M, K] @ B[N, K]^T.");
  m.def(
      "int8_mm_dequant",
      [](uint64_t acc, int64_t M, int64_t N, uint64_t row, uint64_t col, int bias_dtype, uint64_t bias, int out_dtype,
         uint64_t out, int nthreads) {
        return int8_mm_dequant(p_<const int32_t>(acc), M, N, p_<const float>(row), p_<const float>(col), bias_dtype,
                               p_<const void>(bias), out_dtype, p_<void>(out), nthreads);
      },
      py::arg("acc_ptr"), py::arg("M"), py::arg("N"), py::arg("row_ptr"), py::arg("col_ptr"), py::arg("bias_dtype"),
      py::arg("bias_ptr"), py::arg("out_dtype"), py::arg("out_ptr"), py::arg("nthreads") = 1, G(),
      "bias_dtype -1 = no bias.");
  m.def(
      "int8_scaled_mm",
      [](uint64_t A, uint64_t B, int64_t M, int64_t N, int64_t K, uint64_t row, uint64_t col, int bias_dtype,
         uint64_t bias, int out_dtype, uint64_t out, int nthreads) {
        return int8_scaled_mm(p_<const int8_t>(A), p_<const int8_t>(B), M, N, K, p_<const float>(row),
                              p_<const float>(col), bias_dtype, p_<const void>(bias), out_dtype, p_<void>(out),
                              nthreads);
      },
      py::arg("A_ptr"), py::arg("B_ptr"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("row_ptr"),
      py::arg("col_ptr"), py::arg("bias_dtype"), py::arg("bias_ptr"), py::arg("out_dtype"), py::arg("out_ptr"),
      py::arg("nthreads") = 1, G(), "Fused int8 matmul + dequantization (+ bias); bias_dtype -1 = no bias.");
  m.def(
      "int8_mixed_scaled_mm",
      [](int a_dtype, uint64_t A, uint64_t CA, uint64_t CB, int64_t M, int64_t N, int64_t K, uint64_t row,
         uint64_t col, uint64_t cols, int64_t n_cols, int bias_dtype, uint64_t bias, uint64_t out, int nthreads) {
        return int8_mixed_scaled_mm(a_dtype, p_<const void>(A), p_<const int8_t>(CA), p_<const int8_t>(CB), M, N, K,
                                    p_<const float>(row), p_<const float>(col), p_<const int64_t>(cols), n_cols,
                                    bias_dtype, p_<const void>(bias), p_<void>(out), nthreads);
      },
      py::arg("a_dtype"), py::arg("A_ptr"), py::arg("CA_ptr"), py::arg("CB_ptr"), py::arg("M"), py::arg("N"),
      py::arg("K"), py::arg("row_ptr"), py::arg("col_ptr"), py::arg("cols_ptr"), py::arg("n_cols"),
      py::arg("bias_dtype"), py::arg("bias_ptr"), py::arg("out_ptr"), py::arg("nthreads") = 1, G(),
      "int8_scaled_mm plus the outlier columns of A (fp32 sum, one rounding to A's dtype).");
  m.def(
      "int8_mixed_linear",
      [](int a_dtype, uint64_t A, int64_t M, int64_t K, uint64_t CB, int64_t N, uint64_t SCB, float threshold,
         int bias_dtype, uint64_t bias, uint64_t out, int nthreads) {
        return int8_mixed_linear(a_dtype, p_<const void>(A), M, K, p_<const int8_t>(CB), N, p_<const float>(SCB),
                                 threshold, bias_dtype, p_<const void>(bias), p_<void>(out), nthreads);
      },
      py::arg("a_dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("CB_ptr"), py::arg("N"),
      py::arg("SCB_ptr"), py::arg("threshold"), py::arg("bias_dtype"), py::arg("bias_ptr"), py::arg("out_ptr"),
      py::arg("nthreads") = 1, G(),
      "int8_vectorwise_quant(A, threshold) then int8_mixed_scaled_mm, in one call.");
}

}  // namespace bnb_cpu
