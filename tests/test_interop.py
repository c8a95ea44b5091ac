"""Bit compatibility with bitsandbytes 0.50.2 on CPU (its wheel runs there).

bitsandbytes is a test dependency. When it cannot be imported the tests skip, unless
BNB_CORE_REQUIRE_BITSANDBYTES=1 (set in CI): then every test fails, so CI cannot go green silently.
"""

from __future__ import annotations

import json
import os
import zlib

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core import formats
from bnb_core import functional as F

BNB_VERSION = "0.50.2"
REQUIRE = os.environ.get("BNB_CORE_REQUIRE_BITSANDBYTES", "0") not in ("", "0", "false", "False")

try:  # bitsandbytes prints a harmless warning about the optional "kernels" package on import
    import bitsandbytes
    import bitsandbytes.functional as BF

    _PROBLEM = None if bitsandbytes.__version__ == BNB_VERSION else (
        f"bitsandbytes {bitsandbytes.__version__} is installed, these tests need {BNB_VERSION}"
    )
except Exception as e:  # ImportError, or a broken install
    BF = None
    _PROBLEM = f"bitsandbytes cannot be imported: {type(e).__name__}: {e}"


@pytest.fixture(autouse=True)
def _bitsandbytes_available():
    if _PROBLEM is not None:
        if REQUIRE:
            pytest.fail(f"{_PROBLEM} (BNB_CORE_REQUIRE_BITSANDBYTES=1)")
        pytest.skip(_PROBLEM)


FLOATS = (torch.float32, torch.float16, torch.bfloat16)
DT_IDS = ["fp32", "fp16", "bf16"]
SHAPES_4BIT = [(1,), (7,), (63,), (33, 65), (3, 4099)]


