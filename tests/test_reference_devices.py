"""The reference (bnb_core/reference.py) runs on any torch device.

* Every conformance case runs the REFERENCE on the "meta" device (no data: only ops whose shape and dtype logic
  is device-independent work there): its outputs and written arguments must have the dtypes and shapes of the CPU
  run (value-dependent sizes: at least the CPU's). The CPU run of the same case passes the case's comparison.
* The device-dependent branches of the reference (forms MPS / XPU / other devices need) give the same bits as the
  plain forms on CPU: each is forced on CPU and compared.
"""

import math

import pytest
import torch

from bnb_core import conformance, formats, reference
from bnb_core._ops import OPS

CASES = conformance.all_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}[{c.id}]" for c in CASES])
def test_reference_on_meta_has_the_cpu_shapes_and_dtypes(case):
    result = conformance.run_case_meta(case)
    assert result.status == "pass", f"{case.op}[{case.id}]: {result.detail}"


def test_the_meta_run_is_the_reference(monkeypatch):
    """run_case_meta runs reference.* on meta tensors (not the op's fake kernel), and a failure there is reported."""
    case = next(c for c in CASES if c.op == "quantize_4bit")
    seen = []
    real = OPS["quantize_4bit"].reference

    def spy(A, *args):
        seen.append(A.device.type)
        return real(A, *args)

    monkeypatch.setattr(OPS["quantize_4bit"], "reference", spy)
    assert conformance.run_case_meta(case).status == "pass" and seen == ["cpu", "meta"]

    def cpu_only(A, *args):
        if A.device.type == "meta":
            raise NotImplementedError("an op without a meta implementation")
        return real(A, *args)

    monkeypatch.setattr(OPS["quantize_4bit"], "reference", cpu_only)
    result = conformance.run_case_meta(case)
    assert result.status == "fail" and "without a meta implementation" in result.detail

    def wrong_dtype(A, *args):
        packed, absmax = real(A, *args)
        return packed, (absmax.double() if A.device.type == "meta" else absmax)

    monkeypatch.setattr(OPS["quantize_4bit"], "reference", wrong_dtype)
    result = conformance.run_case_meta(case)
    assert result.status == "fail" and "dtype" in result.detail


# ------------------------------------------------------------------------------------------ device branches


def _with(patches):
    """A reference kernel that runs with module attributes of bnb_core.reference patched (only during the call,
    so run_case's CPU oracle is the plain reference)."""

    def wrap(op):
        fn = OPS[op].reference

        def kernel(*args, **kwargs):
            old = {k: getattr(reference, k) for k in patches}
            try:
                for k, v in patches.items():
                    setattr(reference, k, v)
                return fn(*args, **kwargs)
            finally:
                for k, v in old.items():
                    setattr(reference, k, v)

        return kernel

    return wrap


@pytest.mark.parametrize("op", ["quantize_4bit", "quantize_blockwise"])
def test_counting_form_equals_bucketize(op):
    """Devices without bucketize count boundaries with compares: bit-identical codes on every conformance case."""
    kernel = _with({"_BUCKETIZE_DEVICES": frozenset()})(op)
    for case in (c for c in CASES if c.op == op):
        result = conformance.run_case(case, "cpu", kernel=("reference, counting form", kernel))
        assert result.status == "pass", f"{case.id}: {result.detail}"


def test_counting_form_on_boundaries_and_ties():
    for name in ("nf4_boundaries", "fp4_magnitude_boundaries", "dynamic_boundaries", "dynamic_unsigned_boundaries"):
        b = formats.table(name)
        up = torch.nextafter(b, torch.full_like(b, math.inf))
        down = torch.nextafter(b, torch.full_like(b, -math.inf))
        y = torch.cat([b, up, down, torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 1e-30, -1e-30]),
                       torch.rand(10000) * 2 - 1])
        assert torch.equal(reference._count_above_by_compare(y, b), torch.bucketize(y, b, right=False)), name


@pytest.mark.parametrize("op", ["optimizer_update_32bit", "optimizer_update_8bit_blockwise"])
def test_sqrt_without_float64(op):
    """Devices without float64 (MPS) take _sqrt_fp32_exact: every optimizer case passes."""
    kernel = _with({"_has_float64": lambda device: False})(op)
    for case in (c for c in CASES if c.op == op):
        result = conformance.run_case(case, "cpu", kernel=("reference, no float64", kernel))
        assert result.status == "pass", f"{case.id}: {result.detail}"


