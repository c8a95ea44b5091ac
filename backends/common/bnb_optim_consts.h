// The fp32 constants of one optimizer step, shared by the CPU, CUDA/HIP and XPU backends (host code, torch-free).
//
// They are the float32 roundings of the reference's Python-float expressions (bnb_core/reference.py), so the
// backends' updates are bit-identical to the reference and to each other only while all of them derive the
// constants here. K is a backend's constants struct with the fields assigned below (flags may be bool or int).
#pragma once

#include <math.h>
#include <stdint.h>

template <class K>
inline void bnb_optim_step_consts(K* k, bool coupled, int64_t step, double beta1, double beta2, double beta3,
                                  double alpha, double eps, double weight_decay, double lr, double gnorm_scale) {
  const double c1 = 1.0 - pow(beta1, (double)step);
  const double c2 = sqrt(1.0 - pow(beta2, (double)step));
  k->coupled_wd = coupled && weight_decay > 0.0;
  k->decoupled_wd = !coupled && weight_decay > 0.0;
  k->first_step = step == 1;
  k->gnorm_scale = (float)gnorm_scale;
  k->beta1 = (float)beta1;
  k->beta2 = (float)beta2;
  k->beta3 = (float)beta3;
  k->omb1 = (float)(1.0 - beta1);
  k->omb2 = (float)(1.0 - beta2);
  k->omb3 = (float)(1.0 - beta3);
  k->wd = (float)weight_decay;
  k->decay = (float)(1.0 - lr * weight_decay);
  k->c1 = (float)c1;
  k->c2 = (float)c2;
  k->c2sq = (float)(c2 * c2);
  k->eps = (float)eps;
  k->eps_c2 = (float)(eps * c2);
  k->step_scale = (float)(-lr * c2 / c1);
  k->neg_lr = (float)(-lr);
  k->alpha = (float)alpha;
}