def _randn_nonzero(shape, dtype, seed):
    """Normal data with no exact zeros (FP4 zero encoding is a documented policy difference)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    x = torch.where(x.abs() < 1e-3, torch.full_like(x, 1e-3).copysign(x), x)
    return x.to(dtype)


def _bits_equal(a, b, what, zero_sign=True):
    """Bit-identical (NaN == NaN; with zero_sign=False, +0.0 == -0.0)."""
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{tuple(a.shape)} != {b.dtype}{tuple(b.shape)}"
    if a.is_floating_point():
        same_sign = (torch.signbit(a) == torch.signbit(b)) | ((a == 0) & (not zero_sign))
        same = ((a == b) & same_sign) | (torch.isnan(a) & torch.isnan(b))
    else:
        same = a == b
    if not bool(same.all()):
        i = int((~same).reshape(-1).nonzero()[0])
        raise AssertionError(f"{what}: {int((~same).sum())} of {a.numel()} values differ; first at {i}: "
                             f"{a.reshape(-1)[i].item()!r} != {b.reshape(-1)[i].item()!r}")


# --------------------------------------------------------------------------------------------------
# 4-bit
# --------------------------------------------------------------------------------------------------


#: FP4 code 0b1000 is 0.0 in both code tables (bitsandbytes.functional.get_4bit_type("fp4")[8] is +0.0) and
#: we dequantize it to +0.0; upstream's native CPU kernel (used for even element counts) returns -0.0 for it
#: while its pure-torch path (odd counts) returns +0.0. So FP4 dequantized values are compared with
#: +0.0 == -0.0; everything else bit for bit.
_ZERO_SIGN = {"nf4": True, "fp4": False}


def _near_boundary(x: torch.Tensor, blocksize: int, quant_type: str) -> torch.Tensor:
    """Elements whose y = x / absmax lies within 2 fp32 ulps of a decision boundary (both ways of computing
    y: x * (1 / absmax), and upstream's x / absmax for the tail block). On an exact tie upstream's CPU path
    picks the lower VALUE (for a negative FP4 y the larger magnitude), we the lower magnitude, as its CUDA
    kernel does (FORMATS.md); tests/test_properties.py pins our tie rule down."""
    flat = x.reshape(-1).float()
    n = flat.numel()
    absmax = torch.nn.functional.pad(flat, (0, (-n) % blocksize)).view(-1, blocksize).abs().amax(1)
    a = absmax.repeat_interleave(blocksize)[:n]
    if quant_type == "nf4":
        bounds = torch.tensor(formats.NF4_BOUNDARIES, dtype=torch.float32)
        ys = [flat * (1.0 / a), flat / a]
    else:
        bounds = torch.tensor(formats.FP4_MAGNITUDE_BOUNDARIES, dtype=torch.float32)
        ys = [(flat * (1.0 / a)).abs(), (flat / a).abs()]
    near = torch.zeros(n, dtype=torch.bool)
    for y in ys:
        ulp = torch.nextafter(y.abs(), torch.tensor(float("inf"))) - y.abs()
        near |= ((y[:, None].double() - bounds[None, :].double()).abs() <= 2 * ulp[:, None].double()).any(1)
    return near


def _assert_packed_match(ours, theirs, x, blocksize, quant_type):
    """Packed codes identical except near-ties and FP4's zero sign bit (see _canonical); returns the mask of
    compared elements."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    n = x.numel()
    tie = _near_boundary(x, blocksize, quant_type)
    assert int(tie.sum()) <= max(2, n // 50), "too many near-tie elements: the comparison would be weak"
    keep = ~tie
    _bits_equal(_canonical(ours, quant_type)[:n][keep], _canonical(theirs, quant_type)[:n][keep], "packed")
    if n % 2:  # the padding nibble
        _bits_equal(_canonical(ours, quant_type)[n:], _canonical(theirs, quant_type)[n:], "padding")
    return keep


def _canonical(packed: torch.Tensor, quant_type: str) -> torch.Tensor:
    """The 4-bit codes of `packed` (element 2i in the high nibble). For FP4 the two codes of magnitude
    zero (0b0000 and 0b1000, both 0.0 in the table) are merged: upstream's CPU path picks between them by
    an argsort of a table holding 0.0 twice, so |y| below the first threshold (0.0026) gets 0b1000 for
    y > 0 and 0b0000 for y < 0, while we follow the sign-bit rule (0b1000 only when y < 0). Every other
    code must be identical."""
    b = packed.reshape(-1).view(torch.uint8)
    codes = torch.stack([b >> 4, b & 15], dim=1).reshape(-1)
    if quant_type == "fp4":
        codes = torch.where(codes == 8, torch.zeros_like(codes), codes)
    return codes



@pytest.mark.parametrize("blocksize", [32, 64, 128, 4096])
@pytest.mark.parametrize("dtype", FLOATS, ids=DT_IDS)
@pytest.mark.parametrize("quant_type", formats.QUANT_TYPES_4BIT)
@pytest.mark.parametrize("shape", SHAPES_4BIT, ids=lambda s: "x".join(map(str, s)))
def test_quantize_4bit_bit_identical(shape, quant_type, dtype, blocksize):
    x = _randn_nonzero(shape, dtype, seed=zlib.crc32(repr((shape, quant_type, blocksize)).encode()))
    theirs, tstate = BF.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type)
    ours, ostate = F.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type)
    keep = _assert_packed_match(ours, theirs, x, blocksize, quant_type)
    _bits_equal(ostate.absmax, tstate.absmax, "absmax")
    # and through the op directly
    packed, absmax = torch.ops.bnb.quantize_4bit(x, blocksize, quant_type, torch.uint8)
    _bits_equal(packed, ours, "op packed")
    _bits_equal(absmax, tstate.absmax, "op absmax")
    # both decode to the same values
    _bits_equal(F.dequantize_4bit(ours, ostate).reshape(-1)[keep], BF.dequantize_4bit(theirs, tstate).reshape(-1)[keep],
                "dequantized", zero_sign=_ZERO_SIGN[quant_type])


@pytest.mark.parametrize("quant_type", formats.QUANT_TYPES_4BIT)
def test_fp4_nf4_zero_policy_values_agree(quant_type):
    """Exact zeros (both signs): codes may differ for FP4 (upstream may write 0b1000), values agree."""
    x = torch.randn(4, 64)
    x[0, :7] = 0.0
    x[1, 3:9] = -0.0
    theirs, tstate = BF.quantize_4bit(x, blocksize=64, quant_type=quant_type)
    ours, ostate = F.quantize_4bit(x, blocksize=64, quant_type=quant_type)
    d_ours = F.dequantize_4bit(ours, ostate)
    d_theirs = BF.dequantize_4bit(theirs, tstate)
    assert torch.equal(d_ours, d_theirs)  # == treats +0 and -0 alike
    codes = torch.stack([ours.reshape(-1) >> 4, ours.reshape(-1) & 15], 1).reshape(x.shape)
    assert bool((codes[x == 0] == formats.ZERO_CODE[quant_type]).all())


@pytest.mark.parametrize("blocksize", [64, 256])
@pytest.mark.parametrize("dtype", FLOATS, ids=DT_IDS)
@pytest.mark.parametrize("quant_type", formats.QUANT_TYPES_4BIT)
@pytest.mark.parametrize("shape", [(63,), (33, 65), (3, 4099), (64, 130)], ids=lambda s: "x".join(map(str, s)))
def test_dequantize_4bit_of_bitsandbytes_output(shape, quant_type, dtype, blocksize):
    x = _randn_nonzero(shape, dtype, seed=1)
    packed, state = BF.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type)
    theirs = BF.dequantize_4bit(packed, state)
    ours = torch.ops.bnb.dequantize_4bit(packed, state.absmax, blocksize, quant_type, list(shape), dtype)
    _bits_equal(ours, theirs, "dequantize_4bit", zero_sign=_ZERO_SIGN[quant_type])
    out = torch.empty(shape, dtype=dtype)
    torch.ops.bnb.dequantize_4bit.out(packed, state.absmax, blocksize, quant_type, list(shape), dtype, out)
    _bits_equal(out, theirs, "dequantize_4bit.out", zero_sign=_ZERO_SIGN[quant_type])


