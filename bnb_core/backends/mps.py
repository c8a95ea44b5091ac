"""Apple MPS backend: Metal kernels compiled at run time with ``torch.mps.compile_shader``.

The shaders are backends/mps/*.metal plus the shared per-element math of backends/common/bnb_quant_math.h; the
tables (NF4, FP4, dynamic map) come from bnb_core/formats.py (``formats.render_metal_tables()``), put in front of
the source by ``shader_source()`` (no file holds a copy). Kernels: dequantize_4bit (+ .out), gemv_4bit (+ .out),
quantize_blockwise, dequantize_blockwise (+ .out); NF4 and FP4, every blocksize, fp32 / fp16 / bf16 (bf16 kept as
its 16 bits and converted with the shared bit-exact helpers, so no MSL 3.1 ``bfloat`` is needed); 64-bit element
indices, grids bounded (stride loops).

Verification level: "kernel logic tested on CPU". There is no Metal compiler or Apple GPU where this project is
built and tested: tests/test_mps_kernels.py compiles the exact source ``shader_source()`` assembles (with a CPU
prelude instead of ``<metal_stdlib>``) with g++ through tests/mps_compat/bnb_metal_compat.h, and runs this file's
glue with that build standing in for the compiled library against every conformance case of these ops. A real
Metal compile error or a difference of the GPU's arithmetic would only show on a Mac: ``python -m bnb_core check
--device mps`` runs the conformance suite there.

Importable anywhere (no MPS needed); ``load()`` says why it did not load.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from typing import Optional

import torch

from .. import formats, registry
from ._glue import QUANT as _QUANT, out_contiguous as _out_contiguous

NAME = "mps-metal"
DEVICE = "mps"

_SUFFIX = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}

#: threads per threadgroup of the element-wise kernels (dequantize) and of gemv_4bit (4 SIMD-groups of 32)
GROUP = 256
GEMV_GROUP = 128
#: at most this many threadgroups per dispatch; kernels loop (64-bit) over what is left
MAX_GROUPS = 65535

# ------------------------------------------------------------------------------------------ shader source

#: (directory under backends/, file) in the order they are concatenated
SOURCE_FILES = (
    ("common", "bnb_quant_math.h"),
    ("mps", "bnb_mps.h"),
    ("mps", "blockwise.metal"),
    ("mps", "dequant_4bit.metal"),
    ("mps", "gemv_4bit.metal"),
)

_PRELUDES = {
    # Metal: the standard library, and BNB_METAL selects the Metal spelling in bnb_quant_math.h
    "metal": "#include <metal_stdlib>\nusing namespace metal;\n#define BNB_METAL 1\n",
    # g++ on CPU (tests/test_mps_kernels.py): the compat header stands in for metal_stdlib
    "cpu": '#include "bnb_metal_compat.h"\n',
}

_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s*"[^"]*"\s*$', re.M)
_PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\s*$", re.M)


def source_dirs() -> dict:
    """{"common": dir, "mps": dir} holding SOURCE_FILES: installed next to the package (bnb_core/_metal, see
    CMakeLists.txt) or the source tree's backends/."""
    pkg = pathlib.Path(__file__).resolve().parents[1]
    installed = pkg / "_metal"
    if all((installed / f).is_file() for _, f in SOURCE_FILES):
        return {"common": installed, "mps": installed}
    tree = pkg.parent / "backends"
    return {"common": tree / "common", "mps": tree / "mps"}


def shader_source(target: str = "metal") -> str:
    """The whole Metal source of the MPS kernels, one self-contained text: a prelude (``target`` "metal":
    ``<metal_stdlib>``; "cpu": the g++ compat header of the CPU test), the tables generated from
    bnb_core/formats.py, then SOURCE_FILES with their local ``#include "..."`` lines removed (their content is
    already in front). Only the prelude differs between the targets."""
    if target not in _PRELUDES:
        raise ValueError(f"target must be one of {tuple(_PRELUDES)}, got {target!r}")
    dirs = source_dirs()
    parts = ["// bnb-core MPS kernels, assembled by bnb_core/backends/mps.py (shader_source)", _PRELUDES[target],
             formats.render_metal_tables()]
    for d, name in SOURCE_FILES:
        text = (dirs[d] / name).read_text()
        text = _PRAGMA_ONCE.sub("", _LOCAL_INCLUDE.sub("", text))
        parts.append(f"// ---- {d}/{name}\n{text}")
    return "\n".join(parts)


#: kernel names the source defines (one per dtype of every kernel family)
KERNEL_NAMES = tuple(f"bnb_{family}_{suffix}" for family in
                     ("dequantize_4bit", "dequantize_blockwise", "quantize_blockwise", "gemv_4bit")
                     for suffix in _SUFFIX.values())

_LIB = None


def _library():
    """The compiled shader library (compiled once). Tests substitute a CPU build of the same source."""
    global _LIB
    if _LIB is None:
        _LIB = torch.mps.compile_shader(shader_source("metal"))
    return _LIB


# ------------------------------------------------------------------------------------------ launch shapes


def _log2(blocksize: int) -> int:
    return int(blocksize).bit_length() - 1  # blocksizes are powers of two (checked by the op)


