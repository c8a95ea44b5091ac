"""User API with the names, arguments and defaults of ``bitsandbytes.functional``.

Everything here is a thin layer over ``torch.ops.bnb.*``: it fills in defaults, builds and reads
QuantState (including double quantization and the state_dict form bitsandbytes writes), and picks
the op. Code written for bitsandbytes.functional ports by changing the import.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import torch

from . import formats

__all__ = [
    "QuantState", "create_dynamic_map", "get_4bit_type", "quantize_blockwise", "dequantize_blockwise",
    "quantize_4bit", "dequantize_4bit", "quantize_nf4", "quantize_fp4", "dequantize_nf4", "dequantize_fp4",
    "gemv_4bit", "int8_vectorwise_quant", "int8_vectorwise_dequant", "int8_double_quant", "int8_linear_matmul",
    "int8_mm_dequant", "pack_dict_to_tensor", "unpack_tensor_to_dict",
]


# --------------------------------------------------------------------------------------------------
# code maps
# --------------------------------------------------------------------------------------------------


def create_dynamic_map(signed: bool = True, max_exponent_bits: int = 7, total_bits: int = 8) -> torch.Tensor:
    """The dynamic quantization map (Dettmers, 8-Bit Approximations for Parallelism in Deep Learning).

    Each decade 10**(-(max_exponent_bits - 1) + i) holds the midpoints of a float32 linspace(0.1, 1, k)
    grid whose size doubles per decade; 0 and 1.0 are added and the values sorted. With the defaults this
    reproduces ``formats.DYNAMIC_SIGNED`` / ``formats.DYNAMIC_UNSIGNED`` exactly (tested).
    """
    values: list[float] = []
    non_sign_bits = total_bits - 1
    extra = 2 ** (non_sign_bits - max_exponent_bits) - 1
    decades = list(range(max_exponent_bits))
    sizes = [2 ** (i + non_sign_bits - max_exponent_bits + (0 if signed else 1)) + 1 for i in decades]
    if extra > 0:
        decades.append(max_exponent_bits - 1)
        sizes.append(extra + 1)
    for i, size in zip(decades, sizes):
        grid = torch.linspace(0.1, 1, size, dtype=torch.float32)
        means = (grid[:-1] + grid[1:]) / 2.0
        scale = 10 ** (-(max_exponent_bits - 1) + i)
        values += (scale * means).tolist()  # products rounded in fp32, as the shipped table
        if signed:
            values += (-scale * means).tolist()
    values += [0.0, 1.0]
    if len(values) > 2**total_bits:
        raise ValueError(
            f"max_exponent_bits={max_exponent_bits} and total_bits={total_bits} give {len(values)} values, "
            f"more than 2**total_bits"
        )
    values += [0.0] * (256 - len(values))
    return torch.tensor(sorted(values), dtype=torch.float32)


def get_4bit_type(typename: str, device=None, blocksize: int = 64) -> torch.Tensor:
    """The 16-entry fp32 codebook of "nf4" or "fp4" (a fresh tensor on ``device``, default CPU)."""
    if typename not in formats.QUANT_TYPES_4BIT:
        raise ValueError(f"typename must be one of {formats.QUANT_TYPES_4BIT}, got {typename!r}")
    return formats.code_4bit(typename, device or "cpu").clone()


def _dynamic_map(device) -> torch.Tensor:
    return formats.table("dynamic", device)


# --------------------------------------------------------------------------------------------------
# QuantState
# --------------------------------------------------------------------------------------------------


def pack_dict_to_tensor(source_dict: dict) -> torch.Tensor:
    """UTF-8 JSON of a dict as a uint8 tensor (how bitsandbytes stores non-tensor QuantState fields)."""
    return torch.tensor(list(json.dumps(source_dict).encode("utf-8")), dtype=torch.uint8)


def unpack_tensor_to_dict(tensor_data: torch.Tensor) -> dict:
    return json.loads(bytes(tensor_data.cpu().reshape(-1).tolist()).decode("utf-8"))


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _dtype_from_name(name: str) -> torch.dtype:
    dtype = getattr(torch, str(name).replace("torch.", ""), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype name {name!r} in quantization state")
    return dtype


class QuantState:
    """Everything needed to dequantize a blockwise-quantized tensor (same fields as bitsandbytes)."""

    valid_quant_types = formats.QUANT_TYPES_4BIT
    valid_qs_type_keys = [f"bitsandbytes__{x}" for x in valid_quant_types]
    valid_qs_keys = [
        "absmax", "quant_map", "nested_absmax", "nested_quant_map", "quant_state", "quant_type", "blocksize",
        "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset",
    ]

    def __init__(self, absmax, shape=None, code=None, blocksize=None, quant_type=None, dtype=None, offset=None,
                 state2=None):
        self.absmax = absmax
        self.shape = shape
        self.code = code
        self.dtype = dtype
        self.blocksize = blocksize
        self.quant_type = quant_type
        self.offset = offset
        self.state2 = state2
        self.nested = state2 is not None

    def __getattr__(self, name):
        # FSDP resolves the packed key "quant_state.bitsandbytes__nf4" through getattr
        if name.startswith("bitsandbytes__"):
            packed = self.as_dict(packed=True)
            if "quant_state." + name in packed:
                return packed["quant_state." + name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __getitem__(self, idx):
        """Legacy list form ``[absmax, shape, dtype, blocksize, [offset, state2] or None, quant_type]``."""
        nested = [self.offset, self.state2] if self.nested else None
        return [self.absmax, self.shape, self.dtype, self.blocksize, nested, self.quant_type][idx]

    @classmethod
    def from_list(cls, state: list) -> "QuantState":
        """Build from the legacy list form (see __getitem__)."""
        absmax, shape, dtype, blocksize, nested, quant_type = state
        offset, state2 = nested if nested is not None else (None, None)
        code = formats.code_4bit(quant_type, absmax.device).clone() if quant_type else None
        return cls(absmax, shape=shape, code=code, blocksize=blocksize, quant_type=quant_type, dtype=dtype,
                   offset=offset, state2=state2)

    @classmethod
    def from_dict(cls, qs_dict: dict[str, Any], device) -> "QuantState":
        """Rebuild from the state_dict items of one quantized weight (prefixes are stripped).

        Accepts the packed form (``quant_state.bitsandbytes__nf4`` uint8 JSON tensor) that bitsandbytes
        and bnb_core write, and the unpacked form of ``as_dict(packed=False)``.
        """
        qs_dict = dict(qs_dict)
        packed = [k for k, v in qs_dict.items() if "quant_state" in k and isinstance(v, torch.Tensor)]
        if "quant_type" not in qs_dict:
            if not packed:
                raise ValueError("expected packed or unpacked quant_state items, found neither")
            if len(packed) != 1 or packed[0].split(".")[-1] not in cls.valid_qs_type_keys:
                raise ValueError(
                    f"there must be exactly one quant_state item ending in one of {cls.valid_qs_type_keys}, "
                    f"found {packed}"
                )
        if len(packed) == 1:
            qs_dict.update(unpack_tensor_to_dict(qs_dict.pop(packed[0])))
        qs_dict = {k.split(".")[-1]: v for k, v in qs_dict.items()}
        unknown = set(qs_dict) - set(cls.valid_qs_keys)
        if unknown:
            raise ValueError(f"unexpected quantization state keys {sorted(unknown)}; allowed: {cls.valid_qs_keys}")
        if qs_dict.get("quant_type") not in formats.QUANT_TYPES_4BIT:
            raise ValueError(f"quant_type must be one of {formats.QUANT_TYPES_4BIT}, got {qs_dict.get('quant_type')!r}")

        offset = state2 = None
        if "nested_absmax" in qs_dict:
            offset = torch.tensor(float(qs_dict["nested_offset"]), dtype=torch.float32, device=device)
            state2 = cls(
                absmax=qs_dict["nested_absmax"].to(device),
                blocksize=int(qs_dict["nested_blocksize"]),
                code=qs_dict["nested_quant_map"].to(device),
                dtype=_dtype_from_name(qs_dict["nested_dtype"]),
            )
        shape = qs_dict.get("shape")
        return cls(
            quant_type=qs_dict["quant_type"],
            absmax=qs_dict["absmax"].to(device),
            blocksize=int(qs_dict["blocksize"]),
            code=qs_dict["quant_map"].to(device),
            dtype=_dtype_from_name(qs_dict["dtype"]),
            shape=torch.Size(shape) if shape is not None else None,
            offset=offset,
            state2=state2,
        )

    def as_dict(self, packed: bool = False) -> dict[str, Any]:
        """The serialization of bitsandbytes: with ``packed=True``, tensors only (safetensors-ready)."""
        qs = {
            "quant_type": self.quant_type,
            "absmax": self.absmax,
            "blocksize": self.blocksize,
            "quant_map": self.code,
            "dtype": _dtype_name(self.dtype),
            "shape": tuple(self.shape) if self.shape is not None else None,
        }
        if self.nested:
            qs.update({
                "nested_absmax": self.state2.absmax,
                "nested_blocksize": self.state2.blocksize,
                "nested_quant_map": self.state2.code.clone(),  # its own storage (safetensors drops shared ones)
                "nested_dtype": _dtype_name(self.state2.dtype),
                "nested_offset": float(self.offset.item()),
            })
        if not packed or self.quant_type is None:
            return qs
        out = {k: v for k, v in qs.items() if isinstance(v, torch.Tensor)}
        out["quant_state.bitsandbytes__" + self.quant_type] = pack_dict_to_tensor(
            {k: v for k, v in qs.items() if not isinstance(v, torch.Tensor)}
        )
        return out

    def to(self, device):
        self.code = self.code.to(device)
        self.absmax = self.absmax.to(device)
        if self.nested:
            self.offset = self.offset.to(device)
            self.state2.absmax = self.state2.absmax.to(device)
            self.state2.code = self.state2.code.to(device)
        return self

    def full_absmax(self) -> torch.Tensor:
        """The fp32 first-level absmax, reconstructed when double-quantized."""
        if not self.nested:
            return self.absmax
        return dequantize_blockwise(self.absmax, self.state2) + self.offset

    def __eq__(self, other):
        if not isinstance(other, QuantState):
            return False

        def same(a, b):
            if a is None or b is None:
                return a is b
            return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=1e-6)

        return (
            same(self.absmax, other.absmax) and self.shape == other.shape and same(self.code, other.code)
            and self.dtype == other.dtype and self.blocksize == other.blocksize
            and self.quant_type == other.quant_type
            and (self.offset is None) == (other.offset is None)
            and (self.offset is None or float(self.offset) == float(other.offset))
            and (self.state2 == other.state2 if self.state2 is not None else other.state2 is None)
        )

    __hash__ = None

    def __repr__(self):
        return (f"QuantState(quant_type={self.quant_type!r}, shape={self.shape}, dtype={self.dtype}, "
                f"blocksize={self.blocksize}, nested={self.nested})")


# --------------------------------------------------------------------------------------------------
# blockwise 8-bit
# --------------------------------------------------------------------------------------------------


def quantize_blockwise(A: torch.Tensor, code: Optional[torch.Tensor] = None, absmax: Optional[torch.Tensor] = None,
                       out: Optional[torch.Tensor] = None, blocksize: int = formats.DEFAULT_BLOCKSIZE_8BIT,
                       nested: bool = False) -> tuple[torch.Tensor, QuantState]:
    """Blockwise 8-bit quantization with ``code`` (default: the signed dynamic map)."""
    code = _dynamic_map(A.device) if code is None else code.to(A.device)
    _out, _absmax = torch.ops.bnb.quantize_blockwise(A, code, blocksize)
    if nested:
        offset = _absmax.mean()
        qabsmax, state2 = quantize_blockwise(_absmax - offset, blocksize=blocksize, nested=False)
        state = QuantState(absmax=qabsmax, code=code.clone(), blocksize=blocksize, dtype=A.dtype, offset=offset,
                           state2=state2)
    else:
        state = QuantState(absmax=_absmax, code=code.clone(), blocksize=blocksize, dtype=A.dtype)
    out = out.copy_(_out) if out is not None else _out
    if absmax is not None:
        state.absmax = absmax.copy_(state.absmax)
    return out, state


def dequantize_blockwise(A: torch.Tensor, quant_state: Optional[QuantState] = None,
                         absmax: Optional[torch.Tensor] = None, code: Optional[torch.Tensor] = None,
                         out: Optional[torch.Tensor] = None, blocksize: int = formats.DEFAULT_BLOCKSIZE_8BIT,
                         nested: bool = False) -> torch.Tensor:
    if quant_state is None and absmax is None:
        raise ValueError("dequantize_blockwise requires quant_state or absmax")
    if quant_state is None:
        code = _dynamic_map(A.device) if code is None else code
        quant_state = QuantState(absmax=absmax, code=code, blocksize=blocksize, dtype=torch.float32)
    absmax = quant_state.full_absmax()
    code = quant_state.code.to(A.device)
    if out is not None:
        torch.ops.bnb.dequantize_blockwise.out(A, absmax, code, quant_state.blocksize, quant_state.dtype, out=out)
        return out
    return torch.ops.bnb.dequantize_blockwise(A, absmax, code, quant_state.blocksize, quant_state.dtype)


# --------------------------------------------------------------------------------------------------
# 4-bit
# --------------------------------------------------------------------------------------------------


def quantize_4bit(A: torch.Tensor, absmax: Optional[torch.Tensor] = None, out: Optional[torch.Tensor] = None,
                  blocksize: Optional[int] = None, compress_statistics: bool = False, quant_type: str = "fp4",
                  quant_storage: torch.dtype = torch.uint8) -> tuple[torch.Tensor, QuantState]:
    """Blockwise 4-bit (NF4 / FP4) quantization; ``compress_statistics`` double-quantizes absmax."""
    blocksize = formats.DEFAULT_BLOCKSIZE_4BIT if blocksize is None else blocksize
    _out, _absmax = torch.ops.bnb.quantize_4bit(A, blocksize, quant_type, quant_storage)
    code = get_4bit_type(quant_type, device=A.device)
    if compress_statistics:
        offset = _absmax.mean()
        qabsmax, state2 = quantize_blockwise(_absmax - offset, blocksize=formats.NESTED_BLOCKSIZE)
        state = QuantState(absmax=qabsmax, shape=A.shape, dtype=A.dtype, blocksize=blocksize, code=code,
                           quant_type=quant_type, offset=offset, state2=state2)
    else:
        state = QuantState(absmax=_absmax, shape=A.shape, dtype=A.dtype, blocksize=blocksize, code=code,
                           quant_type=quant_type)
    out = out.copy_(_out) if out is not None else _out
    if absmax is not None:
        state.absmax = absmax.copy_(state.absmax)
    return out, state


def quantize_fp4(A, absmax=None, out=None, blocksize=None, compress_statistics=False, quant_storage=torch.uint8):
    return quantize_4bit(A, absmax, out, blocksize, compress_statistics, "fp4", quant_storage)


def quantize_nf4(A, absmax=None, out=None, blocksize=None, compress_statistics=False, quant_storage=torch.uint8):
    return quantize_4bit(A, absmax, out, blocksize, compress_statistics, "nf4", quant_storage)


def dequantize_4bit(A: torch.Tensor, quant_state: Optional[QuantState] = None, absmax: Optional[torch.Tensor] = None,
                    out: Optional[torch.Tensor] = None, blocksize: Optional[int] = None,
                    quant_type: str = "fp4") -> torch.Tensor:
    blocksize = formats.DEFAULT_BLOCKSIZE_4BIT if blocksize is None else blocksize
    if quant_state is None:
        if absmax is None or out is None:
            raise ValueError("dequantize_4bit requires both absmax and out when quant_state is not given")
        quant_state = QuantState(absmax=absmax, shape=out.shape, dtype=out.dtype, blocksize=blocksize,
                                 quant_type=quant_type)
    absmax = quant_state.full_absmax()
    args = (A, absmax, quant_state.blocksize, quant_state.quant_type, list(quant_state.shape), quant_state.dtype)
    if out is not None:
        torch.ops.bnb.dequantize_4bit.out(*args, out=out)
        return out
    return torch.ops.bnb.dequantize_4bit(*args)


def dequantize_fp4(A, quant_state=None, absmax=None, out=None, blocksize=None):
    return dequantize_4bit(A, quant_state, absmax, out, blocksize, "fp4")


def dequantize_nf4(A, quant_state=None, absmax=None, out=None, blocksize=None):
    return dequantize_4bit(A, quant_state, absmax, out, blocksize, "nf4")


def gemv_4bit(A: torch.Tensor, B: torch.Tensor, out: Optional[torch.Tensor] = None, transposed_A=False,
              transposed_B=False, state: Optional[QuantState] = None) -> torch.Tensor:
    """``A @ dequantize(B).T`` for a 4-bit weight B of shape ``state.shape`` = [N, K]."""
    if state is None:
        raise ValueError("state is required: gemv_4bit needs the QuantState returned by quantize_4bit")
    absmax = state.full_absmax()
    if out is not None:
        torch.ops.bnb.gemv_4bit.out(A, B, list(state.shape), absmax, state.code, state.blocksize, out=out)
        return out
    return torch.ops.bnb.gemv_4bit(A, B, list(state.shape), absmax, state.code, state.blocksize)


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


def int8_vectorwise_quant(A: torch.Tensor, threshold: float = 0.0):
    """Row-wise int8 quantization: (int8 A, row absmax, outlier column indices or None)."""
    return torch.ops.bnb.int8_vectorwise_quant(A, threshold)


def int8_vectorwise_dequant(A: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
    return torch.ops.bnb.int8_vectorwise_dequant(A, stats)


def int8_double_quant(A: torch.Tensor, col_stats=None, row_stats=None, out_col=None, out_row=None,
                      threshold: float = 0.0):
    for name, v in (("col_stats", col_stats), ("row_stats", row_stats), ("out_col", out_col), ("out_row", out_row)):
        if v is not None:
            raise ValueError(f"{name} must be None: int8_double_quant does not write into pre-allocated tensors")
    return torch.ops.bnb.int8_double_quant(A, threshold)


def int8_linear_matmul(A: torch.Tensor, B: torch.Tensor, out: Optional[torch.Tensor] = None,
                       dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """Exact int32 ``A @ B.T`` of two int8 matrices."""
    if dtype != torch.int32:
        raise ValueError(f"dtype must be torch.int32, got {dtype}")
    if out is not None:
        torch.ops.bnb.int8_linear_matmul.out(A, B, out)
        return out
    return torch.ops.bnb.int8_linear_matmul(A, B)


def int8_mm_dequant(A: torch.Tensor, row_stats: torch.Tensor, col_stats: torch.Tensor,
                    out: Optional[torch.Tensor] = None, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    result = torch.ops.bnb.int8_mm_dequant(A, row_stats, col_stats, dtype=torch.float16, bias=bias)
    return out.copy_(result) if out is not None else result
