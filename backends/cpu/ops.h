// Torch-free C++ entry points of the CPU backend (validated, multithreaded, ISA-dispatched).
// All functions return a status (0 = ok, see status_message) and never throw or abort.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

namespace bnb_cpu {

enum Status : int {
  kOk = 0,
  kNullPointer = 1,
  kBadDtype = 2,
  kBadQuantType = 3,
  kBadSize = 4,
  kBadBlocksize = 5,
  kOutputTooSmall = 6,
  kUnsupportedIsa = 7,
  kInternalError = 8,
  kBadOptimizerName = 20,  // optimizer kernels (ops_optim.h)
};

const char* status_message(int status);

// dtype: 0 = float32, 1 = float16, 2 = bfloat16. quant_type: 0 = nf4, 1 = fp4.
int quantize_blockwise(int dtype, const void* x, int64_t n, const float* code, int64_t blocksize, uint8_t* out,
                       float* absmax, int nthreads);
int dequantize_blockwise(int dtype_out, const uint8_t* q, int64_t n, const float* code, const float* absmax,
                         int64_t blocksize, void* out, int nthreads);
int quantize_4bit(int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type, uint8_t* out,
                  int64_t out_nbytes, float* absmax, int nthreads);
int dequantize_4bit(int dtype_out, const uint8_t* q, int64_t n, const float* absmax, int64_t blocksize,
                    int quant_type, void* out, int nthreads);

// ISA dispatch. The active ISA is chosen at load time: the best the CPU supports, or BNB_CPU_ISA
// (x86-64: amx | avx512vnni | avx512 | avx2 | scalar; AArch64: neon | scalar) when set and supported (otherwise
// the best, and isa_warning() says why).
std::string isa();
std::vector<std::string> available_isas();
int set_isa(const std::string& name);  // kUnsupportedIsa when unknown or not supported by this CPU
std::string isa_warning();

// The active ISA path, for kernel families that keep their own per-ISA function tables (compiled from
// their own kernels_*.cpp per ISA, like kernels.cpp): pick the table matching this at each call.
// New tiers are appended; a switch over IsaId must send `default:` (tiers it does not know, and tiers
// not compiled into this build) to the scalar table.
enum class IsaId : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3, kNeon = 4, kAmx = 5 };
IsaId active_isa();

}  // namespace bnb_cpu
