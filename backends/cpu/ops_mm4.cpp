#include "ops_mm4.h"

#include <string.h>

#include <memory>
#include <vector>

#include "bindings.h"
#include "kernels_mm4.h"
#include "ops.h"
#include "thread_pool.h"

namespace bnb_cpu {
namespace {

// bf16 inputs use the bf16 dot-product paths (where the ISA has them): up to this many rows of A the direct
// path (weights decoded in registers per row tile), above it the decoded-tile path.
constexpr int64_t kDirectMaxRows = 8;
// The amx tier: bf16 inputs with at least this many rows of A use an AMX tile path (one row: the gemv); up to
// kAmxScaledMaxRows rows at blocksize >= 64 the one that scales tile products by absmax (rows_amx_s), else the one
// that decodes bf16(code * absmax) tiles (rows_bf16_amx). 2 threads, rows_amx_s vs rows_bf16_amx (2026-12-06 Xeon
// VM): 28672 x 8192 (weight from memory) 1.18-1.33x faster at 2-16 rows; 4096-14336 shapes 1.05-1.15x at 2-4
// rows, 0.97-1.05x at 8-16.
constexpr int64_t kAmxMinRows = 2;
constexpr int64_t kAmxScaledMaxRows = 16;
// Below this many weight elements a call runs on the calling thread.
constexpr int64_t kInlineWeights = 1 << 16;

// The calling thread's buffer for a reconstructed double-quantized absmax. It only grows (to the largest absmax
// seen, e.g. 14.7 MB for a 28672 x 8192 weight at blocksize 64) and is not zero-filled: a fresh std::vector per
// call zero-filled and page-faulted its megabytes on every call (4096 x 4096, 4 rows: +105 us over a plain absmax).
float* absmax_scratch(size_t n) {
  static thread_local std::unique_ptr<float[]> buf;
  static thread_local size_t cap = 0;
  if (n > cap) {
    buf.reset(new float[n]);
    cap = n;
  }
  return buf.get();
}

const Mm4Table* mm4_active() {
  switch (active_isa()) {
#if defined(BNB_HAVE_AVX512VNNI_TU)
    case IsaId::kAmx:  // the avx512vnni kernels (AMX adds tile paths where the op glue asks for them)
    case IsaId::kAvx512Vnni: return &avx512vnni::mm4_table;
#endif
#if defined(BNB_HAVE_AVX512_TU)
    case IsaId::kAvx512: return &avx512::mm4_table;
#endif
#if defined(BNB_HAVE_AVX2_TU)
    case IsaId::kAvx2: return &avx2::mm4_table;
#endif
    default: return &scalar::mm4_table;
  }
}

}  // namespace

int gemm_4bit(int dtype, const void* A, int64_t M, int64_t K, const void* B, int64_t b_nbytes, int64_t N,
              const float* absmax, int64_t blocksize, const float* code, const uint8_t* absmax_8bit,
              const float* absmax_code, const float* absmax_offset, const void* bias, void* out, int nthreads) {
  try {
    if (dtype < 0 || dtype > 2) return kBadDtype;
    if (M < 0 || K < 0 || N < 0 || b_nbytes < 0) return kBadSize;
    if (blocksize < 32 || (blocksize & (blocksize - 1)) != 0) return kBadBlocksize;
    if (M == 0 || N == 0) return kOk;
    if (!out || (!A && K > 0)) return kNullPointer;
    const int64_t n = N * K;
    if (b_nbytes < (n + 1) / 2) return kBadSize;
    if (n > 0 && (!B || !absmax || !code)) return kNullPointer;
    if (absmax_8bit && (!absmax_code || !absmax_offset)) return kNullPointer;
    int bshift = 0;
    while (((int64_t)1 << bshift) < blocksize) ++bshift;

    const int64_t nblocks = (n + blocksize - 1) / blocksize;
    alignas(64) float code16[16] = {0};
    if (code) memcpy(code16, code, sizeof(code16));

    const Mm4Table* t = mm4_active();
    Mm4Args a;
    a.dtype = dtype;
    a.M = M;
    a.K = K;
    a.N = N;
    a.B = (const uint8_t*)B;
    a.absmax = absmax;
    a.blocksize = blocksize;
    a.bshift = bshift;
    a.code = code16;
    a.bias = bias;
    a.out = out;
    a.Ap = nullptr;
    a.Abf = nullptr;
    a.absmax_q = nullptr;
    a.absmax2 = nullptr;
    a.absmax_code = nullptr;
    a.absmax_offset = 0.0f;
    std::vector<float> Ap;
    std::vector<uint16_t> Abf;
    // One row of A at blocksize >= 64: a gemv. In fp32 arithmetic (rows_gemv32: exact fp32 weights) for fp32 and fp16
    // A, for bf16 A where the ISA has no BF16 dot products, and for bf16 A on the amx tier (Intel Xeons, where
    // vdpbf16ps issues once per ~2.1 cycles: 2026-12-06 Xeon VM, in cache 3-6% faster than the bf16 gemv at 2
    // threads and 7% at one, the same streamed); the bf16 gemv (rows_bf16_direct -> rows_gemv) for bf16 A on the
    // other BF16 CPUs.
    // On AVX2 it also takes several rows of bf16 A while M * K <= gemv32_bf16_max_elems (the decode shared by 4 rows
    // at a time).
    const bool gemv32 = t->rows_gemv32 && blocksize >= 64 && K > 0 && K % 64 == 0 &&
                        (M == 1 ? (dtype != 2 || !t->rows_bf16 || active_isa() == IsaId::kAmx)
                                : (dtype == 2 && M * K <= t->gemv32_bf16_max_elems));
    const bool bf16_ok = !gemv32 && t->rows_bf16 && dtype == 2 && K % 64 == 0;
    const bool amx = bf16_ok && t->rows_bf16_amx && active_isa() == IsaId::kAmx;
    const bool use_amx_s = amx && t->rows_amx_s && blocksize >= 64 && M >= kAmxMinRows && M <= kAmxScaledMaxRows;
    const bool use_amx = amx && !use_amx_s && M >= kAmxMinRows;
    const bool use_direct = bf16_ok && !use_amx && !use_amx_s && M <= kDirectMaxRows;
    const bool use_bf16 = bf16_ok && !use_amx && !use_amx_s;
    const bool gemv = use_direct && M == 1 && blocksize >= 64;  // rows_bf16_direct runs the gemv
    if (gemv32) {
      Ap.resize((size_t)(M * K));
      t->prep_a_gemv32(dtype, A, M, K, Ap.data());
      a.Ap = Ap.data();
    } else if (use_amx_s) {
      Abf.resize((size_t)(M * K));
      t->prep_a_amx_s((const uint16_t*)A, M, K, Abf.data());
      a.Abf = Abf.data();
    } else if (use_amx) {
      Abf.resize((size_t)((M + 15) / 16 * 16 * K));
      t->prep_a_amx((const uint16_t*)A, M, K, Abf.data());
      a.Abf = Abf.data();
    } else if (use_direct) {
      Abf.resize((size_t)(M * K));
      if (gemv)
        t->prep_a_gemv((const uint16_t*)A, K, Abf.data());
      else
        t->prep_a_bf16((const uint16_t*)A, M, K, Abf.data());
      a.Abf = Abf.data();
    } else if (use_bf16) {
      a.Abf = (const uint16_t*)A;  // the tile path reads A in natural order
    } else {
      Ap.resize((size_t)(M * K));
      t->prep_a(dtype, A, M, K, Ap.data());
      a.Ap = Ap.data();
    }
    // Double quantization: the gemv and rows_amx_s decode the absmax themselves (per group of 16 weight rows); the
    // other paths read a reconstructed one (in parallel, into absmax_scratch: 1 B -> 4 B per block, a 4096 x 4096
    // weight at blocksize 64 has 262144 blocks).
    int nt = nthreads < 1 ? 1 : (nthreads > 256 ? 256 : nthreads);
    if (absmax_8bit && n > 0) {
      if (gemv || gemv32 || use_amx_s) {
        a.absmax_q = absmax_8bit;
        a.absmax2 = absmax;
        a.absmax_code = absmax_code;
        a.absmax_offset = *absmax_offset;
        a.absmax = nullptr;
      } else {
        float* fa = absmax_scratch((size_t)nblocks);
        const float off = *absmax_offset;
        const int64_t chunk = 1 << 14;  // blocks per task (a multiple of the nested blocksize)
        const int64_t nchunks = (nblocks + chunk - 1) / chunk;
        auto task = [&](int64_t c) {
          const int64_t i1 = (c + 1) * chunk < nblocks ? (c + 1) * chunk : nblocks;
          t->nested_absmax(absmax_8bit, absmax, absmax_code, off, c * chunk, i1, fa + c * chunk);
        };
        parallel_for(nchunks, nt, task);  // (serially for one chunk or one thread)
        a.absmax = fa;
      }
    }
    void (*rows)(const Mm4Args&, int64_t, int64_t) =
        gemv32 ? t->rows_gemv32
        : use_amx_s ? t->rows_amx_s
                  : (use_amx ? t->rows_bf16_amx
                             : (use_direct ? t->rows_bf16_direct : (use_bf16 ? t->rows_bf16 : t->rows)));

    if (nt <= 1 || n * (M < 16 ? M : 16) < kInlineWeights || N < 8) {
      rows(a, 0, N);
      return kOk;
    }
    // chunks of a multiple of 4 rows (of 64 for the bf16 tile path: its tile width), about 8 per thread
    const int64_t gran = ((use_bf16 && !use_direct) || use_amx || use_amx_s) ? 64 : 4;
    int64_t per = (N + (int64_t)nt * 8 - 1) / ((int64_t)nt * 8);
    per = (per + gran - 1) / gran * gran;
    const int64_t ntasks = (N + per - 1) / per;
    parallel_for(ntasks, nt, [&](int64_t task) {
      const int64_t n0 = task * per;
      const int64_t n1 = (n0 + per < N) ? n0 + per : N;
      rows(a, n0, n1);
    });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

namespace py = pybind11;

void bind_mm4(py::module_& m) {
  using G = py::call_guard<py::gil_scoped_release>;
  m.def(
      "gemm_4bit",
      [](int dtype, uint64_t A, int64_t M, int64_t K, uint64_t B, int64_t b_nbytes, int64_t N, uint64_t absmax,
         int64_t blocksize, uint64_t code, uint64_t absmax_8bit, uint64_t absmax_code, uint64_t absmax_offset,
         uint64_t bias, uint64_t out, int nthreads) {
        auto p = [](uint64_t v) { return reinterpret_cast<void*>(static_cast<uintptr_t>(v)); };
        return bnb_cpu::gemm_4bit(dtype, p(A), M, K, p(B), b_nbytes, N, (const float*)p(absmax), blocksize,
                                  (const float*)p(code), (const uint8_t*)p(absmax_8bit), (const float*)p(absmax_code),
                                  (const float*)p(absmax_offset), p(bias), p(out), nthreads);
      },
      py::arg("dtype"), py::arg("A_ptr"), py::arg("M"), py::arg("K"), py::arg("B_ptr"), py::arg("B_nbytes"),
      py::arg("N"), py::arg("absmax_ptr"), py::arg("blocksize"), py::arg("code_ptr"), py::arg("absmax_8bit_ptr"),
      py::arg("absmax_code_ptr"), py::arg("absmax_offset_ptr"), py::arg("bias_ptr"), py::arg("out_ptr"),
      py::arg("nthreads") = 1, G(),
      "Fused 4-bit matmul out[M,N] = A[M,K] @ W[N,K].T (+ bias) from packed 4-bit B; pointers 0 = absent.");
}

}  // namespace bnb_cpu
