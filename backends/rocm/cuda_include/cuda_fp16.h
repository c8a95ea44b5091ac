// HIP build only (backends/rocm/CMakeLists.txt puts this directory on the kernel sources' include path):
// <cuda_fp16.h> of a CUDA source resolves to the one compat header.
#pragma once
#include "../hip_compat.h"
