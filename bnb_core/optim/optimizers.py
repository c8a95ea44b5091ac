"""The optimizer classes. Each is an Optimizer8bit with its update rule, number of states and default bits;
see optimizer.py for the mechanics. Paged variants keep their large states in CUDA managed memory on CUDA
(optim/paged.py); on every other device they behave exactly as their unpaged twins."""

from __future__ import annotations

import torch

from .optimizer import Optimizer8bit

_PAGED_NOTE = (
    " Paged: on CUDA the two state tensors of parameters with at least 100k elements live in CUDA managed memory "
    "(evicted to host memory under GPU memory pressure, prefetched before each step; see bnb_core.optim.paged). "
    "On every other device it behaves exactly as the unpaged optimizer (state in ordinary device memory)."
)


class _Adam(Optimizer8bit):
    _bits = 32
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 optim_bits=None, args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True,
                 is_paged=False):
        if amsgrad:
            raise ValueError("amsgrad=True is not supported")
        super().__init__("adam", params, lr, betas, eps, weight_decay, optim_bits or self._bits, min_8bit_size,
                         percentile_clipping, block_wise, is_paged=is_paged, n_states=2,
                         coupled_wd=not self._decoupled)


class Adam(_Adam):
    """Adam (torch.optim.Adam semantics: L2 weight decay added to the gradient); optim_bits 32 or 8."""


class Adam8bit(_Adam):
    """Adam with 8-bit blockwise state."""
    _bits = 8


class Adam32bit(_Adam):
    """Adam with 32-bit state."""


class PagedAdam(Adam):
    __doc__ = Adam.__doc__ + _PAGED_NOTE


class PagedAdam8bit(Adam8bit):
    __doc__ = Adam8bit.__doc__ + _PAGED_NOTE


class PagedAdam32bit(Adam32bit):
    __doc__ = Adam32bit.__doc__ + _PAGED_NOTE


