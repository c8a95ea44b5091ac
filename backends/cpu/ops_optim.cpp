#include "ops_optim.h"

#include <math.h>
#include <string.h>

#include <vector>

#include "bnb_optim_consts.h"
#include "bnb_quant_math.h"
#include "kernels_optim.h"
#include "ops.h"
#include "thread_pool.h"

namespace bnb_cpu {
namespace {

constexpr int64_t kBS = BNB_OPTIMIZER_BLOCKSIZE;
// Below this many elements an update runs on the calling thread.
constexpr int64_t kInlineElements = 1 << 15;
constexpr int kMaxThreads = 256;

const OptimKernelTable* optim_table() {
  switch (active_isa()) {
#if defined(BNB_HAVE_AVX512VNNI_TU)
    case IsaId::kAmx:  // the avx512vnni kernels (AMX adds tile paths where the op glue asks for them)
    case IsaId::kAvx512Vnni: return &avx512vnni::optim_table;
#endif
#if defined(BNB_HAVE_AVX512_TU)
    case IsaId::kAvx512: return &avx512::optim_table;
#endif
#if defined(BNB_HAVE_AVX2_TU)
    case IsaId::kAvx2: return &avx2::optim_table;
#endif
    default: return &scalar::optim_table;
  }
}

bool two_states(int name) { return name == kOptAdam || name == kOptLamb || name == kOptAdemamix; }

// Status of the arguments shared by both ops; fills the fp32 constants (bnb_optim_consts.h, shared with the
// CUDA and XPU backends).
int prepare(int name, int dtype, int64_t n, int64_t step, double beta1, double beta2, double beta3, double alpha,
            double eps, double weight_decay, double lr, double gnorm_scale, bool skip_zeros, OptimConsts* k) {
  if (name < kOptAdam || name > kOptAdemamix) return kBadOptimizerName;
  if (dtype < 0 || dtype > 2) return kBadDtype;
  if (n < 0 || step < 1) return kBadSize;
  const bool coupled = name == kOptMomentum || name == kOptLars || name == kOptRmsprop || name == kOptAdagrad;
  k->name = name;
  k->dtype = dtype;
  k->skip_zeros = skip_zeros;
  bnb_optim_step_consts(k, coupled, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale);
  return kOk;
}

int clamp_threads(int t) { return t < 1 ? 1 : (t > kMaxThreads ? kMaxThreads : t); }

// Run body(b0, b1) over [0, nunits) in tasks (about 4 per thread); returns the number of tasks used and
// calls body(task, b0, b1).
template <class F>
void run_units(int64_t nunits, int64_t elems_per_unit, int nthreads, const F& body) {
  nthreads = clamp_threads(nthreads);
  if (nthreads <= 1 || nunits * elems_per_unit < kInlineElements || nunits < 2) {
    body((int64_t)0, (int64_t)0, nunits);
    return;
  }
  int64_t ntasks = (int64_t)nthreads * 4;
  if (ntasks > nunits) ntasks = nunits;
  const int64_t per = (nunits + ntasks - 1) / ntasks;
  ntasks = (nunits + per - 1) / per;
  parallel_for(ntasks, nthreads, [&](int64_t t) {
    const int64_t u0 = t * per;
    body(t, u0, (u0 + per < nunits) ? u0 + per : nunits);
  });
}

}  // namespace

int optimizer_update_32bit(int name, int dtype, const void* g, void* p, int64_t n, float* state1, float* state2,
                           float* unorm_vec, double max_unorm, double param_norm, double beta1, double beta2,
                           double beta3, double alpha, double eps, double weight_decay, int64_t step, double lr,
                           double gnorm_scale, bool skip_zeros, int nthreads) {
  try {
    Optim32Args a;
    int st = prepare(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                     skip_zeros, &a.k);
    if (st != kOk) return st;
    const bool norm = max_unorm > 0.0;
    if (norm && !unorm_vec) return kNullPointer;
    if (n > 0 && (!g || !p || !state1 || (two_states(name) && !state2))) return kNullPointer;
    a.n = n;
    a.g = g;
    a.p = p;
    a.s1 = state1;
    a.s2 = two_states(name) ? state2 : nullptr;
    const OptimKernelTable* t = optim_table();
    // units of 256 elements (whole vectors on every ISA)
    const int64_t nunits = (n + kBS - 1) / kBS;
    float scale = 1.0f;
    if (norm) {
      const int nt = clamp_threads(nthreads);
      std::vector<double> partial((size_t)nt * 4 + 1, 0.0);
      run_units(nunits, kBS, nthreads, [&](int64_t task, int64_t u0, int64_t u1) {
        const int64_t i1 = u1 * kBS < n ? u1 * kBS : n;
        partial[(size_t)task] = t->norm32(a, u0 * kBS, i1);
      });
      double sum = 0.0;
      for (double v : partial) sum += v;
      const float unorm = sqrtf((float)sum);
      unorm_vec[0] = unorm * unorm;
      const bool eps_rule = name != kOptAdam && name != kOptLamb && name != kOptAdemamix;
      const float limit = (float)(max_unorm * param_norm + (eps_rule ? eps : 0.0));
      scale = unorm > limit ? limit / unorm : 1.0f;
    }
    if (n == 0) return kOk;
    run_units(nunits, kBS, nthreads, [&](int64_t, int64_t u0, int64_t u1) {
      const int64_t i1 = u1 * kBS < n ? u1 * kBS : n;
      t->update32(a, scale, u0 * kBS, i1);
    });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

int optimizer_update_8bit_blockwise(int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1,
                                    uint8_t* state2, double beta1, double beta2, double beta3, double alpha,
                                    double eps, int64_t step, double lr, const float* qmap1, const float* qmap2,
                                    float* absmax1, float* absmax2, double weight_decay, double gnorm_scale,
                                    bool skip_zeros, int nthreads) {
  try {
    Optim8Args a;
    int st = prepare(name, dtype, n, step, beta1, beta2, beta3, alpha, eps, weight_decay, lr, gnorm_scale,
                     skip_zeros, &a.k);
    if (st != kOk) return st;
    if (n == 0) return kOk;
    const bool two = two_states(name);
    if (!g || !p || !state1 || !qmap1 || !absmax1 || (two && (!state2 || !qmap2 || !absmax2))) return kNullPointer;
    alignas(64) float q1[256], q2[256], b1[256], b2[256];
    bool sorted1 = true, sorted2 = true;
    auto boundaries = [](const float* q, float* out, float* b, bool* sorted) {
      memcpy(out, q, 256 * sizeof(float));
      for (int i = 0; i < 255; ++i) b[i] = bnb::midpoint(q[i], q[i + 1]);
      b[255] = INFINITY;
      for (int i = 0; i < 254; ++i)
        if (!(b[i] <= b[i + 1])) *sorted = false;
    };
    boundaries(qmap1, q1, b1, &sorted1);
    if (two) boundaries(qmap2, q2, b2, &sorted2);
    a.n = n;
    a.g = g;
    a.p = p;
    a.s1 = state1;
    a.s2 = two ? state2 : nullptr;
    a.absmax1 = absmax1;
    a.absmax2 = two ? absmax2 : nullptr;
    a.qmap1 = q1;
    a.qmap2 = two ? q2 : nullptr;
    a.bnd1 = b1;
    a.bnd2 = two ? b2 : nullptr;
    a.sorted1 = sorted1;
    a.sorted2 = sorted2;
    const OptimKernelTable* t = optim_table();
    run_units((n + kBS - 1) / kBS, kBS, nthreads, [&](int64_t, int64_t b0, int64_t bend) { t->update8(a, b0, bend); });
    return kOk;
  } catch (...) {
    return kInternalError;
  }
}

}  // namespace bnb_cpu
