"""Quantize the linear layers of any torch model in place."""

from __future__ import annotations

import sys
from typing import Iterable, Optional

import torch
from torch import nn

from .modules import Linear4bit, Linear8bitLt

QUANTIZATIONS = ("nf4", "fp4", "int8")


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, unit="layer")
    except ImportError:
        return _PlainProgress(items, desc)


class _PlainProgress:
    def __init__(self, items, desc):
        self.items, self.desc = list(items), desc

    def __iter__(self):
        n = len(self.items)
        for i, item in enumerate(self.items, 1):
            yield item
            print(f"\r{self.desc}: {i}/{n} layers", end="" if i < n else "\n", file=sys.stderr, flush=True)


def replace_linear(model: nn.Module, quantization: str = "nf4", compute_dtype: Optional[torch.dtype] = None,
                   compress_statistics: bool = True, quant_storage: torch.dtype = torch.uint8,
                   threshold: float = 6.0, has_fp16_weights: bool = False,
                   skip_modules: Iterable[str] = ("lm_head",), progress: bool = True,
                   device=None) -> nn.Module:
    """Replace every ``nn.Linear`` of `model` (except those whose name or any dotted prefix of it is in
    `skip_modules`) by a quantized layer holding the same weights, quantized on `device` (default: where
    the weight is). ``quantization``: "nf4" / "fp4" (Linear4bit) or "int8" (Linear8bitLt with `threshold`).
    Returns the model (modified in place)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    skip = set(skip_modules)

    def skipped(name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[i:]) in skip or ".".join(parts[: i + 1]) in skip for i in range(len(parts)))

    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and not isinstance(m, (Linear4bit, Linear8bitLt)) and not skipped(name)]
    for name, lin in _progress(targets, progress, f"quantizing to {quantization}"):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        dev = torch.device(device) if device is not None else lin.weight.device
        if quantization == "int8":
            new = Linear8bitLt(lin.in_features, lin.out_features, bias=lin.bias is not None,
                               has_fp16_weights=has_fp16_weights, threshold=threshold, device="meta")
            new.weight = type(new.weight)(lin.weight.data, requires_grad=has_fp16_weights,
                                          has_fp16_weights=has_fp16_weights)
        else:
            new = Linear4bit(lin.in_features, lin.out_features, bias=lin.bias is not None,
                             compute_dtype=compute_dtype, compress_statistics=compress_statistics,
                             quant_type=quantization, quant_storage=quant_storage, device="meta")
            new.weight = type(new.weight)(lin.weight.data, requires_grad=False,
                                          compress_statistics=compress_statistics, quant_type=quantization,
                                          quant_storage=quant_storage, module=new)
        if lin.bias is not None:
            new.bias = nn.Parameter(lin.bias.data.clone(), requires_grad=lin.bias.requires_grad)
        new.to(dev)
        new.train(lin.training)
        setattr(parent, child, new)
    return model
