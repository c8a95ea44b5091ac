"""Tensors past 2**31 bytes / elements are indexed correctly (64-bit indexing in the native kernels).

Memory: the inputs are allocated with torch.empty and only the checked slices are written; the untouched
pages of a fresh allocation read as zeros (the kernel maps them to the shared zero page), so they cost
no memory. Each test writes at most ~4 GiB (a bf16 output of 2**31 elements).
Blocks are independent, so each checked slice is compared with the reference run on that slice only.

Marked `bigmem`: runs by default, deselect with `-m "not bigmem"`; skipped when MemAvailable < 10 GiB.
"""

from __future__ import annotations

import gc

import pytest
import torch

from bnb_core import formats, reference

pytestmark = pytest.mark.bigmem

_GIB = 1 << 30


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.fixture(autouse=True)
def _enough_memory():
    avail = _mem_available()
    if avail < 10 * _GIB:
        pytest.skip(f"bigmem test needs MemAvailable >= 10 GiB (/proc/meminfo says {avail / _GIB:.1f} GiB)")
    if registry_kernel() == "reference":
        pytest.skip("no native CPU kernel registered (the reference would take minutes here)")
    yield
    gc.collect()


def registry_kernel():
    from bnb_core import registry

    return "native" if registry.table().get("cpu", {}).get("quantize_4bit") else "reference"


def _slices(n: int, bs: int, at=(1 << 31,), nblocks: int = 3):
    """Block-aligned [s, e) element ranges: the start, around each element index in `at`, and the end (the
    last, partial block included)."""
    last = (n - 1) // bs * bs
    ranges = [(0, nblocks * bs)]
    for a in at:
        around = a // bs * bs
        ranges.append((max(0, around - nblocks * bs), min(n, around + nblocks * bs)))
    ranges.append((last - (nblocks - 1) * bs, n))
    return ranges


def _fill(x: torch.Tensor, ranges, seed: int):
    gen = torch.Generator().manual_seed(seed)
    for s, e in ranges:
        x[s:e] = (torch.randn(e - s, generator=gen) * (1 + torch.rand(1, generator=gen) * 10)).to(x.dtype)


def test_quantize_blockwise_past_2_31_elements():
    """quantize_blockwise of 2**31 + 4099 bf16 values (4 GiB in, 2 GiB codes): codes and absmax bit-exact on
    slices at 0, 2**30 (byte 2**31 of the input), 2**31 and the end."""
    n, bs = (1 << 31) + 4099, 256
    code = formats.table("dynamic", "cpu")
    ranges = _slices(n, bs, at=(1 << 30, 1 << 31))
    x = torch.empty(n, dtype=torch.bfloat16)
    _fill(x, ranges, 0)
    q, absmax = torch.ops.bnb.quantize_blockwise(x, code, bs)
    assert q.shape == (n,) and absmax.shape == (-(-n // bs),)
    for s, e in ranges:
        qr, ar = reference.quantize_blockwise(x[s:e], code, bs)
        assert torch.equal(q[s:e], qr), (s, e)
        assert torch.equal(absmax[s // bs:-(-e // bs)], ar), (s, e)


def test_dequantize_blockwise_past_2_31_elements():
    """dequantize_blockwise of 2**31 + 4099 codes into bf16 (2 GiB in, 4 GiB out): exact on slices at 0,
    2**30, 2**31 and the end."""
    n, bs = (1 << 31) + 4099, 256
    code = formats.table("dynamic", "cpu")
    ranges = _slices(n, bs, at=(1 << 30, 1 << 31))
    q = torch.empty(n, dtype=torch.uint8)
    absmax = torch.empty(-(-n // bs), dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    for s, e in ranges:
        q[s:e] = torch.randint(0, 256, (e - s,), generator=gen, dtype=torch.uint8)
        absmax[s // bs:-(-e // bs)] = torch.rand(-(-e // bs) - s // bs, generator=gen) * 4
    out = torch.ops.bnb.dequantize_blockwise(q, absmax, code, bs, torch.bfloat16)
    for s, e in ranges:
        expect = reference.dequantize_blockwise(q[s:e], absmax[s // bs:-(-e // bs)], code, bs, torch.bfloat16)
        assert torch.equal(out[s:e], expect), (s, e)


def test_quantize_4bit_past_2_32_elements():
    """quantize_4bit of 2**32 + 130 bf16 values (8 GiB of input address space, mostly untouched zero pages;
    2 GiB packed): packed bytes and absmax bit-exact on slices at 0, 2**31, 2**32 and the end."""
    n, bs = (1 << 32) + 130, 64
    ranges = _slices(n, bs, at=(1 << 31, 1 << 32))
    x = torch.empty(n, dtype=torch.bfloat16)
    _fill(x, ranges, 1)
    packed, absmax = torch.ops.bnb.quantize_4bit(x, bs, "nf4", torch.uint8)
    assert packed.numel() == formats.storage_numel_4bit(n, 1)
    packed = packed.view(-1)
    for s, e in ranges:
        pr, ar = reference.quantize_4bit(x[s:e], bs, "nf4", torch.uint8)
        assert torch.equal(packed[s // 2:s // 2 + pr.numel()], pr.view(-1)), (s, e)
        assert torch.equal(absmax[s // bs:-(-e // bs)], ar), (s, e)


def test_dequantize_4bit_past_2_31_elements():
    """dequantize_4bit of 2**31 + 130 fp4 codes into bf16 (1 GiB packed in, 4 GiB out): exact on slices at 0,
    2**30, 2**31 and the end."""
    n, bs = (1 << 31) + 130, 64
    ranges = _slices(n, bs, at=(1 << 30, 1 << 31))
    packed = torch.empty((n + 1) // 2, dtype=torch.uint8)
    absmax = torch.empty(-(-n // bs), dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)
    for s, e in ranges:
        packed[s // 2:(e + 1) // 2] = torch.randint(0, 256, ((e + 1) // 2 - s // 2,), generator=gen, dtype=torch.uint8)
        absmax[s // bs:-(-e // bs)] = torch.rand(-(-e // bs) - s // bs, generator=gen) * 4
    out = torch.ops.bnb.dequantize_4bit(packed, absmax, bs, "fp4", [n], torch.bfloat16)
    for s, e in ranges:
        expect = reference.dequantize_4bit(packed[s // 2:(e + 1) // 2], absmax[s // bs:-(-e // bs)], bs, "fp4",
                                           [e - s], torch.bfloat16)
        assert torch.equal(out[s:e], expect), (s, e)
