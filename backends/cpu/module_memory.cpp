// Bindings of the memory helpers (memory.h) and the thread-pool diagnostics (thread_pool.h).
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "memory.h"
#include "thread_pool.h"

namespace py = pybind11;

namespace bnb_cpu {

void bind_memory(py::module_& m) {
  using G = py::call_guard<py::gil_scoped_release>;
  m.def(
      "advise_hugepage",
      [](uint64_t p, int64_t nbytes) { return advise_hugepage(reinterpret_cast<void*>((uintptr_t)p), nbytes); },
      py::arg("ptr"), py::arg("nbytes"), G(),
      "madvise(MADV_HUGEPAGE) on the 2 MiB pages inside a fresh output buffer (THP mode 'madvise' only, "
      "nbytes >= HUGEPAGE_MIN_BYTES); returns the bytes advised (0: nothing done).");
  m.def(
      "collapse_hugepage",
      [](uint64_t p, int64_t nbytes) { return collapse_hugepage(reinterpret_cast<void*>((uintptr_t)p), nbytes); },
      py::arg("ptr"), py::arg("nbytes"), G(),
      "madvise(MADV_COLLAPSE) on the 2 MiB pages inside written memory (a long-lived weight), in place (THP mode "
      "'madvise' or 'always', nbytes >= HUGEPAGE_MIN_BYTES); returns the bytes collapsed (0: nothing done).");
  m.def("thp_mode", &thp_mode, "Transparent huge page mode: always, madvise, never or unavailable.");
  m.def("hugepage_enabled", &hugepage_enabled, "Whether fresh large outputs get the MADV_HUGEPAGE hint.");
  m.def("set_hugepage_enabled", &set_hugepage_enabled, py::arg("on"),
        "Turn the MADV_HUGEPAGE hint for fresh outputs on or off (default on; BNB_CPU_HUGEPAGE=0 turns it off).");
  m.attr("HUGEPAGE_MIN_BYTES") = kHugepageMinBytes;
  m.def("stream_min_bytes", &stream_min_bytes,
        "Outputs of dequantize_blockwise / dequantize_4bit at least this large are written with streaming stores.");
  m.def("set_stream_min_bytes", &set_stream_min_bytes, py::arg("nbytes"),
        "Set that threshold (-1: the default, 3/4 of the last-level cache; 0: every aligned output).");

  m.def("pool_size", &pool_size, "Worker threads alive in the native thread pool.");
  m.def("last_threads", &last_threads,
        "Threads (caller included) the calling thread's last native parallel region ran on (1 = serial).");
  m.def("threads_high_water", &threads_high_water,
        "Most threads that ran native kernel tasks at once since reset_threads_high_water().");
  m.def("reset_threads_high_water", &reset_threads_high_water);
}

}  // namespace bnb_cpu