# --------------------------------------------------------------------------------------------------
# blockwise 8-bit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["normal", "wide"])
@pytest.mark.parametrize("blocksize", [16, 64, 256, 4096])
@pytest.mark.parametrize("dtype", FLOATS, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(100,), (33, 65), (5, 4099)], ids=lambda s: "x".join(map(str, s)))
def test_quantize_blockwise_at_least_as_near(shape, dtype, blocksize, data):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=g)
    if data == "wide":  # many magnitudes inside each block: the small codes upstream's CPU path gets wrong
        x = x * torch.exp2(torch.randint(-12, 1, shape, generator=g).float())
    x = x.to(dtype)
    tq, tstate = BF.quantize_blockwise(x, blocksize=blocksize)
    oq, ostate = F.quantize_blockwise(x, blocksize=blocksize)
    _bits_equal(ostate.absmax, tstate.absmax, "absmax")
    assert oq.dtype == tq.dtype == torch.uint8 and oq.shape == tq.shape
    code = formats.table("dynamic").double()
    a = tstate.absmax.double().repeat_interleave(blocksize)[: x.numel()]
    x64 = x.reshape(-1).double()
    err_ours = (code[oq.reshape(-1).long()] * a - x64).abs()
    err_theirs = (code[tq.reshape(-1).long()] * a - x64).abs()
    # ours is the nearest code: never farther than upstream's (fp32 rounding of x/absmax aside)
    slack = 2.0**-21 * a
    worse = err_ours > err_theirs + slack
    assert not bool(worse.any()), f"{int(worse.sum())} codes farther than bitsandbytes'"
    if data == "normal":
        agree = float((oq == tq).float().mean())
        assert agree >= 0.99, f"only {agree:.4f} of the codes agree with bitsandbytes"
    # both dequantize a given code stream identically
    theirs = BF.dequantize_blockwise(tq, tstate)
    ours = torch.ops.bnb.dequantize_blockwise(tq, tstate.absmax, formats.table("dynamic"), blocksize, dtype)
    _bits_equal(ours, theirs, "dequantize_blockwise")


# --------------------------------------------------------------------------------------------------
# code tables
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_maps_bit_identical(signed):
    theirs = BF.create_dynamic_map(signed=signed)
    shipped = torch.tensor(formats.DYNAMIC_SIGNED if signed else formats.DYNAMIC_UNSIGNED, dtype=torch.float32)
    _bits_equal(shipped, theirs.float(), "formats table")
    _bits_equal(F.create_dynamic_map(signed=signed), theirs.float(), "functional.create_dynamic_map")
    _bits_equal(formats.table("dynamic" if signed else "dynamic_unsigned"), theirs.float(), "formats.table")


@pytest.mark.parametrize("quant_type", formats.QUANT_TYPES_4BIT)
def test_4bit_tables_bit_identical(quant_type):
    theirs = BF.get_4bit_type(quant_type, device="cpu")
    shipped = torch.tensor(formats.NF4_CODE if quant_type == "nf4" else formats.FP4_CODE, dtype=torch.float32)
    _bits_equal(shipped, theirs, "formats table")
    _bits_equal(F.get_4bit_type(quant_type), theirs, "functional.get_4bit_type")


# --------------------------------------------------------------------------------------------------
# QuantState serialization, both ways
# --------------------------------------------------------------------------------------------------

QS_PARAMS = [(qt, cs, dt) for qt in formats.QUANT_TYPES_4BIT for cs in (False, True) for dt in (torch.float16, torch.bfloat16, torch.float32)]


def _qs_id(p):
    qt, cs, dt = p
    return f"{qt}-{'nested' if cs else 'plain'}-{str(dt)[6:]}"


def _json(d, quant_type):
    key = "quant_state.bitsandbytes__" + quant_type
    t = d[key]
    assert t.dtype == torch.uint8
    return json.loads(bytes(t.reshape(-1).tolist()).decode("utf-8")), bytes(t.reshape(-1).tolist())


