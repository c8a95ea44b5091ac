# Source lists of the CUDA backend, included by backends/cuda/CMakeLists.txt (nvcc) and by
# backends/rocm/CMakeLists.txt (the same files built as HIP by hipcc). Paths are relative to backends/cuda.

# Kernel sources (torch-free). One line per kernel family.
set(BNB_CUDA_KERNEL_SOURCES
  kernels_quant.cu     # blockwise 8-bit and 4-bit (de)quantization
  kernels_mm4.cu       # fused 4-bit matmul (gemv_4bit / gemm_4bit)
  kernels_optim.cu     # optimizer updates (32-bit state, fused blockwise 8-bit state)
  kernels_int8.cu      # LLM.int8(): row/column quantization with outliers, int8 tensor-core matmul, dequant
)
# Host sources (bindings). One line per kernel family.
set(BNB_CUDA_HOST_SOURCES
  module.cpp status.cpp
  bind_quant.cpp
  bind_int8.cpp
  bind_mm4.cpp
  bind_optim.cpp paged_memory.cpp
)
