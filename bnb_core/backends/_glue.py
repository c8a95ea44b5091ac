"""Tensor-to-native glue shared by the built-in backends (cpu, cuda, xpu, mps): the dtype / quant-type codes
their torch-free modules take, and small argument helpers. Device-specific parts (allocation device, stream or
queue, threads) stay in each backend file."""

from __future__ import annotations

import math

import torch

#: dtype codes of every native module: 0 float32, 1 float16, 2 bfloat16
DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
#: 4-bit quant_type codes: 0 nf4, 1 fp4
QUANT = {"nf4": 0, "fp4": 1}


def nblocks(n: int, blocksize: int) -> int:
    return -(-n // blocksize)


def ptr(t) -> int:
    """data pointer, or 0 for an absent optional tensor"""
    return 0 if t is None else t.data_ptr()


def out_contiguous(*args, **kwargs) -> bool:
    """the kernel writes `out` through its data pointer: `out` must be contiguous"""
    out = kwargs["out"] if "out" in kwargs else args[-1]
    return out.is_contiguous()


def rows_k(A):
    """(rows, K) of A seen as a matrix over its last dimension"""
    K = A.shape[-1] if A.dim() else 1
    M = A.numel() // K if K else math.prod(A.shape[:-1])
    return M, K


def bias_args(bias):
    """(contiguous bias or None, its dtype code or -1, its pointer or 0)"""
    if bias is None:
        return None, -1, 0
    bias = bias.contiguous()
    return bias, DTYPE[bias.dtype], bias.data_ptr()
