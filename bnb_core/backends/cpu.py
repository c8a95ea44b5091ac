"""CPU backend: registers the native kernels of ``bnb_core._cpu`` for the "cpu" device.

The native module is torch-free: it takes data pointers as ints and returns a status code. This file
converts tensors to pointers and raises RuntimeError on a nonzero status. The kernels cover every call
that passes the op's check except writing into a non-contiguous ``out`` (declared in ``supports``), which
falls back to the reference through the registry.

ISA: ``bnb_core._cpu.isa()`` is the active path (amx, avx512vnni, avx512, avx2, neon or scalar; amx = the avx512vnni
kernels plus AMX tile paths for the matmuls), chosen at import time as the best the CPU supports; the environment variable
``BNB_CPU_ISA=amx|avx512vnni|avx512|avx2|neon|scalar`` forces one (when the
CPU lacks it the best supported path is used and ``_cpu.isa_warning()`` says so). Threads follow
``torch.get_num_threads()``.

Outputs of 4 MiB or more come from a native cache of released output blocks, already mapped, else from a fresh
mapping with a transparent-huge-page hint (``_empty``; docs/architecture.md, "Allocation" and "Output cache"):
``BNB_CPU_OUTPUT_CACHE_MB`` sets the cache's limit (0: off), ``BNB_CPU_HUGEPAGE=0`` or
``bnb_core._cpu.set_hugepage_enabled(False)`` turns the hint off.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .. import formats, registry
from ._glue import (  # noqa: F401 (shared glue, see _glue.py)
    DTYPE as _DTYPE,
    QUANT as _QUANT,
    nblocks as _nblocks,
    out_contiguous as _out_contiguous,
    ptr as _ptr,
    rows_k as _rows_k,
    bias_args as _bias_args,
)
from .._ops import OPTIMIZER_NAMES

NAME = "cpu-native"
DEVICE = "cpu"

#: the imported native module, or None; IMPORT_ERROR says why it is None
_cpu = None
IMPORT_ERROR: Optional[str] = None

try:
    from .. import _cpu  # type: ignore[no-redef]
except Exception as e:  # not built, or built for another platform
    _cpu = None
    IMPORT_ERROR = f"bnb_core._cpu could not be imported ({type(e).__name__}: {e})"

_F32 = torch.float32
_U8 = torch.uint8


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(_cpu.status_message(status))




# The op's check (bnb_core/_ops.py) has validated dtypes, sizes, blocksizes and devices before a kernel
# runs; the kernels only make their inputs contiguous. The one thing they do not cover is writing into a
# non-contiguous `out`: those calls go to the reference.


_HUGEPAGE_MIN_BYTES = getattr(_cpu, "HUGEPAGE_MIN_BYTES", 4 << 20)


def _empty(shape, dtype):
    """torch.empty for an output the kernel is about to write in full. Large ones (>= 4 MiB) come from the native
    output cache (``_cpu.output_buffer``; docs/architecture.md, "Allocation"): a block released by an earlier
    output of the same size when one is kept, already mapped, so writing it costs no page faults; else a fresh
    2 MiB-aligned mapping with MADV_HUGEPAGE (THP mode "madvise"), so its first write faults once per 2 MiB instead
    of once per 4 KiB (4096x4096 bf16: ~12 ms -> ~3 ms here, ~1.6 ms from the cache). The tensor owns its block
    until it is freed; the cache then keeps it (at most ``_cpu.output_cache_limit()`` bytes) or unmaps it. With the
    cache off (``BNB_CPU_OUTPUT_CACHE_MB=0``) torch's allocator gives the memory and only the hint applies."""
    nbytes = (shape if type(shape) is int else math.prod(shape)) * dtype.itemsize  # (type(): the cheapest test)
    if nbytes < _HUGEPAGE_MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    buf = _cpu.output_buffer(nbytes)
    if buf is not None:
        return torch.frombuffer(buf, dtype=_U8).view(dtype).view(shape)
    out = torch.empty(shape, dtype=dtype)
    _cpu.advise_hugepage(out.data_ptr(), nbytes)
    return out


