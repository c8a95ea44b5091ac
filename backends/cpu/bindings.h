// Each kernel family binds its entry points in its own function, called from module.cpp's PYBIND11_MODULE.
#pragma once

#include <pybind11/pybind11.h>

namespace bnb_cpu {
// (one declaration per kernel family, e.g. void bind_gemm_4bit(pybind11::module_& m);)
void bind_mm4(pybind11::module_& m);  // gemm_4bit (ops_mm4.cpp)
void bind_int8(pybind11::module_& m);  // LLM.int8(): ops_int8.cpp / bind_int8.cpp
void bind_optim(pybind11::module_& m);
void bind_memory(pybind11::module_& m);  // memory helpers + thread-pool diagnostics
}  // namespace bnb_cpu
