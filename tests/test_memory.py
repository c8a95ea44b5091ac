"""Memory accounting on real 4096x4096 modules: bytes per weight parameter of everything a layer stores.

Counted two ways that must agree: (a) every tensor of the module's state_dict (what a checkpoint holds:
packed codes, absmax, quant maps, the packed quant_state JSON, SCB, weight_format), and (b) the storages
the live module keeps (weight storage + QuantState tensors / SCB), which also proves no full-precision copy
of the weight survives quantization. Bias-free layers, so only the weight is accounted.

Expected bytes/param (blocksize 64, double quant nested blocksize 256):
  bf16 nn.Linear          2
  Linear4bit nf4          0.5 + 4/64                  = 0.5625        (fp32 absmax per 64-block)
  Linear4bit nf4 + DQ     0.5 + 1/64 + 4/(64*256)     = 0.515869...   (uint8 absmax + fp32 per 256 absmax)
  Linear8bitLt (int8)     1 + 4/in_features           = 1.0009765625  (fp32 SCB per output row)
plus a constant of < 2 KiB per layer (quant maps, the quant_state JSON), < 1e-4 B/param here.
Run with -s to see the table.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import bnb_core  # noqa: F401
from bnb_core.nn import Linear4bit, Linear8bitLt

N = K = 4096
TOL = 2e-4  # B/param: the constant-size items (quant maps, JSON) are ~1e-4 B/param at 16.8M params

EXPECTED = {
    "bf16 nn.Linear": 2.0,
    "Linear4bit nf4": 0.5 + 4 / 64,
    "Linear4bit nf4 + double quant": 0.5 + 1 / 64 + 4 / (64 * 256),
    "Linear8bitLt int8": 1.0 + 4 / K,
}


def _state_dict_bytes(module: nn.Module) -> tuple[int, dict[str, int]]:
    parts = {k: v.numel() * v.element_size() for k, v in module.state_dict().items()}
    return sum(parts.values()), parts


def _live_bytes(module: nn.Module) -> int:
    """Bytes of the distinct storages the module holds on to (parameters, buffers, quantization state)."""
    tensors = list(module.parameters()) + list(module.buffers())
    qs = getattr(module.weight, "quant_state", None)
    if qs is not None:
        tensors += [qs.absmax, qs.code]
        if qs.nested:
            tensors += [qs.offset, qs.state2.absmax, qs.state2.code]
    for name in ("SCB",):
        t = getattr(module.weight, name, None)
        if t is not None:
            tensors.append(t)
    seen, total = set(), 0
    for t in tensors:
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            total += st.nbytes()
    return total


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "bf16 nn.Linear":
        return nn.Linear(K, N, bias=False, dtype=torch.bfloat16)
    if name == "Linear4bit nf4":
        return Linear4bit(K, N, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4",
                          compress_statistics=False).to("cpu")
    if name == "Linear4bit nf4 + double quant":
        return Linear4bit(K, N, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4",
                          compress_statistics=True).to("cpu")
    if name == "Linear8bitLt int8":
        return Linear8bitLt(K, N, bias=False, has_fp16_weights=False, threshold=6.0).to("cpu")
    raise KeyError(name)


@pytest.fixture(scope="module")
def measured():
    rows = {}
    for name in EXPECTED:
        m = _build(name)
        sd_bytes, parts = _state_dict_bytes(m)
        rows[name] = dict(sd=sd_bytes, live=_live_bytes(m), parts=parts)
        del m
    n = N * K
    lines = ["", f"| layer ({N}x{K}, no bias) | state_dict bytes | B/param (state_dict) | B/param (live storages) "
             "| expected B/param | vs bf16 |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['sd']:,} | {r['sd'] / n:.6f} | {r['live'] / n:.6f} | {EXPECTED[name]:.6f} "
                     f"| {r['sd'] / rows['bf16 nn.Linear']['sd']:.3f}x |")
    print("\n".join(lines))
    return rows


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bytes_per_param(measured, name):
    n = N * K
    r = measured[name]
    assert abs(r["sd"] / n - EXPECTED[name]) < TOL, (name, r["sd"] / n, r["parts"])
    assert abs(r["live"] / n - EXPECTED[name]) < TOL, (name, r["live"] / n)


def test_state_dict_items(measured):
    """Which tensors make up the bytes (bitsandbytes' keys)."""
    nf4 = measured["Linear4bit nf4"]["parts"]
    assert nf4["weight"] == N * K // 2 and nf4["weight.absmax"] == 4 * N * K // 64
    dq = measured["Linear4bit nf4 + double quant"]["parts"]
    assert dq["weight"] == N * K // 2 and dq["weight.absmax"] == N * K // 64
    assert dq["weight.nested_absmax"] == 4 * (N * K // 64) // 256
    i8 = measured["Linear8bitLt int8"]["parts"]
    assert i8["weight"] == N * K and i8["SCB"] == 4 * N


def test_quantized_weight_drops_full_precision_copy():
    """Quantizing replaces the fp weight storage: the parameter holds only packed codes."""
    m = _build("Linear4bit nf4 + double quant")
    assert m.weight.untyped_storage().nbytes() == N * K // 2
    m8 = _build("Linear8bitLt int8")
    assert m8.weight.untyped_storage().nbytes() == N * K
