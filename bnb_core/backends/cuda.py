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

import math
import os
import warnings
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




def _dev(t: torch.Tensor) -> int:
    return t.device.index




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


# ------------------------------------------------------------------------------------ LLM.int8()
#
# Matmul kernel choice: BNB_CUDA_INT8_MM = own | torch | auto (default auto), read at import; set_int8_mm()
# changes it at run time (benchmarks). "own": the tensor-core kernels of bnb_core._cuda (kernels_int8.cu) for
# every shape. "torch": torch._int_mm (cuBLASLt inside torch) where its shape rules hold (M > 16, K and N
# multiples of 8), else the own kernels. "auto": own kernels up to M = 128 rows (memory-bound on the weight,
# where the own streaming tiles and the fused dequantization epilogue win), torch._int_mm above when allowed.
# The boundary is a first guess to be settled by benchmarks/bench_cuda_int8.py on hardware.
#
# Synchronization: int8_vectorwise_quant / int8_double_quant with threshold > 0 return a data-dependent
# number of outlier columns; the kernels compact them on the device and the count comes back with ONE
# device-to-host copy (.item()). Nothing else synchronizes.
#
# int8_mixed_scaled_mm: the int8 part runs fused (matmul + dequantization + bias, one kernel); the outlier
# part (A's outlier columns x the dequantized weight columns, a [M, n] x [n, N] product with n small) is
# gathered by one kernel (int8_outlier_operands) and added with torch's addmm_ in A's dtype: the reference's
# own formula (two roundings, within the conformance bound).

_INT8_MM_MODES = ("own", "torch", "auto")
_INT8_MM = os.environ.get("BNB_CUDA_INT8_MM", "auto").strip().lower() or "auto"
if _INT8_MM not in _INT8_MM_MODES:
    warnings.warn(f"BNB_CUDA_INT8_MM={_INT8_MM!r} is not one of {_INT8_MM_MODES}; using 'auto'", stacklevel=1)
    _INT8_MM = "auto"
_INT8_TORCH_MIN_M = 128  # auto: torch._int_mm above this many rows
_I8 = torch.int8
_I32 = torch.int32
_I64 = torch.int64


def set_int8_mm(mode: str) -> str:
    """Select the int8 matmul kernel ("own", "torch" or "auto"); returns the previous mode."""
    global _INT8_MM
    if mode not in _INT8_MM_MODES:
        raise ValueError(f"mode must be one of {_INT8_MM_MODES}, got {mode!r}")
    prev, _INT8_MM = _INT8_MM, mode
    return prev


def _use_torch_int_mm(M: int, N: int, K: int) -> bool:
    if _INT8_MM == "own":
        return False
    ok = M > 16 and K > 0 and K % 8 == 0 and N > 0 and N % 8 == 0
    return ok if _INT8_MM == "torch" else ok and M > _INT8_TORCH_MIN_M






_splits_cache: dict = {}


def _gemm_splits(d: int, M: int, N: int, K: int) -> int:
    key = (d, M, N, K)
    s = _splits_cache.get(key)
    if s is None:
        if len(_splits_cache) > 4096:
            _splits_cache.clear()
        s = _splits_cache[key] = _mod.int8_gemm_splits(d, M, N, K)
    return s


def _quant_outputs(A, K, threshold):
    """(workspace, cols buffer with the count at [K]) for the threshold > 0 paths, else (None, None)."""
    if threshold <= 0.0:
        return None, None
    ws = torch.empty(_mod.int8_outlier_workspace_bytes(K), dtype=_U8, device=A.device)
    cols = torch.empty(K + 1, dtype=_I64, device=A.device)
    return ws, cols


def _outlier_cols(cols, K):
    """The first count entries of cols (the count lies at cols[K]): one device-to-host copy."""
    return cols[: int(cols[K].item())]


def int8_vectorwise_quant(A, threshold=0.0):
    A = A.contiguous()
    M, K = _rows_k(A)
    d = _dev(A)
    out = torch.empty(A.shape, dtype=_I8, device=A.device)
    stats = torch.empty(M, dtype=_F32, device=A.device)
    ws, cols = _quant_outputs(A, K, threshold)
    _check(_mod.int8_vectorwise_quant(d, _raw_stream(d), _DTYPE[A.dtype], A.data_ptr(), M, K, float(threshold),
                                      out.data_ptr(), stats.data_ptr(), _ptr(ws), _ptr(cols),
                                      cols.data_ptr() + 8 * K if cols is not None else 0))
    return out, stats, (_outlier_cols(cols, K) if cols is not None else None)


