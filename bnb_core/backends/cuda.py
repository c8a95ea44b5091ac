"""CUDA backend (and ROCm, its HIP build flavour): registers the kernels of ``bnb_core._cuda`` (or
``bnb_core._hip`` on a ROCm build of torch, which also uses the "cuda" device) for the "cuda" device.

The native module is torch-free: every entry point takes (device index, raw stream handle, data pointers
as ints, sizes) and returns a status code; this file converts tensors, passes the tensors' device and
torch's current stream on it (so kernels follow ``torch.cuda.stream(...)`` contexts, work under CUDA graph
capture and never synchronize), and raises RuntimeError with the module's message on a nonzero status.

Verification: nothing of this backend has run on a GPU here (no GPU in CI); ``SUPPORT`` says so per op. The
kernel logic of the ``EMULATED`` ops runs on CPU through the CUDA emulator (tests/test_cuda_emu.py). When a
GPU is lent, ``python -m bnb_core check --device cuda`` is the conformance run.
"""

from __future__ import annotations

from typing import Optional

import torch

from .. import formats, registry

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


# ------------------------------------------------------------------------------------ registration

KERNELS = {  # op -> (kernel, supports predicate or None for "every call that passed the check")
    "quantize_blockwise": (quantize_blockwise, None),
    "dequantize_blockwise": (dequantize_blockwise, None),
    "dequantize_blockwise.out": (dequantize_blockwise_out, _out_contiguous),
    "quantize_4bit": (quantize_4bit, None),
    "dequantize_4bit": (dequantize_4bit, None),
    "dequantize_4bit.out": (dequantize_4bit_out, _out_contiguous),
}

#: ops whose kernels (the same sources and host entry points as the nvcc build) run on CPU in CI through the
#: CUDA emulator and pass every conformance case there (tests/test_cuda_emu.py, backends/cuda/emu); add an op
#: here only with that test passing for it.
EMULATED = (
    "quantize_blockwise", "dequantize_blockwise", "dequantize_blockwise.out",
    "quantize_4bit", "dequantize_4bit", "dequantize_4bit.out",
)

#: op -> verification level of the CUDA build (see bnb_core/backends/__init__.py): compiled in CI by nvcc (no
#: GPU in CI); "kernel logic tested on CPU" for the EMULATED ops. Nothing here has run on a GPU.
SUPPORT = {op: "kernel logic tested on CPU" if op in EMULATED else "compiles" for op in KERNELS}
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
