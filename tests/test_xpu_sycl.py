"""The XPU (SYCL) kernels, run on Intel's OpenCL CPU device against the reference (docs/architecture.md,
"backends/xpu").

No Intel GPU and no icpx here. The production module (backends/xpu/module.cpp, icpx -fsycl) is built a second
time as a harness: the same bindings and launch code (backends/xpu/ops.h), compiled by g++ against the
intel-sycl-rt wheel with the run-time-compiling launcher (launch_source.h), which compiles the same kernel
headers with DPC++'s kernel compiler and runs them on the OpenCL CPU device (intel-opencl-rt wheel). Every
conformance case of every op the backend claims goes through bnb_core.backends.xpu.make_kernels (the
production glue) with the harness module and CPU tensors (the CPU device reads host memory), and is compared
with the reference exactly as the conformance suite does (bit-exact codes / absmax, the format-derived matmul
bound, the optimizer tolerances).

The harness build and the compiled kernels are cached under build/xpu-sycl-harness (SYCL_CACHE_PERSISTENT).
Without the wheels (x86-64 Linux only) the tests skip, unless BNB_CORE_REQUIRE_SYCL=1 (scripts/test.sh sets
it where the wheels install), which turns that into a failure.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch

from bnb_core import conformance, formats
from bnb_core._ops import OPS
from bnb_core.backends import xpu as xpu_backend

ROOT = Path(__file__).resolve().parents[1]
XPU_DIR = ROOT / "backends" / "xpu"
COMMON_DIR = ROOT / "backends" / "common"
BUILD = ROOT / "build" / "xpu-sycl-harness"
MODULE_NAME = "_xpu_harness"
REQUIRE = os.environ.get("BNB_CORE_REQUIRE_SYCL") == "1"


def _dist_file(dist: str, filename: str):
    """Path of `filename` installed by the wheel `dist` (the SYCL wheels install into <prefix>/lib), or None."""
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == filename:
            p = Path(importlib.metadata.distribution(dist).locate_file(f)).resolve()
            if p.exists():
                return p
    return None


def _sycl_runtime():
    """(prefix, libintelocl.so) of the SYCL wheels, or a string saying what is missing."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return "the intel-sycl-rt / intel-opencl-rt wheels exist for x86-64 Linux only"
    prefix = os.environ.get("BNB_SYCL_PREFIX")
    if prefix:
        prefix = Path(prefix)
        ocl = prefix / "lib" / "libintelocl.so"
    else:
        libsycl = _dist_file("intel-sycl-rt", "libsycl.so")
        ocl = _dist_file("intel-opencl-rt", "libintelocl.so")
        if libsycl is None or ocl is None:
            return ("the SYCL wheels are not installed (pip install intel-sycl-rt==2026.2.0 intel-opencl-rt==2026.2.0, "
                    "or the project's [test] extra): the XPU kernels are untested here")
        prefix = libsycl.parent.parent
    for need in (prefix / "include" / "sycl" / "sycl.hpp", prefix / "lib" / "libsycl.so", ocl):
        if not need.exists():
            return f"incomplete SYCL runtime: {need} is missing"
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return "g++ is needed to build the SYCL harness"
    if importlib.util.find_spec("pybind11") is None:
        return "pybind11 is needed to build the SYCL harness (pip install pybind11)"
    return prefix, ocl


def _sources():
    return sorted(XPU_DIR.glob("*.h")) + sorted(XPU_DIR.glob("*.cpp")) + sorted(COMMON_DIR.glob("*.h"))


