"""Property tests (hypothesis) of the quantization formats: error bounds derived from the code tables in
bnb_core.formats, nearest-code selection, the non-finite / zero / extreme-magnitude policies of
FORMATS.md, LLM.int8() quantization, and (when the native CPU module is loaded) native == reference.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bnb_core  # noqa: F401
from bnb_core import formats, reference, registry
from bnb_core import functional as F

FLOATS = (torch.float32, torch.float16, torch.bfloat16)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------------------------------
# quantities derived from the tables
# --------------------------------------------------------------------------------------------------


def _sorted_code(quant_type: str) -> torch.Tensor:
    table = {"nf4": formats.NF4_CODE, "fp4": formats.FP4_CODE, "dynamic": formats.DYNAMIC_SIGNED}[quant_type]
    return torch.tensor(sorted(set(table)), dtype=torch.float64)


def _local_halfgap(code_sorted: torch.Tensor) -> torch.Tensor:
    """For each sorted code value c: the largest distance from c to a point of [-1, 1] that is nearer to c
    than to any other code (half the gap to each neighbour; the full distance to -1 / 1 at the ends)."""
    c = code_sorted
    left = torch.cat([(c[:1] + 1.0), (c[1:] - c[:-1]) / 2])
    right = torch.cat([(c[1:] - c[:-1]) / 2, (1.0 - c[-1:])])
    return torch.maximum(left, right)


def _max_halfgap(quant_type: str) -> float:
    return float(_local_halfgap(_sorted_code(quant_type)).max())


def _dynamic_local_halfgap() -> torch.Tensor:
    """Local half gap per 8-bit code index of the signed dynamic map (its table is sorted)."""
    code = torch.tensor(formats.DYNAMIC_SIGNED, dtype=torch.float64)
    assert bool((code[1:] > code[:-1]).all()), "dynamic map is not strictly ascending"
    return _local_halfgap(code)


EPS = {dt: torch.finfo(dt).eps for dt in FLOATS}
# smallest subnormal of a dtype: the absolute rounding error floor of a cast to it
SUB = {dt: torch.finfo(dt).tiny * torch.finfo(dt).eps for dt in FLOATS}
# y = x / absmax is computed in fp32 as x * (1 / absmax): a few ulps; boundaries are fp32 midpoints
Y_SLOP = 2.0**-21


def _block_absmax64(x: torch.Tensor, blocksize: int) -> torch.Tensor:
    flat = x.reshape(-1).double()
    pad = (-flat.numel()) % blocksize
    return torch.nn.functional.pad(flat, (0, pad)).view(-1, blocksize).abs().amax(dim=1)


def _per_element(v: torch.Tensor, n: int, blocksize: int) -> torch.Tensor:
    return v.repeat_interleave(blocksize)[:n]


def _unpack(packed: torch.Tensor, n: int) -> torch.Tensor:
    """4-bit codes, element 2i in the high nibble (written independently of bnb_core.reference)."""
    b = packed.reshape(-1).view(torch.uint8).long()
    return torch.stack([b >> 4, b & 15], dim=1).reshape(-1)[:n]


def _assert_within(err, bound, what):
    bad = ~(err <= bound)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {err.numel()} elements exceed the bound; first at {i}: "
                             f"err {float(err[i])!r} > bound {float(bound[i])!r}")


# --------------------------------------------------------------------------------------------------
# input strategies
# --------------------------------------------------------------------------------------------------

shapes = st.one_of(
    st.tuples(st.integers(1, 3000)),
    st.tuples(st.integers(1, 24), st.integers(1, 160)),
    st.tuples(st.integers(1, 4), st.integers(1, 9), st.integers(1, 70)),
)


@st.composite
def float_tensors(draw, dtype=None, shape=None, allow_zero_blocks=True):
    """Finite tensors of assorted distributions, plus a few hypothesis-chosen values at chosen spots."""
    dtype = draw(st.sampled_from(FLOATS)) if dtype is None else dtype
    shape = draw(shapes) if shape is None else shape
    n = math.prod(shape)
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    kind = draw(st.sampled_from(["normal", "uniform", "scaled", "heavy", "int", "const"]))
    if kind == "normal":
        x = torch.randn(n, generator=g)
    elif kind == "uniform":
        x = torch.rand(n, generator=g) * 2 - 1
    elif kind == "scaled":  # magnitudes spread over many binades (within fp16's normal range)
        x = torch.randn(n, generator=g) * torch.exp2(torch.randint(-10, 10, (n,), generator=g).float())
    elif kind == "heavy":
        x = torch.randn(n, generator=g) ** 3
    elif kind == "int":  # many exact zeros, duplicates and exact code values
        x = torch.randint(-6, 7, (n,), generator=g).float()
    else:
        x = torch.full((n,), draw(st.sampled_from([0.5, -3.0, 1.0])))
    if not allow_zero_blocks:
        x = torch.where(x == 0, torch.full_like(x, 0.25), x)
    values = st.floats(-60000.0, 60000.0, width=32, allow_subnormal=False)
    for i, v in draw(st.lists(st.tuples(st.integers(0, n - 1), values), max_size=4)):
        x[i] = v
    return x.to(dtype).reshape(shape)


blocksizes_4bit = st.sampled_from(formats.BLOCKSIZES_4BIT)
blocksizes_8bit = st.sampled_from([16, 32, 64, 128, 256, 1024, 4096])
quant_types = st.sampled_from(formats.QUANT_TYPES_4BIT)

# --------------------------------------------------------------------------------------------------
# 4-bit round trip
# --------------------------------------------------------------------------------------------------


def _check_4bit_roundtrip(x, packed, state, deq, blocksize, quant_type, absmax_err_bound=None):
    n = x.numel()
    dtype = x.dtype
    assert deq.dtype == dtype and deq.shape == x.shape
    absmax = _block_absmax64(x, blocksize)
    a = _per_element(absmax, n, blocksize)
    x64 = x.reshape(-1).double()
    d64 = deq.reshape(-1).double()
    bound = _max_halfgap(quant_type) * a + Y_SLOP * a
    if absmax_err_bound is not None:  # |code| <= 1, so an absmax error adds at most itself
        bound = bound + _per_element(absmax_err_bound, n, blocksize)
    bound = bound + EPS[dtype] * torch.maximum(x64.abs(), d64.abs()) + SUB[dtype] + SUB[torch.float32]
    _assert_within((x64 - d64).abs(), bound, f"4-bit {quant_type} round trip ({dtype}, blocksize {blocksize})")


@settings(max_examples=200, **SETTINGS)
@given(x=float_tensors(), blocksize=blocksizes_4bit, quant_type=quant_types,
       storage=st.sampled_from([torch.uint8, torch.uint8, torch.bfloat16, torch.float32, torch.int8]))
def test_4bit_roundtrip_error_bound(x, blocksize, quant_type, storage):
    packed, state = F.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type, quant_storage=storage)
    n = x.numel()
    assert packed.dtype == storage
    assert packed.numel() * packed.element_size() >= (n + 1) // 2
    # absmax is the exact fp32 block absmax
    assert torch.equal(state.absmax.double(), _block_absmax64(x, blocksize))
    # the odd tail nibble holds the zero code
    if n % 2:
        assert int(packed.reshape(-1).view(torch.uint8)[(n - 1) // 2]) & 15 == formats.ZERO_CODE[quant_type]
    deq = F.dequantize_4bit(packed, state)
    _check_4bit_roundtrip(x, packed, state, deq, blocksize, quant_type)
    # the .out overload writes the same values
    out = torch.full_like(x, 7.0)
    F.dequantize_4bit(packed, state, out=out)
    assert torch.equal(out, deq)


@settings(max_examples=150, **SETTINGS)
@given(x=float_tensors(), blocksize=st.sampled_from([32, 64, 128]), quant_type=quant_types)
def test_4bit_double_quant_roundtrip_error_bound(x, blocksize, quant_type):
    packed, state = F.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type, compress_statistics=True)
    assert state.nested and state.absmax.dtype == torch.uint8
    absmax = _block_absmax64(x, blocksize)
    nb = absmax.numel()
    offset = float(state.offset)
    assert offset == pytest.approx(float(absmax.mean()), rel=1e-5, abs=1e-30)
    absmax2 = state.state2.absmax.double()
    assert absmax2.numel() == formats.num_blocks(nb, formats.NESTED_BLOCKSIZE)
    # absmax2 is the block absmax of (absmax - offset), computed in fp32
    centered = (absmax.float() - torch.tensor(offset, dtype=torch.float32)).double()
    assert torch.allclose(absmax2, _block_absmax64(centered, formats.NESTED_BLOCKSIZE), rtol=2**-22, atol=0)
    # the reconstructed absmax error: half the local dynamic-map gap of the chosen code times absmax2
    q = state.absmax.long()
    local = _dynamic_local_halfgap()[q]
    a2 = _per_element(absmax2, nb, formats.NESTED_BLOCKSIZE)
    absmax_err_bound = (local + Y_SLOP) * a2 + 2.0**-22 * (absmax + abs(offset)) + SUB[torch.float32]
    recon = state.full_absmax().double()
    _assert_within((recon - absmax).abs(), absmax_err_bound, "double-quantized absmax")
    deq = F.dequantize_4bit(packed, state)
    _check_4bit_roundtrip(x, packed, state, deq, blocksize, quant_type, absmax_err_bound=absmax_err_bound)


# --------------------------------------------------------------------------------------------------
# 8-bit blockwise round trip
# --------------------------------------------------------------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(x=float_tensors(), blocksize=blocksizes_8bit)
def test_8bit_blockwise_roundtrip_local_error_bound(x, blocksize):
    q, state = F.quantize_blockwise(x, blocksize=blocksize)
    assert q.dtype == torch.uint8 and q.shape == x.shape
    absmax = _block_absmax64(x, blocksize)
    assert torch.equal(state.absmax.double(), absmax)
    deq = F.dequantize_blockwise(q, state)
    assert deq.dtype == x.dtype and deq.shape == x.shape
    n = x.numel()
    a = _per_element(absmax, n, blocksize)
    local = _dynamic_local_halfgap()[q.reshape(-1).long()]
    x64, d64 = x.reshape(-1).double(), deq.reshape(-1).double()
    bound = (local + Y_SLOP) * a + EPS[x.dtype] * torch.maximum(x64.abs(), d64.abs()) + SUB[x.dtype] + SUB[torch.float32]
    _assert_within((x64 - d64).abs(), bound, f"8-bit round trip ({x.dtype}, blocksize {blocksize})")


# --------------------------------------------------------------------------------------------------
# nearest code, ties to the lower code
# --------------------------------------------------------------------------------------------------


def _assert_nearest(x, codes, code_values, blocksize, what):
    """codes[i] is a nearest code of y_i = x_i / absmax (up to fp32 rounding of y)."""
    a = _per_element(_block_absmax64(x, blocksize), x.numel(), blocksize)
    y = torch.where(a > 0, x.reshape(-1).double() / a, torch.zeros_like(a))
    vals = torch.tensor(code_values, dtype=torch.float64)
    dist = (y[:, None] - vals[None, :]).abs()
    chosen = dist.gather(1, codes.reshape(-1, 1).long()).squeeze(1)
    best = dist.min(dim=1).values
    _assert_within(chosen - best, torch.full_like(best, Y_SLOP) * torch.maximum(y.abs(), torch.ones_like(y)),
                   f"{what}: a strictly nearer code exists")


@settings(max_examples=150, **SETTINGS)
@given(x=float_tensors(), blocksize=blocksizes_4bit, quant_type=quant_types)
def test_4bit_codes_are_nearest(x, blocksize, quant_type):
    packed, _ = torch.ops.bnb.quantize_4bit(x, blocksize, quant_type, torch.uint8)
    codes = _unpack(packed, x.numel())
    table = formats.NF4_CODE if quant_type == "nf4" else formats.FP4_CODE
    _assert_nearest(x, codes, table, blocksize, quant_type)
    if quant_type == "fp4":  # sign bit only for y < 0; zero is always 0b0000
        xf = x.reshape(-1)
        assert not bool(((codes >= 8) & (xf >= 0)).any()), "fp4 sign bit set on a non-negative value"
        a = _per_element(_block_absmax64(x, blocksize), x.numel(), blocksize)
        clearly_negative = xf.double() < -1e-30 * a
        assert bool((codes[clearly_negative] >= 8).all()), "fp4 sign bit missing on a negative value"
        assert bool((codes[xf == 0] == 0).all()), "fp4 zero must encode as 0b0000"


@settings(max_examples=150, **SETTINGS)
@given(x=float_tensors(), blocksize=blocksizes_8bit)
def test_8bit_codes_are_nearest(x, blocksize):
    q, _ = torch.ops.bnb.quantize_blockwise(x, formats.table("dynamic"), blocksize)
    _assert_nearest(x, q, formats.DYNAMIC_SIGNED, blocksize, "dynamic 8-bit")


def _boundary_block(boundaries, blocksize, up: bool):
    """[1.0, b_0, b_1, ...] (fp32, absmax exactly 1 so y == x), optionally each b nudged one ulp up."""
    b = torch.tensor(boundaries, dtype=torch.float32)
    if up:
        b = torch.nextafter(b, torch.tensor(math.inf))
    x = torch.cat([torch.ones(1), b])
    return torch.nn.functional.pad(x, (0, (-x.numel()) % blocksize))


@pytest.mark.parametrize("up", [False, True], ids=["on-boundary", "one-ulp-above"])
@pytest.mark.parametrize("quant_type", formats.QUANT_TYPES_4BIT)
@pytest.mark.parametrize("device", ["cpu"])
def test_4bit_ties_go_to_the_lower_code(quant_type, up, device):
    if quant_type == "nf4":
        bounds = formats.NF4_BOUNDARIES
        x = _boundary_block(bounds, 32, up)
        codes = _unpack(torch.ops.bnb.quantize_4bit(x.to(device), 32, "nf4", torch.uint8)[0].cpu(), x.numel())
        expect = torch.arange(len(bounds)) + (1 if up else 0)
        assert codes[1:1 + len(bounds)].tolist() == expect.tolist()
    else:
        bounds = formats.FP4_MAGNITUDE_BOUNDARIES
        rank_to_code = torch.tensor(formats.FP4_RANK_TO_CODE)
        expect = rank_to_code[torch.arange(len(bounds)) + (1 if up else 0)]
        for sign in (1.0, -1.0):
            x = _boundary_block(bounds, 32, up)
            x[1:1 + len(bounds)] *= sign
            codes = _unpack(torch.ops.bnb.quantize_4bit(x.to(device), 32, "fp4", torch.uint8)[0].cpu(), x.numel())
            got = codes[1:1 + len(bounds)]
            assert (got & 7).tolist() == expect.tolist(), f"sign {sign}: lower magnitude wins a tie"
            assert bool(((got >= 8) == (sign < 0)).all())


@pytest.mark.parametrize("up", [False, True], ids=["on-boundary", "one-ulp-above"])
def test_8bit_ties_go_to_the_lower_code(up):
    bounds = formats.DYNAMIC_SIGNED_BOUNDARIES
    x = _boundary_block(bounds, 256, up)
    q, _ = torch.ops.bnb.quantize_blockwise(x, formats.table("dynamic"), 256)
    expect = torch.arange(len(bounds)) + (1 if up else 0)
    assert q[1:1 + len(bounds)].long().tolist() == expect.tolist()


# --------------------------------------------------------------------------------------------------
# non-finite, zero and extreme blocks
# --------------------------------------------------------------------------------------------------

NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def nonfinite_case(draw, blocksizes):
    blocksize = draw(blocksizes)
    dtype = draw(st.sampled_from(FLOATS))
    nblocks = draw(st.integers(1, 5))
    n = draw(st.integers((nblocks - 1) * blocksize + 1, nblocks * blocksize))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(n, generator=g)
    bad_block = draw(st.integers(0, nblocks - 1))
    lo, hi = bad_block * blocksize, min(n, (bad_block + 1) * blocksize)
    specials = draw(st.lists(st.tuples(st.integers(lo, hi - 1), NONFINITE), min_size=1, max_size=3))
    for i, v in specials:
        x[i] = v
    zero_block = draw(st.one_of(st.none(), st.integers(0, nblocks - 1)).filter(lambda b: b != bad_block))
    if zero_block is not None:
        x[zero_block * blocksize:(zero_block + 1) * blocksize] = 0.0
    return x.to(dtype), blocksize, bad_block, zero_block


def _check_nonfinite(x, blocksize, bad_block, zero_block, absmax, deq, deq_clean, absmax_clean):
    n = x.numel()
    lo, hi = bad_block * blocksize, min(n, (bad_block + 1) * blocksize)
    xb = x[lo:hi]
    if bool(torch.isnan(xb).any()):
        assert math.isnan(float(absmax[bad_block])), "a block holding NaN must get a NaN absmax"
    else:
        assert math.isinf(float(absmax[bad_block])), "a block holding Inf must get an infinite absmax"
    assert bool(torch.isnan(deq[lo:hi]).all()), "every element of a non-finite block dequantizes to NaN"
    others = torch.ones(n, dtype=torch.bool)
    others[lo:hi] = False
    # blocks are independent: the other blocks equal those of the same input with the bad block zeroed
    assert torch.equal(deq[others], deq_clean[others])
    keep = torch.ones(absmax.numel(), dtype=torch.bool)
    keep[bad_block] = False
    assert torch.equal(absmax[keep], absmax_clean[keep])
    assert bool(torch.isfinite(deq[others]).all())
    if zero_block is not None:
        zlo, zhi = zero_block * blocksize, min(n, (zero_block + 1) * blocksize)
        assert float(absmax[zero_block]) == 0.0
        assert bool((deq[zlo:zhi] == 0).all()), "an all-zero block dequantizes to exact zeros"


@settings(max_examples=150, **SETTINGS)
@given(case=nonfinite_case(st.sampled_from([32, 64, 256])), quant_type=quant_types)
def test_4bit_nonfinite_and_zero_blocks(case, quant_type):
    x, blocksize, bad_block, zero_block = case
    packed, absmax = torch.ops.bnb.quantize_4bit(x, blocksize, quant_type, torch.uint8)
    deq = torch.ops.bnb.dequantize_4bit(packed, absmax, blocksize, quant_type, list(x.shape), x.dtype)
    clean = x.clone()
    clean[bad_block * blocksize:(bad_block + 1) * blocksize] = 0
    pc, ac = torch.ops.bnb.quantize_4bit(clean, blocksize, quant_type, torch.uint8)
    dc = torch.ops.bnb.dequantize_4bit(pc, ac, blocksize, quant_type, list(x.shape), x.dtype)
    _check_nonfinite(x, blocksize, bad_block, zero_block, absmax, deq, dc, ac)
    codes = _unpack(packed, x.numel())
    if zero_block is not None:
        z = codes[zero_block * blocksize:(zero_block + 1) * blocksize]
        assert bool((z == formats.ZERO_CODE[quant_type]).all()), "an all-zero block holds the zero code"


@settings(max_examples=150, **SETTINGS)
@given(case=nonfinite_case(st.sampled_from([16, 64, 256])))
def test_8bit_nonfinite_and_zero_blocks(case):
    x, blocksize, bad_block, zero_block = case
    code = formats.table("dynamic")
    q, absmax = torch.ops.bnb.quantize_blockwise(x, code, blocksize)
    deq = torch.ops.bnb.dequantize_blockwise(q, absmax, code, blocksize, x.dtype)
    clean = x.clone()
    clean[bad_block * blocksize:(bad_block + 1) * blocksize] = 0
    qc, ac = torch.ops.bnb.quantize_blockwise(clean, code, blocksize)
    dc = torch.ops.bnb.dequantize_blockwise(qc, ac, code, blocksize, x.dtype)
    _check_nonfinite(x, blocksize, bad_block, zero_block, absmax, deq, dc, ac)
    if zero_block is not None:
        z = q[zero_block * blocksize:(zero_block + 1) * blocksize]
        assert bool((code[z.long()] == 0).all()), "an all-zero block holds the zero code"


# huge magnitudes near each dtype's max, and subnormals
EXTREMES = {
    torch.float32: (1e38, 1e-40),
    torch.float16: (6e4, 5e-6),
    torch.bfloat16: (3e38, 1e-39),
}


@settings(max_examples=150, **SETTINGS)
@given(dtype=st.sampled_from(FLOATS), which=st.sampled_from([0, 1]), n=st.integers(1, 700),
       seed=st.integers(0, 2**31 - 1), blocksize=st.sampled_from([32, 64, 256]), quant_type=quant_types,
       mix=st.booleans())
def test_extreme_magnitudes_roundtrip(dtype, which, n, seed, blocksize, quant_type, mix):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g) * 2 - 1
    u[0] = 1.0  # reach the magnitude
    scale = EXTREMES[dtype][which]
    x = (u * scale).to(dtype)
    if mix:  # blocks of very different magnitudes side by side
        x[blocksize:2 * blocksize] = (u[blocksize:2 * blocksize] * EXTREMES[dtype][1 - which]).to(dtype)
    assume(bool(torch.isfinite(x).all()))
    packed, state = F.quantize_4bit(x, blocksize=blocksize, quant_type=quant_type)
    deq = F.dequantize_4bit(packed, state)
    assert bool(torch.isfinite(deq).all())
    _check_4bit_roundtrip(x, packed, state, deq, blocksize, quant_type)
    # 8-bit with the same bound construction (local gap of the chosen code)
    bs8 = max(16, blocksize)
    q, st8 = F.quantize_blockwise(x, blocksize=bs8)
    d8 = F.dequantize_blockwise(q, st8)
    a = _per_element(_block_absmax64(x, bs8), n, bs8)
    local = _dynamic_local_halfgap()[q.reshape(-1).long()]
    x64, d64 = x.double(), d8.double()
    bound = (local + Y_SLOP) * a + EPS[dtype] * torch.maximum(x64.abs(), d64.abs()) + SUB[dtype] + SUB[torch.float32]
    _assert_within((x64 - d64).abs(), bound, f"8-bit extreme round trip ({dtype})")


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


@st.composite
def int8_inputs(draw):
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw(st.one_of(st.tuples(st.integers(1, 40), st.integers(1, 300)),
                           st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 90))))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(shape, generator=g) * draw(st.sampled_from([0.01, 1.0, 2.0, 100.0]))
    x2 = x.reshape(-1, shape[-1])
    for r in draw(st.lists(st.integers(0, x2.shape[0] - 1), max_size=2)):
        x2[r] = 0.0  # zero rows
    for c, v in draw(st.lists(st.tuples(st.integers(0, shape[-1] - 1), st.floats(6.0, 500.0)), max_size=3)):
        x2[draw(st.integers(0, x2.shape[0] - 1)), c] = v * draw(st.sampled_from([1, -1]))  # outliers
    threshold = draw(st.sampled_from([0.0, 0.0, 6.0, 3.0]))
    return x.to(dtype), threshold


@settings(max_examples=200, **SETTINGS)
@given(case=int8_inputs())
def test_int8_vectorwise_quant_bounds(case):
    x, threshold = case
    CA, SCA, cols = F.int8_vectorwise_quant(x, threshold=threshold)
    assert CA.dtype == torch.int8 and CA.shape == x.shape and SCA.dtype == torch.float32
    x2 = x.reshape(-1, x.shape[-1]).double()
    C2 = CA.reshape(x2.shape).double()
    outlier = x2.abs() >= threshold if threshold > 0 else torch.zeros_like(x2, dtype=torch.bool)
    if threshold > 0:
        expect_cols = torch.nonzero(outlier.any(dim=0)).reshape(-1)
        assert cols is not None and torch.equal(cols.sort().values.cpu(), expect_cols)
        assert bool((C2[:, expect_cols] == 0).all()), "outlier columns are zeroed in CA"
    else:
        assert cols is None or cols.numel() == 0
    # SCA is the row absmax of the non-outlier entries
    expect_sca = x2.masked_fill(outlier, 0).abs().amax(dim=1)
    assert torch.equal(SCA.double(), expect_sca)
    assert bool((C2.abs() <= 127).all())
    s = SCA.double()[:, None]
    inlier_cols = ~outlier.any(dim=0)
    err = (x2 - C2 * s / 127)[:, inlier_cols]
    bound = (s / 254 + s * 2.0**-20).expand_as(x2)[:, inlier_cols]
    _assert_within(err.abs().reshape(-1), bound.reshape(-1), "int8 vectorwise quantization")
    zero_rows = (x2 == 0).all(dim=1)
    assert bool((SCA[zero_rows] == 0).all()) and bool((C2[zero_rows] == 0).all())
    # dequantize: no NaN from zero rows
    dq = F.int8_vectorwise_dequant(CA, SCA)
    assert bool(torch.isfinite(dq).all())


@settings(max_examples=150, **SETTINGS)
@given(M=st.integers(1, 17), N=st.integers(1, 40), K=st.integers(1, 2600), seed=st.integers(0, 2**31 - 1),
       fill=st.sampled_from(["random", "min", "max", "mixed"]), batch=st.booleans())
def test_int8_linear_matmul_exact(M, N, K, seed, fill, batch):
    g = torch.Generator().manual_seed(seed)
    A = torch.randint(-128, 128, (M, K), generator=g, dtype=torch.int8)
    B = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
    if fill == "min":
        A.fill_(-128)
        B.fill_(-128)
    elif fill == "max":
        A.fill_(127)
        B.fill_(-128)
    elif fill == "mixed":
        A[:, ::2] = -128
        B[:, ::2] = -128
    if batch and M % 2 == 0:
        A = A.reshape(2, M // 2, K)
    out = F.int8_linear_matmul(A, B)
    exact = A.long().reshape(-1, K) @ B.long().T
    assert out.dtype == torch.int32 and out.shape == (*A.shape[:-1], N)
    assert torch.equal(out.reshape(-1, N).long(), exact)
    o2 = torch.full((*A.shape[:-1], N), 7, dtype=torch.int32)
    F.int8_linear_matmul(A, B, out=o2)
    assert torch.equal(o2, out)


# --------------------------------------------------------------------------------------------------
# native CPU kernels == reference (only when the native module is loaded)
# --------------------------------------------------------------------------------------------------


def _native(op):
    return bool(registry.kernels(op, "cpu"))


def _bits_equal(a, b, what):
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
    if a.is_floating_point():
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
        # distinguish +0 / -0 and infinities exactly
        same &= (torch.signbit(a) == torch.signbit(b)) | torch.isnan(a)
    else:
        same = a == b
    if not bool(same.all()):
        i = int((~same).reshape(-1).nonzero()[0])
        raise AssertionError(f"{what}: {int((~same).sum())} values differ; first at {i}: "
                             f"{a.reshape(-1)[i].item()!r} vs {b.reshape(-1)[i].item()!r}")


SPECIALS = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e-40, -1e-45, 3e38, 65504.0, 1e-8]


@st.composite
def native_inputs(draw):
    x = draw(float_tensors())
    flat = x.reshape(-1)
    for i, v in draw(st.lists(st.tuples(st.integers(0, flat.numel() - 1), st.sampled_from(SPECIALS)), max_size=4)):
        flat[i] = v
    return x


native_only = pytest.mark.skipif(not (_native("quantize_4bit") or _native("quantize_blockwise")),
                                 reason="native CPU module not loaded")


@native_only
@settings(max_examples=150, **SETTINGS)
@given(x=native_inputs(), blocksize=blocksizes_4bit, quant_type=quant_types,
       storage=st.sampled_from([torch.uint8, torch.uint8, torch.bfloat16, torch.int32]))
def test_native_quantize_4bit_matches_reference(x, blocksize, quant_type, storage):
    pn, an = torch.ops.bnb.quantize_4bit(x, blocksize, quant_type, storage)
    pr, ar = reference.quantize_4bit(x, blocksize, quant_type, storage)
    _bits_equal(pn.view(torch.uint8) if storage != torch.uint8 else pn,
                pr.view(torch.uint8) if storage != torch.uint8 else pr, "packed")
    _bits_equal(an, ar, "absmax")


@st.composite
def random_absmax(draw, nb):
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    a = torch.rand(nb, generator=g) * draw(st.sampled_from([1.0, 1e-3, 1e30]))
    for i, v in draw(st.lists(st.tuples(st.integers(0, nb - 1), st.sampled_from(SPECIALS)), max_size=3)):
        a[i] = abs(v) if not math.isnan(v) else v
    return a


@native_only
@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), shape=shapes, blocksize=blocksizes_4bit, quant_type=quant_types,
       dtype=st.sampled_from(FLOATS), seed=st.integers(0, 2**31 - 1))
def test_native_dequantize_4bit_matches_reference(data, shape, blocksize, quant_type, dtype, seed):
    n = math.prod(shape)
    g = torch.Generator().manual_seed(seed)
    packed = torch.randint(0, 256, ((n + 1) // 2, 1), generator=g, dtype=torch.uint8)  # every code
    absmax = data.draw(random_absmax(formats.num_blocks(n, blocksize)))
    out_n = torch.ops.bnb.dequantize_4bit(packed, absmax, blocksize, quant_type, list(shape), dtype)
    out_r = reference.dequantize_4bit(packed, absmax, blocksize, quant_type, list(shape), dtype)
    _bits_equal(out_n, out_r, "dequantize_4bit")
    o = torch.empty(shape, dtype=dtype)
    torch.ops.bnb.dequantize_4bit.out(packed, absmax, blocksize, quant_type, list(shape), dtype, o)
    _bits_equal(o, out_r, "dequantize_4bit.out")


@native_only
@settings(max_examples=150, **SETTINGS)
@given(x=native_inputs(), blocksize=blocksizes_8bit)
def test_native_quantize_blockwise_matches_reference(x, blocksize):
    code = formats.table("dynamic")
    qn, an = torch.ops.bnb.quantize_blockwise(x, code, blocksize)
    qr, ar = reference.quantize_blockwise(x, code, blocksize)
    _bits_equal(qn, qr, "codes")
    _bits_equal(an, ar, "absmax")


@native_only
@settings(max_examples=150, **SETTINGS)
@given(data=st.data(), shape=shapes, blocksize=blocksizes_8bit, dtype=st.sampled_from(FLOATS),
       seed=st.integers(0, 2**31 - 1))
def test_native_dequantize_blockwise_matches_reference(data, shape, blocksize, dtype, seed):
    n = math.prod(shape)
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    absmax = data.draw(random_absmax(formats.num_blocks(n, blocksize)))
    code = formats.table("dynamic")
    out_n = torch.ops.bnb.dequantize_blockwise(q, absmax, code, blocksize, dtype)
    out_r = reference.dequantize_blockwise(q, absmax, code, blocksize, dtype)
    _bits_equal(out_n, out_r, "dequantize_blockwise")
    o = torch.empty(shape, dtype=dtype)
    torch.ops.bnb.dequantize_blockwise.out(q, absmax, code, blocksize, dtype, o)
    _bits_equal(o, out_r, "dequantize_blockwise.out")


# --------------------------------------------------------------------------------------------------
# sanity of the derived quantities (so a broken table cannot make the bounds vacuous)
# --------------------------------------------------------------------------------------------------


def test_derived_gaps_are_tight():
    # NF4: the largest gap is between -1 and -0.696 (half of it ~0.152); FP4: between 2/3 and 1 (~0.167)
    assert 0.1 < _max_halfgap("nf4") < 0.2
    assert 0.1 < _max_halfgap("fp4") < 0.2
    local = _dynamic_local_halfgap()
    assert local.numel() == 256 and float(local.max()) < 0.01
    # near zero the dynamic map is very fine
    assert float(local[127]) < 1e-6