@pytest.mark.parametrize("qt,cs,dtype", QS_PARAMS, ids=[_qs_id(p) for p in QS_PARAMS])
def test_quant_state_from_bitsandbytes(qt, cs, dtype):
    x = _randn_nonzero((70, 130), dtype, seed=5)
    packed, state = BF.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=cs)
    d = state.as_dict(packed=True)
    ours_state = F.QuantState.from_dict(d, device="cpu")
    assert ours_state.nested == cs and ours_state.quant_type == qt and ours_state.dtype == dtype
    assert tuple(ours_state.shape) == tuple(x.shape) and ours_state.blocksize == 64
    _bits_equal(F.dequantize_4bit(packed, ours_state), BF.dequantize_4bit(packed, state), "dequantize",
                zero_sign=_ZERO_SIGN[qt])


@pytest.mark.parametrize("qt,cs,dtype", QS_PARAMS, ids=[_qs_id(p) for p in QS_PARAMS])
def test_quant_state_to_bitsandbytes(qt, cs, dtype):
    x = _randn_nonzero((70, 130), dtype, seed=6)
    packed, state = F.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=cs)
    d = state.as_dict(packed=True)
    theirs_state = BF.QuantState.from_dict(d, device=torch.device("cpu"))
    assert theirs_state.nested == cs and theirs_state.quant_type == qt and theirs_state.dtype == dtype
    _bits_equal(BF.dequantize_4bit(packed, theirs_state), F.dequantize_4bit(packed, state), "dequantize",
                zero_sign=_ZERO_SIGN[qt])


@pytest.mark.parametrize("qt,cs,dtype", QS_PARAMS, ids=[_qs_id(p) for p in QS_PARAMS])
def test_quant_state_packed_dict_identical(qt, cs, dtype):
    x = _randn_nonzero((70, 130), dtype, seed=7)
    tp, tstate = BF.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=cs)
    op, ostate = F.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=cs)
    td, od = tstate.as_dict(packed=True), ostate.as_dict(packed=True)
    assert sorted(od) == sorted(td)
    assert all(isinstance(v, torch.Tensor) for v in od.values())
    tj, tbytes = _json(td, qt)
    oj, obytes = _json(od, qt)
    assert oj == tj
    assert obytes == tbytes, "the JSON text differs (key order or number formatting)"
    _bits_equal(od["quant_map"], td["quant_map"], "quant_map")
    _assert_packed_match(op, tp, x, 64, qt)
    if not cs:
        _bits_equal(od["absmax"], td["absmax"], "absmax")
        return
    _bits_equal(od["nested_quant_map"], td["nested_quant_map"], "nested_quant_map")
    _bits_equal(od["nested_absmax"], td["nested_absmax"], "nested_absmax")
    assert od["nested_quant_map"].data_ptr() != od["quant_map"].data_ptr()
    # first-level absmax codes: upstream's CPU path approximates the nearest 8-bit code
    oa, ta = od["absmax"], td["absmax"]
    assert oa.dtype == ta.dtype == torch.uint8 and oa.shape == ta.shape
    code = formats.table("dynamic").double()
    absmax = ostate.state2.absmax.double().repeat_interleave(formats.NESTED_BLOCKSIZE)[: oa.numel()]
    target = torch.ops.bnb.quantize_4bit(x, 64, qt, torch.uint8)[1].double() - float(ostate.offset)
    e_ours = (code[oa.long()] * absmax - target).abs()
    e_theirs = (code[ta.long()] * absmax - target).abs()
    assert not bool((e_ours > e_theirs + 2.0**-21 * absmax).any())
    assert float((oa == ta).float().mean()) >= 0.99


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 6.0])
@pytest.mark.parametrize("shape", [(1, 64), (5, 33), (4, 3, 130), (128, 1024)], ids=lambda s: "x".join(map(str, s)))
def test_int8_vectorwise_quant_identical(shape, threshold):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(shape, generator=g) * 2
    x2 = x.reshape(-1, shape[-1])
    cols = torch.randint(0, shape[-1], (3,), generator=g)
    x2[:, cols] *= 8  # outlier columns
    if x2.shape[0] > 2:
        x2[1] = 0.0  # a zero row
    x = x.half()
    # upstream's CPU path only takes 2-D input; ours takes any rank (rows = all leading dimensions)
    tCA, tSCA, tcols = BF.int8_vectorwise_quant(x.reshape(-1, shape[-1]), threshold=threshold)
    oCA, oSCA, ocols = F.int8_vectorwise_quant(x, threshold=threshold)
    assert oCA.shape == x.shape
    _bits_equal(oCA.reshape(tCA.shape), tCA, "CA")
    _bits_equal(oSCA, tSCA, "SCA")
    if threshold == 0.0:
        assert ocols is None and tcols is None
    else:
        assert ocols is not None and tcols is not None
        assert ocols.numel() > 0
        assert torch.equal(ocols.long().sort().values, tcols.long().sort().values)
