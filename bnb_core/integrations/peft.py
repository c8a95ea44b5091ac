"""PEFT (LoRA / QLoRA) on bnb_core's quantized layers.

PEFT picks its bitsandbytes LoRA layers with ``isinstance(layer, bitsandbytes.nn.Linear4bit)``, which
bnb_core's layers are not. Without help PEFT therefore wraps them with its generic ``lora.Linear``
(they subclass ``nn.Linear``): training and inference are right, but ``merge()`` / ``unmerge()`` would
add the LoRA delta to the *packed codes*. PEFT's supported hook for layer types it does not know is
``LoraConfig._register_custom_module({BaseType: LoraType})``; :func:`register_lora_layers` registers
the two layers below, which reuse PEFT's ``lora.Linear`` for everything but merging, and merge by
dequantize -> add -> requantize (with the layer's own blocksize / quant_type / double quant / storage).

    from peft import LoraConfig, get_peft_model
    from bnb_core.integrations.peft import register_lora_layers

    config = register_lora_layers(LoraConfig(r=8, target_modules=[...]))
    model = get_peft_model(replace_linear(model, "nf4", compute_dtype=torch.bfloat16), config)

Importing this module imports peft.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from peft.tuners.lora.layer import Linear as _PeftLoraLinear
from peft.tuners.tuners_utils import check_adapters_to_merge

from ..autograd import dequantize_weight
from ..nn.modules import Int8Params, Linear4bit, Linear8bitLt, Params4bit

__all__ = ["LoraLinear4bit", "LoraLinear8bitLt", "register_lora_layers"]


class _QuantizedLoraMixin:
    """merge/unmerge for a quantized base layer: the subclass supplies _dequantized() and _requantize(w)."""

    def _merge_delta(self, adapter: str, sign: float, safe_merge: bool = False) -> None:
        if adapter in self.lora_variant:
            raise NotImplementedError(f"{type(self).__name__} merges vanilla LoRA only (not DoRA or other variants)")
        base = self.get_base_layer()
        w = self._dequantized().float() + sign * self.get_delta_weight(adapter).float()
        if safe_merge and not torch.isfinite(w).all():
            raise ValueError(f"NaNs detected in the merged weights. The adapter {adapter} seems to be broken")
        self._requantize(w)
        if self.lora_bias[adapter]:
            if getattr(base, "bias", None) is None:
                raise RuntimeError("Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias.")
            base.bias.data += sign * (self.lora_B[adapter].bias * self.scaling[adapter]).to(base.bias.dtype)

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        adapter_names = check_adapters_to_merge(self, adapter_names)
        for adapter in adapter_names:
            if adapter not in self.lora_A.keys():
                continue
            warnings.warn(f"Merging LoRA into {type(self.get_base_layer()).__name__} requantizes the weight: "
                          "outputs change by the quantization error of the merged weight.")
            self._merge_delta(adapter, +1.0, safe_merge)
            self.merged_adapters.append(adapter)

    def unmerge(self) -> None:
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.")
            return
        while self.merged_adapters:
            adapter = self.merged_adapters.pop()
            if adapter in self.lora_A.keys():
                self._merge_delta(adapter, -1.0)


class LoraLinear4bit(_QuantizedLoraMixin, _PeftLoraLinear):
    """PEFT's ``lora.Linear`` over a bnb_core ``Linear4bit`` (QLoRA)."""

    def _dequantized(self) -> torch.Tensor:
        weight = self.get_base_layer().weight
        return dequantize_weight(weight.data, weight.quant_state, torch.float32)

    def _requantize(self, w: torch.Tensor) -> None:
        base = self.get_base_layer()
        old = base.weight
        base.weight = Params4bit(w.to(old.quant_state.dtype or torch.float32), requires_grad=False,
                                 blocksize=old.blocksize, compress_statistics=old.compress_statistics,
                                 quant_type=old.quant_type, quant_storage=old.quant_storage, module=base,
                                 bnb_quantized=False)._quantize(old.device)

    def __repr__(self) -> str:
        return "lora." + super().__repr__()


class LoraLinear8bitLt(_QuantizedLoraMixin, _PeftLoraLinear):
    """PEFT's ``lora.Linear`` over a bnb_core ``Linear8bitLt`` (int8 weight; 16-bit weights merge directly)."""

    def _dequantized(self) -> torch.Tensor:
        base = self.get_base_layer()
        if base.state.has_fp16_weights:
            return base.weight.data
        if base.weight.SCB is None:
            base.weight = base.weight._quantize(base.weight.device)
        return torch.ops.bnb.int8_vectorwise_dequant(base.weight.data, base.weight.SCB)

    def _requantize(self, w: torch.Tensor) -> None:
        base = self.get_base_layer()
        if base.state.has_fp16_weights:
            base.weight.data = w.to(base.weight.dtype)
            return
        base.weight = Int8Params(w.to(torch.float32), requires_grad=False, has_fp16_weights=False)._quantize(
            base.weight.device)
        base.state.CB, base.state.SCB = base.weight.CB, base.weight.SCB

    def __repr__(self) -> str:
        return "lora." + super().__repr__()


def register_lora_layers(config):
    """Register bnb_core's quantized layers with a peft ``LoraConfig`` (in place); returns the config."""
    config._register_custom_module({Linear4bit: LoraLinear4bit, Linear8bitLt: LoraLinear8bitLt})
    return config
