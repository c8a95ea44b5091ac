// Torch-free entry points of the optimizer kernels (validated, multithreaded, ISA-dispatched).
// Semantics: bnb_core/reference.py optimizer_update_32bit / optimizer_update_8bit_blockwise and
// docs/formats.md "Optimizer ops". Both return a status (ops.h) and never throw or abort.
#pragma once

#include <stdint.h>

namespace bnb_cpu {

// name: index in bnb_core._ops.OPTIMIZER_NAMES (adam, momentum, rmsprop, lion, adagrad, lamb, lars, ademamix).
// dtype (of p and g): 0 fp32, 1 fp16, 2 bf16. state1 holds 2n values for ademamix, state2 is null for
// one-state rules. With max_unorm > 0, unorm_vec[0] receives the squared update norm and steps are
// scaled by the trust ratio (two passes over memory).
int optimizer_update_32bit(int name, int dtype, const void* g, void* p, int64_t n, float* state1, float* state2,
                           float* unorm_vec, double max_unorm, double param_norm, double beta1, double beta2,
                           double beta3, double alpha, double eps, double weight_decay, int64_t step, double lr,
                           double gnorm_scale, bool skip_zeros, int nthreads);

// Fused blockwise (256) 8-bit state update: one pass over g, p, codes and absmax. absmax1 holds 2 nb values
// for ademamix (nb = ceil(n / 256)); state2, qmap2 and absmax2 are null for one-state rules.
int optimizer_update_8bit_blockwise(int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1,
                                    uint8_t* state2, double beta1, double beta2, double beta3, double alpha,
                                    double eps, int64_t step, double lr, const float* qmap1, const float* qmap2,
                                    float* absmax1, float* absmax2, double weight_decay, double gnorm_scale,
                                    bool skip_zeros, int nthreads);

}  // namespace bnb_cpu
