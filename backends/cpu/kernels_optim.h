// Per-ISA kernel table of the optimizer family (kernels_optim.cpp is compiled once per ISA into
// namespace bnb_cpu::<isa>; ops_optim.cpp picks the table matching active_isa() at each call).
//
// Semantics are bnb_core/reference.py `_optimizer_step_fp32`, `optimizer_update_32bit`,
// `optimizer_update_8bit_blockwise` and `_requantize_state`, with the fp32 expression order of the
// reference (compile without FMA contraction).
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// Update rules; the numbering is the order of bnb_core._ops.OPTIMIZER_NAMES.
enum OptimName : int {
  kOptAdam = 0,
  kOptMomentum = 1,
  kOptRmsprop = 2,
  kOptLion = 3,
  kOptAdagrad = 4,
  kOptLamb = 5,
  kOptLars = 6,
  kOptAdemamix = 7,
};

// fp32 constants of one update. Each one is the float32 rounding of the Python-float (double)
// expression the reference multiplies a tensor with (torch casts a Python scalar to the tensor dtype).
struct OptimConsts {
  int name;
  int dtype;         // of p and g: 0 fp32, 1 fp16, 2 bf16
  bool skip_zeros;   // zero gradients leave param and state unchanged
  bool coupled_wd;   // g += p * wd (momentum, lars, rmsprop, adagrad with wd > 0)
  bool decoupled_wd; // p *= 1 - lr * wd (adam, lamb, ademamix, lion with wd > 0)
  bool first_step;   // step == 1 (momentum / lars start from g)
  float gnorm_scale, beta1, beta2, beta3, omb1, omb2, omb3;  // omb = 1 - beta
  float wd, decay;                                           // decay = 1 - lr * wd
  float c1, c2, c2sq;                                        // 1 - beta1^t, sqrt(1 - beta2^t), c2 * c2
  float eps, eps_c2, step_scale, neg_lr, alpha;              // eps * c2, -lr * c2 / c1, -lr
};

struct Optim32Args {
  OptimConsts k;
  int64_t n;
  const void* g;
  void* p;
  float* s1;   // n (2n for ademamix: [m1 | m2])
  float* s2;   // n, or null for one-state rules
};

struct Optim8Args {
  OptimConsts k;
  int64_t n;
  const void* g;
  void* p;
  uint8_t* s1;      // n codes (2n for ademamix)
  uint8_t* s2;      // n codes or null
  float* absmax1;   // nb (2 nb for ademamix)
  float* absmax2;   // nb or null
  const float* qmap1;  // 256 values (64-byte aligned copies)
  const float* qmap2;
  const float* bnd1;   // 255 ascending midpoints of qmap + Inf (padded), when sorted1
  const float* bnd2;
  bool sorted1, sorted2;  // false: every boundary is counted (exact for any qmap)
};

struct OptimKernelTable {
  const char* name;
  // Sum over [i0, i1) of update^2 (the direction whose norm gives the trust ratio), g masked as the op does.
  double (*norm32)(const Optim32Args& a, int64_t i0, int64_t i1);
  // Apply one update to the elements [i0, i1); step directions are multiplied by `scale`.
  void (*update32)(const Optim32Args& a, float scale, int64_t i0, int64_t i1);
  // Fused 8-bit update of the 256-element blocks [b0, b1): dequantize, update, new absmax, requantize.
  void (*update8)(const Optim8Args& a, int64_t b0, int64_t b1);
};

namespace scalar {
extern const OptimKernelTable optim_table;
}
#if defined(BNB_HAVE_AVX2_TU)
namespace avx2 {
extern const OptimKernelTable optim_table;
}
#endif
#if defined(BNB_HAVE_AVX512_TU)
namespace avx512 {
extern const OptimKernelTable optim_table;
}
#endif
#if defined(BNB_HAVE_AVX512VNNI_TU)
namespace avx512vnni {
extern const OptimKernelTable optim_table;
}
#endif

}  // namespace bnb_cpu
