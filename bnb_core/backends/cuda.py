"""CUDA backend (and ROCm, its HIP build flavour): registers the kernels of ``bnb_core._cuda`` (or
``bnb_core._hip`` on a ROCm build of torch, which also uses the "cuda" device) for the "cuda" device.

The native module is torch-free: every entry point takes (device index, raw stream handle, data pointers
as ints, sizes) and returns a status code; this file converts tensors, passes the tensors' device and
torch's current stream on it (so kernels follow ``torch.cuda.stream(...)`` contexts, work under CUDA graph
capture and never synchronize), and raises RuntimeError with the module's message on a nonzero status.

Verification: nothing of this backend has run on a GPU here (no GPU in CI); ``SUPPORT`` says so per op.
When a GPU is lent, ``python -m bnb_core check --device cuda`` is the conformance run.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import formats, registry
from .._ops import OPTIMIZER_NAMES, TWO_STATE_OPTIMIZERS

NAME = "cuda-native"
DEVICE = "cuda"

#: the imported native module, or None; IMPORT_ERROR says why it is None
_mod = None
IMPORT_ERROR: Optional[str] = None


def _import_native():
    global _mod, IMPORT_ERROR
    hip = getattr(torch.version, "hip", None) is not None
    name = "_hip" if hip else "_cuda"
    try:
        if hip:
            from .. import _hip as m  # type: ignore[attr-defined]
        else:
            from .. import _cuda as m  # type: ignore[attr-defined]
        _mod = m
    except Exception as e:  # not built (no nvcc/hipcc at install time), or built for another platform
        _mod = None
        IMPORT_ERROR = f"bnb_core.{name} could not be imported ({type(e).__name__}: {e})"


_import_native()

_DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_QUANT = {"nf4": 0, "fp4": 1}
_F32 = torch.float32
_U8 = torch.uint8

try:  # ~0.3 us, against ~3 us for torch.cuda.current_stream(dev).cuda_stream
    _raw_stream = torch._C._cuda_getCurrentRawStream
except AttributeError:  # torch built without CUDA: no cuda tensor can reach these kernels
    def _raw_stream(index):
        return torch.cuda.current_stream(index).cuda_stream


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(_mod.error_message(status))


def _nblocks(n: int, blocksize: int) -> int:
    return -(-n // blocksize)


def _dev(t: torch.Tensor) -> int:
    return t.device.index


def _out_contiguous(*args, **kwargs) -> bool:
    out = kwargs["out"] if "out" in kwargs else args[-1]
    return out.is_contiguous()


# ------------------------------------------------------------------------------------ blockwise 8-bit


def quantize_blockwise(A, code, blocksize):
    A, code = A.contiguous(), code.contiguous()
    n, d = A.numel(), _dev(A)
    out = torch.empty(A.shape, dtype=_U8, device=A.device)
    absmax = torch.empty(_nblocks(n, blocksize), dtype=_F32, device=A.device)
    _check(_mod.quantize_blockwise(d, _raw_stream(d), _DTYPE[A.dtype], A.data_ptr(), n, code.data_ptr(), blocksize,
                                   out.data_ptr(), absmax.data_ptr()))
    return out, absmax


def dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
    A, absmax, code = A.contiguous(), absmax.contiguous(), code.contiguous()
    d = _dev(A)
    _check(_mod.dequantize_blockwise(d, _raw_stream(d), _DTYPE[out.dtype], A.data_ptr(), A.numel(), code.data_ptr(),
                                     absmax.data_ptr(), blocksize, out.data_ptr()))


def dequantize_blockwise(A, absmax, code, blocksize, dtype):
    out = torch.empty(A.shape, dtype=dtype, device=A.device)
    dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out)
    return out


# ------------------------------------------------------------------------------------ 4-bit


def quantize_4bit(A, blocksize, quant_type, quant_storage):
    A = A.contiguous()
    n, d = A.numel(), _dev(A)
    itemsize = quant_storage.itemsize
    numel = formats.storage_numel_4bit(n, itemsize)
    nbytes = numel * itemsize
    packed = torch.empty(nbytes, dtype=_U8, device=A.device)
    absmax = torch.empty(_nblocks(n, blocksize), dtype=_F32, device=A.device)
    _check(_mod.quantize_4bit(d, _raw_stream(d), _DTYPE[A.dtype], A.data_ptr(), n, blocksize, _QUANT[quant_type],
                              packed.data_ptr(), nbytes, absmax.data_ptr()))
    return packed.view(quant_storage).reshape(numel, 1), absmax


def dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
    A, absmax = A.contiguous(), absmax.contiguous()
    d = _dev(A)
    _check(_mod.dequantize_4bit(d, _raw_stream(d), _DTYPE[out.dtype], A.data_ptr(), out.numel(), absmax.data_ptr(),
                                blocksize, _QUANT[quant_type], out.data_ptr()))


def dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
    out = torch.empty(tuple(shape), dtype=dtype, device=A.device)
    dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out)
    return out


# ------------------------------------------------------------------------------------ optimizers

# the native kernels number the update rules in the order of _ops.OPTIMIZER_NAMES (enum optim::Name)
_OPTIM = {name: i for i, name in enumerate(OPTIMIZER_NAMES)}
_F64 = torch.float64


def _optr(t) -> int:
    return 0 if t is None else t.data_ptr()


def _optim_contiguous(*tensors) -> bool:
    return all(t is None or t.is_contiguous() for t in tensors)


def optimizer_update_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, param_norm, beta1, beta2,
                           beta3, alpha, eps, weight_decay, step, lr, gnorm_scale, skip_zeros=False):
    n, d = p.numel(), _dev(p)
    uv, ws, ws_len = None, None, 0
    if max_unorm > 0.0:  # trust ratio: per-CTA partial norms in a workspace (no allocation in native code)
        uv = unorm_vec
        ws_len = _mod.optimizer_32bit_workspace_len(n)
        ws = torch.empty(ws_len, dtype=_F64, device=p.device) if ws_len else None
    _check(_mod.optimizer_update_32bit(
        d, _raw_stream(d), _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), n, state1.data_ptr(),
        _optr(state2), _optr(uv), max_unorm, param_norm, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr,
        gnorm_scale, skip_zeros, _optr(ws), ws_len))


def _supports_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, *args, **kwargs) -> bool:
    return _optim_contiguous(g, p, state1, state2, unorm_vec if max_unorm > 0.0 else None)


def optimizer_update_8bit_blockwise(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr,
                                    qmap1, qmap2, absmax1, absmax2, weight_decay, gnorm_scale, skip_zeros=False):
    d = _dev(p)
    q1 = qmap1.contiguous()
    two = optimizer_name in TWO_STATE_OPTIMIZERS
    q2 = qmap2.contiguous() if two else None
    _check(_mod.optimizer_update_8bit_blockwise(
        d, _raw_stream(d), _OPTIM[optimizer_name], _DTYPE[p.dtype], g.data_ptr(), p.data_ptr(), p.numel(),
        state1.data_ptr(), _optr(state2) if two else 0, beta1, beta2, beta3, alpha, eps, step, lr, q1.data_ptr(),
        _optr(q2), absmax1.data_ptr(), _optr(absmax2) if two else 0, weight_decay, gnorm_scale, skip_zeros))


def _supports_8bit(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr, qmap1, qmap2,
                   absmax1, absmax2, *args, **kwargs) -> bool:
    # a one-state rule given a state2 re-quantizes that state in the reference: left to the reference
    if state2 is not None and optimizer_name not in TWO_STATE_OPTIMIZERS:
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
    # in-place updates: states / absmax written through their data pointers (non-contiguous ones -> reference)
    "optimizer_update_32bit": (optimizer_update_32bit, _supports_32bit),
    "optimizer_update_8bit_blockwise": (optimizer_update_8bit_blockwise, _supports_8bit),
}

#: op -> verification level of the CUDA build (see bnb_core/backends/__init__.py): compiled in CI by nvcc,
#: never run here (no GPU in CI).
SUPPORT = {op: "compiles" for op in KERNELS}
#: the same for the HIP build of these sources (backends/rocm)
SUPPORT_HIP: dict = {}

_loaded = False


def available() -> Optional[str]:
    """None when the kernels can serve this process, else why not."""
    if _mod is None:
        return IMPORT_ERROR
    if not torch.cuda.is_available():
        return f"bnb_core.{'_hip' if _mod.PLATFORM == 'hip' else '_cuda'} is built, but torch sees no CUDA device"
    want = "hip" if getattr(torch.version, "hip", None) else "cuda"
    if _mod.PLATFORM != want:
        return f"the native module is a {_mod.PLATFORM} build but torch is a {want} build"
    return None


def load() -> Optional[str]:
    """Register the CUDA kernels. Returns None when loaded, else why not (for `python -m bnb_core`)."""
    global _loaded
    why = available()
    if why is not None:
        return why
    if not _loaded:
        for op, (fn, supports) in KERNELS.items():
            registry.register_kernel(op, DEVICE, fn, supports=supports, name=NAME)
        _loaded = True
    return None


def info() -> dict:
    if _mod is None:
        return {"loaded": False, "error": IMPORT_ERROR}
    return {"loaded": _loaded, "platform": _mod.PLATFORM, "archs": _mod.ARCHS, "runtime": _mod.runtime_version(),
            "device_count": _mod.device_count()}
