// The CUDA fused 4-bit matmul (backends/cuda/mm4_impl.cuh: validation, plan, kernels, launches) built for
// the SIMT emulator (cuda_emu.h) as a shared library for tests/test_cuda_mm4_emu.py (ctypes).
#define BNB_MM4_EMU 1
#include <stdio.h>

#include <cmath>
#include <vector>

#include "mm4_impl.cuh"

namespace {

void set_err(char* err, int errlen, const std::string& m) {
  if (err && errlen > 0) snprintf(err, (size_t)errlen, "%s", m.c_str());
}

}  // namespace

// Runs gemm_4bit as the CUDA backend would on a device with compute capability `cc_major` and `sms`
// multiprocessors (use_ws: give the plan the workspace it asks for). Returns the Status, or -1 for an
// emulator error (bounds, alignment, deadlock; message in err). *kind / *splits: the plan taken.
extern "C" int emu_gemm_4bit(int dtype, const void* A, int64_t M, int64_t K, const void* B, int64_t b_nbytes,
                             int64_t N, const float* absmax, int64_t absmax_n, int64_t blocksize, const float* code,
                             int quant_type, const uint8_t* absmax_8bit, int64_t absmax_8bit_n,
                             const float* absmax_code, const float* absmax_offset, const void* bias, void* out,
                             int cc_major, int sms, int use_ws, int async_mode, int* kind, int* mb, int* splits,
                             char* err, int errlen) {
  using namespace bnb_cuda::mm4;
  emu::clear_error();
  emu::clear_ranges();
  emu::set_async_mode(async_mode ? emu::kAsyncAtIssue : emu::kAsyncAtWait);
  const size_t es = dtype == 0 ? 4 : 2;
  if (A) emu::allow(A, (size_t)(M * K) * es, false);
  if (B) emu::allow(B, (size_t)b_nbytes, false);
  if (absmax) emu::allow(absmax, (size_t)absmax_n * 4, false);
  if (code) emu::allow(code, 64, false);
  if (absmax_8bit) emu::allow(absmax_8bit, (size_t)absmax_8bit_n, false);
  if (absmax_code) emu::allow(absmax_code, 256 * 4, false);
  if (absmax_offset) emu::allow(absmax_offset, 4, false);
  if (bias) emu::allow(bias, (size_t)N * es, false);
  if (out) emu::allow(out, (size_t)(M * N) * es, true);
  const Device dev{cc_major, sms, false};
  std::vector<float> ws;
  if (use_ws) {
    const int s = planned_splits(dtype, M, N, K, dev);
    if (s > 1) {
      ws.assign((size_t)(s * M * N), std::nanf(""));
      emu::allow(ws.data(), ws.size() * 4, true);
    }
  }
  const Call c{dtype, A, M, K, B, b_nbytes, N, absmax, blocksize, code, quant_type, absmax_8bit,
               absmax_code, absmax_offset, bias, out, ws.empty() ? nullptr : ws.data(), (int64_t)ws.size()};
  bool nothing = false;
  if (int s = validate(c, &nothing)) return s;
  *kind = -1;
  *splits = 0;
  if (nothing) return 0;
  Params p;
  Plan pl;
  if (int s = build(c, dev, p, pl)) return s;
  *kind = pl.kind;
  *mb = pl.mb;
  *splits = pl.splits;
  const int s = run(dtype, p, pl, 0, nullptr);
  if (!emu::error().empty()) {
    set_err(err, errlen, emu::error());
    return -1;
  }
  return s;
}

// The plan for a shape (no launch): kind, mb, splits.
extern "C" void emu_plan(int dtype, int64_t M, int64_t N, int64_t K, int cc_major, int sms, int aligned,
                         int64_t max_splits, int* kind, int* mb, int* splits) {
  using namespace bnb_cuda::mm4;
  const Plan pl = make_plan(dtype, M, N, K, Device{cc_major, sms, false}, aligned != 0, max_splits);
  *kind = pl.kind;
  *mb = pl.mb;
  *splits = pl.splits;
}

// Shared-memory bank accounting of the kernels' hot-loop loads (mm4 lds<>): turn on, run, read
// {requests, wavefronts, ideal wavefronts, warps whose lanes made different numbers of loads}.
extern "C" void emu_record_smem(int on) { emu::record_smem(on != 0); }
extern "C" void emu_smem_stats(uint64_t out[4]) {
  const emu::State_& s = emu::st();
  out[0] = s.smem_requests;
  out[1] = s.smem_wavefronts;
  out[2] = s.smem_ideal;
  out[3] = s.smem_divergent;
}
