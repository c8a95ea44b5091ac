// The emulator's test knobs in bnb_core._cuda_emu (module.cpp calls bind_emu when built with BNB_CUDA_EMU).
#include <pybind11/pybind11.h>

#include "emu/cuda_emu_runtime.h"

namespace py = pybind11;

#ifndef BNB_EMU_SKIPPED_FAMILIES
#define BNB_EMU_SKIPPED_FAMILIES ""
#endif

namespace bnb_cuda {

void bind_emu(py::module_& m) {
  m.attr("EMU_SM") = BNB_EMU_SM;
  // kernel families left out of this build (not emulator-ready yet, backends/cuda/emu/CMakeLists.txt)
  m.attr("SKIPPED_FAMILIES") = BNB_EMU_SKIPPED_FAMILIES;
  m.def("set_max_grid", &bnb_emu::set_max_grid, py::arg("n"),
        "Clamp every launch's grid to at most n blocks per dimension (0: no clamp); grid-stride kernels must "
        "give the same results.");
  m.def("max_grid", &bnb_emu::max_grid);
  m.def("set_schedule", &bnb_emu::set_schedule, py::arg("mode"), py::arg("seed") = 0,
        "Thread order inside a block between barriers: 0 ascending, 1 descending, 2 pseudo-random.");
  m.def("schedule", &bnb_emu::schedule);
  m.def("set_block_order", &bnb_emu::set_block_order, py::arg("order"), "0: ascending block index, 1: descending");
  m.def("last_failure", &bnb_emu::last_failure, "What made the last failed launch fail ('' if none).");
  m.def("stats", []() {
    const bnb_emu::Stats s = bnb_emu::stats();
    py::dict d;
    d["launches"] = s.launches;
    d["blocks"] = s.blocks;
    d["threads"] = s.threads;
    d["switches"] = s.switches;
    return d;
  });
  m.def("reset_stats", &bnb_emu::reset_stats);
}

}  // namespace bnb_cuda