def test_sqrt_without_float64_is_correctly_rounded():
    """_sqrt_fp32_exact gives the bits of the fp64 root rounded once, for every finite non-negative fp32 kind
    (random bit patterns: subnormals to the largest normal; squares and midpoints), also from guesses 2 ulps off."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([
        torch.randint(0, 0x7F800000, (200000,), generator=g, dtype=torch.int32).view(torch.float32),
        torch.arange(1, 50000, dtype=torch.float32) ** 2, (torch.arange(1, 50000, dtype=torch.float32) + 0.5) ** 2,
        torch.tensor([0.0, -0.0, 2.0**-149, 2.0**-126, 1.0, 2.0, 4.0, 3.4028234663852886e38, math.inf, math.nan,
                      -1.0, -math.inf]),
    ])
    exact = torch.sqrt(x.double()).float()
    same = lambda a, b: bool(((a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())).all())
    assert same(reference._sqrt_fp32_exact(x), exact)
    finite = torch.isfinite(exact) & (x > 0)
    for k in (-2, -1, 1, 2):
        guess = torch.where(finite, (exact.view(torch.int32) + k).view(torch.float32), exact)
        assert same(reference._sqrt_fp32_exact(x, guess), exact), k


def test_has_float64():
    assert reference._has_float64(torch.device("cpu")) and reference._has_float64(torch.device("meta"))
    assert not reference._has_float64(torch.device("mps"))


def test_round_half_even_equals_torch_round():
    halves = torch.arange(-300, 301, dtype=torch.float32) + 0.5
    v = torch.cat([halves, -halves, torch.rand(100000) * 260 - 130, torch.tensor([0.0, -0.0, 127.0, -127.0]),
                   torch.nextafter(halves, torch.zeros_like(halves)), (torch.rand(1000) - 0.5) * 2**22])
    assert torch.equal(reference._round_half_even(v), torch.round(v))
    bad = reference._round_half_even(torch.tensor([math.nan, math.inf, -math.inf]))
    assert not bool(torch.isfinite(bad).any())  # non-finite stays non-finite (then quantizes to 0)


def test_nibbles_without_shifts():
    """unpack_4bit / pack_4bit split and join nibbles with integer arithmetic: the same as shifts and masks."""
    b = torch.arange(256, dtype=torch.uint8)
    codes = reference.unpack_4bit(b, 512)
    assert torch.equal(codes, torch.stack([b >> 4, b & 0xF], 1).reshape(-1).long())
    hi, lo = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    pairs = torch.stack([hi.reshape(-1), lo.reshape(-1)], 1).reshape(-1)
    assert torch.equal(reference.pack_4bit(pairs, "nf4", 256), ((hi << 4) | lo).reshape(-1).to(torch.uint8))
    assert torch.equal(reference.pack_4bit(torch.tensor([3]), "nf4", 1), torch.tensor([3 * 16 + 7], dtype=torch.uint8))
    # sign bit added to a 0..7 magnitude code == or-ed
    y = torch.tensor([-1.0, -0.5, -1e-9, 0.0, -0.0, 0.3, 1.0])
    assert torch.equal(reference.encode_4bit(y, "fp4") & 7, reference.encode_4bit(y.abs(), "fp4"))


def test_nan_amax():
    x = torch.rand(7, 65)
    x[2, 5] = math.nan
    x[4, 64] = math.nan
    m = reference._nan_amax(x, dim=1)
    assert torch.isnan(m).tolist() == [False, False, True, False, True, False, False]
    keep = ~torch.isnan(m)
    assert torch.equal(m[keep], x.amax(dim=1)[keep])
    assert torch.equal(reference._nan_amax(x, dim=0).isnan(), x.isnan().any(dim=0))


def test_expand_absmax_equals_repeat_interleave():
    absmax = torch.rand(9)
    for n, bs in ((1, 64), (64, 64), (65, 64), (511, 64), (4099, 512)):
        nb = formats.num_blocks(n, bs)
        assert torch.equal(reference._expand_absmax(absmax, n, bs), absmax[:nb].repeat_interleave(bs)[:n])


def test_no_device_dependent_forms_left_in_the_reference():
    """Code (not comments or docstrings) of reference.py: float64 only in _sqrt behind _has_float64, no bit shifts
    or masks on integers, no torch.round, no repeat_interleave."""
    import inspect
    import io
    import tokenize

    def code(src):
        toks = tokenize.generate_tokens(io.StringIO(src).readline)
        return " ".join(t.string for t in toks if t.type not in (tokenize.COMMENT, tokenize.STRING))

    src = inspect.getsource(reference)
    for fn in (reference._sqrt, reference._has_float64):
        src = src.replace(inspect.getsource(fn), "")
    body = f" {code(src)} "
    for needle in (" double ", " float64 ", " >> ", " << ", "& 0x", "| 0x", " torch . round ", " repeat_interleave "):
        assert needle not in body, needle  # (& and | on bool masks are fine: logical, not bit twiddling)


def test_device_dependent_helpers_run_on_meta():
    y = torch.empty(100, device="meta")
    assert reference._count_above_by_compare(y, formats.table("nf4_boundaries", "meta")).shape == (100,)
    assert reference._nan_amax(torch.empty(3, 4, device="meta"), 1).shape == (3,)
    assert reference._round_half_even(y).dtype == torch.float32