def place_weight(t):
    """Weight placement of the CPU (registry.register_weight_placement): a quantized layer weight of 4 MiB or more
    is read whole on every call, and on 4 KiB pages a weight streamed from memory costs a TLB miss per page
    (measured here, batch 1 from memory: NF4 gemv 12-18% and Linear4bit 9-13% faster on huge pages; Linear8bitLt
    between 2% slower and 5% faster). Its 2 MiB pages are collapsed onto transparent huge pages in place
    (``_cpu.collapse_hugepage``: MADV_COLLAPSE, Linux >= 6.1; values and addresses unchanged; once, at load: 10-90 ms
    per 30 MB on this VM, about a first write of fresh memory; ~0.03 ms on pages already huge). The layers place
    every weight they hold, the ones they quantize too: a fresh output's MADV_HUGEPAGE hint (``_empty``) does not
    act on memory the allocator reuses, which is already mapped. Off with the output hint
    (``BNB_CPU_HUGEPAGE=0``)."""
    # a hint: tensors without host memory of their own (fake, functorch-wrapped, distributed subclasses) are left alone
    if type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
        return
    try:
        if not t.is_contiguous():
            return
        ptr, nbytes = t.data_ptr(), t.numel() * t.element_size()
    except Exception:  # noqa: BLE001
        return
    if ptr:
        _cpu.collapse_hugepage(ptr, nbytes)  # (nothing below HUGEPAGE_MIN_BYTES, or with the hint switched off)


# ------------------------------------------------------------------------------------ blockwise 8-bit


def quantize_blockwise(A, code, blocksize):
    A, code = A.contiguous(), code.contiguous()
    n = A.numel()
    out = _empty(A.shape, _U8)
    absmax = torch.empty(_nblocks(n, blocksize), dtype=_F32)
    _check(_cpu.quantize_blockwise(_DTYPE[A.dtype], A.data_ptr(), n, code.data_ptr(), blocksize, out.data_ptr(),
                                   absmax.data_ptr(), torch.get_num_threads()))
    return out, absmax


def dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
    A, absmax, code = A.contiguous(), absmax.contiguous(), code.contiguous()
    _check(_cpu.dequantize_blockwise(_DTYPE[out.dtype], A.data_ptr(), A.numel(), code.data_ptr(), absmax.data_ptr(),
                                     blocksize, out.data_ptr(), torch.get_num_threads()))


def dequantize_blockwise(A, absmax, code, blocksize, dtype):
    out = _empty(A.shape, dtype)
    dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out)
    return out


# ------------------------------------------------------------------------------------ 4-bit


def quantize_4bit(A, blocksize, quant_type, quant_storage):
    A = A.contiguous()
    n = A.numel()
    itemsize = quant_storage.itemsize
    numel = formats.storage_numel_4bit(n, itemsize)
    nbytes = numel * itemsize
    packed = _empty(nbytes, _U8)
    absmax = torch.empty(_nblocks(n, blocksize), dtype=_F32)
    _check(_cpu.quantize_4bit(_DTYPE[A.dtype], A.data_ptr(), n, blocksize, _QUANT[quant_type], packed.data_ptr(),
                              nbytes, absmax.data_ptr(), torch.get_num_threads()))
    return packed.view(quant_storage).reshape(numel, 1), absmax


def dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
    A, absmax = A.contiguous(), absmax.contiguous()
    _check(_cpu.dequantize_4bit(_DTYPE[out.dtype], A.data_ptr(), out.numel(), absmax.data_ptr(), blocksize,
                                _QUANT[quant_type], out.data_ptr(), torch.get_num_threads()))


def dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
    out = _empty(tuple(shape), dtype)
    dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out)
    return out


# ------------------------------------------------------------------------------------ fused 4-bit matmul




def _contig(t):
    return t if t.is_contiguous() else t.contiguous()


