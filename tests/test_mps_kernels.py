"""The MPS backend without a Mac: its Metal kernel bodies and its Python glue, run on CPU.

There is no Metal compiler here. bnb_core/backends/mps.py assembles ONE shader source (tables generated from
bnb_core/formats.py, backends/common/bnb_quant_math.h, backends/mps/*); this test compiles that same text with
g++ through tests/mps_compat/bnb_metal_compat.h (only the two-line prelude differs: the compat header instead of
<metal_stdlib>) together with a Metal-dispatch emulator (tests/mps_compat/emulator.cpp: threadgroups of
cooperative fibers, real barrier and SIMD-group semantics, argument kinds checked as torch.mps.compile_shader
passes them), and runs the backend's own kernel functions (mps.KERNELS) with that build standing in for the
compiled library, against every conformance case of their ops (bit-exact codes / absmax / dequantized values,
matmul within the conformance bound).

Not covered (needs a Mac): real Metal compilation (syntax the compat header accepts but Metal rejects), torch's
dispatch, the GPU's arithmetic (fp32 denormals, simd_sum's order of additions, FMA contraction), data races.
"""

import pathlib
import re

import pytest
import torch

from bnb_core import conformance, formats, registry
from bnb_core._ops import OPS
from bnb_core.backends import mps

HERE = pathlib.Path(__file__).resolve().parent
import sys  # noqa: E402

sys.path.insert(0, str(HERE / "mps_compat"))
import emulated_library  # noqa: E402

CASES = [c for c in conformance.all_cases() if c.op in mps.KERNELS]
#: the production grid cap on every case, and a tiny one on one dtype of each case (every shape, blocksize, quant
#: type and storage; the stride loops do not depend on the dtype) so every stride loop of the kernels runs many
#: iterations: several blocks per threadgroup (the double-buffered absmax reduction of quantize_blockwise), several
#: rows per SIMD-group, several elements per thread
GRID_CAPS = {"grid": mps.MAX_GROUPS, "grid3": 3}


def _one_dtype_each(cases):
    seen, out = set(), []
    for c in cases:
        key = (c.op, re.sub(r"-(float32|float16|bfloat16)(?=-|$)", "", c.id, count=1))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


RUNS = [(c, "grid") for c in CASES] + [(c, "grid3") for c in _one_dtype_each(CASES)]


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    if emulated_library.compiler() is None:
        pytest.skip("no C++ compiler (g++) to build the CPU emulation of the Metal kernels")
    return emulated_library.EmulatedLibrary(emulated_library.build(tmp_path_factory.mktemp("mps_emu")))


@pytest.fixture
def with_emu(emu, monkeypatch):
    monkeypatch.setattr(mps, "_library", lambda: emu)
    emu.calls.clear()
    return emu


# ------------------------------------------------------------------------------------------ the kernels


@pytest.mark.parametrize("case,cap", RUNS, ids=[f"{c.op}[{c.id}]-{cap}" for c, cap in RUNS])
def test_kernel_logic_on_cpu(case, cap, with_emu, monkeypatch):
    monkeypatch.setattr(mps, "MAX_GROUPS", GRID_CAPS[cap])
    fn, supports = mps.KERNELS[case.op]
    args, kwargs = case.make(torch.Generator().manual_seed(0))
    assert supports is None or supports(*args, **kwargs), "a conformance case the MPS kernel declines"
    result = conformance.run_case(case, "cpu", kernel=(mps.NAME + " (CPU emulation)", fn))
    assert result.status == "pass", f"{case.op}[{case.id}]: {result.detail}"
    n = args[0].numel()
    if n:  # every non-empty case reached a kernel, on a uniform grid within the cap
        assert with_emu.calls, "no kernel was launched"
    for name, threads, group in with_emu.calls:
        assert name in mps.KERNEL_NAMES
        assert threads % group == 0 and threads // group <= GRID_CAPS[cap] and group % 32 == 0


# Subnormals: Apple GPUs flush fp32 subnormals to zero, and the emulation does too (x86 FTZ+DAZ while kernels
# run). The kernels' integer paths (bnb_quant_math.h, "exact where fp32 subnormals flush to zero") must still give
# the reference's IEEE results: blocks of subnormals, subnormal absmax, products that underflow.

_F32_SUBNORMAL = 2.0**-149