def int8_double_quant(A, threshold=0.0):
    A = A.contiguous()
    M, K = _rows_k(A)
    d = _dev(A)
    out_row = torch.empty(A.shape, dtype=_I8, device=A.device)
    out_col = torch.empty(A.shape, dtype=_I8, device=A.device)
    row_stats = torch.empty(M, dtype=_F32, device=A.device)
    col_stats = torch.empty(K, dtype=_F32, device=A.device)
    ws, cols = _quant_outputs(A, K, threshold)
    _check(_mod.int8_double_quant(d, _raw_stream(d), _DTYPE[A.dtype], A.data_ptr(), M, K, float(threshold),
                                  out_row.data_ptr(), out_col.data_ptr(), row_stats.data_ptr(), col_stats.data_ptr(),
                                  _ptr(ws), _ptr(cols), cols.data_ptr() + 8 * K if cols is not None else 0))
    return out_row, out_col, row_stats, col_stats, (_outlier_cols(cols, K) if cols is not None else None)


def int8_vectorwise_dequant(A, stats):
    A, stats = A.contiguous(), stats.contiguous()
    M, K = _rows_k(A)
    d = _dev(A)
    out = torch.empty(A.shape, dtype=_F32, device=A.device)
    _check(_mod.int8_vectorwise_dequant(d, _raw_stream(d), A.data_ptr(), M, K, stats.data_ptr(), out.data_ptr()))
    return out


def int8_linear_matmul_out(A, B, out):
    A, B = A.contiguous(), B.contiguous()
    M, K = _rows_k(A)
    N = B.shape[0]
    if _use_torch_int_mm(M, N, K):
        torch._int_mm(A.reshape(M, K), B.t(), out=out.view(M, N))
        return
    d = _dev(A)
    _check(_mod.int8_linear_matmul(d, _raw_stream(d), A.data_ptr(), B.data_ptr(), M, N, K, out.data_ptr()))


def int8_linear_matmul(A, B):
    out = torch.empty((*A.shape[:-1], B.shape[0]), dtype=_I32, device=A.device)
    int8_linear_matmul_out(A, B, out)
    return out




def int8_mm_dequant(A, row_stats, col_stats, dtype=None, bias=None):
    A, row_stats, col_stats = A.contiguous(), row_stats.contiguous(), col_stats.contiguous()
    dtype = dtype or torch.float16
    M, N = _rows_k(A)
    d = _dev(A)
    out = torch.empty(A.shape, dtype=dtype, device=A.device)
    bias, bdt, bptr = _bias_args(bias)
    _check(_mod.int8_mm_dequant(d, _raw_stream(d), A.data_ptr(), M, N, row_stats.data_ptr(), col_stats.data_ptr(),
                                bdt, bptr, _DTYPE[dtype], out.data_ptr()))
    return out


def int8_scaled_mm(A, B, row_stats, col_stats, bias=None, dtype=None):
    A, B = A.contiguous(), B.contiguous()
    row_stats, col_stats = row_stats.contiguous(), col_stats.contiguous()
    dtype = dtype or torch.float16
    M, K = _rows_k(A)
    N = B.shape[0]
    d = _dev(A)
    if _use_torch_int_mm(M, N, K):  # cuBLASLt int32 product, then the dequantization kernel
        acc = torch._int_mm(A.reshape(M, K), B.t())
        return int8_mm_dequant(acc, row_stats, col_stats, dtype, bias).reshape(*A.shape[:-1], N)
    out = torch.empty((*A.shape[:-1], N), dtype=dtype, device=A.device)
    bias, bdt, bptr = _bias_args(bias)
    ws = None
    if M and N and K and _gemm_splits(d, M, N, K) > 1:
        ws = torch.empty((M, N), dtype=_I32, device=A.device)
    _check(_mod.int8_scaled_mm(d, _raw_stream(d), A.data_ptr(), B.data_ptr(), M, N, K, row_stats.data_ptr(),
                               col_stats.data_ptr(), bdt, bptr, _DTYPE[dtype], out.data_ptr(), _ptr(ws)))
    return out