def _matmul_4bit(A, B, shapeB, absmax, blocksize, code, bias, absmax_8bit, absmax_code, absmax_offset, out):
    # per-call glue is ~µs against 0.1-ms kernels at batch 1: only copy what is not already usable as is
    N, K = int(shapeB[0]), int(shapeB[1])
    A, B, absmax = _contig(A), _contig(B), _contig(absmax)
    if code.dtype != _F32:
        code = code.to(_F32)
    code = _contig(code)
    if absmax_8bit is not None:
        absmax_8bit, absmax_code, absmax_offset = _contig(absmax_8bit), _contig(absmax_code), _contig(absmax_offset)
    if bias is not None:
        bias = _contig(bias)
    _check(_cpu.gemm_4bit(_DTYPE[A.dtype], A.data_ptr(), A.numel() // K if K else math.prod(A.shape[:-1]), K, B.data_ptr(),
                          B.numel() * B.element_size(), N, absmax.data_ptr(), blocksize, code.data_ptr(),
                          _ptr(absmax_8bit), _ptr(absmax_code), _ptr(absmax_offset), _ptr(bias), out.data_ptr(),
                          torch.get_num_threads()))


def gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
    _matmul_4bit(A, B, shapeB, absmax, blocksize, code, None, None, None, None, out)


def gemv_4bit(A, B, shapeB, absmax, code, blocksize):
    out = _empty((*A.shape[:-1], shapeB[0]), A.dtype)
    gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out)
    return out


def gemm_4bit(A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None,
              absmax_offset=None):
    out = _empty((*A.shape[:-1], shapeB[0]), A.dtype)
    _matmul_4bit(A, B, shapeB, absmax, blocksize, formats.code_4bit(quant_type), bias, absmax_8bit, absmax_code,
                 absmax_offset, out)
    return out


# ------------------------------------------------------------------------------------ LLM.int8()




def int8_vectorwise_quant(A, threshold=0.0):
    A = A.contiguous()
    M, K = _rows_k(A)
    out = _empty(A.shape, torch.int8)
    stats = torch.empty(M, dtype=_F32)
    outl = threshold > 0.0
    cols = torch.empty(K, dtype=torch.int64) if outl else None
    status, n = _cpu.int8_vectorwise_quant(_DTYPE[A.dtype], A.data_ptr(), M, K, float(threshold), out.data_ptr(),
                                           stats.data_ptr(), cols.data_ptr() if outl else 0, torch.get_num_threads())
    _check(status)
    # shrunk in place to the n columns found: one torch call, where a slice and a copy were two (each costs
    # ~10-20 us when the kernel before has pushed Python's working set out of the caches, i.e. in every layer)
    return out, stats, (cols.resize_(n) if outl else None)


def int8_vectorwise_dequant(A, stats):
    A, stats = A.contiguous(), stats.contiguous()
    M, K = _rows_k(A)
    out = _empty(A.shape, _F32)
    _check(_cpu.int8_vectorwise_dequant(A.data_ptr(), M, K, stats.data_ptr(), out.data_ptr(), torch.get_num_threads()))
    return out


def int8_double_quant(A, threshold=0.0):
    A = A.contiguous()
    M, K = _rows_k(A)
    out_row = _empty(A.shape, torch.int8)
    out_col = _empty(A.shape, torch.int8)
    row_stats = torch.empty(M, dtype=_F32)
    col_stats = torch.empty(K, dtype=_F32)
    outl = threshold > 0.0
    cols = torch.empty(K, dtype=torch.int64) if outl else None
    status, n = _cpu.int8_double_quant(_DTYPE[A.dtype], A.data_ptr(), M, K, float(threshold), out_row.data_ptr(),
                                       out_col.data_ptr(), row_stats.data_ptr(), col_stats.data_ptr(),
                                       cols.data_ptr() if outl else 0, torch.get_num_threads())
    _check(status)
    return out_row, out_col, row_stats, col_stats, (cols.resize_(n) if outl else None)


def int8_linear_matmul_out(A, B, out):
    A, B = A.contiguous(), B.contiguous()
    M, K = _rows_k(A)
    _check(_cpu.int8_linear_matmul(A.data_ptr(), B.data_ptr(), M, B.shape[0], K, out.data_ptr(),
                                   torch.get_num_threads()))


def int8_linear_matmul(A, B):
    out = _empty((*A.shape[:-1], B.shape[0]), torch.int32)
    int8_linear_matmul_out(A, B, out)
    return out




def int8_mm_dequant(A, row_stats, col_stats, dtype=None, bias=None):
    A, row_stats, col_stats = A.contiguous(), row_stats.contiguous(), col_stats.contiguous()
    dtype = dtype or torch.float16
    M, N = _rows_k(A)
    out = _empty(A.shape, dtype)
    bias, bdt, bptr = _bias_args(bias)
    _check(_cpu.int8_mm_dequant(A.data_ptr(), M, N, row_stats.data_ptr(), col_stats.data_ptr(), bdt, bptr,
                                _DTYPE[dtype], out.data_ptr(), torch.get_num_threads()))
    return out


