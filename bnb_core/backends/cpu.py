"""CPU backend: registers the native kernels of ``bnb_core._cpu`` for the "cpu" device.

The native module is torch-free: it takes data pointers as ints and returns a status code. This file
converts tensors to pointers and raises RuntimeError on a nonzero status. The kernels cover every call
that passes the op's check except writing into a non-contiguous ``out`` (declared in ``supports``), which
falls back to the reference through the registry.

ISA: ``bnb_core._cpu.isa()`` is the active path (avx512, avx2 or scalar), chosen at import time as the
best the CPU supports; the environment variable ``BNB_CPU_ISA=avx512|avx2|scalar`` forces one (when the
CPU lacks it the best supported path is used and ``_cpu.isa_warning()`` says so). Threads follow
``torch.get_num_threads()``.

Fresh outputs of 4 MiB or more get a transparent-huge-page hint (``_empty``; see docs/architecture.md,
"Allocation"): ``BNB_CPU_HUGEPAGE=0`` or ``bnb_core._cpu.set_hugepage_enabled(False)`` turns it off.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import formats, registry

NAME = "cpu-native"

#: the imported native module, or None; IMPORT_ERROR says why it is None
_cpu = None
IMPORT_ERROR: Optional[str] = None

try:
    from .. import _cpu  # type: ignore[no-redef]
except Exception as e:  # not built, or built for another platform
    _cpu = None
    IMPORT_ERROR = f"bnb_core._cpu could not be imported ({type(e).__name__}: {e})"

_DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_QUANT = {"nf4": 0, "fp4": 1}
_F32 = torch.float32
_U8 = torch.uint8


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(_cpu.status_message(status))


def _nblocks(n: int, blocksize: int) -> int:
    return -(-n // blocksize)


# The op's check (bnb_core/_ops.py) has validated dtypes, sizes, blocksizes and devices before a kernel
# runs; the kernels only make their inputs contiguous. The one thing they do not cover is writing into a
# non-contiguous `out`: those calls go to the reference.


_HUGEPAGE_MIN_BYTES = getattr(_cpu, "HUGEPAGE_MIN_BYTES", 4 << 20)


def _empty(shape, dtype):
    """torch.empty for an output the kernel is about to write in full. Large ones (>= 4 MiB) get
    madvise(MADV_HUGEPAGE) on the 2 MiB pages lying inside them when the system's THP mode is "madvise":
    first-touch faults then cost one per 2 MiB instead of one per 4 KiB (4096x4096 bf16: ~15 ms -> ~3 ms
    here). Only this new buffer is advised; nothing global changes."""
    out = torch.empty(shape, dtype=dtype)
    nbytes = out.numel() * out.element_size()
    if nbytes >= _HUGEPAGE_MIN_BYTES:
        _cpu.advise_hugepage(out.data_ptr(), nbytes)
    return out


def _out_contiguous(*args, **kwargs) -> bool:
    out = kwargs["out"] if "out" in kwargs else args[-1]
    return out.is_contiguous()


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


# ------------------------------------------------------------------------------------ registration

KERNELS = {  # op -> (kernel, supports predicate or None for "every call that passed the check")
    "quantize_blockwise": (quantize_blockwise, None),
    "dequantize_blockwise": (dequantize_blockwise, None),
    "dequantize_blockwise.out": (dequantize_blockwise_out, _out_contiguous),
    "quantize_4bit": (quantize_4bit, None),
    "dequantize_4bit": (dequantize_4bit, None),
    "dequantize_4bit.out": (dequantize_4bit_out, _out_contiguous),
}

_loaded = False


def load() -> Optional[str]:
    """Register the native CPU kernels. Returns None when loaded, else why not (for `python -m bnb_core`)."""
    global _loaded
    if _cpu is None:
        return IMPORT_ERROR
    if not _loaded:
        for op, (fn, supports) in KERNELS.items():
            registry.register_kernel(op, "cpu", fn, supports=supports, name=NAME)
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