def _subnormal_input(g, n, dtype):
    x = torch.randn(n, generator=g)
    scale = torch.exp2(torch.randint(-150, 0, (n // 256 + 1,), generator=g).float()).repeat_interleave(256)[:n]
    x = x * scale  # blocks from normal down to all-subnormal (and all-zero)
    x[:256] = torch.randint(-(2**23), 2**23, (256,), generator=g).float() * _F32_SUBNORMAL  # subnormal bit patterns
    x[256:512] = 0.0
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bs", [16, 64, 256])
def test_quantize_blockwise_subnormal_blocks(with_emu, dtype, bs):
    g = torch.Generator().manual_seed(bs)
    A = _subnormal_input(g, 256 * 80 + 17, dtype)
    code = formats.table("dynamic").clone()
    got = mps.quantize_blockwise(A, code, bs)
    ref = OPS["quantize_blockwise"].reference(A, code, bs)
    assert int((ref[1] < 2.0**-126).sum()) > 5 or dtype == torch.float16  # really subnormal blocks (not fp16)
    conformance._exact(got[1], ref[1], "absmax")
    conformance._exact(got[0], ref[0], "codes")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dequantize_subnormal_absmax_and_underflow(with_emu, dtype):
    """Products code * absmax with gradual underflow: subnormal absmax, and codes of every magnitude (a custom
    256-entry code: subnormal to huge, signed) so that products underflow, stay normal or overflow."""
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(0, 0xFF000000, (256,), generator=g, dtype=torch.int64)
    code = (bits & 0xFFFFFFFF).to(torch.int32).view(torch.float32).clone()  # no NaN/Inf: exponent < 0xFF
    code[:4] = torch.tensor([0.0, -0.0, 1.0, -1.0])
    nblocks, bs = 400, 16
    absmax = (torch.randint(0, 2**31, (nblocks,), generator=g, dtype=torch.int64) % 0x7F800000).to(torch.int32)
    absmax = absmax.view(torch.float32).clone()
    absmax[: nblocks // 2] = torch.randint(0, 2**23, (nblocks // 2,), generator=g).float() * _F32_SUBNORMAL
    A = torch.randint(0, 256, (nblocks * bs - 5,), generator=g, dtype=torch.uint8)
    got = mps.dequantize_blockwise(A, absmax, code, bs, dtype)
    ref = OPS["dequantize_blockwise"].reference(A, absmax, code, bs, dtype)
    conformance._exact(got, ref, "out")
    for qt in formats.QUANT_TYPES_4BIT:  # 4-bit: subnormal absmax
        packed = torch.randint(0, 256, (nblocks * 32,), generator=g, dtype=torch.uint8)
        shape = [nblocks * 64 - 3]
        sub = torch.randint(0, 2**23, (nblocks,), generator=g).float() * _F32_SUBNORMAL
        got = mps.dequantize_4bit(packed, sub, 64, qt, shape, dtype)
        ref = OPS["dequantize_4bit"].reference(packed, sub, 64, qt, shape, dtype)
        conformance._exact(got, ref, f"out ({qt})")


def test_emulation_flushes_subnormals(emu):
    """The emulated kernels run with fp32 subnormals flushed (as on Apple GPUs): 2^-149 * 3 gives 0 there, the
    integer product bnb::mul_exact gives 3 * 2^-149."""
    out = torch.zeros(64)
    emu.emu_selftest_subnormal(out, threads=32, group_size=32)
    if emu._dll.bnb_emu_set_flush_subnormals(1) == 0:
        pytest.skip("this CPU build cannot flush subnormals (x86 only)")
    assert out.view(torch.int32)[:2].tolist() == [0, 3]


def test_every_kernel_is_exercised():
    """Each kernel of the source (every dtype of every family) is reached by some conformance case."""
    suffix = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}
    reached = set()
    for c in CASES:
        args, _ = c.make(torch.Generator().manual_seed(0))
        fam = c.op.split(".")[0]
        dtype = args[0].dtype if fam in ("quantize_blockwise", "gemv_4bit") else args[4 if fam == "dequantize_blockwise" else 5]
        reached.add(f"bnb_{fam}_{suffix[dtype]}")
    assert reached == set(mps.KERNEL_NAMES)


def test_emulated_library_defines_exactly_the_kernels(emu):
    assert set(mps.KERNEL_NAMES) <= set(emu.kernel_names())
    assert {n for n in emu.kernel_names() if not n.startswith("emu_selftest")} == set(mps.KERNEL_NAMES)


def test_argument_kinds_are_checked(with_emu):
    """The emulator rejects what Metal would misread: a float for a `long`, a tensor of another dtype, a
    non-contiguous tensor, missing threads / group_size, a non-uniform grid."""
    A = torch.zeros(4, dtype=torch.uint8)
    absmax = torch.ones(1)
    out = torch.zeros(8)
    with_emu.bnb_dequantize_4bit_f32(A, absmax, out, 8, 6, 0, threads=256, group_size=256)
    with pytest.raises(RuntimeError, match="must be an int"):
        with_emu.bnb_dequantize_4bit_f32(A, absmax, out, 8.0, 6, 0, threads=256, group_size=256)
    with pytest.raises(RuntimeError, match="must be a f16 tensor"):
        with_emu.bnb_dequantize_4bit_f16(A, absmax, out, 8, 6, 0, threads=256, group_size=256)
    with pytest.raises(ValueError, match="contiguous"):
        with_emu.bnb_dequantize_4bit_f32(A, absmax, torch.zeros(16)[::2], 8, 6, 0, threads=256, group_size=256)
    with pytest.raises(TypeError, match="threads"):
        with_emu.bnb_dequantize_4bit_f32(A, absmax, out, 8, 6, 0)
    with pytest.raises(RuntimeError, match="uniform"):
        with_emu.bnb_dequantize_4bit_f32(A, absmax, out, 8, 6, 0, threads=300, group_size=256)


def test_emulator_barrier_semantics(emu):
    """The emulation can fail: a barrier only some threads reach is an error, and a threadgroup-memory exchange
    without its barrier reads stale values (the scheduler exposes missing barriers in both lane directions)."""
    with pytest.raises(RuntimeError, match="deadlock"):
        emu.emu_selftest_divergent_barrier(torch.zeros(128), threads=128, group_size=64)
    tid = torch.arange(128)
    lid, base = tid % 64, tid - tid % 64
    expect = torch.stack([base + (lid + 1) % 64, base + (lid + 63) % 64], 1).reshape(-1).float()
    for with_barrier in (1, 0):
        out = torch.zeros(256)
        emu.emu_selftest_exchange(out, with_barrier, threads=128, group_size=64)
        assert torch.equal(out, expect) == bool(with_barrier)
    out = torch.zeros(96)
    emu.emu_selftest_simd(out, threads=96, group_size=96)
    simd = torch.arange(96) // 32
    assert torch.equal(out, (496.0 + 1000.0 + (simd * 100 + 31).float() * 1e-6).float())


# ------------------------------------------------------------------------------------------ the source


def test_shader_source_is_one_self_contained_text():
    metal, cpu = mps.shader_source("metal"), mps.shader_source("cpu")
    assert metal.splitlines()[1:4] == ["#include <metal_stdlib>", "using namespace metal;", "#define BNB_METAL 1"]
    # only the prelude differs between the Metal text and the one the CPU test compiles
    body = metal.split(formats.render_metal_tables(), 1)
    assert len(body) == 2 and cpu.endswith(formats.render_metal_tables() + body[1])
    assert not re.search(r'^\s*#\s*include\s*"', metal, re.M), "a local include survived (Metal cannot resolve it)"
    assert "#pragma once" not in metal
    for d, name in mps.SOURCE_FILES:
        assert f"// ---- {d}/{name}" in metal
    for name in mps.KERNEL_NAMES:
        assert re.search(rf"_KERNEL\({name}, Bnb", metal), name
    with pytest.raises(ValueError):
        mps.shader_source("cuda")


def test_shader_tables_come_from_formats():
    """The codebooks reach the shaders only through formats.render_metal_tables() (no copied table in any file:
    tests/test_formats.py::test_no_copy_of_a_table_elsewhere scans the .metal/.h sources)."""
    src = mps.shader_source("metal")
    assert src.count("constant float NF4_CODE[16]") == 1 and formats.render_metal_tables() in src
    for d, name in mps.SOURCE_FILES:
        assert "NF4_CODE[16] =" not in (mps.source_dirs()[d] / name).read_text()


def test_sources_are_installed_with_the_package():
    """CMakeLists.txt installs backends/common/bnb_quant_math.h and backends/mps/*.metal, *.h into bnb_core/_metal,
    where source_dirs() finds them in an installed package."""
    cmake = (HERE.parent / "CMakeLists.txt").read_text()
    assert "DESTINATION bnb_core/_metal" in cmake and "${BNB_BACKENDS_DIR}/mps/*.metal" in cmake
    for d, name in mps.SOURCE_FILES:
        path = HERE.parent / "backends" / d / name
        assert path.is_file(), path
        assert d == "mps" or name == "bnb_quant_math.h"
        assert d == "common" or path.suffix in (".metal", ".h")


# ------------------------------------------------------------------------------------------ the glue


def test_support_levels_are_honest():
    assert set(mps.SUPPORT) == set(mps.KERNELS)
    assert set(mps.SUPPORT.values()) == {"kernel logic tested on CPU"}
    assert all(level in registry.LEVELS for level in mps.SUPPORT.values())
    assert mps.DEVICE == "mps"
    assert {c.op for c in CASES} == set(mps.KERNELS)  # every claimed op is run above


def test_supports_predicates():
    args = (torch.zeros(4, dtype=torch.uint8), torch.ones(1), 64, "nf4", [8], torch.float32)
    pred = mps.KERNELS["dequantize_4bit.out"][1]
    assert pred(*args, torch.zeros(8)) and pred(*args, out=torch.zeros(8))
    assert not pred(*args, torch.zeros(16)[::2])
    for op in ("dequantize_blockwise.out", "gemv_4bit.out"):
        assert mps.KERNELS[op][1] is mps._out_contiguous
    for op in ("quantize_blockwise", "dequantize_blockwise", "dequantize_4bit", "gemv_4bit"):
        assert mps.KERNELS[op][1] is None  # every dtype, blocksize and quant type that passes the op's check


def test_launch_shapes():
    assert mps.elementwise_grid(1) == (mps.GROUP, mps.GROUP)
    assert mps.elementwise_grid(10**12) == (mps.MAX_GROUPS * mps.GROUP, mps.GROUP)
    assert mps.quantize_blockwise_grid(5, 16) == (5 * 32, 32)
    assert mps.quantize_blockwise_grid(5, 4096) == (5 * 256, 256)
    assert mps.quantize_blockwise_grid(10**9, 64) == (mps.MAX_GROUPS * 64, 64)
    assert mps.gemv_grid(33) == (9 * mps.GEMV_GROUP, mps.GEMV_GROUP)
    for threads, group in (mps.elementwise_grid(10**12), mps.gemv_grid(10**9), mps.quantize_blockwise_grid(10**9, 16)):
        assert threads < 2**32 and threads % group == 0  # thread_position_in_grid is a 32-bit uint


def test_load_reports_why_not(monkeypatch):
    """Without MPS (this machine) load() says so and registers nothing; the other reasons are clear too."""
    calls = []
    monkeypatch.setattr(registry, "register_kernel", lambda *a, **k: calls.append(a))
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        reason = mps.load()
        assert "MPS is not available" in reason and not calls
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.delattr(torch.mps, "compile_shader", raising=False)
    assert "compile_shader" in mps.unavailable_reason()

    def broken(source):
        raise RuntimeError("program_source:12:3: error: unknown type name 'bfloat'")

    monkeypatch.setattr(torch.mps, "compile_shader", broken, raising=False)
    monkeypatch.setattr(mps, "_LIB", None)
    monkeypatch.setenv("PYTORCH_MPS_FAST_MATH", "1")
    assert "PYTORCH_MPS_FAST_MATH" in mps.load() and not calls
    monkeypatch.setenv("PYTORCH_MPS_FAST_MATH", "0")
    reason = mps.load()
    assert reason.startswith("Metal shader compilation failed") and "unknown type name" in reason and not calls


def test_load_registers_every_kernel_when_the_library_compiles(monkeypatch, emu):
    """With a library that compiles (the CPU build standing in), load() registers each kernel of KERNELS for
    "mps" with its supports predicate (recorded here: nothing is registered for real)."""
    calls = []
    monkeypatch.setattr(registry, "register_kernel",
                        lambda op, device, fn, supports=None, name=None: calls.append((op, device, fn, supports, name)))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    sources = []
    monkeypatch.setattr(torch.mps, "compile_shader", lambda source: sources.append(source) or emu, raising=False)
    monkeypatch.delenv("PYTORCH_MPS_FAST_MATH", raising=False)
    monkeypatch.setattr(mps, "_LIB", None)
    monkeypatch.setattr(mps, "_loaded", False)
    assert mps.load() is None
    assert sources == [mps.shader_source("metal")]
    assert [(op, dev, fn, sup, name) for op, dev, fn, sup, name in calls] == [
        (op, "mps", fn, sup, mps.NAME) for op, (fn, sup) in mps.KERNELS.items()]