def int8_scaled_mm(A, B, row_stats, col_stats, bias=None, dtype=None):
    A, B = A.contiguous(), B.contiguous()
    row_stats, col_stats = row_stats.contiguous(), col_stats.contiguous()
    dtype = dtype or torch.float16
    M, K = _rows_k(A)
    N = B.shape[0]
    out = _empty((*A.shape[:-1], N), dtype)
    bias, bdt, bptr = _bias_args(bias)
    _check(_cpu.int8_scaled_mm(A.data_ptr(), B.data_ptr(), M, N, K, row_stats.data_ptr(), col_stats.data_ptr(), bdt,
                               bptr, _DTYPE[dtype], out.data_ptr(), torch.get_num_threads()))
    return out


def int8_mixed_scaled_mm(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
    """Native: the int8 matmul, its dequantization, bias and the outlier columns of A in one fused pass."""
    A2 = A if A.dim() == 2 else A.reshape(-1, A.shape[-1])
    if outlier_cols is None or outlier_cols.numel() == 0:
        return int8_scaled_mm(CA, CB, SCA, SCB, bias, A.dtype), A2.new_empty((A2.shape[0], 0))
    A2, CA, CB = A2.contiguous(), CA.contiguous(), CB.contiguous()
    SCA, SCB = SCA.contiguous(), SCB.contiguous()
    cols = outlier_cols if outlier_cols.dtype == torch.int64 else outlier_cols.to(torch.int64)
    cols = cols.contiguous()
    M, K = A2.shape
    N = CB.shape[0]
    out = _empty((*CA.shape[:-1], N), A.dtype)
    bias, bdt, bptr = _bias_args(bias)
    _check(_cpu.int8_mixed_scaled_mm(_DTYPE[A.dtype], A2.data_ptr(), CA.data_ptr(), CB.data_ptr(), M, N, K,
                                     SCA.data_ptr(), SCB.data_ptr(), cols.data_ptr(), cols.numel(), bdt, bptr,
                                     out.data_ptr(), torch.get_num_threads()))
    return out, torch.index_select(A2, 1, cols)  # A2[:, cols], at half the cost


def int8_mixed_linear(A, CB, SCB, bias=None, threshold=0.0):
    """Native: the activation quantization and the fused mixed matmul in one call (one op per layer)."""
    A, CB, SCB = _contig(A), _contig(CB), _contig(SCB)
    K = A.shape[-1]
    N = CB.shape[0]
    out = _empty((*A.shape[:-1], N), A.dtype)
    bias, bdt, bptr = _bias_args(bias)
    M = A.numel() // K if K else math.prod(A.shape[:-1])
    _check(_cpu.int8_mixed_linear(_DTYPE[A.dtype], A.data_ptr(), M, K, CB.data_ptr(), N,
                                  SCB.data_ptr(), float(threshold), bdt, bptr, out.data_ptr(), torch.get_num_threads()))
    return out


# ------------------------------------------------------------------------------------ optimizers

# the native kernel numbers the update rules in the order of _ops.OPTIMIZER_NAMES (C++ enum OptimName)
_OPTIM = {name: i for i, name in enumerate(OPTIMIZER_NAMES)}


def _optim_contiguous(*tensors) -> bool:
    return all(t is None or t.is_contiguous() for t in tensors)


def optimizer_update_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, param_norm, beta1, beta2,
                           beta3, alpha, eps, weight_decay, step, lr, gnorm_scale, skip_zeros=False):
    uv = unorm_vec if max_unorm > 0.0 else None
    _check(_cpu.optimizer_update_32bit(
        _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), p.numel(), state1.data_ptr(),
        _ptr(state2), _ptr(uv), max_unorm, param_norm, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr,
        gnorm_scale, skip_zeros, torch.get_num_threads()))


def _supports_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, *args, **kwargs) -> bool:
    """updates in place through data pointers: g, p, the states (and unorm_vec) must be contiguous"""
    return _optim_contiguous(g, p, state1, state2, unorm_vec if max_unorm > 0.0 else None)


