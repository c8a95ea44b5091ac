"""The op contract: every ``torch.ops.bnb.*`` schema, its argument check and its fake kernel.

Schemas are those of bitsandbytes 0.50.2's ``torch.ops.bitsandbytes`` namespace, so code moving
between the two changes only the namespace. Each op has ONE check function, called by its fake
(meta) kernel and by every eager kernel through the registry (bnb_core/registry.py), so a direct
``torch.ops.bnb.X`` call with a bad argument raises the same clear ``ValueError`` on every backend.
Native code is only ever reached with arguments that passed the check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

from . import formats

LIB = torch.library.Library("bnb", "DEF")

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
#: dtypes quantize_4bit may store its packed bytes as (FSDP needs the float ones).
QUANT_STORAGE_DTYPES = (
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64,
)
OPTIMIZER_NAMES = ("adam", "momentum", "rmsprop", "lion", "adagrad", "lamb", "lars", "ademamix")
#: optimizers that keep two states (state2 must be given)
TWO_STATE_OPTIMIZERS = ("adam", "lamb", "ademamix")


@dataclass
class OpDef:
    name: str  # "quantize_4bit" or "dequantize_4bit.out"
    schema: str
    check: Callable
    fake: Callable
    reference: Optional[Callable] = None  # set by bnb_core.reference
    tags: tuple = field(default_factory=tuple)

    @property
    def packet(self):
        base, _, overload = self.name.partition(".")
        return getattr(getattr(torch.ops.bnb, base), overload or "default")


OPS: dict[str, OpDef] = {}


def _define(name: str, schema: str, check: Callable):
    """Define op `name` with `schema`; the decorated function is its fake kernel (check runs first)."""

    def deco(fake):
        LIB.define(name + schema)

        def fake_kernel(*args, **kwargs):
            check(*args, **kwargs)
            return fake(*args, **kwargs)

        torch.library.register_fake("bnb::" + name, fake_kernel, lib=LIB)
        OPS[name] = OpDef(name, schema, check, fake)
        return fake

    return deco


# --------------------------------------------------------------------------------------------------
# check helpers: each raises ValueError naming the argument and the allowed values
# --------------------------------------------------------------------------------------------------


def _req(cond, msg: Callable[[], str]):
    if cond is True:  # fast path for plain bools; SymBools (fake tensors, torch.compile) go to torch
        return
    torch._check_value(cond, msg)


def _names(dtypes) -> str:
    return ", ".join(str(d).replace("torch.", "") for d in dtypes)


def _tensor(t, name):
    _req(isinstance(t, torch.Tensor), lambda: f"{name} must be a Tensor, got {type(t).__name__}")


def _dtype_in(t: torch.Tensor, name: str, allowed):
    if isinstance(t, torch.Tensor) and t.dtype in allowed:  # the common case without further calls
        return
    _tensor(t, name)
    _req(t.dtype in allowed, lambda: f"{name} must have dtype in ({_names(allowed)}), got {t.dtype}")


def _float_dtype(dtype, name):
    _req(dtype in FLOAT_DTYPES, lambda: f"{name} must be one of ({_names(FLOAT_DTYPES)}), got {dtype}")


def _same_device(ref: torch.Tensor, ref_name: str, **others):
    if ref.is_cpu and all(t is None or t.is_cpu for t in others.values()):  # no device objects to build
        return
    for name, t in others.items():
        if t is not None:
            _req(
                t.device == ref.device,
                lambda: f"{name} must be on the same device as {ref_name} ({ref.device}), got {t.device}",
            )


def _blocksize_4bit(blocksize):
    _req(
        blocksize in formats.BLOCKSIZES_4BIT,
        lambda: f"blocksize must be one of {formats.BLOCKSIZES_4BIT} for 4-bit quantization, got {blocksize}",
    )


def _blocksize_8bit(blocksize):
    _req(
        formats.valid_blocksize_8bit(blocksize),
        lambda: f"blocksize must be a power of two >= {formats.MIN_BLOCKSIZE_8BIT} for blockwise 8-bit "
        f"quantization, got {blocksize}",
    )


def _quant_type(quant_type):
    _req(
        quant_type in formats.QUANT_TYPES_4BIT,
        lambda: f"quant_type must be one of {formats.QUANT_TYPES_4BIT}, got {quant_type!r}",
    )


def _code(code, numel: int, device_ref, ref_name="A", name="code"):
    _dtype_in(code, name, (torch.float32,))
    _req(code.numel() == numel, lambda: f"{name} must hold {numel} float32 values, got {code.numel()}")
    _same_device(device_ref, ref_name, **{name: code})


def _absmax(absmax, nblocks: int, device_ref, ref_name="A", name="absmax"):
    _dtype_in(absmax, name, (torch.float32,))
    _req(
        absmax.numel() >= nblocks,
        lambda: f"{name} must hold at least {nblocks} values (one per block), got {absmax.numel()}",
    )
    _same_device(device_ref, ref_name, **{name: absmax})


def _shape(shape, name="shape"):
    _req(
        isinstance(shape, (list, tuple, torch.Size)) and all(int(s) >= 0 for s in shape),
        lambda: f"{name} must be a list of non-negative ints, got {shape}",
    )
    return math.prod(int(s) for s in shape)


def _out(out, shape, dtype, device):
    _tensor(out, "out")
    _req(tuple(out.shape) == tuple(shape), lambda: f"out must have shape {tuple(shape)}, got {tuple(out.shape)}")
    _req(out.dtype == dtype, lambda: f"out must have dtype {dtype}, got {out.dtype}")
    _req(out.device == device, lambda: f"out must be on device {device}, got {out.device}")


def _packed_4bit(B, n: int, name="A"):
    _dtype_in(B, name, QUANT_STORAGE_DTYPES)
    need = formats.packed_nbytes_4bit(n)
    have = B.numel() * B.element_size()
    _req(have >= need, lambda: f"{name} must hold at least {need} bytes of packed 4-bit codes, got {have}")


def _rows(A):
    _req(A.dim() >= 1, lambda: f"A must have at least 1 dimension, got shape {tuple(A.shape)}")
    return A.numel() // A.shape[-1] if A.shape[-1] else 0


def _threshold(threshold):
    _req(
        isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0.0,
        lambda: f"threshold must be a finite float >= 0.0, got {threshold}",
    )


# --------------------------------------------------------------------------------------------------
# fast paths of the checks run per layer call
# --------------------------------------------------------------------------------------------------
# A kernel that streams a weight through the caches leaves the next call's Python cold: there each helper call
# above costs ~1-2 us and a full check 15-30 us, a tenth of a batch-1 layer. The checks of the ops that layers
# call per forward first try the common valid CPU case in one expression (plain ints and bools only: symbolic
# shapes, other devices, wrong types and every failure go to the full check, which raises the named error).
# Each fast path accepts a subset of what its full check accepts.


def _fast_4bit_mm(A, B, shapeB, absmax, blocksize, absmax_8bit=None, absmax_code=None, absmax_offset=None):
    """n = N * K when (A, B, shapeB, absmax, blocksize) pass _check_4bit_matmul_common and absmax holds one
    float32 per block, or, with absmax_8bit, when the double-quantized absmax (absmax_8bit one uint8 code per block,
    absmax_code 256 float32, absmax_offset a float32 scalar, absmax one float32 per nested block) passes
    check_gemm_4bit; all on the CPU. Else None."""
    try:
        N, K = shapeB
        kA, nB, nabs = A.shape[-1], B.numel(), absmax.numel()
        if (type(N) is int and type(K) is int and type(kA) is int and type(nB) is int and type(nabs) is int
                and type(shapeB) in (list, tuple) and A.dtype in FLOAT_DTYPES and B.dtype in QUANT_STORAGE_DTYPES
                and absmax.dtype == torch.float32 and A.is_cpu and B.is_cpu and absmax.is_cpu
                and blocksize in formats.BLOCKSIZES_4BIT and N >= 0 and K == kA):
            n = N * K
            nblocks = -(-n // blocksize)
            if nB * B.element_size() < (n + 1) // 2:
                return None
            if absmax_8bit is None:
                return n if nabs >= nblocks else None
            q, code, off = absmax_8bit, absmax_code, absmax_offset
            if (type(q) is torch.Tensor and type(code) is torch.Tensor and type(off) is torch.Tensor
                    and q.dtype == torch.uint8 and q.dim() == 1 and q.is_cpu and q.numel() >= nblocks
                    and code.dtype == torch.float32 and code.numel() == 256 and code.is_cpu
                    and off.dtype == torch.float32 and off.dim() == 0 and off.is_cpu
                    and nabs >= -(-nblocks // formats.NESTED_BLOCKSIZE)):
                return n
    except Exception:  # noqa: BLE001 - anything unusual: the full check names the problem
        pass
    return None


# --------------------------------------------------------------------------------------------------
# blockwise 8-bit
# --------------------------------------------------------------------------------------------------


def check_quantize_blockwise(A, code, blocksize):
    _dtype_in(A, "A", FLOAT_DTYPES)
    _code(code, 256, A)
    _blocksize_8bit(blocksize)


@_define("quantize_blockwise", "(Tensor A, Tensor code, int blocksize) -> (Tensor, Tensor)", check_quantize_blockwise)
def _(A, code, blocksize):
    nb = formats.num_blocks(A.numel(), blocksize)
    return torch.empty_like(A, dtype=torch.uint8), A.new_empty((nb,), dtype=torch.float32)


def check_dequantize_blockwise(A, absmax, code, blocksize, dtype):
    _dtype_in(A, "A", (torch.uint8,))
    _blocksize_8bit(blocksize)
    _absmax(absmax, formats.num_blocks(A.numel(), blocksize), A)
    _code(code, 256, A)
    _float_dtype(dtype, "dtype")


@_define(
    "dequantize_blockwise",
    "(Tensor A, Tensor absmax, Tensor code, int blocksize, ScalarType dtype) -> Tensor",
    check_dequantize_blockwise,
)
def _(A, absmax, code, blocksize, dtype):
    return torch.empty_like(A, dtype=dtype)


def check_dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
    check_dequantize_blockwise(A, absmax, code, blocksize, dtype)
    _out(out, A.shape, dtype, A.device)


@_define(
    "dequantize_blockwise.out",
    "(Tensor A, Tensor absmax, Tensor code, int blocksize, ScalarType dtype, Tensor! out) -> ()",
    check_dequantize_blockwise_out,
)
def _(A, absmax, code, blocksize, dtype, out):
    return None


# --------------------------------------------------------------------------------------------------
# 4-bit
# --------------------------------------------------------------------------------------------------


def check_quantize_4bit(A, blocksize, quant_type, quant_storage):
    _dtype_in(A, "A", FLOAT_DTYPES)
    _blocksize_4bit(blocksize)
    _quant_type(quant_type)
    _req(
        quant_storage in QUANT_STORAGE_DTYPES,
        lambda: f"quant_storage must be one of ({_names(QUANT_STORAGE_DTYPES)}), got {quant_storage}",
    )


@_define(
    "quantize_4bit",
    "(Tensor A, int blocksize, str quant_type, ScalarType quant_storage) -> (Tensor, Tensor)",
    check_quantize_4bit,
)
def _(A, blocksize, quant_type, quant_storage):
    n = A.numel()
    numel = formats.storage_numel_4bit(n, quant_storage.itemsize)
    return (
        A.new_empty((numel, 1), dtype=quant_storage),
        A.new_empty((formats.num_blocks(n, blocksize),), dtype=torch.float32),
    )


def check_dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
    n = _shape(shape)
    _packed_4bit(A, n)
    _blocksize_4bit(blocksize)
    _quant_type(quant_type)
    _absmax(absmax, formats.num_blocks(n, blocksize), A)
    _float_dtype(dtype, "dtype")


@_define(
    "dequantize_4bit",
    "(Tensor A, Tensor absmax, int blocksize, str quant_type, int[] shape, ScalarType dtype) -> Tensor",
    check_dequantize_4bit,
)
def _(A, absmax, blocksize, quant_type, shape, dtype):
    return A.new_empty(tuple(shape), dtype=dtype)


def check_dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
    check_dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype)
    _out(out, shape, dtype, A.device)


@_define(
    "dequantize_4bit.out",
    "(Tensor A, Tensor absmax, int blocksize, str quant_type, int[] shape, ScalarType dtype, Tensor! out) -> ()",
    check_dequantize_4bit_out,
)
def _(A, absmax, blocksize, quant_type, shape, dtype, out):
    return None


def _check_4bit_matmul_common(A, B, shapeB, blocksize):
    _dtype_in(A, "A", FLOAT_DTYPES)
    _req(
        isinstance(shapeB, (list, tuple, torch.Size)) and len(shapeB) == 2,
        lambda: f"shapeB must be [N, K] (2 ints), got {shapeB}",
    )
    n = _shape(shapeB, "shapeB")
    _req(A.dim() >= 1, lambda: "A must have at least 1 dimension")
    _req(
        A.shape[-1] == shapeB[1],
        lambda: f"A's last dimension ({A.shape[-1]}) must equal K = shapeB[1] ({shapeB[1]})",
    )
    _packed_4bit(B, n, "B")
    _same_device(A, "A", B=B)
    _blocksize_4bit(blocksize)
    return n


def check_gemv_4bit(A, B, shapeB, absmax, code, blocksize):
    if (_fast_4bit_mm(A, B, shapeB, absmax, blocksize) is not None and type(code) is torch.Tensor
            and code.dtype == torch.float32 and code.is_cpu and code.numel() == 16):
        return
    n = _check_4bit_matmul_common(A, B, shapeB, blocksize)
    _absmax(absmax, formats.num_blocks(n, blocksize), A)
    _code(code, 16, A)


@_define(
    "gemv_4bit",
    "(Tensor A, Tensor B, int[] shapeB, Tensor absmax, Tensor code, int blocksize) -> Tensor",
    check_gemv_4bit,
)
def _(A, B, shapeB, absmax, code, blocksize):
    return A.new_empty((*A.shape[:-1], shapeB[0]))


def check_gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
    check_gemv_4bit(A, B, shapeB, absmax, code, blocksize)
    _out(out, (*A.shape[:-1], shapeB[0]), A.dtype, A.device)


@_define(
    "gemv_4bit.out",
    "(Tensor A, Tensor B, int[] shapeB, Tensor absmax, Tensor code, int blocksize, Tensor! out) -> ()",
    check_gemv_4bit_out,
)
def _(A, B, shapeB, absmax, code, blocksize, out):
    return None


def check_gemm_4bit(
    A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None, absmax_offset=None
):
    if (quant_type in formats.QUANT_TYPES_4BIT and (absmax_8bit is not None or (absmax_code is None and absmax_offset is None))
            and _fast_4bit_mm(A, B, shapeB, absmax, blocksize, absmax_8bit, absmax_code, absmax_offset) is not None):
        if bias is None:
            return
        if isinstance(bias, torch.Tensor) and bias.dtype == A.dtype and bias.is_cpu and bias.dim() == 1:
            nbias = bias.shape[0]
            if type(nbias) is int and nbias == shapeB[0]:
                return
    n = _check_4bit_matmul_common(A, B, shapeB, blocksize)
    _quant_type(quant_type)
    nblocks = formats.num_blocks(n, blocksize)
    if absmax_8bit is None:
        _req(
            absmax_code is None and absmax_offset is None,
            lambda: "absmax_code and absmax_offset are only allowed together with absmax_8bit",
        )
        _absmax(absmax, nblocks, A)
    else:
        _dtype_in(absmax_8bit, "absmax_8bit", (torch.uint8,))
        _req(absmax_8bit.dim() == 1, lambda: f"absmax_8bit must be 1-D, got {absmax_8bit.dim()}-D")
        _req(
            absmax_8bit.numel() >= nblocks,
            lambda: f"absmax_8bit must hold at least {nblocks} codes (one per block), got {absmax_8bit.numel()}",
        )
        _same_device(A, "A", absmax_8bit=absmax_8bit)
        _req(absmax_code is not None, lambda: "absmax_code is required when absmax_8bit is given")
        _code(absmax_code, 256, A, name="absmax_code")
        _req(absmax_offset is not None, lambda: "absmax_offset is required when absmax_8bit is given")
        _dtype_in(absmax_offset, "absmax_offset", (torch.float32,))
        _req(absmax_offset.dim() == 0, lambda: f"absmax_offset must be 0-dim, got {absmax_offset.dim()}-D")
        _same_device(A, "A", absmax_offset=absmax_offset)
        # absmax is then the fp32 second-level absmax of the nested blockwise quantization
        _absmax(absmax, formats.num_blocks(nblocks, formats.NESTED_BLOCKSIZE), A)
    if bias is not None:
        _tensor(bias, "bias")
        _req(bias.dim() == 1 and bias.shape[0] == shapeB[0], lambda: f"bias must have shape [{shapeB[0]}], got {tuple(bias.shape)}")
        _req(bias.dtype == A.dtype, lambda: f"bias must have A's dtype {A.dtype}, got {bias.dtype}")
        _same_device(A, "A", bias=bias)


@_define(
    "gemm_4bit",
    "(Tensor A, Tensor B, int[] shapeB, Tensor absmax, int blocksize, str quant_type, "
    "Tensor? bias=None, Tensor? absmax_8bit=None, Tensor? absmax_code=None, Tensor? absmax_offset=None) -> Tensor",
    check_gemm_4bit,
)
def _(A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None, absmax_offset=None):
    return A.new_empty((*A.shape[:-1], shapeB[0]))


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


def check_int8_vectorwise_quant(A, threshold=0.0):
    if (isinstance(A, torch.Tensor) and A.dtype in FLOAT_DTYPES and A.dim() >= 1 and type(threshold) is float
            and 0.0 <= threshold < math.inf):
        return
    _dtype_in(A, "A", FLOAT_DTYPES)
    _rows(A)
    _threshold(threshold)


@_define(
    "int8_vectorwise_quant", "(Tensor A, float threshold=0.0) -> (Tensor, Tensor, Tensor?)", check_int8_vectorwise_quant
)
def _(A, threshold=0.0):
    out = torch.empty_like(A, dtype=torch.int8)
    stats = A.new_empty((_rows(A),), dtype=torch.float32)
    if threshold == 0.0:
        return out, stats, None
    k = torch.library.get_ctx().new_dynamic_size()
    return out, stats, A.new_empty((k,), dtype=torch.int64)


def check_int8_vectorwise_dequant(A, stats):
    _dtype_in(A, "A", (torch.int8,))
    rows = _rows(A)
    _dtype_in(stats, "stats", (torch.float32,))
    _req(stats.numel() == rows, lambda: f"stats must hold one value per row of A ({rows}), got {stats.numel()}")
    _same_device(A, "A", stats=stats)


@_define("int8_vectorwise_dequant", "(Tensor A, Tensor stats) -> Tensor", check_int8_vectorwise_dequant)
def _(A, stats):
    return torch.empty_like(A, dtype=torch.float32)


def check_int8_double_quant(A, threshold=0.0):
    check_int8_vectorwise_quant(A, threshold)


@_define(
    "int8_double_quant",
    "(Tensor A, float threshold=0.0) -> (Tensor, Tensor, Tensor, Tensor, Tensor?)",
    check_int8_double_quant,
)
def _(A, threshold=0.0):
    out_row = torch.empty_like(A, dtype=torch.int8)
    out_col = torch.empty_like(A, dtype=torch.int8)
    row_stats = A.new_empty((_rows(A),), dtype=torch.float32)
    col_stats = A.new_empty((A.shape[-1],), dtype=torch.float32)
    if threshold == 0.0:
        return out_row, out_col, row_stats, col_stats, None
    k = torch.library.get_ctx().new_dynamic_size()
    return out_row, out_col, row_stats, col_stats, A.new_empty((k,), dtype=torch.int64)


def _int8_operands(A, B, a="A", b="B"):
    _dtype_in(A, a, (torch.int8,))
    _dtype_in(B, b, (torch.int8,))
    _req(B.dim() == 2, lambda: f"{b} must be 2-D [N, K], got shape {tuple(B.shape)}")
    _req(A.dim() >= 1, lambda: f"{a} must have at least 1 dimension")
    _req(
        A.shape[-1] == B.shape[1],
        lambda: f"{a}'s last dimension ({A.shape[-1]}) must equal {b}'s K dimension ({B.shape[1]})",
    )
    _same_device(A, a, **{b: B})


def check_int8_linear_matmul(A, B):
    _int8_operands(A, B)


@_define("int8_linear_matmul", "(Tensor A, Tensor B) -> Tensor", check_int8_linear_matmul)
def _(A, B):
    return A.new_empty((*A.shape[:-1], B.shape[0]), dtype=torch.int32)


def check_int8_linear_matmul_out(A, B, out):
    check_int8_linear_matmul(A, B)
    _out(out, (*A.shape[:-1], B.shape[0]), torch.int32, A.device)


@_define("int8_linear_matmul.out", "(Tensor A, Tensor B, Tensor! out) -> ()", check_int8_linear_matmul_out)
def _(A, B, out):
    return None


def _check_stats_and_bias(rows, cols, row_stats, col_stats, bias, ref, ref_name, r="row_stats", c="col_stats"):
    _dtype_in(row_stats, r, (torch.float32,))
    _req(row_stats.numel() == rows, lambda: f"{r} must hold {rows} values (one per row), got {row_stats.numel()}")
    _dtype_in(col_stats, c, (torch.float32,))
    _req(
        col_stats.numel() == cols,
        lambda: f"{c} must hold {cols} values (one per output column), got {col_stats.numel()}",
    )
    if bias is not None:
        _dtype_in(bias, "bias", FLOAT_DTYPES)
        _req(bias.numel() == cols, lambda: f"bias must hold {cols} values, got {bias.numel()}")
    _same_device(ref, ref_name, **{r: row_stats, c: col_stats, "bias": bias})


def check_int8_mm_dequant(A, row_stats, col_stats, dtype=None, bias=None):
    _dtype_in(A, "A", (torch.int32,))
    _check_stats_and_bias(_rows(A), A.shape[-1], row_stats, col_stats, bias, A, "A")
    if dtype is not None:
        _float_dtype(dtype, "dtype")


@_define(
    "int8_mm_dequant",
    "(Tensor A, Tensor row_stats, Tensor col_stats, ScalarType? dtype=None, Tensor? bias=None) -> Tensor",
    check_int8_mm_dequant,
)
def _(A, row_stats, col_stats, dtype=None, bias=None):
    return torch.empty_like(A, dtype=dtype or torch.float16)


def check_int8_scaled_mm(A, B, row_stats, col_stats, bias=None, dtype=None):
    try:
        if (A.dtype == torch.int8 and B.dtype == torch.int8 and A.is_cpu and B.is_cpu and A.dim() >= 1
                and B.dim() == 2 and type(A.numel()) is int and type(B.numel()) is int and A.shape[-1] == B.shape[1]
                and (dtype is None or dtype in FLOAT_DTYPES) and _fast_int8_stats(A, B, row_stats, col_stats, bias)):
            return
    except Exception:  # noqa: BLE001 - the full check below names the problem
        pass
    check_int8_linear_matmul(A, B)
    _check_stats_and_bias(_rows(A), B.shape[0], row_stats, col_stats, bias, A, "A")
    if dtype is not None:
        _float_dtype(dtype, "dtype")


@_define(
    "int8_scaled_mm",
    "(Tensor A, Tensor B, Tensor row_stats, Tensor col_stats, Tensor? bias=None, ScalarType? dtype=None) -> Tensor",
    check_int8_scaled_mm,
)
def _(A, B, row_stats, col_stats, bias=None, dtype=None):
    return A.new_empty((*A.shape[:-1], B.shape[0]), dtype=dtype or torch.float16)


def _fast_col_stats_bias(N, SCB, bias):
    """True when SCB holds N float32 values and bias is None or N floats, all on the CPU (N a plain int)."""
    try:
        nsb = SCB.numel()
        if type(N) is int and type(nsb) is int and SCB.dtype == torch.float32 and SCB.is_cpu and nsb == N:
            if bias is None:
                return True
            nbias = bias.numel()
            return type(nbias) is int and bias.dtype in FLOAT_DTYPES and bias.is_cpu and nbias == N
    except Exception:  # noqa: BLE001 - the full check names the problem
        pass
    return False


def _fast_int8_stats(A, CB, SCA, SCB, bias):
    """True when SCA / SCB / bias fit A [.., K] and CB [N, K] (the caller checked A and CB), all on the CPU."""
    try:
        K, nsa = A.shape[-1], SCA.numel()
        if (type(K) is int and type(nsa) is int and SCA.dtype == torch.float32 and SCA.is_cpu
                and nsa == (A.numel() // K if K else 0)):
            return _fast_col_stats_bias(CB.shape[0], SCB, bias)
    except Exception:  # noqa: BLE001 - the full check names the problem
        pass
    return False


def check_int8_mixed_scaled_mm(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
    try:
        if (A.dtype in FLOAT_DTYPES and CA.dtype == torch.int8 and CB.dtype == torch.int8 and A.is_cpu and CA.is_cpu
                and CB.is_cpu and A.dim() >= 1 and CB.dim() == 2 and type(A.numel()) is int
                and type(CA.numel()) is int and type(CB.numel()) is int and CA.shape == A.shape
                and A.shape[-1] == CB.shape[1]
                and (outlier_cols is None or (outlier_cols.dtype in (torch.int64, torch.int32)
                                              and outlier_cols.dim() == 1 and outlier_cols.is_cpu))
                and _fast_int8_stats(A, CB, SCA, SCB, bias)):
            return
    except Exception:  # noqa: BLE001 - the full check below names the problem
        pass
    _dtype_in(A, "A", FLOAT_DTYPES)
    _dtype_in(CA, "CA", (torch.int8,))
    _req(tuple(CA.shape) == tuple(A.shape), lambda: f"CA must have A's shape {tuple(A.shape)}, got {tuple(CA.shape)}")
    _int8_operands(CA, CB, "CA", "CB")
    _check_stats_and_bias(_rows(A), CB.shape[0], SCA, SCB, bias, A, "A", "SCA", "SCB")
    _same_device(A, "A", CA=CA, CB=CB)
    if outlier_cols is not None:
        _dtype_in(outlier_cols, "outlier_cols", (torch.int64, torch.int32))
        _req(outlier_cols.dim() == 1, lambda: f"outlier_cols must be 1-D, got {outlier_cols.dim()}-D")
        _same_device(A, "A", outlier_cols=outlier_cols)


@_define(
    "int8_mixed_scaled_mm",
    "(Tensor A, Tensor CA, Tensor CB, Tensor SCA, Tensor SCB, Tensor? outlier_cols=None, Tensor? bias=None) "
    "-> (Tensor, Tensor?)",
    check_int8_mixed_scaled_mm,
)
def _(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
    out = A.new_empty((*CA.shape[:-1], CB.shape[0]))
    k = torch.library.get_ctx().new_dynamic_size()
    return out, A.new_empty((_rows(A), k))


def check_int8_mixed_linear(A, CB, SCB, bias=None, threshold=0.0):
    try:
        if (A.dtype in FLOAT_DTYPES and CB.dtype == torch.int8 and A.is_cpu and CB.is_cpu and A.dim() >= 1
                and CB.dim() == 2 and type(A.numel()) is int and type(CB.numel()) is int
                and A.shape[-1] == CB.shape[1] and type(threshold) is float and 0.0 <= threshold < math.inf
                and _fast_col_stats_bias(CB.shape[0], SCB, bias)):
            return
    except Exception:  # noqa: BLE001 - the full check below names the problem
        pass
    _dtype_in(A, "A", FLOAT_DTYPES)
    _dtype_in(CB, "CB", (torch.int8,))
    _req(CB.dim() == 2, lambda: f"CB must be 2-D [N, K], got shape {tuple(CB.shape)}")
    _req(A.dim() >= 1, lambda: "A must have at least 1 dimension")
    _req(
        A.shape[-1] == CB.shape[1],
        lambda: f"A's last dimension ({A.shape[-1]}) must equal CB's K dimension ({CB.shape[1]})",
    )
    N = CB.shape[0]
    _dtype_in(SCB, "SCB", (torch.float32,))
    _req(SCB.numel() == N, lambda: f"SCB must hold {N} values (one per row of CB), got {SCB.numel()}")
    if bias is not None:
        _dtype_in(bias, "bias", FLOAT_DTYPES)
        _req(bias.numel() == N, lambda: f"bias must hold {N} values, got {bias.numel()}")
    _threshold(threshold)
    _same_device(A, "A", CB=CB, SCB=SCB, bias=bias)


@_define(
    "int8_mixed_linear",
    "(Tensor A, Tensor CB, Tensor SCB, Tensor? bias=None, float threshold=0.0) -> Tensor",
    check_int8_mixed_linear,
)
def _(A, CB, SCB, bias=None, threshold=0.0):
    return A.new_empty((*A.shape[:-1], CB.shape[0]))


# --------------------------------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------------------------------


def _check_optimizer_common(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, eps, step, lr):
    _req(
        optimizer_name in OPTIMIZER_NAMES,
        lambda: f"optimizer_name must be one of {OPTIMIZER_NAMES}, got {optimizer_name!r}",
    )
    _dtype_in(g, "g", FLOAT_DTYPES)
    _dtype_in(p, "p", FLOAT_DTYPES)
    _req(g.dtype == p.dtype, lambda: f"g must have p's dtype {p.dtype}, got {g.dtype}")
    _req(g.numel() == p.numel(), lambda: f"g must have as many elements as p ({p.numel()}), got {g.numel()}")
    _same_device(p, "p", g=g, state1=state1, state2=state2)
    _req(p.is_contiguous() and g.is_contiguous(), lambda: "p and g must be contiguous")
    _req(isinstance(step, int) and step >= 1, lambda: f"step must be an int >= 1, got {step}")
    for name, v in (("beta1", beta1), ("beta2", beta2), ("beta3", beta3)):
        _req(0.0 <= v < 1.0 or (name == "beta3" and v == 0.0), lambda: f"{name} must be in [0, 1), got {v}")
    _req(eps >= 0.0, lambda: f"eps must be >= 0, got {eps}")
    _req(math.isfinite(lr) and lr >= 0.0, lambda: f"lr must be a finite float >= 0, got {lr}")
    if optimizer_name in TWO_STATE_OPTIMIZERS:
        _req(state2 is not None, lambda: f"state2 is required for optimizer {optimizer_name!r}")
    factor = 2 if optimizer_name == "ademamix" else 1
    _tensor(state1, "state1")
    _req(
        state1.numel() == factor * p.numel(),
        lambda: f"state1 must have {factor} x p.numel() = {factor * p.numel()} elements, got {state1.numel()}",
    )
    if state2 is not None:
        _tensor(state2, "state2")
        _req(state2.numel() == p.numel(), lambda: f"state2 must have p.numel() = {p.numel()} elements, got {state2.numel()}")


def check_optimizer_update_32bit(
    optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, param_norm, beta1, beta2, beta3, alpha, eps,
    weight_decay, step, lr, gnorm_scale, skip_zeros=False,
):
    _check_optimizer_common(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, eps, step, lr)
    _dtype_in(state1, "state1", (torch.float32,))
    if state2 is not None:
        _dtype_in(state2, "state2", (torch.float32,))
    if max_unorm > 0.0:
        _req(unorm_vec is not None, lambda: "unorm_vec is required when max_unorm > 0")
        _dtype_in(unorm_vec, "unorm_vec", (torch.float32,))
        _req(unorm_vec.numel() == 1, lambda: f"unorm_vec must hold 1 value, got {unorm_vec.numel()}")
        _same_device(p, "p", unorm_vec=unorm_vec)


@_define(
    "optimizer_update_32bit",
    "(str optimizer_name, Tensor(a0!) g, Tensor(a1!) p, Tensor(a2!) state1, Tensor(a3!)? state2, "
    "Tensor(a4!)? unorm_vec, float max_unorm, float param_norm, float beta1, float beta2, float beta3, "
    "float alpha, float eps, float weight_decay, int step, float lr, float gnorm_scale, bool skip_zeros=False) -> ()",
    check_optimizer_update_32bit,
)
def _(*args, **kwargs):
    return None


def check_optimizer_update_8bit_blockwise(
    optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr, qmap1, qmap2, absmax1,
    absmax2, weight_decay, gnorm_scale, skip_zeros=False,
):
    _check_optimizer_common(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, eps, step, lr)
    _dtype_in(state1, "state1", (torch.uint8,))
    _code(qmap1, 256, p, "p", name="qmap1")
    factor = 2 if optimizer_name == "ademamix" else 1
    nb = formats.num_blocks(p.numel(), formats.OPTIMIZER_BLOCKSIZE)
    _absmax(absmax1, factor * nb, p, "p", "absmax1")
    if state2 is not None:
        _dtype_in(state2, "state2", (torch.uint8,))
        _req(qmap2 is not None and absmax2 is not None, lambda: "qmap2 and absmax2 are required with state2")
        _dtype_in(qmap2, "qmap2", (torch.float32,))
        _req(qmap2.numel() == 256, lambda: f"qmap2 must hold 256 float32 values, got {qmap2.numel()}")
        _absmax(absmax2, nb, p, "p", "absmax2")


@_define(
    "optimizer_update_8bit_blockwise",
    "(str optimizer_name, Tensor(a0!) g, Tensor(a1!) p, Tensor(a2!) state1, Tensor(a3!)? state2, float beta1, "
    "float beta2, float beta3, float alpha, float eps, int step, float lr, Tensor(a4!) qmap1, Tensor(a5!)? qmap2, "
    "Tensor(a6!) absmax1, Tensor(a7!)? absmax2, float weight_decay, float gnorm_scale, bool skip_zeros=False) -> ()",
    check_optimizer_update_8bit_blockwise,
)
def _(*args, **kwargs):
    return None