class AdamW(_Adam):
    """AdamW (decoupled weight decay, torch.optim.AdamW semantics); optim_bits 32 or 8."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 optim_bits=None, args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True,
                 is_paged=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, optim_bits, args, min_8bit_size,
                         percentile_clipping, block_wise, is_paged)


class AdamW8bit(AdamW):
    """AdamW with 8-bit blockwise state."""
    _bits = 8


class AdamW32bit(AdamW):
    """AdamW with 32-bit state."""


class PagedAdamW(AdamW):
    __doc__ = AdamW.__doc__ + _PAGED_NOTE


class PagedAdamW8bit(AdamW8bit):
    __doc__ = AdamW8bit.__doc__ + _PAGED_NOTE


class PagedAdamW32bit(AdamW32bit):
    __doc__ = AdamW32bit.__doc__ + _PAGED_NOTE


class Lion(Optimizer8bit):
    """Lion (Chen et al., 2023): sign of an interpolated momentum, decoupled weight decay."""
    _bits = 32

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0, optim_bits=None, args=None,
                 min_8bit_size=4096, percentile_clipping=100, block_wise=True, is_paged=False):
        super().__init__("lion", params, lr, betas, 0.0, weight_decay, optim_bits or self._bits, min_8bit_size,
                         percentile_clipping, block_wise, is_paged=is_paged, n_states=1)


class Lion8bit(Lion):
    """Lion with 8-bit blockwise state."""
    _bits = 8


class Lion32bit(Lion):
    """Lion with 32-bit state."""


class PagedLion(Lion):
    __doc__ = Lion.__doc__ + _PAGED_NOTE


class PagedLion8bit(Lion8bit):
    __doc__ = Lion8bit.__doc__ + _PAGED_NOTE


class PagedLion32bit(Lion32bit):
    __doc__ = Lion32bit.__doc__ + _PAGED_NOTE


def _sgd_like_checks(dampening, nesterov):
    if dampening != 0:
        raise ValueError(f"dampening must be 0 (not supported), got {dampening}")
    if nesterov:
        raise ValueError("nesterov=True is not supported")


class SGD(Optimizer8bit):
    """SGD with momentum (torch.optim.SGD semantics, L2 weight decay); momentum 0 is plain SGD."""
    _bits = 32

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, optim_bits=None,
                 args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True):
        _sgd_like_checks(dampening, nesterov)
        super().__init__("momentum", params, lr, (momentum, 0.0), 0.0, weight_decay, optim_bits or self._bits,
                         min_8bit_size, percentile_clipping, block_wise, n_states=1)


class SGD8bit(SGD):
    """SGD with momentum and 8-bit blockwise state."""
    _bits = 8


class SGD32bit(SGD):
    """SGD with momentum and 32-bit state."""


class RMSprop(Optimizer8bit):
    """RMSprop (torch.optim.RMSprop semantics without momentum / centering)."""
    _bits = 32

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 optim_bits=None, args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True):
        if momentum != 0:
            raise ValueError(f"momentum must be 0 (not supported for RMSprop), got {momentum}")
        if centered:
            raise ValueError("centered=True is not supported")
        super().__init__("rmsprop", params, lr, (alpha, 0.0), eps, weight_decay, optim_bits or self._bits,
                         min_8bit_size, percentile_clipping, block_wise, n_states=1)


class RMSprop8bit(RMSprop):
    """RMSprop with 8-bit blockwise state."""
    _bits = 8


class RMSprop32bit(RMSprop):
    """RMSprop with 32-bit state."""


class Adagrad(Optimizer8bit):
    """Adagrad (torch.optim.Adagrad semantics with lr_decay 0 and initial_accumulator_value 0)."""
    _bits = 32

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 optim_bits=None, args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True):
        if lr_decay != 0:
            raise ValueError(f"lr_decay must be 0 (not supported), got {lr_decay}")
        if initial_accumulator_value != 0:
            raise ValueError(f"initial_accumulator_value must be 0 (not supported), got {initial_accumulator_value}")
        super().__init__("adagrad", params, lr, (0.0, 0.0), eps, weight_decay, optim_bits or self._bits,
                         min_8bit_size, percentile_clipping, block_wise, n_states=1)


class Adagrad8bit(Adagrad):
    """Adagrad with 8-bit blockwise state."""
    _bits = 8


class Adagrad32bit(Adagrad):
    """Adagrad with 32-bit state."""


class LAMB(Optimizer8bit):
    """LAMB: AdamW update scaled by the trust ratio min(1, max_unorm * ||p|| / ||update||)."""
    _bits = 32

    def __init__(self, params, lr=1e-3, bias_correction=True, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, adam_w_mode=True, optim_bits=None, args=None, min_8bit_size=4096, max_unorm=1.0):
        if not bias_correction or amsgrad or not adam_w_mode:
            raise ValueError("LAMB supports bias_correction=True, amsgrad=False, adam_w_mode=True only")
        super().__init__("lamb", params, lr, betas, eps, weight_decay, optim_bits or self._bits, min_8bit_size,
                         max_unorm=max_unorm, n_states=2)


class LAMB8bit(LAMB):
    """LAMB with 8-bit blockwise state."""
    _bits = 8


class LAMB32bit(LAMB):
    """LAMB with 32-bit state."""


class LARS(Optimizer8bit):
    """LARS: SGD with momentum scaled by the trust ratio min(1, max_unorm * ||p|| / ||update||)."""
    _bits = 32

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, optim_bits=None,
                 args=None, min_8bit_size=4096, max_unorm=0.02):
        _sgd_like_checks(dampening, nesterov)
        super().__init__("lars", params, lr, (momentum, 0.0), 0.0, weight_decay, optim_bits or self._bits,
                         min_8bit_size, max_unorm=max_unorm, n_states=1)


class LARS8bit(LARS):
    """LARS with 8-bit blockwise state."""
    _bits = 8


class LARS32bit(LARS):
    """LARS with 32-bit state."""


class AdEMAMix(Optimizer8bit):
    """AdEMAMix (Pagliardini et al., 2024): Adam plus a slow EMA (beta3) mixed in with weight alpha."""
    _bits = 32

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha=5.0, t_alpha=None, t_beta3=None,
                 eps=1e-8, weight_decay=1e-2, optim_bits=None, min_8bit_size=4096, is_paged=False):
        super().__init__("ademamix", params, lr, betas, eps, weight_decay, optim_bits or self._bits, min_8bit_size,
                         is_paged=is_paged, alpha=alpha, t_alpha=t_alpha, t_beta3=t_beta3, n_states=2)


class AdEMAMix8bit(AdEMAMix):
    """AdEMAMix with 8-bit blockwise state."""
    _bits = 8


class AdEMAMix32bit(AdEMAMix):
    """AdEMAMix with 32-bit state."""


class PagedAdEMAMix(AdEMAMix):
    __doc__ = AdEMAMix.__doc__ + _PAGED_NOTE


class PagedAdEMAMix8bit(AdEMAMix8bit):
    __doc__ = AdEMAMix8bit.__doc__ + _PAGED_NOTE


class PagedAdEMAMix32bit(AdEMAMix32bit):
    __doc__ = AdEMAMix32bit.__doc__ + _PAGED_NOTE


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, Optimizer8bit) and not name.startswith("_")
           and obj is not Optimizer8bit]