def optimizer_update_8bit_blockwise(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr,
                                    qmap1, qmap2, absmax1, absmax2, weight_decay, gnorm_scale, skip_zeros=False):
    q1 = qmap1.contiguous()
    q2 = qmap2.contiguous() if state2 is not None else None
    _check(_cpu.optimizer_update_8bit_blockwise(
        _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), p.numel(), state1.data_ptr(),
        _ptr(state2), beta1, beta2, beta3, alpha, eps, step, lr, q1.data_ptr(), _ptr(q2), absmax1.data_ptr(),
        _ptr(absmax2) if state2 is not None else 0, weight_decay, gnorm_scale, skip_zeros,
        torch.get_num_threads()))


def _supports_8bit(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr, qmap1, qmap2,
                   absmax1, absmax2, *args, **kwargs) -> bool:
    """contiguous tensors; a one-state rule given a state2 is left to the reference"""
    # a one-state rule given a state2 re-quantizes that state in the reference: left to the reference
    if state2 is not None and optimizer_name not in ("adam", "lamb", "ademamix"):
        return False
    return _optim_contiguous(g, p, state1, state2, absmax1, absmax2 if state2 is not None else None)


# ------------------------------------------------------------------------------------ registration

KERNELS = {  # op -> (kernel, supports predicate or None for "every call that passed the check")
    "quantize_blockwise": (quantize_blockwise, None),
    "dequantize_blockwise": (dequantize_blockwise, None),
    "dequantize_blockwise.out": (dequantize_blockwise_out, _out_contiguous),
    "quantize_4bit": (quantize_4bit, None),
    "dequantize_4bit": (dequantize_4bit, None),
    "dequantize_4bit.out": (dequantize_4bit_out, _out_contiguous),
    "gemv_4bit": (gemv_4bit, None),
    "gemv_4bit.out": (gemv_4bit_out, _out_contiguous),
    "gemm_4bit": (gemm_4bit, None),
    "int8_vectorwise_quant": (int8_vectorwise_quant, None),
    "int8_vectorwise_dequant": (int8_vectorwise_dequant, None),
    "int8_double_quant": (int8_double_quant, None),
    "int8_linear_matmul": (int8_linear_matmul, None),
    "int8_linear_matmul.out": (int8_linear_matmul_out, _out_contiguous),
    "int8_mm_dequant": (int8_mm_dequant, None),
    "int8_scaled_mm": (int8_scaled_mm, None),
    "int8_mixed_scaled_mm": (int8_mixed_scaled_mm, None),
    "int8_mixed_linear": (int8_mixed_linear, None),
    # in-place updates: states / absmax written through their data pointers (non-contiguous ones -> reference)
    "optimizer_update_32bit": (optimizer_update_32bit, _supports_32bit),
    "optimizer_update_8bit_blockwise": (optimizer_update_8bit_blockwise, _supports_8bit),
}

#: op -> verification level (see bnb_core/backends/__init__.py)
SUPPORT = {op: "runs in CI" for op in KERNELS}

_loaded = False


def load() -> Optional[str]:
    """Register the native CPU kernels. Returns None when loaded, else why not (for `python -m bnb_core`)."""
    global _loaded
    if _cpu is None:
        return IMPORT_ERROR
    if not _loaded:
        for op, (fn, supports) in KERNELS.items():
            registry.register_kernel(op, "cpu", fn, supports=supports, name=NAME)
        registry.register_weight_placement("cpu", place_weight)
        _loaded = True
    warning = _cpu.isa_warning()
    if warning:
        import warnings

        warnings.warn(f"bnb_core: {warning}", stacklevel=2)
    return None


def info() -> dict:
    """Build/runtime facts of the CPU backend (for `python -m bnb_core`)."""
    if _cpu is None:
        return {"loaded": False, "error": IMPORT_ERROR}
    return {"loaded": True, "isa": _cpu.isa(), "available_isas": list(_cpu.available_isas()),
            "isa_warning": _cpu.isa_warning(), "threads": torch.get_num_threads(),
            "thp_mode": _cpu.thp_mode(), "hugepage_hint": _cpu.hugepage_enabled()}
