// Per-ISA kernel table of the CPU backend. kernels.cpp is compiled once per ISA (different -m flags)
// into namespace bnb_cpu::<isa>; ops.cpp picks a table at load time (runtime dispatch).
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// Every function works on the blocks [b0, b1) of a flat array of n elements; arguments are validated
// by the caller (ops.cpp).
struct KernelTable {
  const char* name;
  // 8-bit blockwise. `padded` = 255 boundaries + Inf; `sorted` = boundaries ascending (binary search
  // allowed), otherwise every boundary is counted.
  void (*quant8)(int dtype, const void* x, int64_t n, const float* padded, bool sorted, int64_t blocksize,
                 uint8_t* out, float* absmax, int64_t b0, int64_t b1);
  // stream: write `out` with non-temporal stores (x86; ignored elsewhere). The caller guarantees out is 64-byte
  // aligned and blocksize * element size is a multiple of 64.
  void (*dequant8)(int dtype_out, const uint8_t* q, int64_t n, const float* code, const float* absmax,
                   int64_t blocksize, void* out, bool stream, int64_t b0, int64_t b1);
  // 4-bit. Chunks must start on an even element (b0 * blocksize even).
  void (*quant4)(int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type, uint8_t* out,
                 float* absmax, int64_t b0, int64_t b1);
  void (*dequant4)(int dtype_out, const uint8_t* q, int64_t n, const float* absmax, int64_t blocksize,
                   int quant_type, void* out, bool stream, int64_t b0, int64_t b1);
};

namespace scalar {
extern const KernelTable table;
}
#if defined(BNB_HAVE_AVX2_TU)
namespace avx2 {
extern const KernelTable table;
}
#endif
#if defined(BNB_HAVE_AVX512_TU)
namespace avx512 {
extern const KernelTable table;
}
#endif
#if defined(BNB_HAVE_AVX512VNNI_TU)
namespace avx512vnni {
extern const KernelTable table;
}
#endif
#if defined(BNB_HAVE_NEON_TU)
namespace neon {
extern const KernelTable table;
}
#endif

}  // namespace bnb_cpu
