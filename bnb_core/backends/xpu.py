"""XPU backend (Intel GPUs, SYCL): registers the kernels of ``bnb_core._xpu`` for the "xpu" device.

The native module (backends/xpu, built with icpx -fsycl when ``BNB_XPU=ON``) is torch-free: data pointers
and the address of a ``sycl::queue`` as ints, an int status back. The queue is torch's current XPU stream
(``torch.xpu.current_stream(device).sycl_queue``), so the kernels run in stream order with every other op;
intel-extension-for-pytorch is not used. A nonzero status raises RuntimeError.

Verification level: "runs on a CPU SYCL device". No Intel GPU is available here; tests/test_xpu_sycl.py
builds the same bindings, launch code and kernels as a harness module whose kernels DPC++'s run-time
compiler builds, runs every kernel through ``make_kernels`` below on Intel's OpenCL CPU device and checks it
against the reference on the conformance cases.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Callable, Optional

import torch

from .. import formats, registry
from ._glue import DTYPE as _DTYPE, QUANT as _QUANT, ptr as _ptr, out_contiguous as _out_contiguous
from .._ops import OPTIMIZER_NAMES, TWO_STATE_OPTIMIZERS

NAME = "xpu-sycl"
DEVICE = "xpu"

#: the imported native module, or None; IMPORT_ERROR says why it is None
_xpu = None
IMPORT_ERROR: Optional[str] = None

try:
    from .. import _xpu  # type: ignore[no-redef]
except Exception as e:  # not built (needs icpx: BNB_XPU=ON), or built for another platform
    _xpu = None
    if importlib.util.find_spec(f"{__package__.rpartition('.')[0]}._xpu") is None:
        IMPORT_ERROR = "bnb_core._xpu is not built (it needs Intel's icpx: install with BNB_XPU=ON)"
    else:
        IMPORT_ERROR = f"bnb_core._xpu could not be imported ({type(e).__name__}: {e})"

# the native kernels number the update rules in the order of _ops.OPTIMIZER_NAMES
_OPTIM = {name: i for i, name in enumerate(OPTIMIZER_NAMES)}
_F32 = torch.float32
_U8 = torch.uint8




def _contig(t):
    return t if t.is_contiguous() else t.contiguous()


def _torch_queue(device: torch.device) -> int:
    """Address of the sycl::queue of torch's current stream on `device`."""
    return torch.xpu.current_stream(device).sycl_queue




def _optim_contiguous(*tensors) -> bool:
    return all(t is None or t.is_contiguous() for t in tensors)


def _supports_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, *args, **kwargs) -> bool:
    return _optim_contiguous(g, p, state1, state2, unorm_vec if max_unorm > 0.0 else None)


def _supports_8bit(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr, qmap1, qmap2,
                   absmax1, absmax2, *args, **kwargs) -> bool:
    # a one-state rule given a state2 re-quantizes that state in the reference: left to the reference
    if state2 is not None and optimizer_name not in TWO_STATE_OPTIMIZERS:
        return False
    return _optim_contiguous(g, p, state1, state2, absmax1, absmax2 if state2 is not None else None)


