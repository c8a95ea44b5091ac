// Optimizer update kernels (32-bit state, fused blockwise 8-bit state; SYCL functors, see common.h).
//
// Semantics: bnb_core/reference.py `_optimizer_step_fp32`, `optimizer_update_32bit`,
// `optimizer_update_8bit_blockwise` and `_requantize_state`, in the reference's fp32 expression order
// (compile without contraction; sqrt and division correctly rounded). An element whose scaled gradient is
// NaN/Inf (or zero with skip_zeros) keeps its parameter and state. 8-bit requantization is
// quantize_blockwise's exact arithmetic (block absmax, bnb::block_scale / scale_value, nearest code over
// the fp32 midpoints) plus the sign rule of the first moment.
//
// 32-bit: one work-item per element, grid-stride. With a trust ratio (max_unorm > 0; LAMB / LARS) the op
// runs OptimNorm (per-group partial sums of update^2 into scratch), OptimNormFinish (one group: the sum,
// unorm_vec = unorm^2 and the step scale into scratch) and Optim32 reading that scale: deterministic, no
// atomics. 8-bit: one work-group of 256 work-items per 256-element block, grid-stride.
#pragma once

#include "common.h"

namespace bnb_xpu {

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

constexpr int64_t kOptimBlock = BNB_OPTIMIZER_BLOCKSIZE;  // 8-bit state block (one work-group)
constexpr int64_t kNormGroups = 256;                      // work-groups of OptimNorm (partials in scratch)
constexpr int64_t kOptimScratchFloats = kNormGroups + 1;  // partials + the step scale

// fp32 constants of one update: each is the float32 rounding of the Python-float (double) expression the
// reference multiplies a tensor with (computed on the host, ops.h).
struct OptimConsts {
  int skip_zeros;    // zero gradients leave param and state unchanged
  int coupled_wd;    // g += p * wd (momentum, lars, rmsprop, adagrad with wd > 0)
  int decoupled_wd;  // p *= 1 - lr * wd (adam, lamb, ademamix, lion with wd > 0)
  int first_step;    // step == 1 (momentum / lars start from g)
  float gnorm_scale, beta1, beta2, beta3, omb1, omb2, omb3;  // omb = 1 - beta
  float wd, decay;                                           // decay = 1 - lr * wd
  float c1, c2, c2sq;                                        // 1 - beta1^t, sqrt(1 - beta2^t), c2 * c2
  float eps, eps_c2, step_scale, neg_lr, alpha;              // eps * c2, -lr * c2 / c1, -lr
};

constexpr bool two_states(int name) { return name == kOptAdam || name == kOptLamb || name == kOptAdemamix; }

// One element: g (masked) and p, s1, s1b (ademamix second EMA), s2 in; p after decoupled decay and the new
// states out; returns the step direction; `upd` gets the update direction whose norm is the trust ratio.
template <int NAME>
inline float optim_rule(const OptimConsts& c, float g, float& p, float& s1, float& s1b, float& s2, float& upd) {
  if (c.coupled_wd) g = g + p * c.wd;
  if (c.decoupled_wd) p = p * c.decay;
  float sd;
  if (NAME == kOptAdam || NAME == kOptLamb) {
    s1 = s1 * c.beta1 + c.omb1 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    upd = (s1 / c.c1) / (sycl::sqrt(s2 / c.c2sq) + c.eps);
    sd = c.step_scale * (s1 / (sycl::sqrt(s2) + c.eps_c2));
  } else if (NAME == kOptAdemamix) {
    const float m1 = s1 * c.beta1 + c.omb1 * g;
    const float m2 = s1b * c.beta3 + c.omb3 * g;
    s2 = s2 * c.beta2 + (c.omb2 * g) * g;
    s1 = m1;
    s1b = m2;
    upd = (m1 / c.c1 + c.alpha * m2) / (sycl::sqrt(s2) / c.c2 + c.eps);
    sd = c.neg_lr * upd;
  } else if (NAME == kOptMomentum || NAME == kOptLars) {
    s1 = c.first_step ? g : s1 * c.beta1 + g;
    upd = s1;
    sd = c.neg_lr * s1;
  } else if (NAME == kOptLion) {
    const float x = s1 * c.beta1 + c.omb1 * g;
    const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    sd = c.neg_lr * sign;
    s1 = s1 * c.beta2 + c.omb2 * g;
    upd = s1;
  } else if (NAME == kOptRmsprop) {
    s1 = s1 * c.beta1 + (c.omb1 * g) * g;
    upd = g / (sycl::sqrt(s1) + c.eps);
    sd = c.neg_lr * upd;
  } else {  // adagrad
    s1 = s1 + g * g;
    upd = g / (sycl::sqrt(s1) + c.eps);
    sd = c.neg_lr * upd;
  }
  return sd;
}

// Scaled gradient, zeroed where the element is not updated; keep = finite (and nonzero with skip_zeros).
inline float optim_grad(const OptimConsts& c, float graw, bool& keep) {
  const float g = graw * c.gnorm_scale;
  keep = (g - g) == 0.0f;
  if (c.skip_zeros && !(g != 0.0f)) keep = false;
  return keep ? g : 0.0f;
}

struct OptimFamily {
  static constexpr const char* kHeader = "kernels_optim.h";
  template <class V>
  static void for_each(V& v);
};

// ------------------------------------------------------------------ 32-bit state

template <int DT, int NAME>
struct Optim32 {
  using Family = OptimFamily;
  static constexpr const char* kName = "bnb_xpu::Optim32";
  static constexpr int kLocalFloats = 0;
  OptimConsts c;
  int64_t n;
  const void* g;
  void* p;
  float* s1;  // n (2n for ademamix: [m1 | m2])
  float* s2;  // n, or null for one-state rules
  const float* scale;  // trust-ratio step scale (scratch written by OptimNormFinish), or null for 1

