// Optimizer updates on CUDA (torch-free): 32-bit state and fused blockwise (256) 8-bit state, every update rule
// of bnb_core._ops.OPTIMIZER_NAMES (name = its index: adam, momentum, rmsprop, lion, adagrad, lamb, lars,
// ademamix). dtype of p and g: 0 fp32, 1 fp16, 2 bf16. Semantics: bnb_core/reference.py and docs/formats.md
// "Optimizer ops". Every entry point validates its arguments before touching the device, launches on `stream`
// on `device`, never synchronizes and never allocates; it returns a Status (status.h).
#pragma once

#include <stdint.h>

namespace bnb_cuda {

// Doubles of workspace optimizer_update_32bit needs with max_unorm > 0 (the per-CTA partial sums of the
// update norm; at most 1024, independent of the device so results are reproducible everywhere).
int64_t optimizer_32bit_workspace_len(int64_t n);

// One step with fp32 state. state1 holds 2n values for ademamix ([m1 | m2]), state2 is null for one-state rules.
// With max_unorm > 0 (LAMB / LARS trust ratio): a first kernel writes per-CTA partial sums of update^2 into
// `workspace` (>= optimizer_32bit_workspace_len(n) doubles, device memory), the update kernel reduces them in
// a fixed order (deterministic), writes unorm_vec[0] = ||update||^2 and scales the steps by
// min(1, limit / ||update||), limit = max_unorm * param_norm (+ eps for the momentum-like rules).
int optimizer_update_32bit(int device, void* stream, int name, int dtype, const void* g, void* p, int64_t n,
                           float* state1, float* state2, float* unorm_vec, double max_unorm, double param_norm,
                           double beta1, double beta2, double beta3, double alpha, double eps, double weight_decay,
                           int64_t step, double lr, double gnorm_scale, bool skip_zeros, double* workspace,
                           int64_t workspace_len);

// Fused blockwise 8-bit step, one pass over memory: per 256-element block (one warp) dequantize the states
// (code * absmax), update, write p, new absmax per block, requantize (nearest code, ties to the lower one;
// state1 keeps the sign of nonzero values). qmap1 / qmap2: 256 fp32 values (device memory), loaded into shared
// memory per CTA. absmax1 holds 2 nb values for ademamix (nb = ceil(n / 256)); state2, qmap2 and absmax2
// are null for one-state rules.
int optimizer_update_8bit_blockwise(int device, void* stream, int name, int dtype, const void* g, void* p, int64_t n,
                                    uint8_t* state1, uint8_t* state2, double beta1, double beta2, double beta3,
                                    double alpha, double eps, int64_t step, double lr, const float* qmap1,
                                    const float* qmap2, float* absmax1, float* absmax2, double weight_decay,
                                    double gnorm_scale, bool skip_zeros);

// Host emulation of the two kernels on host memory (no GPU, no CUDA call): the same lane-level code
// (optim_core.cuh), table construction and reduction order, run lane by lane on the CPU. Used by the tests
// to check the kernels' logic against the reference where there is no GPU; not a production path.
int emulate_optimizer_update_32bit(int name, int dtype, const void* g, void* p, int64_t n, float* state1,
                                   float* state2, float* unorm_vec, double max_unorm, double param_norm, double beta1,
                                   double beta2, double beta3, double alpha, double eps, double weight_decay,
                                   int64_t step, double lr, double gnorm_scale, bool skip_zeros);
int emulate_optimizer_update_8bit_blockwise(int name, int dtype, const void* g, void* p, int64_t n, uint8_t* state1,
                                            uint8_t* state2, double beta1, double beta2, double beta3, double alpha,
                                            double eps, int64_t step, double lr, const float* qmap1,
                                            const float* qmap2, float* absmax1, float* absmax2, double weight_decay,
                                            double gnorm_scale, bool skip_zeros);

}  // namespace bnb_cuda
