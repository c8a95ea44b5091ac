"""The single source of truth for every constant of the quantized formats.

Codebooks, decision boundaries, blocksizes and packing rules live here and nowhere else. Native code
gets them through ``backends/common/bnb_formats.h``, which ``tools/gen_formats_header.py`` writes from
this module (``render_c_header``); ``tests/test_formats.py`` fails if the two drift apart.

Values are bit-compatible with bitsandbytes 0.50.2 (see docs/formats.md).
"""

from __future__ import annotations

import functools
import struct

# --------------------------------------------------------------------------------------------------
# 4-bit codebooks
# --------------------------------------------------------------------------------------------------

#: NF4 (4-bit NormalFloat), codes 0..15 sorted ascending; index 7 is exactly 0.0. Shipped as the fp32
#: values bitsandbytes uses (recomputing them from normal quantiles gives slightly different floats).
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)

#: FP4 (1 sign, 2 exponent, 1 mantissa bit) in bit-pattern order: magnitudes of patterns 0b000..0b111
#: are 0, 0.0625, 8, 12, 4, 6, 2, 3 divided by 12; bit 0b1000 is the sign.
_FP4_MAGNITUDES = (0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0)


def _f32(x: float) -> float:
    """Round a Python float to the nearest float32 (returned as a Python float)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


FP4_CODE = tuple(_f32(m / 12.0) for m in _FP4_MAGNITUDES) + (0.0,) + tuple(
    -_f32(m / 12.0) for m in _FP4_MAGNITUDES[1:]
)

#: The code that represents 0.0, used for padding odd tails (and for NaN inputs, see docs/formats.md).
ZERO_CODE = {"nf4": 7, "fp4": 0}

QUANT_TYPES_4BIT = ("nf4", "fp4")

# --------------------------------------------------------------------------------------------------
# Dynamic 8-bit maps (blockwise 8-bit, nested absmax, optimizer states)
# --------------------------------------------------------------------------------------------------
# Stored as float32 bit patterns: generated once from bitsandbytes' create_dynamic_map (float32
# rounding matters) and checked against it and against functional.create_dynamic_map in the tests.

_DYNAMIC_SIGNED_BITS = (
    0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
    0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
    0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
    0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
    0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
    0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
    0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
    0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
    0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
    0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
    0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
    0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
    0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
    0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
    0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
    0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
    0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
    0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
    0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
    0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
    0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
    0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
    0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
    0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
    0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
    0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
    0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
    0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
    0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
    0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
    0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
    0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
)

_DYNAMIC_UNSIGNED_BITS = (
    0x00000000, 0x34AE7BAA, 0x35500998, 0x360E9B38, 0x3692CCF6, 0x36DE4C51, 0x3714E5D5, 0x3783126E,
    0x37E171A0, 0x381FE868, 0x384F1800, 0x387E479A, 0x3896BB99, 0x38AE5364, 0x38C5EB31, 0x3906594B,
    0x394154CA, 0x397C5049, 0x399BA5E4, 0x39B923A2, 0x39D6A163, 0x39F41F22, 0x3A08CE71, 0x3A178D50,
    0x3A264C30, 0x3A350B10, 0x3A43C9EF, 0x3A5288D0, 0x3A6147AF, 0x3A70068E, 0x3A7EC56E, 0x3A958106,
    0x3ABA5E35, 0x3ADF3B64, 0x3B020C4A, 0x3B147AE1, 0x3B26E978, 0x3B395810, 0x3B4BC6A7, 0x3B5E3540,
    0x3B70A3D7, 0x3B818937, 0x3B8AC082, 0x3B93F7CF, 0x3B9D2F1A, 0x3BA66666, 0x3BAF9DB2, 0x3BB8D4FD,
    0x3BC20C4A, 0x3BCB4395, 0x3BD47AE1, 0x3BDDB22E, 0x3BE6E978, 0x3BF020C5, 0x3BF9580F, 0x3C0147AE,
    0x3C05E354, 0x3C0A7EF9, 0x3C0F1AA0, 0x3C13B645, 0x3C1851EB, 0x3C1CED92, 0x3C218937, 0x3C2F5C2A,
    0x3C466667, 0x3C5D70A3, 0x3C747AE2, 0x3C85C28F, 0x3C9147AF, 0x3C9CCCCD, 0x3CA851EB, 0x3CB3D70B,
    0x3CBF5C29, 0x3CCAE147, 0x3CD66667, 0x3CE1EB87, 0x3CED70A3, 0x3CF8F5C3, 0x3D023D70, 0x3D080000,
    0x3D0DC28F, 0x3D13851F, 0x3D1947AF, 0x3D1F0A3D, 0x3D24CCCD, 0x3D2A8F5C, 0x3D3051EB, 0x3D36147B,
    0x3D3BD70A, 0x3D41999A, 0x3D475C28, 0x3D4D1EB8, 0x3D52E147, 0x3D58A3D7, 0x3D5E6667, 0x3D6428F7,
    0x3D69EB87, 0x3D6FAE15, 0x3D7570A3, 0x3D7B3333, 0x3D807AE2, 0x3D835C2A, 0x3D863D71, 0x3D891EB8,
    0x3D8C0000, 0x3D8EE148, 0x3D91C290, 0x3D94A3D7, 0x3D97851F, 0x3D9A6667, 0x3D9D47AF, 0x3DA028F6,
    0x3DA30A3E, 0x3DA5EB85, 0x3DA8CCCD, 0x3DABAE15, 0x3DAE8F5C, 0x3DB170A4, 0x3DB451EB, 0x3DB73333,
    0x3DBA147B, 0x3DBCF5C3, 0x3DBFD70B, 0x3DC2B852, 0x3DC5999A, 0x3DC87AE2, 0x3DCB5C29, 0x3DD40000,
    0x3DE26666, 0x3DF0CCCD, 0x3DFF3333, 0x3E06CCCC, 0x3E0E0000, 0x3E153334, 0x3E1C6666, 0x3E23999A,
    0x3E2ACCCC, 0x3E320000, 0x3E393334, 0x3E406666, 0x3E47999A, 0x3E4ECCCC, 0x3E560000, 0x3E5D3334,
    0x3E646666, 0x3E6B999A, 0x3E72CCCC, 0x3E7A0000, 0x3E809999, 0x3E843333, 0x3E87CCCD, 0x3E8B6666,
    0x3E8F0000, 0x3E92999A, 0x3E963333, 0x3E99CCCC, 0x3E9D6666, 0x3EA10000, 0x3EA4999A, 0x3EA83333,
    0x3EABCCCC, 0x3EAF6666, 0x3EB30000, 0x3EB6999A, 0x3EBA3333, 0x3EBDCCCC, 0x3EC16666, 0x3EC50000,
    0x3EC8999A, 0x3ECC3333, 0x3ECFCCCC, 0x3ED36666, 0x3ED70000, 0x3EDA999A, 0x3EDE3333, 0x3EE1CCCC,
    0x3EE56666, 0x3EE90000, 0x3EEC999A, 0x3EF03333, 0x3EF3CCCC, 0x3EF76666, 0x3EFB0000, 0x3EFE9999,
    0x3F01199A, 0x3F02E666, 0x3F04B333, 0x3F068000, 0x3F084CCC, 0x3F0A199A, 0x3F0BE666, 0x3F0DB334,
    0x3F0F8000, 0x3F114CCD, 0x3F13199A, 0x3F14E666, 0x3F16B334, 0x3F188000, 0x3F1A4CCD, 0x3F1C199A,
    0x3F1DE666, 0x3F1FB334, 0x3F218000, 0x3F234CCD, 0x3F25199A, 0x3F26E666, 0x3F28B334, 0x3F2A8000,
    0x3F2C4CCD, 0x3F2E199A, 0x3F2FE666, 0x3F31B334, 0x3F338000, 0x3F354CCD, 0x3F37199A, 0x3F38E666,
    0x3F3AB334, 0x3F3C8000, 0x3F3E4CCD, 0x3F40199A, 0x3F41E666, 0x3F43B334, 0x3F458000, 0x3F474CCC,
    0x3F49199A, 0x3F4AE666, 0x3F4CB334, 0x3F4E8000, 0x3F504CCC, 0x3F52199A, 0x3F53E666, 0x3F55B334,
    0x3F578000, 0x3F594CCC, 0x3F5B199A, 0x3F5CE666, 0x3F5EB334, 0x3F608000, 0x3F624CCC, 0x3F64199A,
    0x3F65E666, 0x3F67B334, 0x3F698000, 0x3F6B4CCC, 0x3F6D199A, 0x3F6EE666, 0x3F70B334, 0x3F728000,
    0x3F744CCC, 0x3F76199A, 0x3F77E666, 0x3F79B334, 0x3F7B8000, 0x3F7D4CCC, 0x3F7F199A, 0x3F800000,
)


def _bits_to_f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


#: Signed dynamic map: 256 fp32 values, index 127 is 0.0, index 255 is 1.0, index 0 is -0.99296874.
DYNAMIC_SIGNED = tuple(_bits_to_f32(b) for b in _DYNAMIC_SIGNED_BITS)
#: Unsigned dynamic map (optimizer state 2): index 0 is 0.0, index 255 is 1.0.
DYNAMIC_UNSIGNED = tuple(_bits_to_f32(b) for b in _DYNAMIC_UNSIGNED_BITS)

# --------------------------------------------------------------------------------------------------
# Decision boundaries: quantization picks the nearest code; a value exactly on a boundary goes to
# the LOWER code (code index = number of boundaries strictly below the value).
# --------------------------------------------------------------------------------------------------


def midpoints(sorted_code) -> tuple:
    """fp32 midpoints between neighbouring values of an ascending codebook, computed in fp32."""
    return tuple(_f32((_f32(a) + _f32(b)) / 2.0) for a, b in zip(sorted_code[:-1], sorted_code[1:]))


#: NF4: 15 boundaries on y = x / absmax.
NF4_BOUNDARIES = midpoints(NF4_CODE)

#: FP4 is quantized as sign + magnitude: the magnitudes sorted ascending, the 7 boundaries on |y|
#: between them, and the bit pattern of each magnitude rank.
_FP4_RANK_ORDER = tuple(sorted(range(8), key=lambda i: _FP4_MAGNITUDES[i]))
FP4_MAGNITUDE_BOUNDARIES = midpoints([FP4_CODE[i] for i in _FP4_RANK_ORDER])
FP4_RANK_TO_CODE = _FP4_RANK_ORDER

DYNAMIC_SIGNED_BOUNDARIES = midpoints(DYNAMIC_SIGNED)
DYNAMIC_UNSIGNED_BOUNDARIES = midpoints(DYNAMIC_UNSIGNED)

# --------------------------------------------------------------------------------------------------
# Blocksizes and layout
# --------------------------------------------------------------------------------------------------

#: 4-bit blocksizes: powers of two in [32, 4096] (the same set as bitsandbytes).
BLOCKSIZES_4BIT = (32, 64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_BLOCKSIZE_4BIT = 64
#: Blockwise 8-bit: any power of two >= 16.
MIN_BLOCKSIZE_8BIT = 16
DEFAULT_BLOCKSIZE_8BIT = 4096
#: Double quantization of the 4-bit absmax uses blockwise 8-bit with this blocksize.
NESTED_BLOCKSIZE = 256
#: 8-bit optimizer state: blocksize and the smallest parameter that gets 8-bit state.
OPTIMIZER_BLOCKSIZE = 256
OPTIMIZER_MIN_8BIT_SIZE = 4096
#: LLM.int8(): int8 range used for row/column scaling, and the dequantization constant 1/127^2.
INT8_SCALE = 127.0
INT8_MM_DEQUANT_SCALE = _f32(1.0 / (127.0 * 127.0))
INT8_DEQUANT_SCALE = _f32(1.0 / 127.0)
DEFAULT_INT8_THRESHOLD = 6.0


def is_power_of_two(x: int) -> bool:
    return isinstance(x, int) and x > 0 and (x & (x - 1)) == 0


def valid_blocksize_8bit(blocksize: int) -> bool:
    return is_power_of_two(blocksize) and blocksize >= MIN_BLOCKSIZE_8BIT


def num_blocks(n: int, blocksize: int) -> int:
    return -(-n // blocksize)


def packed_nbytes_4bit(n: int) -> int:
    """Bytes holding n 4-bit codes: two per byte, element 2i in the high nibble."""
    return (n + 1) // 2


def storage_numel_4bit(n: int, itemsize: int) -> int:
    """Elements of a quant_storage dtype holding n 4-bit codes (rounded UP, see docs/formats.md)."""
    return -(-packed_nbytes_4bit(n) // itemsize)


# --------------------------------------------------------------------------------------------------
# Torch views (cached per device)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _tensor(name: str, device: str):
    import torch

    return torch.tensor(_TABLES[name], dtype=torch.float32, device=device)


_TABLES = {
    "nf4": NF4_CODE,
    "fp4": FP4_CODE,
    "dynamic": DYNAMIC_SIGNED,
    "dynamic_unsigned": DYNAMIC_UNSIGNED,
    "nf4_boundaries": NF4_BOUNDARIES,
    "fp4_magnitude_boundaries": FP4_MAGNITUDE_BOUNDARIES,
    "dynamic_boundaries": DYNAMIC_SIGNED_BOUNDARIES,
    "dynamic_unsigned_boundaries": DYNAMIC_UNSIGNED_BOUNDARIES,
}


def table(name: str, device="cpu"):
    """A float32 tensor of one of the tables above on ``device`` (cached; do not modify it)."""
    return _tensor(name, str(device))


def code_4bit(quant_type: str, device="cpu"):
    return table(quant_type, device)


# --------------------------------------------------------------------------------------------------
# The C header carried to native code
# --------------------------------------------------------------------------------------------------


def _c_float(v: float) -> str:
    # exact: hexadecimal float literal of the float32 value (C99 / C++17)
    return "0.0f" if v == 0.0 and str(v)[0] != "-" else (_f32(v).hex() + "f")


def _c_array(name: str, values, ctype="float") -> str:
    conv = _c_float if ctype == "float" else (lambda v: str(int(v)))
    body = ", ".join(conv(v) for v in values)
    return f"static BNB_TABLE_QUAL const {ctype} {name}[{len(values)}] = {{{body}}};"


def render_c_header() -> str:
    """Text of backends/common/bnb_formats.h (generated; never edit the header by hand)."""
    lines = [
        "// GENERATED by tools/gen_formats_header.py from bnb_core/formats.py. DO NOT EDIT.",
        "// tests/test_formats.py fails when this file and formats.py disagree.",
        "#pragma once",
        "#include <stdint.h>",
        "",
        "#if defined(__CUDACC__) || defined(__HIPCC__)",
        "#define BNB_TABLE_QUAL __device__ __constant__",
        "#else",
        "#define BNB_TABLE_QUAL",
        "#endif",
        "",
        f"#define BNB_NF4_ZERO_CODE {ZERO_CODE['nf4']}",
        f"#define BNB_FP4_ZERO_CODE {ZERO_CODE['fp4']}",
        f"#define BNB_MIN_BLOCKSIZE_4BIT {BLOCKSIZES_4BIT[0]}",
        f"#define BNB_MAX_BLOCKSIZE_4BIT {BLOCKSIZES_4BIT[-1]}",
        f"#define BNB_MIN_BLOCKSIZE_8BIT {MIN_BLOCKSIZE_8BIT}",
        f"#define BNB_NESTED_BLOCKSIZE {NESTED_BLOCKSIZE}",
        f"#define BNB_OPTIMIZER_BLOCKSIZE {OPTIMIZER_BLOCKSIZE}",
        f"#define BNB_INT8_DEQUANT_SCALE {_c_float(INT8_DEQUANT_SCALE)}",
        f"#define BNB_INT8_MM_DEQUANT_SCALE {_c_float(INT8_MM_DEQUANT_SCALE)}",
        "",
        "#ifdef __cplusplus",
        "namespace bnb_formats {",
        "#endif",
        _c_array("NF4_CODE", NF4_CODE),
        _c_array("FP4_CODE", FP4_CODE),
        _c_array("NF4_BOUNDARIES", NF4_BOUNDARIES),
        _c_array("FP4_MAGNITUDE_BOUNDARIES", FP4_MAGNITUDE_BOUNDARIES),
        _c_array("FP4_RANK_TO_CODE", FP4_RANK_TO_CODE, "uint8_t"),
        _c_array("DYNAMIC_SIGNED", DYNAMIC_SIGNED),
        _c_array("DYNAMIC_UNSIGNED", DYNAMIC_UNSIGNED),
        _c_array("DYNAMIC_SIGNED_BOUNDARIES", DYNAMIC_SIGNED_BOUNDARIES),
        _c_array("DYNAMIC_UNSIGNED_BOUNDARIES", DYNAMIC_UNSIGNED_BOUNDARIES),
        "#ifdef __cplusplus",
        "}  // namespace bnb_formats",
        "#endif",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The same tables for Metal shaders (MPS backend)
# --------------------------------------------------------------------------------------------------


def _metal_float(v: float) -> str:
    # repr of a double that equals an fp32 value is within 2**-53 (relative) of it: parsed directly to fp32
    # or through a double, it gives back exactly that value (no hexadecimal literals: MSL is C++14-based)
    return repr(float(_f32(v))) + "f"


def render_metal_tables() -> str:
    """Metal Shading Language text of the tables and constants that backends/common/bnb_quant_math.h reads
    (namespace ``bnb_formats``, program-scope ``constant`` arrays). bnb_core/backends/mps.py puts it in front of
    the shader source it compiles at run time, so the tables reach the shaders from this module only (no file
    holds a copy)."""

    def arr(name, values, ctype="float"):
        conv = _metal_float if ctype == "float" else (lambda v: str(int(v)))
        return f"constant {ctype} {name}[{len(values)}] = {{{', '.join(conv(v) for v in values)}}};"

    lines = [
        "// GENERATED at run time by bnb_core.formats.render_metal_tables() from bnb_core/formats.py.",
        f"#define BNB_NF4_ZERO_CODE {ZERO_CODE['nf4']}",
        f"#define BNB_FP4_ZERO_CODE {ZERO_CODE['fp4']}",
        f"#define BNB_MIN_BLOCKSIZE_4BIT {BLOCKSIZES_4BIT[0]}",
        f"#define BNB_MAX_BLOCKSIZE_4BIT {BLOCKSIZES_4BIT[-1]}",
        f"#define BNB_MIN_BLOCKSIZE_8BIT {MIN_BLOCKSIZE_8BIT}",
        "namespace bnb_formats {",
        arr("NF4_CODE", NF4_CODE),
        arr("FP4_CODE", FP4_CODE),
        arr("NF4_BOUNDARIES", NF4_BOUNDARIES),
        arr("FP4_MAGNITUDE_BOUNDARIES", FP4_MAGNITUDE_BOUNDARIES),
        arr("FP4_RANK_TO_CODE", FP4_RANK_TO_CODE, "uint8_t"),
        arr("DYNAMIC_SIGNED", DYNAMIC_SIGNED),
        arr("DYNAMIC_UNSIGNED", DYNAMIC_UNSIGNED),
        "}  // namespace bnb_formats",
        "",
    ]
    return "\n".join(lines)