  void operator()(sycl::nd_item<1> it) const {
    const float sc = scale != nullptr ? scale[0] : 1.0f;
    const int64_t stride = (int64_t)it.get_global_range(0);
    for (int64_t i = (int64_t)it.get_global_id(0); i < n; i += stride) {
      bool keep;
      const float gv = optim_grad(c, bnb::load_as_f32(g, i, DT), keep);
      const float p0 = bnb::load_as_f32(p, i, DT);
      const float s1o = s1[i];
      const float s1bo = NAME == kOptAdemamix ? s1[n + i] : 0.0f;
      const float s2o = two_states(NAME) ? s2[i] : 0.0f;
      float pv = p0, a = s1o, b = s1bo, v = s2o, upd;
      const float sd = optim_rule<NAME>(c, gv, pv, a, b, v, upd) * sc;
      bnb::store_from_f32(p, i, DT, keep ? pv + sd : p0);
      s1[i] = keep ? a : s1o;
      if (NAME == kOptAdemamix) s1[n + i] = keep ? b : s1bo;
      if (two_states(NAME)) s2[i] = keep ? v : s2o;
    }
  }
};

// Partial sums of update^2 over every element (a masked element's update is computed with g = 0, as the
// reference does): partial[group] for every launched group.
template <int DT, int NAME>
struct OptimNorm {
  using Family = OptimFamily;
  static constexpr const char* kName = "bnb_xpu::OptimNorm";
  static constexpr int kLocalFloats = 0;
  OptimConsts c;
  int64_t n;
  const void* g;
  const void* p;
  const float* s1;
  const float* s2;
  float* partial;

  void operator()(sycl::nd_item<1> it) const {
    float acc = 0.0f;
    const int64_t stride = (int64_t)it.get_global_range(0);
    for (int64_t i = (int64_t)it.get_global_id(0); i < n; i += stride) {
      bool keep;
      const float gv = optim_grad(c, bnb::load_as_f32(g, i, DT), keep);
      float pv = bnb::load_as_f32(p, i, DT), a = s1[i], b = NAME == kOptAdemamix ? s1[n + i] : 0.0f;
      float v = two_states(NAME) ? s2[i] : 0.0f, upd;
      optim_rule<NAME>(c, gv, pv, a, b, v, upd);
      acc = acc + upd * upd;
    }
    const float s = sycl::reduce_over_group(it.get_group(), acc, sycl::plus<float>());
    if (it.get_local_id(0) == 0) partial[it.get_group(0)] = s;
  }
};

// One work-group: unorm = sqrt(sum of the partials); unorm_vec[0] = unorm^2; step scale =
// limit / unorm when unorm > limit, else 1 (into scale_out).
struct OptimNormFinish {
  using Family = OptimFamily;
  static constexpr const char* kName = "bnb_xpu::OptimNormFinish";
  static constexpr int kLocalFloats = 0;
  const float* partial;
  int64_t count;
  float limit;
  float* unorm_vec;
  float* scale_out;

  void operator()(sycl::nd_item<1> it) const {
    float acc = 0.0f;
    for (int64_t i = it.get_local_id(0); i < count; i += it.get_local_range(0)) acc = acc + partial[i];
    const float sum = sycl::reduce_over_group(it.get_group(), acc, sycl::plus<float>());
    if (it.get_local_id(0) == 0) {
      const float unorm = sycl::sqrt(sum);
      unorm_vec[0] = unorm * unorm;
      scale_out[0] = unorm > limit ? limit / unorm : 1.0f;
    }
  }
};

// ------------------------------------------------------------------ 8-bit blockwise state

// A nonzero first moment keeps its sign: a code of value <= 0 for x > 0 moves up one, >= 0 for x < 0 down one.
BNB_QFN int keep_sign(int q, float x, const float* qmap) {
  const float v = qmap[q];
  if (x > 0.0f && v <= 0.0f) return q < 255 ? q + 1 : 255;
  if (x < 0.0f && v >= 0.0f) return q > 0 ? q - 1 : 0;
  return q;
}

// Requantize one value per work-item of a 256-element block (collective): new absmax, nearest code.
template <class Group>
inline void requant8(const Group& g, int64_t lid, bool active, float x, const float* qmap, const float* padded,
                     bool sorted, bool sign_rule, uint8_t* codes, int64_t i, float* absmax_slot) {
  float m = 0.0f;
  bool nan = false;
  if (active) absmax_acc(x, m, nan);
  const float am = group_absmax(g, m, nan);
  if (lid == 0) *absmax_slot = am;
  if (active) {
    int q = code_8bit(bnb::scale_value(x, bnb::block_scale(am)), padded, sorted);
    if (sign_rule) q = keep_sign(q, x, qmap);
    codes[i] = (uint8_t)q;
  }
}

template <int DT, int NAME>
struct Optim8 {
  using Family = OptimFamily;
  static constexpr const char* kName = "bnb_xpu::Optim8";
  static constexpr int kLocalFloats = 512;  // padded boundaries of qmap1 and qmap2
  OptimConsts c;
  int64_t n;
  const void* g;
  void* p;
  uint8_t* s1;  // n codes (2n for ademamix)
  uint8_t* s2;  // n codes, or null for one-state rules
  float* absmax1;  // nb (2 nb for ademamix)
  float* absmax2;  // nb, or null
  const float* qmap1;
  const float* qmap2;

