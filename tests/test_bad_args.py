"""Every op rejects bad arguments with a ValueError that names the offending argument.

The argument check of each op (bnb_core/_ops.py) runs in front of every kernel (reference, native,
fake), so the same call must raise the same error on every device and under FakeTensorMode.
``BAD`` holds the bad calls of every op; ``test_every_op_has_bad_argument_cases`` fails when an op
is added to ``bnb_core._ops.OPS`` without them.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

import bnb_core  # noqa: F401  (defines and registers the ops)
from bnb_core import conformance, formats
from bnb_core._ops import OPS

DEVICES = conformance.available_devices()

F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16

# --------------------------------------------------------------------------------------------------
# valid arguments of every op (small); each bad case changes one of them
# --------------------------------------------------------------------------------------------------

N4, K4, BS4 = 16, 64, 64  # 4-bit weight [N, K], blocksize
N1D, BS8 = 100, 64  # 1-D tensors of the blockwise ops
NOPT = 300  # optimizer parameter size (2 blocks of 256)


def _arg_names(op: str) -> list[str]:
    return [a.name for a in OPS[op].packet._schema.arguments]


def _valid(op: str, device: str) -> dict:
    """Valid arguments of `op` on `device`, by schema name."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape, dtype=F32):
        return torch.randn(shape, generator=g).to(dtype).to(device)

    def table(name):
        return formats.table(name).clone().to(device)

    def u8(*shape):
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8).to(device)

    def i8(*shape):
        return torch.randint(-127, 128, shape, generator=g, dtype=torch.int8).to(device)

    def absmax(n):
        return (torch.rand(n, generator=g) + 0.5).to(device)

    base = op.split(".")[0]
    out_only = op.endswith(".out")
    if base == "quantize_blockwise":
        d = dict(A=randn(N1D), code=table("dynamic"), blocksize=BS8)
    elif base == "dequantize_blockwise":
        d = dict(A=u8(N1D), absmax=absmax(formats.num_blocks(N1D, BS8)), code=table("dynamic"), blocksize=BS8,
                 dtype=F32)
        if out_only:
            d["out"] = torch.empty(N1D, dtype=F32, device=device)
    elif base == "quantize_4bit":
        d = dict(A=randn(N1D), blocksize=BS4, quant_type="nf4", quant_storage=torch.uint8)
    elif base == "dequantize_4bit":
        d = dict(A=u8(formats.packed_nbytes_4bit(N1D), 1), absmax=absmax(formats.num_blocks(N1D, BS4)),
                 blocksize=BS4, quant_type="nf4", shape=[N1D], dtype=F32)
        if out_only:
            d["out"] = torch.empty(N1D, dtype=F32, device=device)
    elif base == "gemv_4bit":
        d = dict(A=randn(1, K4), B=u8(N4 * K4 // 2, 1), shapeB=[N4, K4], absmax=absmax(N4 * K4 // BS4),
                 code=table("nf4"), blocksize=BS4)
        if out_only:
            d["out"] = torch.empty(1, N4, dtype=F32, device=device)
    elif base == "gemm_4bit":
        d = dict(A=randn(2, K4), B=u8(N4 * K4 // 2, 1), shapeB=[N4, K4], absmax=absmax(N4 * K4 // BS4),
                 blocksize=BS4, quant_type="nf4", bias=randn(N4), absmax_8bit=None, absmax_code=None,
                 absmax_offset=None)
    elif base in ("int8_vectorwise_quant", "int8_double_quant"):
        d = dict(A=randn(4, 8, dtype=F16), threshold=0.0)
    elif base == "int8_vectorwise_dequant":
        d = dict(A=i8(4, 8), stats=absmax(4))
    elif base == "int8_linear_matmul":
        d = dict(A=i8(3, 8), B=i8(5, 8))
        if out_only:
            d["out"] = torch.empty(3, 5, dtype=torch.int32, device=device)
    elif base == "int8_mm_dequant":
        d = dict(A=torch.randint(-1000, 1000, (3, 5), generator=g, dtype=torch.int32).to(device),
                 row_stats=absmax(3), col_stats=absmax(5), dtype=F16, bias=randn(5, dtype=F16))
    elif base == "int8_scaled_mm":
        d = dict(A=i8(3, 8), B=i8(5, 8), row_stats=absmax(3), col_stats=absmax(5), bias=randn(5, dtype=F16),
                 dtype=F16)
    elif base == "int8_mixed_scaled_mm":
        d = dict(A=randn(3, 8, dtype=F16), CA=i8(3, 8), CB=i8(5, 8), SCA=absmax(3), SCB=absmax(5),
                 outlier_cols=torch.tensor([2], dtype=torch.int64, device=device), bias=randn(5, dtype=F16))
    elif base == "int8_mixed_linear":
        d = dict(A=randn(3, 8, dtype=F16), CB=i8(5, 8), SCB=absmax(5), bias=randn(5, dtype=F16), threshold=6.0)
    elif base == "optimizer_update_32bit":
        d = dict(optimizer_name="adam", g=randn(NOPT), p=randn(NOPT), state1=randn(NOPT) * 0.01,
                 state2=randn(NOPT).abs() * 0.01, unorm_vec=torch.zeros(1, device=device), max_unorm=0.0,
                 param_norm=0.0, beta1=0.9, beta2=0.999, beta3=0.0, alpha=0.0, eps=1e-8, weight_decay=0.0,
                 step=1, lr=1e-3, gnorm_scale=1.0, skip_zeros=False)
    elif base == "optimizer_update_8bit_blockwise":
        nb = formats.num_blocks(NOPT, formats.OPTIMIZER_BLOCKSIZE)
        d = dict(optimizer_name="adam", g=randn(NOPT), p=randn(NOPT), state1=u8(NOPT), state2=u8(NOPT),
                 beta1=0.9, beta2=0.999, beta3=0.0, alpha=0.0, eps=1e-8, step=1, lr=1e-3,
                 qmap1=table("dynamic"), qmap2=table("dynamic_unsigned"), absmax1=absmax(nb), absmax2=absmax(nb),
                 weight_decay=0.0, gnorm_scale=1.0, skip_zeros=False)
    else:  # pragma: no cover - a new op: add it here and to BAD
        raise KeyError(f"no valid arguments for op {op!r}; add them to tests/test_bad_args.py")
    assert list(d) == _arg_names(op), f"{op}: valid-argument names {list(d)} != schema {_arg_names(op)}"
    return d


def _nested_gemm(d: dict) -> None:
    """Turn the gemm_4bit arguments into the valid double-quantized (nested absmax) form."""
    dev = d["A"].device
    nblocks = N4 * K4 // BS4
    d["absmax_8bit"] = torch.full((nblocks,), 200, dtype=torch.uint8, device=dev)
    d["absmax"] = torch.ones(formats.num_blocks(nblocks, formats.NESTED_BLOCKSIZE), device=dev)
    d["absmax_code"] = formats.table("dynamic").clone().to(dev)
    d["absmax_offset"] = torch.tensor(0.5, device=dev)


# --------------------------------------------------------------------------------------------------
# the bad calls: op -> [(id, mutate(d), argument name or regex)]
# --------------------------------------------------------------------------------------------------


def _set(name, fn):
    """Replace argument `name` by fn(old value) (fn gets the old value; tensors keep their device)."""

    def mutate(d):
        d[name] = fn(d[name])

    return mutate


def _dtype(name, dtype):
    return _set(name, lambda t: t.to(dtype))


def _meta(name):
    return _set(name, lambda t: t.to("meta"))


def _value(name, value):
    return _set(name, lambda _old: value)


def _trim(name, n):
    """Keep the first n entries of a 1-D tensor (or n rows)."""
    return _set(name, lambda t: t[:n].clone())


def _then(*muts):
    def mutate(d):
        for m in muts:
            m(d)

    return mutate


class Bad:
    def __init__(self, id, mutate, name, pattern=None):
        self.id = id
        self.mutate = mutate
        self.name = name  # the argument the error must name
        # default: the message starts with the argument name ("code must ...", "A's last dimension")
        self.pattern = pattern or rf"^{re.escape(name)}\b"


def _blockwise_8bit_common():
    return [
        Bad("blocksize=15", _value("blocksize", 15), "blocksize"),
        Bad("blocksize=100", _value("blocksize", 100), "blocksize"),
        Bad("blocksize=0", _value("blocksize", 0), "blocksize"),
        Bad("blocksize=-64", _value("blocksize", -64), "blocksize"),
        Bad("code-fp16", _dtype("code", F16), "code"),
        Bad("code-255", _trim("code", 255), "code"),
        Bad("code-16", _trim("code", 16), "code"),
        Bad("code-meta", _meta("code"), "code"),
    ]


def _blocksize_4bit_cases():
    return [
        Bad(f"blocksize={bs}", _value("blocksize", bs), "blocksize")
        for bs in (63, 0, 8192, 16, 48, -64)
    ]


def _quant_type_cases():
    return [Bad(f"quant_type={qt}", _value("quant_type", qt), "quant_type") for qt in ("int4", "NF4", "")]


def _out_cases(bad_shape, bad_dtype):
    return [
        Bad("out-shape", _set("out", lambda t: torch.empty(bad_shape, dtype=t.dtype, device=t.device)), "out"),
        Bad("out-dtype", _set("out", lambda t: torch.empty(t.shape, dtype=bad_dtype, device=t.device)), "out"),
        Bad("out-meta", _meta("out"), "out"),
    ]


_BLOCKWISE_DQ = [
    Bad("A-fp32", _dtype("A", F32), "A"),
    Bad("A-int8", _dtype("A", torch.int8), "A"),
    Bad("absmax-fp16", _dtype("absmax", F16), "absmax"),
    Bad("absmax-too-short", _trim("absmax", 1), "absmax"),
    Bad("absmax-meta", _meta("absmax"), "absmax"),
    Bad("A-meta", _meta("A"), "absmax"),  # absmax is the first tensor compared with A's device
    Bad("dtype-int32", _value("dtype", torch.int32), "dtype"),
    Bad("dtype-fp64", _value("dtype", torch.float64), "dtype"),
] + _blockwise_8bit_common()

_4BIT_DQ = [
    Bad("A-bool", _set("A", lambda t: t.bool()), "A"),
    Bad("A-complex", _set("A", lambda t: t.to(torch.complex64)), "A"),
    Bad("A-too-few-bytes", _trim("A", formats.packed_nbytes_4bit(N1D) - 1), "A"),
    Bad("absmax-fp16", _dtype("absmax", F16), "absmax"),
    Bad("absmax-bf16", _dtype("absmax", BF16), "absmax"),
    Bad("absmax-too-short", _trim("absmax", 1), "absmax"),
    Bad("absmax-meta", _meta("absmax"), "absmax"),
    Bad("shape-negative", _value("shape", [-2, 50]), "shape"),
    Bad("dtype-int8", _value("dtype", torch.int8), "dtype"),
    Bad("dtype-fp64", _value("dtype", torch.float64), "dtype"),
] + _blocksize_4bit_cases() + _quant_type_cases()

_4BIT_MM = [
    Bad("A-int8", _dtype("A", torch.int8), "A"),
    Bad("A-fp64", _dtype("A", torch.float64), "A"),
    Bad("B-bool", _set("B", lambda t: t.bool()), "B"),
    Bad("B-too-few-bytes", _trim("B", N4 * K4 // 2 - 1), "B"),
    Bad("B-meta", _meta("B"), "B"),
    Bad("shapeB-K-mismatch", _value("shapeB", [N4 // 2, 2 * K4]), "shapeB", pattern=r"\bshapeB\b"),
    Bad("shapeB-1d", _value("shapeB", [N4 * K4]), "shapeB"),
    Bad("shapeB-3d", _value("shapeB", [2, N4 // 2, K4]), "shapeB"),
    Bad("absmax-fp16", _dtype("absmax", F16), "absmax"),
    Bad("absmax-too-short", _trim("absmax", N4 * K4 // BS4 - 1), "absmax"),
    Bad("absmax-meta", _meta("absmax"), "absmax"),
] + _blocksize_4bit_cases()

_GEMV = _4BIT_MM + [
    Bad("code-fp16", _dtype("code", F16), "code"),
    Bad("code-256", _set("code", lambda t: formats.table("dynamic").clone().to(t.device)), "code"),
    Bad("code-15", _trim("code", 15), "code"),
    Bad("code-meta", _meta("code"), "code"),
]

_INT8_QUANT = [
    Bad("A-int8", _dtype("A", torch.int8), "A"),
    Bad("A-fp64", _dtype("A", torch.float64), "A"),
    Bad("A-0dim", _set("A", lambda t: t[0, 0].clone()), "A"),
    Bad("threshold-negative", _value("threshold", -1.0), "threshold"),
    Bad("threshold-nan", _value("threshold", math.nan), "threshold"),
    Bad("threshold-inf", _value("threshold", math.inf), "threshold"),
]

_LINEAR = [
    Bad("A-fp16", _dtype("A", F16), "A"),
    Bad("A-uint8", _set("A", lambda t: t.view(torch.uint8)), "A"),
    Bad("B-int32", _dtype("B", torch.int32), "B"),
    Bad("B-1d", _set("B", lambda t: t[0].clone()), "B"),
    Bad("B-K-mismatch", _set("B", lambda t: t[:, :7].clone()), "B", pattern=r"\bB's K\b"),
    Bad("B-meta", _meta("B"), "B"),
]

# a float bias of N = 5 values (the int8 ops' valid arguments)
_BIAS_5 = [
    Bad("bias-too-short", _trim("bias", 4), "bias"),
    Bad("bias-int32", _dtype("bias", torch.int32), "bias"),
    Bad("bias-meta", _meta("bias"), "bias"),
]

_STATS = _BIAS_5 + [
    Bad("row_stats-fp16", _dtype("row_stats", F16), "row_stats"),
    Bad("row_stats-too-short", _trim("row_stats", 2), "row_stats"),
    Bad("row_stats-meta", _meta("row_stats"), "row_stats"),
    Bad("col_stats-too-short", _trim("col_stats", 4), "col_stats"),
    Bad("col_stats-bf16", _dtype("col_stats", BF16), "col_stats"),
    Bad("col_stats-meta", _meta("col_stats"), "col_stats"),
    Bad("dtype-int8", _value("dtype", torch.int8), "dtype"),
    Bad("dtype-fp64", _value("dtype", torch.float64), "dtype"),
]

_OPT_COMMON = [
    Bad("optimizer_name=sgd", _value("optimizer_name", "sgd"), "optimizer_name"),
    Bad("optimizer_name=Adam", _value("optimizer_name", "Adam"), "optimizer_name"),
    Bad("g-int32", _dtype("g", torch.int32), "g"),
    Bad("g-fp16-vs-p-fp32", _dtype("g", F16), "g"),
    Bad("g-too-short", _trim("g", NOPT - 1), "g"),
    Bad("g-meta", _meta("g"), "g"),
    Bad("p-fp64", _dtype("p", torch.float64), "p"),
    Bad("state1-meta", _meta("state1"), "state1"),
    Bad("state1-too-short", _trim("state1", NOPT - 1), "state1"),
    Bad("state2-missing-for-adam", _value("state2", None), "state2"),
    Bad("state2-too-short", _trim("state2", NOPT - 1), "state2"),
    Bad("step=0", _value("step", 0), "step"),
    Bad("beta1=1", _value("beta1", 1.0), "beta1"),
    Bad("beta2-negative", _value("beta2", -0.1), "beta2"),
    Bad("eps-negative", _value("eps", -1e-8), "eps"),
    Bad("lr-nan", _value("lr", math.nan), "lr"),
    Bad("lr-negative", _value("lr", -1.0), "lr"),
]


BAD: dict[str, list[Bad]] = {
    "quantize_blockwise": [
        Bad("A-int32", _dtype("A", torch.int32), "A"),
        Bad("A-uint8", _dtype("A", torch.uint8), "A"),
        Bad("A-fp64", _dtype("A", torch.float64), "A"),
        Bad("A-meta", _meta("A"), "code"),  # code is compared with A's device
    ] + _blockwise_8bit_common(),
    "dequantize_blockwise": _BLOCKWISE_DQ,
    "dequantize_blockwise.out": _BLOCKWISE_DQ + _out_cases((N1D - 1,), F16),
    "quantize_4bit": [
        Bad("A-int8", _dtype("A", torch.int8), "A"),
        Bad("A-uint8", _dtype("A", torch.uint8), "A"),
        Bad("A-fp64", _dtype("A", torch.float64), "A"),
        Bad("quant_storage-bool", _value("quant_storage", torch.bool), "quant_storage"),
        Bad("quant_storage-complex64", _value("quant_storage", torch.complex64), "quant_storage"),
    ] + _blocksize_4bit_cases() + _quant_type_cases(),
    "dequantize_4bit": _4BIT_DQ,
    "dequantize_4bit.out": _4BIT_DQ + _out_cases((N1D + 1,), F16),
    "gemv_4bit": _GEMV,
    "gemv_4bit.out": _GEMV + _out_cases((1, N4 - 1), F16),
    "gemm_4bit": _4BIT_MM + _quant_type_cases() + [
        Bad("bias-too-short", _trim("bias", N4 - 1), "bias"),
        Bad("bias-fp16", _dtype("bias", F16), "bias"),
        Bad("bias-meta", _meta("bias"), "bias"),
        Bad("absmax_code-without-absmax_8bit",
            _set("absmax_code", lambda _: formats.table("dynamic").clone()), "absmax_code"),
        Bad("absmax_offset-without-absmax_8bit", _set("absmax_offset", lambda _: torch.tensor(0.0)),
            "absmax_offset", pattern=r"\babsmax_offset\b"),
        Bad("nested-absmax_8bit-fp32", _then(_nested_gemm, _dtype("absmax_8bit", F32)), "absmax_8bit"),
        Bad("nested-absmax_8bit-too-short", _then(_nested_gemm, _trim("absmax_8bit", 3)), "absmax_8bit"),
        Bad("nested-absmax_8bit-2d", _then(_nested_gemm, _set("absmax_8bit", lambda t: t.view(4, -1))),
            "absmax_8bit"),
        Bad("nested-absmax_8bit-meta", _then(_nested_gemm, _meta("absmax_8bit")), "absmax_8bit"),
        Bad("nested-absmax_code-missing", _then(_nested_gemm, _value("absmax_code", None)), "absmax_code"),
        Bad("nested-absmax_offset-missing", _then(_nested_gemm, _value("absmax_offset", None)), "absmax_offset"),
        Bad("nested-absmax_offset-fp16", _then(_nested_gemm, _dtype("absmax_offset", F16)), "absmax_offset"),
        Bad("nested-absmax_offset-1d", _then(_nested_gemm, _set("absmax_offset", lambda t: t.reshape(1))),
            "absmax_offset"),
        Bad("nested-absmax_offset-meta", _then(_nested_gemm, _meta("absmax_offset")), "absmax_offset"),
        Bad("nested-absmax2-fp16", _then(_nested_gemm, _dtype("absmax", F16)), "absmax"),
        Bad("nested-absmax_code-255", _then(_nested_gemm, _trim("absmax_code", 255)), "absmax_code"),
        Bad("nested-absmax_code-fp16", _then(_nested_gemm, _dtype("absmax_code", F16)), "absmax_code"),
        Bad("nested-absmax_code-meta", _then(_nested_gemm, _meta("absmax_code")), "absmax_code"),
    ],
    "int8_vectorwise_quant": _INT8_QUANT,
    "int8_double_quant": _INT8_QUANT,
    "int8_vectorwise_dequant": [
        Bad("A-fp16", _dtype("A", F16), "A"),
        Bad("A-int32", _dtype("A", torch.int32), "A"),
        Bad("A-0dim", _set("A", lambda t: t[0, 0].clone()), "A"),
        Bad("stats-fp16", _dtype("stats", F16), "stats"),
        Bad("stats-too-short", _trim("stats", 3), "stats"),
        Bad("stats-meta", _meta("stats"), "stats"),
    ],
    "int8_linear_matmul": _LINEAR,
    "int8_linear_matmul.out": _LINEAR + _out_cases((3, 4), torch.int64),
    "int8_mm_dequant": [
        Bad("A-int8", _dtype("A", torch.int8), "A"),
        Bad("A-fp32", _dtype("A", F32), "A"),
    ] + _STATS,
    "int8_scaled_mm": _LINEAR + _STATS,
    "int8_mixed_scaled_mm": [
        Bad("A-int8", _dtype("A", torch.int8), "A"),
        Bad("CA-fp16", _dtype("CA", F16), "CA"),
        Bad("CA-shape", _set("CA", lambda t: t[:2].clone()), "CA"),
        Bad("outlier_cols-fp32", _dtype("outlier_cols", F32), "outlier_cols"),
        Bad("outlier_cols-2d", _set("outlier_cols", lambda t: t.reshape(1, 1)), "outlier_cols"),
        Bad("outlier_cols-meta", _meta("outlier_cols"), "outlier_cols"),
        Bad("bias-too-short", _trim("bias", 4), "bias"),
        Bad("bias-int32", _dtype("bias", torch.int32), "bias"),
        Bad("CB-fp16", _dtype("CB", F16), "CB"),
        Bad("CB-1d", _set("CB", lambda t: t[0].clone()), "CB"),
        Bad("CB-meta", _meta("CB"), "CB"),
        Bad("SCA-too-short", _trim("SCA", 2), "SCA"),
        Bad("SCA-fp16", _dtype("SCA", F16), "SCA"),
        Bad("SCB-too-short", _trim("SCB", 4), "SCB"),
        Bad("SCB-meta", _meta("SCB"), "SCB"),
    ],
    "int8_mixed_linear": [
        Bad("A-int8", _dtype("A", torch.int8), "A"),
        Bad("A-fp64", _dtype("A", torch.float64), "A"),
        Bad("CB-fp16", _dtype("CB", F16), "CB"),
        Bad("CB-1d", _set("CB", lambda t: t[0].clone()), "CB"),
        Bad("CB-K", _set("CB", lambda t: t[:, :4].clone()), "A"),  # A's K must equal CB's (the message starts with A)
        Bad("CB-meta", _meta("CB"), "CB"),
        Bad("SCB-too-short", _trim("SCB", 4), "SCB"),
        Bad("SCB-fp16", _dtype("SCB", F16), "SCB"),
        Bad("SCB-meta", _meta("SCB"), "SCB"),
        Bad("threshold-negative", _value("threshold", -1.0), "threshold"),
        Bad("threshold-nan", _value("threshold", math.nan), "threshold"),
        Bad("threshold-inf", _value("threshold", math.inf), "threshold"),
    ] + _BIAS_5,
    "optimizer_update_32bit": _OPT_COMMON + [
        Bad("state1-fp16", _dtype("state1", F16), "state1"),
        Bad("state2-bf16", _dtype("state2", BF16), "state2"),
        Bad("unorm_vec-missing", _then(_value("max_unorm", 1.0), _value("unorm_vec", None)), "unorm_vec"),
        Bad("unorm_vec-fp16", _then(_value("max_unorm", 1.0), _dtype("unorm_vec", F16)), "unorm_vec"),
        Bad("unorm_vec-2", _then(_value("max_unorm", 1.0), _set("unorm_vec", lambda t: torch.zeros(2, device=t.device))),
            "unorm_vec"),
        Bad("unorm_vec-meta", _then(_value("max_unorm", 1.0), _meta("unorm_vec")), "unorm_vec"),
    ],
    "optimizer_update_8bit_blockwise": _OPT_COMMON + [
        Bad("state1-fp32", _dtype("state1", F32), "state1"),
        Bad("state2-fp32", _dtype("state2", F32), "state2"),
        Bad("qmap2-255", _trim("qmap2", 255), "qmap2"),
        Bad("qmap2-fp16", _dtype("qmap2", F16), "qmap2"),
        Bad("qmap2-missing", _value("qmap2", None), "qmap2"),
        Bad("absmax1-too-short", _trim("absmax1", 1), "absmax1"),
        Bad("absmax1-fp16", _dtype("absmax1", F16), "absmax1"),
        Bad("absmax1-meta", _meta("absmax1"), "absmax1"),
        Bad("absmax2-too-short", _trim("absmax2", 1), "absmax2"),
        Bad("absmax2-meta", _meta("absmax2"), "absmax2"),
        Bad("qmap1-255", _trim("qmap1", 255), "qmap1"),
        Bad("qmap1-fp16", _dtype("qmap1", F16), "qmap1"),
        Bad("qmap1-meta", _meta("qmap1"), "qmap1"),
    ],
}


def _params():
    out = []
    for op, cases in BAD.items():
        for b in cases:
            out.append(pytest.param(op, b, id=f"{op}[{b.id}]"))
    return out


def _bad_call(op: str, bad: Bad, device: str):
    d = _valid(op, device)
    bad.mutate(d)
    return [d[n] for n in _arg_names(op)]


def _expect(op, bad, fn):
    """fn must raise ValueError naming the argument (an AssertionError with the reason otherwise)."""
    try:
        fn()
    except ValueError as e:
        msg = str(e)
        assert re.search(bad.pattern, msg), f"{op}[{bad.id}]: ValueError does not name {bad.name!r}: {msg!r}"
        return
    except Exception as e:  # wrong exception type
        raise AssertionError(f"{op}[{bad.id}]: expected ValueError naming {bad.name!r}, got "
                             f"{type(e).__name__}: {e}") from e
    raise AssertionError(f"{op}[{bad.id}]: no error raised, expected ValueError naming {bad.name!r}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,bad", _params())
def test_bad_argument(op, bad, device):
    args = _bad_call(op, bad, device)
    _expect(op, bad, lambda: OPS[op].packet(*args))
    # pytest.raises form, as users write it
    with pytest.raises(ValueError, match=bad.pattern):
        OPS[op].packet(*args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,bad", _params())
def test_bad_argument_fake_tensor(op, bad, device):
    args = _bad_call(op, bad, device)
    mode = FakeTensorMode(allow_non_fake_inputs=False)
    fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
    with mode:
        _expect(op, bad, lambda: OPS[op].packet(*fake))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", sorted(OPS))
def test_valid_arguments_pass(op, device):
    """The unmodified arguments are accepted (so every bad case fails for its one change), eagerly and
    under FakeTensorMode."""
    args = [_valid(op, device)[n] for n in _arg_names(op)]
    OPS[op].check(*args)
    OPS[op].packet(*args)
    if op == "gemm_4bit":
        d = _valid(op, device)
        _nested_gemm(d)
        OPS[op].packet(*[d[n] for n in _arg_names(op)])
    mode = FakeTensorMode(shape_env=ShapeEnv())  # ShapeEnv: data-dependent output sizes (outlier columns)
    args = [_valid(op, device)[n] for n in _arg_names(op)]
    fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
    with mode:
        OPS[op].packet(*fake)


def test_every_op_has_bad_argument_cases():
    assert len(OPS) >= 19
    missing = sorted(set(OPS) - set(BAD))
    assert not missing, f"ops without bad-argument cases in tests/test_bad_args.py: {missing}"
    unknown = sorted(set(BAD) - set(OPS))
    assert not unknown, f"bad-argument cases for unknown ops: {unknown}"
    for op, cases in BAD.items():
        assert len(cases) >= 5, f"{op}: only {len(cases)} bad-argument cases"
        n_tensors = sum("Tensor" in str(a.type) for a in OPS[op].packet._schema.arguments)
        if n_tensors >= 2:  # ops with one tensor argument cannot mix devices
            assert any(b.id.endswith("-meta") for b in cases), f"{op}: no device-mix (meta) case"
        ids = [b.id for b in cases]
        assert len(ids) == len(set(ids)), f"{op}: duplicate case ids"
        names = set(_arg_names(op))
        for b in cases:
            assert b.name in names, f"{op}[{b.id}]: {b.name!r} is not an argument of the op"
