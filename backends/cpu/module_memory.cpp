// Bindings of the memory helpers (memory.h) and the thread-pool diagnostics (thread_pool.h).
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "memory.h"
#include "thread_pool.h"

namespace py = pybind11;

namespace bnb_cpu {
namespace {

// A block of the output cache (memory.h) owned by a Python object: torch.frombuffer keeps a reference to it for the
// life of the tensor's storage, and the block goes back to the cache when the last reference is gone.
class OutputBuffer {
 public:
  OutputBuffer(void* p, int64_t nbytes, int64_t mapped) : p_(p), nbytes_(nbytes), mapped_(mapped) {}
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;
  ~OutputBuffer() { output_block_release(p_, mapped_); }
  void* data() const { return p_; }
  int64_t nbytes() const { return nbytes_; }

 private:
  void* p_;
  int64_t nbytes_, mapped_;
};

}  // namespace

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

  py::class_<OutputBuffer>(m, "OutputBuffer", py::buffer_protocol(),
                           "Writable bytes of the output cache; the block returns to the cache when this is freed.")
      .def_buffer([](OutputBuffer& b) {
        return py::buffer_info(b.data(), 1, py::format_descriptor<uint8_t>::format(), 1, {b.nbytes()}, {1}, false);
      })
      .def_property_readonly("nbytes", &OutputBuffer::nbytes)
      .def_property_readonly("ptr", [](const OutputBuffer& b) { return (uint64_t)(uintptr_t)b.data(); });
  m.def(
      "output_buffer",
      [](int64_t nbytes) -> py::object {
        int64_t mapped = 0;
        void* p = nullptr;
        {
          py::gil_scoped_release nogil;
          p = output_block_acquire(nbytes, &mapped);
        }
        if (p == nullptr) return py::none();
        return py::cast(new OutputBuffer(p, nbytes, mapped), py::return_value_policy::take_ownership);
      },
      py::arg("nbytes"),
      "nbytes of uninitialized memory from the output cache (a released block of the same page-rounded length, else "
      "a new 2 MiB-aligned mapping), as a writable buffer (torch.frombuffer); None when unavailable.");
  m.def("output_cache_limit", &output_cache_limit, "Bytes of released output blocks the cache may keep.");
  m.def("set_output_cache_limit", &set_output_cache_limit, py::arg("nbytes"), G(),
        "Set that limit (0: the cache off); kept blocks beyond it are unmapped now.");
  m.def(
      "output_cache_stats",
      []() {
        const OutputCacheStats s = output_cache_stats();
        return py::dict(py::arg("held_bytes") = s.held_bytes, py::arg("held_blocks") = s.held_blocks,
                        py::arg("hits") = s.hits, py::arg("misses") = s.misses);
      },
      "held_bytes / held_blocks: released blocks kept now; hits / misses: acquires served by a kept block / a new "
      "mapping.");
  m.def("empty_output_cache", &empty_output_cache, G(), "Unmap every kept output block.");
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