  void operator()(sycl::nd_item<1> it, float* lm) const {
    const auto grp = it.get_group();
    const int64_t lid = it.get_local_id(0), L = it.get_local_range(0);
    const bool sorted1 = group_boundaries(grp, lid, L, qmap1, lm);
    const bool sorted2 = two_states(NAME) ? group_boundaries(grp, lid, L, qmap2, lm + 256) : true;
    const int64_t nb = (n + kOptimBlock - 1) / kOptimBlock;
    for (int64_t blk = it.get_group(0); blk < nb; blk += it.get_group_range(0)) {
      const int64_t i = blk * kOptimBlock + lid;
      const bool active = i < n;
      bool keep = false;
      float a = 0.0f, b = 0.0f, v = 0.0f;
      if (active) {
        const float gv = optim_grad(c, bnb::load_as_f32(g, i, DT), keep);
        const float p0 = bnb::load_as_f32(p, i, DT);
        const float s1o = qmap1[s1[i]] * absmax1[blk];
        const float s1bo = NAME == kOptAdemamix ? qmap1[s1[n + i]] * absmax1[nb + blk] : 0.0f;
        const float s2o = two_states(NAME) ? qmap2[s2[i]] * absmax2[blk] : 0.0f;
        float pv = p0, upd;
        a = s1o;
        b = s1bo;
        v = s2o;
        const float sd = optim_rule<NAME>(c, gv, pv, a, b, v, upd);
        bnb::store_from_f32(p, i, DT, keep ? pv + sd : p0);
        if (!keep) {
          a = s1o;
          b = s1bo;
          v = s2o;
        }
      }
      requant8(grp, lid, active, a, qmap1, lm, sorted1, true, s1, i, absmax1 + blk);
      if (NAME == kOptAdemamix) requant8(grp, lid, active, b, qmap1, lm, sorted1, true, s1 + n, i, absmax1 + nb + blk);
      if (two_states(NAME)) requant8(grp, lid, active, v, qmap2, lm + 256, sorted2, false, s2, i, absmax2 + blk);
    }
  }
};

template <class V, int DT>
void optim_for_each_dtype(V& v) {
  v.template add<Optim32<DT, kOptAdam>>();
  v.template add<Optim32<DT, kOptMomentum>>();
  v.template add<Optim32<DT, kOptRmsprop>>();
  v.template add<Optim32<DT, kOptLion>>();
  v.template add<Optim32<DT, kOptAdagrad>>();
  v.template add<Optim32<DT, kOptLamb>>();
  v.template add<Optim32<DT, kOptLars>>();
  v.template add<Optim32<DT, kOptAdemamix>>();
  v.template add<OptimNorm<DT, kOptAdam>>();
  v.template add<OptimNorm<DT, kOptMomentum>>();
  v.template add<OptimNorm<DT, kOptRmsprop>>();
  v.template add<OptimNorm<DT, kOptLion>>();
  v.template add<OptimNorm<DT, kOptAdagrad>>();
  v.template add<OptimNorm<DT, kOptLamb>>();
  v.template add<OptimNorm<DT, kOptLars>>();
  v.template add<OptimNorm<DT, kOptAdemamix>>();
  v.template add<Optim8<DT, kOptAdam>>();
  v.template add<Optim8<DT, kOptMomentum>>();
  v.template add<Optim8<DT, kOptRmsprop>>();
  v.template add<Optim8<DT, kOptLion>>();
  v.template add<Optim8<DT, kOptAdagrad>>();
  v.template add<Optim8<DT, kOptLamb>>();
  v.template add<Optim8<DT, kOptLars>>();
  v.template add<Optim8<DT, kOptAdemamix>>();
}

template <class V>
void OptimFamily::for_each(V& v) {
  optim_for_each_dtype<V, 0>(v);
  optim_for_each_dtype<V, 1>(v);
  optim_for_each_dtype<V, 2>(v);
  v.template add<OptimNormFinish>();
}

}  // namespace bnb_xpu