def _build_harness(prefix: Path) -> Path:
    """Build backends/xpu/module.cpp as the harness module (g++, no device compiler); cached by content."""
    import pybind11

    cxx = os.environ.get("CXX", "g++")
    out = BUILD / (MODULE_NAME + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [
        cxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-fvisibility=hidden", "-DSYCL_DISABLE_FSYCL_SYCLHPP_WARNING",
        "-DBNB_XPU_HARNESS", f"-DBNB_XPU_MODULE_NAME={MODULE_NAME}", "-isystem", str(prefix / "include"),
        "-isystem", pybind11.get_include(), "-isystem", sysconfig.get_paths()["include"], f"-I{XPU_DIR}",
        f"-I{COMMON_DIR}", str(XPU_DIR / "module.cpp"), f"-L{prefix / 'lib'}", "-lsycl",
        f"-Wl,-rpath,{prefix / 'lib'}", "-o", str(out),
    ]
    h = hashlib.sha256(" ".join(cmd).encode())
    for f in _sources():
        h.update(f.name.encode() + f.read_bytes())
    stamp = BUILD / "module.stamp"
    if out.exists() and stamp.exists() and stamp.read_text() == h.hexdigest():
        return out
    BUILD.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    cmd[-1] = str(tmp)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"building the SYCL harness failed:\n{' '.join(cmd)}\n{proc.stderr[-8000:]}"
    os.replace(tmp, out)
    stamp.write_text(h.hexdigest())
    return out


@pytest.fixture(scope="module")
def harness():
    rt = _sycl_runtime()
    if isinstance(rt, str):
        if REQUIRE:
            pytest.fail(rt + "; BNB_CORE_REQUIRE_SYCL=1 requires them")
        pytest.skip(rt)
    prefix, ocl = rt
    # before the first SYCL call of the process: the wheel's .icd file is broken (SYCL.md), and compiled
    # kernels are cached inside the build directory
    os.environ.setdefault("OCL_ICD_FILENAMES", str(ocl))
    os.environ.setdefault("SYCL_CACHE_PERSISTENT", "1")
    os.environ.setdefault("SYCL_CACHE_DIR", str(BUILD / "kernel-cache"))
    path = _build_harness(prefix)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.HARNESS
    mod.configure([str(XPU_DIR), str(COMMON_DIR)])
    assert mod.queue_ptr() != 0, f"no OpenCL CPU SYCL device: {mod.last_build_log()}"
    return mod


@pytest.fixture(scope="module")
def kernels(harness):
    q = harness.queue_ptr()
    return xpu_backend.make_kernels(harness, lambda device: q)


def test_harness_compiles_every_kernel_header(harness):
    """Each kernel header compiles with DPC++'s device compiler (a real device-side check: exceptions,
    recursion, undefined functions are errors) and every instantiation the launch code uses is there."""
    times = {}
    for family in harness.FAMILIES:
        t0 = time.perf_counter()
        status = harness.build_family(family)
        times[family] = time.perf_counter() - t0
        assert status == 0, f"{family}: {harness.status_message(status)}\n{harness.last_build_log()}"
    print(f"device: {harness.device_name()}; build s: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))


def _clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


def _run_case(case, kernels, seed=0):
    """conformance.run_case for the harness: the op's check, the XPU kernel (glue + harness), the reference."""
    g = torch.Generator().manual_seed(seed)
    args, kwargs = case.make(g)
    ref_args = [_clone(a) for a in args]
    dev_args = [_clone(a) for a in args]
    opdef = OPS[case.op]
    opdef.check(*dev_args, **kwargs)
    fn, supports = kernels[case.op]
    assert supports is None or supports(*dev_args, **kwargs), "the XPU kernel does not support this conformance case"
    out = fn(*dev_args, **kwargs)
    ref = opdef.reference(*ref_args, **kwargs)
    case.compare(ref_args, out, ref, [dev_args[i] for i in case.mutates], [ref_args[i] for i in case.mutates])


def _cases(op):
    return [c for c in conformance.all_cases() if c.op == op]


@pytest.mark.parametrize("op", sorted(xpu_backend.SUPPORT))
def test_conformance_on_cpu_sycl_device(kernels, op):
    """Every conformance case of `op` (odd sizes, every blocksize and dtype, NF4/FP4, quant_storage, NaN/Inf)."""
    cases = _cases(op)
    assert cases, f"no conformance case for {op}"
    failures = []
    for case in cases:
        try:
            _run_case(case, kernels)
        except AssertionError as e:
            failures.append(f"{case.id}: {e}")
        except Exception as e:
            failures.append(f"{case.id}: {type(e).__name__}: {e}")
    assert not failures, f"{len(failures)} of {len(cases)} cases fail:\n" + "\n".join(failures[:20])


def test_grid_stride_loops(harness, kernels):
    """With at most 3 work-groups per launch every kernel loops over its blocks / elements / weight rows."""
    picks = {
        "quantize_blockwise": "3x100003-bfloat16-bs64", "dequantize_blockwise": "3x100003-float16-bs16",
        "dequantize_blockwise.out": "33x65-float32-bs64", "quantize_4bit": "129x257-float16-fp4-bs64-uint8",
        "dequantize_4bit": "5x4099-bfloat16-nf4-bs32-uint8-scaled", "dequantize_4bit.out": "65x33-float32-nf4-bs64-uint8",
        "gemv_4bit": "17x257x320-float16-nf4-bs64", "gemv_4bit.out": "1x33x130-bfloat16-fp4-bs64",
        "gemm_4bit": "17x257x320-bfloat16-fp4-bs64-nested", "optimizer_update_32bit": "lamb-float32-n4097",
        "optimizer_update_8bit_blockwise": "ademamix-bfloat16-n4097",
    }
    assert set(picks) == set(xpu_backend.SUPPORT)
    old = harness.max_groups()
    harness.set_max_groups(3)
    try:
        for op, cid in picks.items():
            (case,) = [c for c in _cases(op) if c.id == cid]
            _run_case(case, kernels, seed=1)
    finally:
        harness.set_max_groups(old)


@pytest.mark.parametrize("dtype", conformance.FLOATS, ids=lambda d: str(d)[6:])
def test_every_blocksize_and_dtype(kernels, dtype):
    """Every 4-bit blocksize x NF4/FP4 (quantize, dequantize, gemm) and 8-bit blocksizes 16 .. 2**16 for each
    dtype, on odd sizes (partial last blocks, blocks crossing weight rows), against the reference."""
    from bnb_core import reference

    same = conformance._exact  # bit-exact, NaN == NaN (fp16 "scaled" inputs overflow to Inf: NaN blocks)
    g = torch.Generator().manual_seed(11)
    x = conformance._randn(g, (7, 1531), dtype, "scaled")
    for bs in formats.BLOCKSIZES_4BIT:
        for qt in formats.QUANT_TYPES_4BIT:
            packed, absmax = kernels["quantize_4bit"][0](x, bs, qt, torch.uint8)
            rp, ra = reference.quantize_4bit(x, bs, qt, torch.uint8)
            same(packed, rp, f"packed bs={bs} {qt}")
            same(absmax, ra, f"absmax bs={bs} {qt}")
            out = kernels["dequantize_4bit"][0](rp, ra, bs, qt, list(x.shape), dtype)
            same(out, reference.dequantize_4bit(rp, ra, bs, qt, list(x.shape), dtype), f"dequantized bs={bs} {qt}")
            N, K = 9, 77
            packed_w, absmax_w, _, W32 = conformance._weight_4bit(g, N, K, qt, bs)
            A = torch.randn(3, K, generator=g).to(dtype)
            y = kernels["gemm_4bit"][0](A, packed_w, [N, K], absmax_w, bs, qt)
            exact, bound = conformance._matmul_bound(A, W32, dtype)
            conformance._within(y, exact, bound, f"gemm_4bit bs={bs} {qt}")
    code = formats.table("dynamic")
    xs = conformance._randn(g, (70_001,), dtype, "scaled")
    for bs in [2**k for k in range(4, 17)]:
        q, absmax = kernels["quantize_blockwise"][0](xs, code, bs)
        rq, ra = reference.quantize_blockwise(xs, code, bs)
        same(q, rq, f"8-bit codes bs={bs}")
        same(absmax, ra, f"8-bit absmax bs={bs}")
        out = kernels["dequantize_blockwise"][0](rq, ra, code, bs, dtype)
        same(out, reference.dequantize_blockwise(rq, ra, code, bs, dtype), f"8-bit dequantized bs={bs}")


def test_denormal_blocks(kernels):
    """Blocks whose absmax is an fp32 denormal take the 2**64 rescale (docs/formats.md policy): the device must
    keep fp32 denormals (no flush to zero) for the codes to match."""
    from bnb_core import reference

    g = torch.Generator().manual_seed(13)
    x = torch.randn(4, 256, generator=g) * torch.tensor([1e-39, 1e-41, 1e-44, 1.0])[:, None]
    for bs, qt in ((64, "nf4"), (256, "fp4")):
        packed, absmax = kernels["quantize_4bit"][0](x, bs, qt, torch.uint8)
        rp, ra = reference.quantize_4bit(x, bs, qt, torch.uint8)
        conformance._exact(packed, rp, f"packed {qt}")
        conformance._exact(absmax, ra, f"absmax {qt}")
        assert int((reference.unpack_4bit(rp, 256) != formats.ZERO_CODE[qt]).sum()) > 100  # not all zero codes
    q, absmax = kernels["quantize_blockwise"][0](x, formats.table("dynamic"), 64)
    rq, ra = reference.quantize_blockwise(x, formats.table("dynamic"), 64)
    conformance._exact(q, rq, "8-bit codes")
    conformance._exact(absmax, ra, "8-bit absmax")


def test_unsorted_code_counts_every_boundary(kernels):
    """quantize_blockwise with a code whose midpoints are not ascending (outside the op's contract, which asks
    for an ascending code): every boundary below y is counted, as the CPU backend does."""
    g = torch.Generator().manual_seed(5)
    code = formats.table("dynamic")[torch.randperm(256, generator=g)].contiguous()
    x = torch.randn(3, 1000, generator=g)
    q, absmax = kernels["quantize_blockwise"][0](x, code, 256)
    from bnb_core import reference

    ref_absmax, y = reference.blockwise_absmax_and_scaled(x, 256)
    bounds = (code[:-1] + code[1:]) / 2
    want = (y[:, None] > bounds[None, :]).sum(dim=1).to(torch.uint8).reshape(x.shape)
    assert torch.equal(absmax, ref_absmax)
    assert torch.equal(q, want)


@pytest.mark.parametrize("name", ["adam", "momentum", "lion", "lamb", "ademamix", "adagrad"])
def test_optimizer_variants(kernels, name):
    """Paths the conformance cases do not take: step 1 (momentum starts from g), skip_zeros with zero gradients,
    gnorm_scale != 1, no weight decay, fp16; both state widths."""
    from bnb_core import reference

    g0 = torch.Generator().manual_seed(7)
    n = 3000
    two, halves = name in ("adam", "lamb", "ademamix"), 2 if name == "ademamix" else 1
    p = torch.randn(n, generator=g0).to(torch.float16)
    gr = (torch.randn(n, generator=g0) * 0.1).to(torch.float16)
    gr[::7] = 0.0
    gr[5] = float("-inf")
    max_unorm = 1.0 if name == "lamb" else 0.0
    for step in (1, 2):
        s1 = torch.randn((halves, n) if halves == 2 else (n,), generator=g0).abs() * 0.01
        s2 = torch.rand(n, generator=g0) * 1e-3 if two else None
        args = [name, gr, p, s1, s2, torch.zeros(1), max_unorm, 2.0, 0.9, 0.95, 0.999, 3.0, 1e-6, 0.0, step, 1e-2, 0.5,
                True]
        ref = [_clone(a) for a in args]
        OPS["optimizer_update_32bit"].check(*args)
        kernels["optimizer_update_32bit"][0](*args)
        reference.optimizer_update_32bit(*ref)
        conformance._optim_compare(2, (3, 4, 5))(ref, None, None, [args[i] for i in (2, 3, 4, 5)],
                                                 [ref[i] for i in (2, 3, 4, 5)])
        nb = formats.num_blocks(n, formats.OPTIMIZER_BLOCKSIZE)
        st1 = torch.randint(127, 256, (halves, n) if halves == 2 else (n,), generator=g0, dtype=torch.uint8)
        a1 = torch.rand((halves, nb) if halves == 2 else (nb,), generator=g0) * 0.01
        st2 = torch.randint(0, 256, (n,), generator=g0, dtype=torch.uint8) if two else None
        a2 = torch.rand(nb, generator=g0) * 1e-3 if two else None
        q2 = formats.table("dynamic_unsigned").clone() if two else None
        args8 = [name, gr, p.clone(), st1, st2, 0.9, 0.95, 0.999, 3.0, 1e-6, step, 1e-2, formats.table("dynamic").clone(),
                 q2, a1, a2, 0.0, 0.5, True]
        ref8 = [_clone(a) for a in args8]
        dev8 = [_clone(a) for a in args8]
        OPS["optimizer_update_8bit_blockwise"].check(*dev8)
        kernels["optimizer_update_8bit_blockwise"][0](*dev8)
        reference.optimizer_update_8bit_blockwise(*ref8)
        conformance._optim8_compare(ref8, None, None, [dev8[i] for i in (2, 3, 4, 14, 15)],
                                    [ref8[i] for i in (2, 3, 4, 14, 15)])


def test_empty_and_degenerate_inputs(kernels):
    """n = 0 everywhere, K = 0 (zeros + bias), quant_storage padding of an empty tensor."""
    from bnb_core import reference

    e = torch.empty(0, 5)
    q, am = kernels["quantize_blockwise"][0](e, formats.table("dynamic"), 64)
    assert q.shape == (0, 5) and am.numel() == 0
    packed, am4 = kernels["quantize_4bit"][0](e, 64, "fp4", torch.float32)
    rp, ra = reference.quantize_4bit(e, 64, "fp4", torch.float32)
    assert torch.equal(packed.view(torch.uint8), rp.view(torch.uint8)) and am4.numel() == 0
    out = kernels["dequantize_4bit"][0](packed, am4, 64, "fp4", [0, 5], torch.bfloat16)
    assert out.shape == (0, 5)
    A = torch.randn(3, 0)
    bias = torch.randn(4)
    Bq = torch.empty(0, 1, dtype=torch.uint8)
    y = kernels["gemm_4bit"][0](A, Bq, [4, 0], torch.empty(0), 64, "nf4", bias)
    assert torch.equal(y, bias.expand(3, 4))
    y = kernels["gemv_4bit"][0](torch.randn(0, 8), torch.zeros(16, 1, dtype=torch.uint8), [4, 8], torch.ones(1),
                                formats.code_4bit("nf4"), 64)
    assert y.shape == (0, 4)


@pytest.mark.bigmem
def test_64bit_offsets(kernels):
    """quantize_4bit of 2**31 + 130 bf16 values: the blocks past element 2**31 match the reference (64-bit
    offsets in the grid loops). Only the input's checked tail is written (~1 GiB of output)."""
    try:
        avail = int([ln for ln in open("/proc/meminfo") if ln.startswith("MemAvailable")][0].split()[1]) * 1024
    except Exception:
        avail = 0
    if avail < 10 * 2**30:
        pytest.skip("needs ~6 GiB (MemAvailable < 10 GiB)")
    n, bs = 2**31 + 130, 4096
    x = torch.empty(n, dtype=torch.bfloat16)  # fresh pages: read as the shared zero page, never written
    s0 = (n - 5000) // bs * bs
    x[s0:] = torch.randn(n - s0, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    packed, absmax = kernels["quantize_4bit"][0](x, bs, "nf4", torch.uint8)
    from bnb_core import reference

    ref_packed, ref_absmax = reference.quantize_4bit(x[s0:].clone(), bs, "nf4", torch.uint8)
    assert torch.equal(packed.view(-1)[s0 // 2:], ref_packed.view(-1))
    assert torch.equal(absmax[s0 // bs:], ref_absmax)


def test_bad_input_returns_a_status(harness):
    """Bad arguments to a launch come back as a status (never a crash) and the glue raises RuntimeError."""
    q = harness.queue_ptr()
    x = torch.randn(256)
    out = torch.empty(256, dtype=torch.uint8)
    absmax = torch.empty(4)
    code = formats.table("dynamic")
    qb = harness.quantize_blockwise
    assert qb(q, 0, x.data_ptr(), 256, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 0
    assert qb(0, 0, x.data_ptr(), 256, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 1  # no queue
    assert qb(q, 0, 0, 256, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 1  # null input
    assert qb(q, 5, x.data_ptr(), 256, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 2  # dtype
    assert qb(q, 0, x.data_ptr(), -1, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 4  # size
    assert qb(q, 0, x.data_ptr(), 256, code.data_ptr(), 48, out.data_ptr(), absmax.data_ptr()) == 5  # blocksize
    q4 = harness.quantize_4bit
    assert q4(q, 0, x.data_ptr(), 256, 64, 2, out.data_ptr(), 128, absmax.data_ptr()) == 3  # quant type
    assert q4(q, 0, x.data_ptr(), 256, 16, 0, out.data_ptr(), 128, absmax.data_ptr()) == 5  # 4-bit blocksize
    assert q4(q, 0, x.data_ptr(), 256, 8192, 0, out.data_ptr(), 128, absmax.data_ptr()) == 5
    assert q4(q, 0, x.data_ptr(), 256, 64, 0, out.data_ptr(), 127, absmax.data_ptr()) == 6  # output too small
    assert harness.dequantize_4bit(q, 1, out.data_ptr(), 256, 0, 64, 0, x.data_ptr()) == 1
    assert harness.dequantize_blockwise(q, 3, out.data_ptr(), 256, code.data_ptr(), absmax.data_ptr(), 64,
                                        x.data_ptr()) == 2
    gm = harness.gemm_4bit
    A = torch.randn(2, 64)
    o = torch.empty(2, 4)
    assert gm(q, 0, A.data_ptr(), 2, 64, out.data_ptr(), 127, 4, absmax.data_ptr(), 64, code.data_ptr(), 0, 0, 0, 0,
              o.data_ptr()) == 4  # B holds fewer than N*K/2 bytes
    assert gm(q, 0, A.data_ptr(), 2, 64, out.data_ptr(), 128, 4, absmax.data_ptr(), 64, code.data_ptr(), out.data_ptr(),
              0, 0, 0, o.data_ptr()) == 1  # nested without its code / offset
    p = torch.randn(300)
    s1 = torch.zeros(300)
    o32 = harness.optimizer_update_32bit
    common = (1.0, 0.9, 0.99, 0.999, 5.0, 1e-8, 0.0, 1, 1e-3, 1.0, False)
    assert o32(q, 9, 0, p.data_ptr(), p.data_ptr(), 300, s1.data_ptr(), 0, 0, 0.0, *common, 0, 0) == 20
    assert o32(q, 0, 0, p.data_ptr(), p.data_ptr(), 300, s1.data_ptr(), 0, 0, 0.0, *common, 0, 0) == 1  # adam: state2
    uv = torch.zeros(1)
    assert o32(q, 5, 0, p.data_ptr(), p.data_ptr(), 300, s1.data_ptr(), s1.data_ptr(), uv.data_ptr(), 1.0, *common, 0,
               0) == 21  # trust ratio without scratch
    assert harness.optimizer_update_8bit_blockwise(
        q, 1, 0, p.data_ptr(), p.data_ptr(), 300, 0, 0, 0.9, 0.99, 0.999, 5.0, 1e-8, 1, 1e-3, code.data_ptr(), 0,
        absmax.data_ptr(), 0, 0.0, 1.0, False) == 1  # null state1
    # the glue turns a status into RuntimeError with the module's message
    bad = xpu_backend.make_kernels(harness, lambda device: 0)
    with pytest.raises(RuntimeError, match="queue"):
        bad["quantize_4bit"][0](x, 64, "nf4", torch.uint8)
    # and the harness still works afterwards
    assert qb(q, 0, x.data_ptr(), 256, code.data_ptr(), 64, out.data_ptr(), absmax.data_ptr()) == 0


def test_production_bindings_compile_host_side(harness):
    """module.cpp in its production form (QueueLauncher: q.parallel_for with the functors) passes g++'s host-side
    compile against the same SYCL headers. icpx (not available here) also compiles the device side; the kernel
    headers' device code is what the harness's kernel compiler already built."""
    import pybind11

    prefix = _sycl_runtime()[0]
    cmd = [os.environ.get("CXX", "g++"), "-std=c++17", "-fsyntax-only", "-DSYCL_DISABLE_FSYCL_SYCLHPP_WARNING",
           "-isystem", str(prefix / "include"), "-isystem", pybind11.get_include(), "-isystem",
           sysconfig.get_paths()["include"], f"-I{XPU_DIR}", f"-I{COMMON_DIR}", str(XPU_DIR / "module.cpp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]


def test_backend_contract():
    """bnb_core/backends/xpu.py: importable without its module or a device; SUPPORT lists exactly its kernels."""
    assert xpu_backend.DEVICE == "xpu"
    assert set(xpu_backend.SUPPORT) == set(xpu_backend.make_kernels(None))
    assert set(xpu_backend.SUPPORT.values()) == {"runs on a CPU SYCL device"}
    assert set(xpu_backend.SUPPORT) <= set(OPS)
    if xpu_backend._xpu is None:
        assert "bnb_core._xpu" in xpu_backend.load()
    elif not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        assert "torch.xpu" in xpu_backend.load()