def elementwise_grid(items: int) -> tuple:
    """(threads, group_size) of a grid-stride kernel over `items` work items: uniform threadgroups of GROUP
    threads, at most MAX_GROUPS of them."""
    groups = min(-(-items // GROUP), MAX_GROUPS)
    return groups * GROUP, GROUP


def quantize_blockwise_grid(nblocks: int, blocksize: int) -> tuple:
    """One threadgroup per block (at most MAX_GROUPS; the kernel loops over the rest): blocksize threads,
    clamped to [32, 256] (a full SIMD-group at least)."""
    group = min(max(blocksize, 32), 256)
    return min(nblocks, MAX_GROUPS) * group, group


def gemv_grid(N: int) -> tuple:
    """One SIMD-group per output column: GEMV_GROUP // 32 columns per threadgroup."""
    per_group = GEMV_GROUP // 32
    groups = min(-(-N // per_group), MAX_GROUPS)
    return groups * GEMV_GROUP, GEMV_GROUP


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """Contiguous uint8 view of a tensor's bytes (packed 4-bit codes may be stored as any dtype)."""
    t = t.contiguous().reshape(-1)
    return t if t.dtype == torch.uint8 else t.view(torch.uint8)


# ------------------------------------------------------------------------------------------ kernels
# The op's check (bnb_core/_ops.py) has validated dtypes, sizes, blocksizes and devices. Every tensor bound to
# a kernel is contiguous (torch binds a tensor as its buffer at the storage offset, so a strided view would be
# read as if contiguous); outputs are fresh, or a contiguous `out` (supports()).




def dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
    n = out.numel()
    if n == 0:
        return
    threads, group = elementwise_grid((n + 1) // 2)
    kernel = getattr(_library(), f"bnb_dequantize_4bit_{_SUFFIX[out.dtype]}")
    kernel(_bytes(A), absmax.contiguous(), out, n, _log2(blocksize), _QUANT[quant_type], threads=threads,
           group_size=group)


def dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
    out = torch.empty(tuple(shape), dtype=dtype, device=A.device)
    dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out)
    return out


def dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
    n = A.numel()
    if n == 0:
        return
    threads, group = elementwise_grid(n)
    kernel = getattr(_library(), f"bnb_dequantize_blockwise_{_SUFFIX[out.dtype]}")
    kernel(A.contiguous(), absmax.contiguous(), code.contiguous(), out, n, _log2(blocksize), threads=threads,
           group_size=group)


def dequantize_blockwise(A, absmax, code, blocksize, dtype):
    out = torch.empty(A.shape, dtype=dtype, device=A.device)
    dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out)
    return out


def quantize_blockwise(A, code, blocksize):
    n = A.numel()
    nblocks = formats.num_blocks(n, blocksize)
    out = torch.empty(A.shape, dtype=torch.uint8, device=A.device)
    absmax = torch.empty(nblocks, dtype=torch.float32, device=A.device)
    if n:
        threads, group = quantize_blockwise_grid(nblocks, blocksize)
        kernel = getattr(_library(), f"bnb_quantize_blockwise_{_SUFFIX[A.dtype]}")
        kernel(A.contiguous(), code.contiguous(), out, absmax, n, _log2(blocksize), threads=threads,
               group_size=group)
    return out, absmax


def gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
    N, K = int(shapeB[0]), int(shapeB[1])
    M = A.numel() // K if K else math.prod(A.shape[:-1])
    if M == 0 or N == 0:
        return
    threads, group = gemv_grid(N)
    kernel = getattr(_library(), f"bnb_gemv_4bit_{_SUFFIX[A.dtype]}")
    kernel(A.contiguous(), _bytes(B), absmax.contiguous(), code.contiguous(), out, M, N, K, _log2(blocksize),
           threads=threads, group_size=group)


def gemv_4bit(A, B, shapeB, absmax, code, blocksize):
    out = torch.empty((*A.shape[:-1], shapeB[0]), dtype=A.dtype, device=A.device)
    gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out)
    return out


KERNELS = {  # op -> (kernel, supports predicate or None for "every call that passed the check")
    "quantize_blockwise": (quantize_blockwise, None),
    "dequantize_blockwise": (dequantize_blockwise, None),
    "dequantize_blockwise.out": (dequantize_blockwise_out, _out_contiguous),
    "dequantize_4bit": (dequantize_4bit, None),
    "dequantize_4bit.out": (dequantize_4bit_out, _out_contiguous),
    "gemv_4bit": (gemv_4bit, None),
    "gemv_4bit.out": (gemv_4bit_out, _out_contiguous),
}

#: op -> verification level (see bnb_core/backends/__init__.py): the kernel bodies and this glue pass the
#: conformance cases on CPU (tests/test_mps_kernels.py); never compiled by a Metal compiler nor run on a GPU here
SUPPORT = {op: "kernel logic tested on CPU" for op in KERNELS}

# ------------------------------------------------------------------------------------------ loading


def _fast_math_requested() -> bool:
    v = os.environ.get("PYTORCH_MPS_FAST_MATH")
    return v is not None and v not in ("", "0")


def unavailable_reason() -> Optional[str]:
    """Why the Metal kernels cannot be used in this process, or None."""
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return "MPS is not available (torch.backends.mps.is_available() is False: not a Mac with Apple silicon / " \
               "Metal, or torch built without MPS)"
    if not hasattr(torch.mps, "compile_shader"):
        return f"torch {torch.__version__} has no torch.mps.compile_shader (needed to compile the Metal kernels)"
    if _fast_math_requested():
        return ("PYTORCH_MPS_FAST_MATH is set: torch would compile the shaders with fast math, which may drop the "
                "NaN/Inf handling the kernels must keep bit-exact (docs/formats.md); the reference serves MPS")
    return None


_loaded = False


def load() -> Optional[str]:
    """Compile the shaders and register the kernels for "mps". Returns None when loaded, else why not."""
    global _loaded
    reason = unavailable_reason()
    if reason is not None:
        return reason
    try:
        _library()
    except Exception as e:  # a Metal compile error: report it, the reference keeps serving MPS
        return f"Metal shader compilation failed ({type(e).__name__}: {e})"
    if not _loaded:
        for op, (fn, supports) in KERNELS.items():
            registry.register_kernel(op, DEVICE, fn, supports=supports, name=NAME)
        _loaded = True
    return None
