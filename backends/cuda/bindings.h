// One bind_<family>(module) per kernel family, each in its own bind_<family>.cpp; module.cpp calls them.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

namespace bnb_cuda {

template <class T>
inline T* ptr(uint64_t p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}

void bind_quant(pybind11::module_& m);
void bind_int8(pybind11::module_& m);
void bind_mm4(pybind11::module_& m);
void bind_optim(pybind11::module_& m);

}  // namespace bnb_cuda