def make_kernels(mod, queue_of: Callable[[torch.device], int] = _torch_queue) -> dict:
    """``{op: (kernel, supports)}`` calling the native module `mod` on the queue ``queue_of(device)``.

    Production: ``make_kernels(bnb_core._xpu)`` (torch's XPU queue). The SYCL test harness passes its own
    module (same bindings) and its CPU-device queue, and calls these kernels with CPU tensors (the OpenCL CPU
    device reads host memory), so the glue below is what the harness tests too.
    """

    def check(status: int) -> None:
        if status != 0:
            raise RuntimeError(mod.status_message(status))

    def nb(n: int, blocksize: int) -> int:
        return -(-n // blocksize)

    # -------------------------------------------------------------------------- blockwise 8-bit

    def quantize_blockwise(A, code, blocksize):
        A, code = _contig(A), _contig(code)
        n = A.numel()
        out = torch.empty(A.shape, dtype=_U8, device=A.device)
        absmax = torch.empty(nb(n, blocksize), dtype=_F32, device=A.device)
        check(mod.quantize_blockwise(queue_of(A.device), _DTYPE[A.dtype], A.data_ptr(), n, code.data_ptr(), blocksize,
                                     out.data_ptr(), absmax.data_ptr()))
        return out, absmax

    def dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
        A, absmax, code = _contig(A), _contig(absmax), _contig(code)
        check(mod.dequantize_blockwise(queue_of(A.device), _DTYPE[out.dtype], A.data_ptr(), A.numel(), code.data_ptr(),
                                       absmax.data_ptr(), blocksize, out.data_ptr()))

    def dequantize_blockwise(A, absmax, code, blocksize, dtype):
        out = torch.empty(A.shape, dtype=dtype, device=A.device)
        dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out)
        return out

    # -------------------------------------------------------------------------- 4-bit

    def quantize_4bit(A, blocksize, quant_type, quant_storage):
        A = _contig(A)
        n = A.numel()
        itemsize = quant_storage.itemsize
        numel = formats.storage_numel_4bit(n, itemsize)
        nbytes = numel * itemsize
        packed = torch.empty(nbytes, dtype=_U8, device=A.device)
        absmax = torch.empty(nb(n, blocksize), dtype=_F32, device=A.device)
        check(mod.quantize_4bit(queue_of(A.device), _DTYPE[A.dtype], A.data_ptr(), n, blocksize, _QUANT[quant_type],
                                packed.data_ptr(), nbytes, absmax.data_ptr()))
        return packed.view(quant_storage).reshape(numel, 1), absmax

    def dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
        A, absmax = _contig(A), _contig(absmax)
        check(mod.dequantize_4bit(queue_of(A.device), _DTYPE[out.dtype], A.data_ptr(), out.numel(), absmax.data_ptr(),
                                  blocksize, _QUANT[quant_type], out.data_ptr()))

    def dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
        out = torch.empty(tuple(shape), dtype=dtype, device=A.device)
        dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out)
        return out

    # -------------------------------------------------------------------------- fused 4-bit matmul

    def matmul_4bit(A, B, shapeB, absmax, blocksize, code, bias, absmax_8bit, absmax_code, absmax_offset, out):
        N, K = int(shapeB[0]), int(shapeB[1])
        A, B, absmax = _contig(A), _contig(B), _contig(absmax)
        code = _contig(code if code.dtype == _F32 else code.to(_F32))
        if absmax_8bit is not None:
            absmax_8bit, absmax_code, absmax_offset = _contig(absmax_8bit), _contig(absmax_code), _contig(absmax_offset)
        if bias is not None:
            bias = _contig(bias)
        M = A.numel() // K if K else math.prod(A.shape[:-1])
        check(mod.gemm_4bit(queue_of(A.device), _DTYPE[A.dtype], A.data_ptr(), M, K, B.data_ptr(),
                            B.numel() * B.element_size(), N, absmax.data_ptr(), blocksize, code.data_ptr(),
                            _ptr(absmax_8bit), _ptr(absmax_code), _ptr(absmax_offset), _ptr(bias), out.data_ptr()))

    def gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
        matmul_4bit(A, B, shapeB, absmax, blocksize, code, None, None, None, None, out)

    def gemv_4bit(A, B, shapeB, absmax, code, blocksize):
        out = torch.empty((*A.shape[:-1], shapeB[0]), dtype=A.dtype, device=A.device)
        gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out)
        return out

    def gemm_4bit(A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None,
                  absmax_offset=None):
        out = torch.empty((*A.shape[:-1], shapeB[0]), dtype=A.dtype, device=A.device)
        matmul_4bit(A, B, shapeB, absmax, blocksize, formats.code_4bit(quant_type, A.device), bias, absmax_8bit,
                    absmax_code, absmax_offset, out)
        return out

    # -------------------------------------------------------------------------- optimizers

    def optimizer_update_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, param_norm, beta1, beta2,
                               beta3, alpha, eps, weight_decay, step, lr, gnorm_scale, skip_zeros=False):
        uv = unorm_vec if max_unorm > 0.0 else None
        scratch = torch.empty(mod.OPTIM_SCRATCH_FLOATS, dtype=_F32, device=p.device) if uv is not None else None
        check(mod.optimizer_update_32bit(
            queue_of(p.device), _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), p.numel(),
            state1.data_ptr(), _ptr(state2), _ptr(uv), max_unorm, param_norm, beta1, beta2, beta3, alpha, eps,
            weight_decay, step, lr, gnorm_scale, skip_zeros, _ptr(scratch), 0 if scratch is None else scratch.numel()))

    def optimizer_update_8bit_blockwise(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step,
                                        lr, qmap1, qmap2, absmax1, absmax2, weight_decay, gnorm_scale,
                                        skip_zeros=False):
        q1 = _contig(qmap1)
        q2 = _contig(qmap2) if state2 is not None else None
        check(mod.optimizer_update_8bit_blockwise(
            queue_of(p.device), _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), p.numel(),
            state1.data_ptr(), _ptr(state2), beta1, beta2, beta3, alpha, eps, step, lr, q1.data_ptr(), _ptr(q2),
            absmax1.data_ptr(), _ptr(absmax2) if state2 is not None else 0, weight_decay, gnorm_scale, skip_zeros))

    return {  # op -> (kernel, supports predicate or None for "every call that passed the check")
        "quantize_blockwise": (quantize_blockwise, None),
        "dequantize_blockwise": (dequantize_blockwise, None),
        "dequantize_blockwise.out": (dequantize_blockwise_out, _out_contiguous),
        "quantize_4bit": (quantize_4bit, None),
        "dequantize_4bit": (dequantize_4bit, None),
        "dequantize_4bit.out": (dequantize_4bit_out, _out_contiguous),
        "gemv_4bit": (gemv_4bit, None),
        "gemv_4bit.out": (gemv_4bit_out, _out_contiguous),
        "gemm_4bit": (gemm_4bit, None),
        # in-place updates: states / absmax written through their data pointers (non-contiguous ones -> reference)
        "optimizer_update_32bit": (optimizer_update_32bit, _supports_32bit),
        "optimizer_update_8bit_blockwise": (optimizer_update_8bit_blockwise, _supports_8bit),
    }


#: op -> verification level (see bnb_core/backends/__init__.py) for every op with an XPU kernel (the LLM.int8()
#: ops run the reference on XPU): each kernel passes the conformance cases on Intel's OpenCL CPU device in CI
#: (tests/test_xpu_sycl.py); never run on an Intel GPU here.
SUPPORT = {op: "runs on a CPU SYCL device" for op in make_kernels(None)}

_loaded = False


def load() -> Optional[str]:
    """Register the XPU kernels. Returns None when loaded, else why not (for `python -m bnb_core`)."""
    global _loaded
    if _xpu is None:
        return IMPORT_ERROR
    if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        return "torch.xpu is not available (no Intel GPU, or a torch build without XPU support)"
    if not _loaded:
        for op, (fn, supports) in make_kernels(_xpu).items():
            registry.register_kernel(op, DEVICE, fn, supports=supports, name=NAME)
        _loaded = True
    return None
