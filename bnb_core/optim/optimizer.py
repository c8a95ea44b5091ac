"""8-bit and 32-bit optimizers over the two optimizer ops (class names and arguments of bitsandbytes.optim).

Every update is one call of ``torch.ops.bnb.optimizer_update_32bit`` or
``torch.ops.bnb.optimizer_update_8bit_blockwise`` per parameter, so a backend that makes those ops fast
makes every optimizer fast. Semantics follow torch.optim for the same name (coupled L2 weight decay for
Adam / SGD / RMSprop / Adagrad, decoupled for AdamW / Lion / LAMB / AdEMAMix).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Optional

import torch

from .. import formats
from . import paged

_WRAP_KEY = "__bnb_optimizer_quant_state__"
#: state tensors that keep their dtype and shape when a state_dict is loaded (never cast to the param dtype)
_QUANT_KEYS = ("state1", "state2", "qmap1", "qmap2", "absmax1", "absmax2", "gnorm_vec", "unorm_vec")


class GlobalOptimManager:
    """Per-parameter overrides of the optimizer config, e.g. keep an embedding's state in 32-bit:

    ``GlobalOptimManager.get_instance().register_module_override(emb, "weight", {"optim_bits": 32})``
    or ``override_config(param, "optim_bits", 32)``. Overrides are looked up when a parameter's state is
    created and at every step.
    """

    _instance: Optional["GlobalOptimManager"] = None

    def __init__(self):
        raise RuntimeError("use GlobalOptimManager.get_instance()")

    def initialize(self):
        self.pid2config: dict[int, dict[str, Any]] = {}
        self.module_weight_config_triple: list[tuple[torch.nn.Module, str, dict]] = []
        self.registered: set[int] = set()

    @classmethod
    def get_instance(cls) -> "GlobalOptimManager":
        if cls._instance is None:
            cls._instance = cls.__new__(cls)
            cls._instance.initialize()
        return cls._instance

    def register_parameters(self, params) -> None:
        """Kept for bitsandbytes compatibility: overrides are keyed by the parameter object itself."""
        for p in _as_list(params):
            self.registered.add(id(p))

    def override_config(self, parameters, key: Optional[str] = None, value: Any = None,
                        key_value_dict: Optional[dict] = None) -> None:
        if key is None and key_value_dict is None:
            raise ValueError("override_config needs key and value, or key_value_dict")
        update = dict(key_value_dict or {})
        if key is not None:
            update[key] = value
        for p in _as_list(parameters):
            self.pid2config.setdefault(id(p), {}).update(update)

    def register_module_override(self, module: torch.nn.Module, param_name: str, config: dict) -> None:
        self.module_weight_config_triple.append((module, param_name, dict(config)))

    def config_for(self, p: torch.Tensor) -> dict:
        out: dict[str, Any] = {}
        for module, name, config in self.module_weight_config_triple:
            if getattr(module, name, None) is p:
                out.update(config)
        out.update(self.pid2config.get(id(p), {}))
        return out


def _as_list(params) -> list:
    if isinstance(params, torch.Tensor):
        return [params]
    return list(params)


class Optimizer8bit(torch.optim.Optimizer):
    """Base class: one optimizer op call per parameter. ``optimizer_name`` is the op's name for the update
    rule; ``n_states`` is 1 or 2; ``coupled_wd`` folds weight decay into the gradient (torch's L2 style)
    instead of passing it to the op."""

    def __init__(self, optimizer_name: str, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 optim_bits=32, min_8bit_size=formats.OPTIMIZER_MIN_8BIT_SIZE, percentile_clipping=100,
                 block_wise=True, max_unorm=0.0, skip_zeros=False, is_paged=False, alpha=0.0, t_alpha=None,
                 t_beta3=None, n_states=2, coupled_wd=False):
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {b}")
        if optim_bits not in (8, 32):
            raise ValueError(f"optim_bits must be 8 or 32, got {optim_bits}")
        if not 0 < percentile_clipping <= 100:
            raise ValueError(f"percentile_clipping must be in (0, 100], got {percentile_clipping}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, optim_bits=optim_bits,
                        min_8bit_size=min_8bit_size, percentile_clipping=percentile_clipping,
                        block_wise=block_wise, max_unorm=max_unorm, skip_zeros=skip_zeros, alpha=alpha,
                        t_alpha=t_alpha, t_beta3=t_beta3)
        super().__init__(params, defaults)
        self.optimizer_name = optimizer_name
        self.n_states = n_states
        self.coupled_wd = coupled_wd
        # paged: state1/state2 in CUDA managed memory (optim/paged.py); on other devices the same as unpaged
        self.is_paged = is_paged or type(self).__name__.startswith("Paged")
        self.mng = GlobalOptimManager.get_instance()
        #: elements whose gradient was NaN/Inf in the last step (their parameter and state were left unchanged)
        self.last_step_nonfinite = 0
        self._pending_nonfinite: list = []  # (g, device fp32 sum of g) of this step on accelerators
        self._warned_nonfinite = False

    # ------------------------------------------------------------------------------------------------ config

    def get_config(self, group: dict, p: torch.Tensor) -> dict:
        config = {k: group.get(k, v) for k, v in self.defaults.items()}
        config.update(self.mng.config_for(p))
        return config

    # ------------------------------------------------------------------------------------------------ state

    def init_state(self, group: dict, p: torch.Tensor) -> None:
        config = self.get_config(group, p)
        state = self.state[p]
        state["step"] = 0
        eight_bit = config["optim_bits"] == 8 and p.numel() >= config["min_8bit_size"]
        shape1 = (2, *p.shape) if self.optimizer_name == "ademamix" else p.shape
        if eight_bit:
            nb = formats.num_blocks(p.numel(), formats.OPTIMIZER_BLOCKSIZE)
            state["state1"] = self._state_zeros(shape1, torch.uint8, p)
            state["qmap1"] = formats.table("dynamic", p.device).clone()
            state["absmax1"] = torch.zeros((2, nb) if self.optimizer_name == "ademamix" else (nb,),
                                           dtype=torch.float32, device=p.device)
            if self.n_states == 2:
                state["state2"] = self._state_zeros(p.shape, torch.uint8, p)
                state["qmap2"] = formats.table("dynamic_unsigned", p.device).clone()
                state["absmax2"] = torch.zeros(nb, dtype=torch.float32, device=p.device)
        else:
            state["state1"] = self._state_zeros(shape1, torch.float32, p)
            if self.n_states == 2:
                state["state2"] = self._state_zeros(p.shape, torch.float32, p)
        if config["percentile_clipping"] < 100:
            state["gnorm_vec"] = torch.zeros(100, dtype=torch.float32, device=p.device)
        if config["max_unorm"] > 0.0:
            state["unorm_vec"] = torch.zeros(1, dtype=torch.float32, device=p.device)

    def _state_zeros(self, shape, dtype, p: torch.Tensor) -> torch.Tensor:
        """state1 / state2: managed (paged) memory for paged optimizers on CUDA with parameters of at least
        paged.PAGED_MIN_NUMEL elements, else ordinary device memory (optim/paged.py)."""
        if self.is_paged and p.numel() >= paged.PAGED_MIN_NUMEL:
            return paged.zeros(shape, dtype, p.device)
        return torch.zeros(shape, dtype=dtype, device=p.device)

    def page_out_state(self, prefer_host: bool = False) -> None:
        """Move the paged state of this optimizer to host memory (asynchronously, on the current stream), e.g. to
        free GPU memory for evaluation; the next step prefetches it back. ``prefer_host=True`` also makes the host
        its preferred location (cudaMemAdvise: under GPU memory pressure its pages leave first); ``False`` clears
        that preference. A no-op for unpaged state."""
        for st in self.state.values():
            tensors = (st.get("state1"), st.get("state2"))
            paged.advise(tensors, "host" if prefer_host else None)
            paged.page_out(tensors)

    # ------------------------------------------------------------------------------------------------ step

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.last_step_nonfinite = 0
        self._pending_nonfinite = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                if len(self.state[p]) == 0:
                    self.init_state(group, p)
                self.update_step(group, p)
        self._settle_nonfinite()
        if self.last_step_nonfinite and not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(f"{type(self).__name__}: {self.last_step_nonfinite} gradient elements were NaN/Inf; "
                          "their parameters and states were left unchanged (see last_step_nonfinite)",
                          stacklevel=2)
        return loss

    def _settle_nonfinite(self) -> None:
        """Counts the NaN/Inf gradient elements of the parameters on accelerators: their fp32 sums were computed
        on the device during the step (no host read per parameter); one host read per device here, and the exact
        count only for gradients whose sum is not finite (the kernels never modify g)."""
        pending, self._pending_nonfinite = self._pending_nonfinite, []
        by_device: dict = {}
        for g, s in pending:
            by_device.setdefault(s.device, []).append((g, s))
        for items in by_device.values():
            finite = torch.isfinite(torch.stack([s for _, s in items]))
            if bool(finite.all()):
                continue
            for (g, _), ok in zip(items, finite.tolist()):
                if not ok:
                    self.last_step_nonfinite += int((~torch.isfinite(g)).sum())

    def _gnorm_scale(self, state: dict, g: torch.Tensor, percentile: float, step: int) -> float:
        """Percentile clipping: scale the gradient down to the given percentile of the last 100 norms."""
        gnorm = g.float().norm()
        hist = state["gnorm_vec"]
        hist[(step - 1) % 100] = gnorm
        seen = hist[: min(step, 100)]
        clip = torch.quantile(seen, percentile / 100.0)
        return float(clip / gnorm) if float(gnorm) > float(clip) > 0.0 else 1.0

    def update_step(self, group: dict, p: torch.Tensor) -> None:
        state = self.state[p]
        config = self.get_config(group, p)
        state["step"] += 1
        step = state["step"]
        g = p.grad if p.grad.is_contiguous() else p.grad.contiguous()
        if g.dtype != p.dtype:
            g = g.to(p.dtype)
        # NaN/Inf gradients (the ops leave those elements unchanged; counted for last_step_nonfinite): one cheap
        # reduction first, a NaN/Inf element makes the fp32 sum non-finite (the exact count only then). On
        # accelerators the sums stay on the device until the end of step() (no host read per parameter).
        if g.device.type == "cpu":
            if not bool(torch.isfinite(g.sum(dtype=torch.float32))):
                self.last_step_nonfinite += int((~torch.isfinite(g)).sum())
        else:
            self._pending_nonfinite.append((g, g.sum(dtype=torch.float32)))
        betas = config["betas"]
        beta1, beta2 = betas[0], betas[1] if len(betas) > 1 else 0.0
        beta3 = betas[2] if len(betas) > 2 else 0.0
        alpha = config["alpha"]
        if self.optimizer_name == "ademamix":
            beta3, alpha = _ademamix_schedule(beta1, beta3, alpha, config["t_beta3"], config["t_alpha"], step)
        wd, lr, eps = config["weight_decay"], config["lr"], config["eps"]
        if self.coupled_wd and wd > 0.0:
            g = g.add(p, alpha=wd)  # a NaN/Inf g stays non-finite, so the op still leaves that element unchanged
            wd = 0.0
        gnorm_scale = 1.0
        if config["percentile_clipping"] < 100:
            finite = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            gnorm_scale = self._gnorm_scale(state, finite, config["percentile_clipping"], step)
        if self.is_paged:  # managed state: bring its pages to the GPU before the kernel (stream-ordered)
            paged.prefetch((state["state1"], state.get("state2")))
        if state["state1"].dtype == torch.float32:
            max_unorm = config["max_unorm"]
            param_norm = float(p.detach().float().norm()) if max_unorm > 0.0 else 0.0
            torch.ops.bnb.optimizer_update_32bit(
                self.optimizer_name, g, p, state["state1"], state.get("state2"), state.get("unorm_vec"),
                max_unorm, param_norm, beta1, beta2, beta3, alpha, eps, wd, step, lr, gnorm_scale,
                config["skip_zeros"],
            )
        else:
            if config["max_unorm"] > 0.0:  # LAMB / LARS: the 8-bit op has no trust ratio; scale lr instead
                trust = self._trust_ratio_8bit(state, g, p, config, beta1, beta2, eps, wd, step, gnorm_scale)
                lr, wd = lr * trust, (wd / trust if trust > 0.0 else wd)
            torch.ops.bnb.optimizer_update_8bit_blockwise(
                self.optimizer_name, g, p, state["state1"], state.get("state2"), beta1, beta2, beta3, alpha, eps,
                step, lr, state["qmap1"], state.get("qmap2"), state["absmax1"], state.get("absmax2"), wd,
                gnorm_scale, config["skip_zeros"],
            )

    def _trust_ratio_8bit(self, state, g, p, config, beta1, beta2, eps, wd, step, gnorm_scale) -> float:
        """min(1, max_unorm * ||p|| / ||u||) with u this step's update direction, from dequantized 8-bit state
        (what the 32-bit op computes in its preconditioning pass)."""
        bs = formats.OPTIMIZER_BLOCKSIZE
        gf = torch.nan_to_num(g.float() * gnorm_scale, nan=0.0, posinf=0.0, neginf=0.0)
        s1 = torch.ops.bnb.dequantize_blockwise(state["state1"], state["absmax1"], state["qmap1"], bs, torch.float32)
        if self.optimizer_name == "lamb":
            s2 = torch.ops.bnb.dequantize_blockwise(state["state2"], state["absmax2"], state["qmap2"], bs,
                                                    torch.float32)
            m = s1 * beta1 + (1 - beta1) * gf
            v = s2 * beta2 + (1 - beta2) * gf * gf
            u = (m / (1 - beta1**step)) / (torch.sqrt(v / (1 - beta2**step)) + eps)
        else:  # lars: momentum, coupled weight decay already folded into g when configured
            if wd > 0.0:
                gf = gf + wd * p.float()
            u = gf if step == 1 else s1 * beta1 + gf
        unorm = float(u.norm())
        limit = config["max_unorm"] * float(p.detach().float().norm())
        return limit / unorm if unorm > limit else 1.0

    # ------------------------------------------------------------------------------------------------ state_dict

    def state_dict(self) -> dict:
        """torch's state_dict with the quantization tensors wrapped under one key per parameter (FSDP skips
        nested dicts when it gathers optimizer state, as in bitsandbytes)."""
        sd = super().state_dict()
        sd["state"] = {k: dict(v) for k, v in sd["state"].items()}
        for st in sd["state"].values():
            wrapped = {k: st.pop(k) for k in _QUANT_KEYS if k in st}
            if wrapped:
                st[_WRAP_KEY] = wrapped
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state_dict (of this class or bitsandbytes'); quantization tensors keep their dtype and move
        to the parameter's device (torch would cast them to the parameter dtype)."""
        state_dict = dict(state_dict)
        stash: dict[Any, dict] = {}
        state = {}
        for k, st in state_dict["state"].items():
            st = dict(st)
            wrapped = dict(st.pop(_WRAP_KEY, {}))
            wrapped.update({kk: st.pop(kk) for kk in _QUANT_KEYS if kk in st})
            stash[k] = wrapped
            state[k] = st
        state_dict["state"] = state
        super().load_state_dict(state_dict)
        ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        for pid, p in zip(ids, params):
            for key, value in stash.get(pid, {}).items():
                if key in ("state1", "state2"):  # paged optimizers page the loaded state too
                    self.state[p][key] = self._state_zeros(value.shape, value.dtype, p).copy_(value)
                else:
                    self.state[p][key] = value.to(device=p.device, copy=True)  # never alias the source
            if "step" in self.state[p]:
                self.state[p]["step"] = int(self.state[p]["step"])


def _ademamix_schedule(beta1, beta3, alpha, t_beta3, t_alpha, step):
    """AdEMAMix's warm-up schedulers for alpha and beta3 (Pagliardini et al., 2024)."""
    import math

    if t_alpha:
        alpha = min(step * alpha / t_alpha, alpha)
    if t_beta3:
        ln_b1, ln_b3 = math.log(beta1), math.log(beta3)
        frac = min(step / t_beta3, 1.0)
        beta3 = min(math.exp(ln_b1 * ln_b3 / ((1 - frac) * ln_b3 + frac * ln_b1)), beta3)
    return beta3, alpha


__all__ = ["GlobalOptimManager", "Optimizer8bit"]