def int8_mixed_scaled_mm(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
    """Fused int8 matmul + dequantization + bias, plus the outlier columns (gathered by one kernel, added by
    torch's addmm_ in A's dtype)."""
    K = A.shape[-1]
    A2 = A.reshape(-1, K)
    M = A2.shape[0]
    out = int8_scaled_mm(CA, CB, SCA, SCB, bias, A.dtype)
    if outlier_cols is None or outlier_cols.numel() == 0:
        return out, A2.new_empty((M, 0))
    A2, CB, SCB = A2.contiguous(), CB.contiguous(), SCB.contiguous()
    cols = outlier_cols.to(_I64).contiguous()
    N, n = CB.shape[0], cols.numel()
    d = _dev(A2)
    sub_a = torch.empty((M, n), dtype=A.dtype, device=A.device)
    sub_b = torch.empty((N, n), dtype=A.dtype, device=A.device)
    _check(_mod.int8_outlier_operands(d, _raw_stream(d), _DTYPE[A.dtype], A2.data_ptr(), CB.data_ptr(),
                                      SCB.data_ptr(), M, N, K, cols.data_ptr(), n, sub_a.data_ptr(),
                                      sub_b.data_ptr()))
    if M and N:
        out.view(M, N).addmm_(sub_a, sub_b.t())
    return out, sub_a


# ------------------------------------------------------------------------------------ fused 4-bit matmul

#: (device, dtype code, M, N, K) -> K splits the native plan takes (workspace of splits*M*N floats if > 1)
_splits_cache: dict = {}


def _contig(t):
    return t if t.is_contiguous() else t.contiguous()




def _splits(d: int, dt: int, M: int, N: int, K: int) -> int:
    key = (d, dt, M, N, K)
    s = _splits_cache.get(key)
    if s is None:
        status, s = _mod.gemm_4bit_splits(d, dt, M, N, K)
        _check(status)
        if len(_splits_cache) > 4096:
            _splits_cache.clear()
        _splits_cache[key] = s
    return s


def _matmul_4bit(A, B, shapeB, absmax, blocksize, code, quant_type, bias, absmax_8bit, absmax_code, absmax_offset,
                 out):
    # per-call glue: no syncs, no .item(); copies only of what is not already contiguous
    N, K = int(shapeB[0]), int(shapeB[1])
    A, B, absmax = _contig(A), _contig(B), _contig(absmax)
    if absmax_8bit is not None:
        absmax_8bit, absmax_code = _contig(absmax_8bit), _contig(absmax_code)
    if bias is not None:
        bias = _contig(bias)
    M = out.numel() // N if N else 0
    d = A.device.index
    dt = _DTYPE[A.dtype]
    ws, ws_floats = None, 0
    if M and N and K:
        s = _splits(d, dt, M, N, K)
        if s > 1:
            ws_floats = s * M * N
            ws = torch.empty(ws_floats, dtype=_F32, device=A.device)
    _check(_mod.gemm_4bit(d, _raw_stream(d), dt, A.data_ptr(), M, K, B.data_ptr(), B.numel() * B.element_size(), N,
                          absmax.data_ptr(), blocksize, _ptr(code), quant_type, _ptr(absmax_8bit), _ptr(absmax_code),
                          _ptr(absmax_offset), _ptr(bias), out.data_ptr(), _ptr(ws), ws_floats))


def gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
    _matmul_4bit(A, B, shapeB, absmax, blocksize, _contig(code), 0, None, None, None, None, out)


def gemv_4bit(A, B, shapeB, absmax, code, blocksize):
    out = torch.empty((*A.shape[:-1], shapeB[0]), dtype=A.dtype, device=A.device)
    _matmul_4bit(A, B, shapeB, absmax, blocksize, _contig(code), 0, None, None, None, None, out)
    return out


def gemm_4bit(A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None,
              absmax_offset=None):
    out = torch.empty((*A.shape[:-1], shapeB[0]), dtype=A.dtype, device=A.device)
    # code 0: the kernels use their built-in NF4 / FP4 table (bnb_formats.h)
    _matmul_4bit(A, B, shapeB, absmax, blocksize, None, _QUANT[quant_type], bias, absmax_8bit, absmax_code,
                 absmax_offset, out)
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
    "int8_vectorwise_quant": (int8_vectorwise_quant, None),
    "int8_vectorwise_dequant": (int8_vectorwise_dequant, None),
    "int8_double_quant": (int8_double_quant, None),
    "int8_linear_matmul": (int8_linear_matmul, None),
    "int8_linear_matmul.out": (int8_linear_matmul_out, _out_contiguous),
    "int8_mm_dequant": (int8_mm_dequant, None),
    "int8_scaled_mm": (int8_scaled_mm, None),
    "int8_mixed_scaled_mm": (int8_mixed_scaled_mm, None),
    "gemv_4bit": (gemv_4bit, None),
    "gemv_4bit.out": (gemv_4bit_out, _out_contiguous),
    "gemm_4bit": (gemm_4bit, None),
    # in-place updates: states / absmax written through their data pointers (non-contiguous ones -> reference)
    "optimizer_update_32bit": (optimizer_update_32bit, _supports_32bit),
    "optimizer_update_8bit_blockwise": (optimizer_update_8bit_blockwise, _supports_8bit),
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
#: the same for the HIP build of these sources (backends/rocm): CI compiles every kernel source of the CUDA
#: backend as HIP with hipcc for gfx90a (wave64) and gfx1030 (wave32) (tests/test_hip_build.py), never run
#: (no AMD GPU). The int8 matmul on a ROCm torch is whatever this file registers for it (see
#: docs/architecture.md, "ROCm"): no BLAS library is linked into bnb_core._hip.
SUPPORT_HIP = {op: "compiles" for op in KERNELS}

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
