#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>

#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
#include <cpuid.h>  // cpu_has_amx
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "bnb_quant_math.h"
#include "kernels.h"
#include "memory.h"
#include "thread_pool.h"

namespace bnb_cpu {
namespace {

// Below this many elements a call runs on the calling thread.
constexpr int64_t kInlineElements = 1 << 16;
constexpr int kMaxThreads = 256;

struct Isa {
  const char* name;
  IsaId id;
  const KernelTable* table;  // the element-wise kernels (the amx tier runs avx512vnni's)
  bool (*supported)();
};

bool cpu_has_avx512() {
#if defined(BNB_HAVE_AVX512_TU)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}
bool cpu_has_avx512vnni() {
#if defined(BNB_HAVE_AVX512VNNI_TU)
  return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi") &&
         __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}
bool cpu_has_avx2() {
#if defined(BNB_HAVE_AVX2_TU)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}
// AMX (Sapphire Rapids and later): the CPU has the tile unit with BF16 and INT8 dot products, the OS enables
// the tile state in XCR0, and (Linux) the process is granted the tile data state (arch_prctl
// ARCH_REQ_XCOMP_PERM, once; the grant covers every thread of the process). Elsewhere: not supported.
bool cpu_has_amx() {
#if defined(BNB_HAVE_AVX512VNNI_TU) && defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
  static const bool ok = [] {
    if (!cpu_has_avx512vnni()) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1, int8 = (d >> 25) & 1;
    if (!(tile && bf16 && int8)) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return false;  // OSXSAVE
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if (((lo >> 17) & 3) != 3) return false;  // XTILECFG, XTILEDATA
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}
bool always() { return true; }  // scalar; neon (ASIMD is part of ARMv8.0-A, every AArch64 CPU has it)

// Best first.
const Isa kIsas[] = {
#if defined(BNB_HAVE_AVX512VNNI_TU)
    {"amx", IsaId::kAmx, &avx512vnni::table, cpu_has_amx},
    {"avx512vnni", IsaId::kAvx512Vnni, &avx512vnni::table, cpu_has_avx512vnni},
#endif
#if defined(BNB_HAVE_AVX512_TU)
    {"avx512", IsaId::kAvx512, &avx512::table, cpu_has_avx512},
#endif
#if defined(BNB_HAVE_AVX2_TU)
    {"avx2", IsaId::kAvx2, &avx2::table, cpu_has_avx2},
#endif
#if defined(BNB_HAVE_NEON_TU)
    {"neon", IsaId::kNeon, &neon::table, always},
#endif
    {"scalar", IsaId::kScalar, &scalar::table, always},
};

std::string g_warning;
std::mutex g_isa_mu;

constexpr size_t kNumIsas = sizeof(kIsas) / sizeof(kIsas[0]);

const Isa* best_isa() {
  for (const Isa& i : kIsas)
    if (i.supported()) return &i;
  return &kIsas[kNumIsas - 1];  // scalar
}

const Isa* initial_isa() {
  const char* env = getenv("BNB_CPU_ISA");
  if (env == nullptr || env[0] == '\0') return best_isa();
  std::string want(env);
  for (const Isa& i : kIsas) {
    if (want == i.name) {
      if (i.supported()) return &i;
      g_warning = "BNB_CPU_ISA=" + want + " is not supported by this CPU; using the best supported ISA";
      return best_isa();
    }
  }
  std::string names;
  for (const Isa& i : kIsas) names += std::string(names.empty() ? "" : ", ") + i.name;
  g_warning = "BNB_CPU_ISA=" + want + " is unknown (this build has " + names + "); using the best supported ISA";
  return best_isa();
}

std::atomic<const Isa*> g_isa{initial_isa()};

int clamp_threads(int nthreads) {
  if (nthreads < 1) return 1;
  return nthreads > kMaxThreads ? kMaxThreads : nthreads;
}

// Split the blocks [0, nblocks) into tasks and run body(b0, b1) on them, in parallel when the work
// is large enough. even_starts: every task starts on an even element (4-bit packing).
template <class F>
void run_blocks(int64_t n, int64_t blocksize, int nthreads, bool even_starts, const F& body) {
  const int64_t nblocks = (n + blocksize - 1) / blocksize;
  nthreads = clamp_threads(nthreads);
  if (nthreads <= 1 || n < kInlineElements || nblocks < 2) {
    parallel_for(1, 1, [&](int64_t) { body((int64_t)0, nblocks); });  // serial (records the diagnostics)
    return;
  }
  int64_t ntasks = (int64_t)nthreads * 4;
  if (ntasks > nblocks) ntasks = nblocks;
  int64_t per = (nblocks + ntasks - 1) / ntasks;
  if (even_starts && (blocksize & 1) && (per & 1)) ++per;
  ntasks = (nblocks + per - 1) / per;
  parallel_for(ntasks, nthreads, [&](int64_t t) {
    const int64_t b0 = t * per;
    const int64_t b1 = (b0 + per < nblocks) ? b0 + per : nblocks;
    body(b0, b1);
  });
}

bool bad_dtype(int d) { return d < 0 || d > 2; }
bool bad_qt(int q) { return q < 0 || q > 1; }

}  // namespace

const char* status_message(int status) {
  switch (status) {
    case kOk: return "ok";
    case kNullPointer: return "bnb_core._cpu: a data pointer is null while the tensor is not empty";
    case kBadDtype: return "bnb_core._cpu: unknown dtype code (expected 0 = float32, 1 = float16, 2 = bfloat16)";
    case kBadQuantType: return "bnb_core._cpu: unknown quant_type code (expected 0 = nf4, 1 = fp4)";
    case kBadSize: return "bnb_core._cpu: negative element or byte count";
    case kBadBlocksize: return "bnb_core._cpu: blocksize must be positive";
    case kOutputTooSmall: return "bnb_core._cpu: output buffer too small for (n + 1) // 2 packed bytes";
    case kUnsupportedIsa: return "bnb_core._cpu: ISA unknown or not supported by this CPU";
    case kInternalError: return "bnb_core._cpu: internal error";
    case kBadOptimizerName: return "bnb_core._cpu: unknown optimizer code (expected 0..7, the order of OPTIMIZER_NAMES)";
    default: return "bnb_core._cpu: unknown status";
  }
}

int quantize_blockwise(int dtype, const void* x, int64_t n, const float* code, int64_t blocksize, uint8_t* out,
                       float* absmax, int nthreads) {
  try {
    if (bad_dtype(dtype)) return kBadDtype;
    if (n < 0) return kBadSize;
    if (blocksize <= 0) return kBadBlocksize;
    if (n == 0) return kOk;
    if (!x || !code || !out || !absmax) return kNullPointer;
    alignas(64) float padded[256];
    bool sorted = true;
    for (int i = 0; i < 255; ++i) padded[i] = bnb::midpoint(code[i], code[i + 1]);
    padded[255] = INFINITY;
    for (int i = 0; i < 254; ++i)
      if (!(padded[i] <= padded[i + 1])) sorted = false;
    const KernelTable* k = g_isa.load()->table;
    run_blocks(n, blocksize, nthreads, false,
               [&](int64_t b0, int64_t b1) { k->quant8(dtype, x, n, padded, sorted, blocksize, out, absmax, b0, b1); });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int dequantize_blockwise(int dtype_out, const uint8_t* q, int64_t n, const float* code, const float* absmax,
                         int64_t blocksize, void* out, int nthreads) {
  try {
    if (bad_dtype(dtype_out)) return kBadDtype;
    if (n < 0) return kBadSize;
    if (blocksize <= 0) return kBadBlocksize;
    if (n == 0) return kOk;
    if (!q || !code || !absmax || !out) return kNullPointer;
    alignas(64) float table[256];
    memcpy(table, code, sizeof(table));
    const KernelTable* k = g_isa.load()->table;
    const int64_t esize = dtype_out == 0 ? 4 : 2;
    const bool stream = use_streaming_stores(out, n * esize, blocksize * esize);
    run_blocks(n, blocksize, nthreads, false, [&](int64_t b0, int64_t b1) {
      k->dequant8(dtype_out, q, n, table, absmax, blocksize, out, stream, b0, b1);
    });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int quantize_4bit(int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type, uint8_t* out,
                  int64_t out_nbytes, float* absmax, int nthreads) {
  try {
    if (bad_dtype(dtype)) return kBadDtype;
    if (bad_qt(quant_type)) return kBadQuantType;
    if (n < 0 || out_nbytes < 0) return kBadSize;
    if (blocksize <= 0) return kBadBlocksize;
    const int64_t nbytes = n / 2 + (n & 1);
    if (out_nbytes < nbytes) return kOutputTooSmall;
    if (out_nbytes > 0 && !out) return kNullPointer;
    if (n > 0 && (!x || !absmax)) return kNullPointer;
    if (n > 0) {
      const KernelTable* k = g_isa.load()->table;
      run_blocks(n, blocksize, nthreads, true, [&](int64_t b0, int64_t b1) {
        k->quant4(dtype, x, n, blocksize, quant_type, out, absmax, b0, b1);
      });
    }
    if (out_nbytes > nbytes) {
      const int z = bnb::zero_code_4bit(quant_type);
      memset(out + nbytes, (z << 4) | z, (size_t)(out_nbytes - nbytes));
    }
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int dequantize_4bit(int dtype_out, const uint8_t* q, int64_t n, const float* absmax, int64_t blocksize,
                    int quant_type, void* out, int nthreads) {
  try {
    if (bad_dtype(dtype_out)) return kBadDtype;
    if (bad_qt(quant_type)) return kBadQuantType;
    if (n < 0) return kBadSize;
    if (blocksize <= 0) return kBadBlocksize;
    if (n == 0) return kOk;
    if (!q || !absmax || !out) return kNullPointer;
    const KernelTable* k = g_isa.load()->table;
    const int64_t esize = dtype_out == 0 ? 4 : 2;
    const bool stream = use_streaming_stores(out, n * esize, blocksize * esize);
    run_blocks(n, blocksize, nthreads, false, [&](int64_t b0, int64_t b1) {
      k->dequant4(dtype_out, q, n, absmax, blocksize, quant_type, out, stream, b0, b1);
    });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

std::string isa() { return g_isa.load()->name; }

IsaId active_isa() { return g_isa.load()->id; }

std::vector<std::string> available_isas() {
  std::vector<std::string> r;
  for (const Isa& i : kIsas)
    if (i.supported()) r.push_back(i.name);
  return r;
}

int set_isa(const std::string& name) {
  for (const Isa& i : kIsas) {
    if (name == i.name) {
      if (!i.supported()) return kUnsupportedIsa;
      g_isa.store(&i);
      return kOk;
    }
  }
  return kUnsupportedIsa;
}

std::string isa_warning() {
  std::lock_guard<std::mutex> g(g_isa_mu);
  return g_warning;
}

}  // namespace bnb_cpu
