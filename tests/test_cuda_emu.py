"""The CUDA backend's kernels run on CPU (verification level "kernel logic tested on CPU").

There is no GPU in CI: backends/cuda/kernels_*.cu are compiled by g++ as C++ against the emulator header
(backends/cuda/emu/cuda_emu.h; the same sources and host entry points as the nvcc build, not copies) into
the module ``_cuda_emu``, built at test time by tests/cuda_emu/run.sh into ./build-cuda-emu (incremental on
reruns). Then:

* test_selftest runs tests/cuda_emu/selftest.cu: the emulator's barriers, warp intrinsics, atomics, fp16/bf16
  conversions, launch checks and the PTX wrappers of backends/cuda/ptx.cuh (mma, ldmatrix, cp.async) against
  the documented semantics and plain matrix products;
* the other tests run tests/cuda_emu/conformance_emu.py in a subprocess (a memory fault in an emulated kernel
  fails the test, not pytest): every conformance case of every op the CUDA backend implements, through the
  backend's own Python glue, plus misaligned and page-guarded buffers, grids smaller than the work, other
  thread/block orders, special-value blocks and the argument-validation statuses.

What this does not cover (docs/architecture.md, "CUDA kernels on CPU: the emulator"): timing, the GPU memory
model beyond barriers, PTX semantics beyond the documented fragment layouts, occupancy and launch limits.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bnb_core.backends import cuda as cuda_backend

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "cuda_emu" / "run.sh"
RUNNER = ROOT / "tests" / "cuda_emu" / "conformance_emu.py"
BUILD = Path(os.environ.get("BNB_CUDA_EMU_BUILD", ROOT / "build-cuda-emu"))
LEVEL = "kernel logic tested on CPU"


def _cmake():
    exe = shutil.which("cmake")
    if exe:
        return exe
    try:  # the `cmake` pip package
        import cmake

        return str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
    except Exception:
        return None


@pytest.fixture(scope="module")
def emu_build() -> Path:
    cmake = _cmake()
    if cmake is None:
        pytest.fail("cmake is needed to build the CUDA emulator (apt-get install cmake, or pip install cmake)")
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.fail("a C++ compiler (g++) is needed to build the CUDA emulator")
    env = dict(os.environ, CMAKE=cmake, PYTHON=sys.executable, BNB_CUDA_EMU_BUILD=str(BUILD))
    proc = subprocess.run(["bash", str(RUN), "build"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return BUILD


def _module(build: Path) -> Path:
    mods = sorted(build.glob("_cuda_emu*.so"))
    assert mods, f"no _cuda_emu module in {build}"
    return mods[0]


def test_selftest(emu_build):
    proc = subprocess.run([str(emu_build / "cuda_emu_selftest")], capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    m = re.search(r"^OK: (\d+) checks, 0 failures$", proc.stdout, re.M)
    assert m and int(m.group(1)) > 1000, out[-6000:]
    ran = set(re.findall(r"^ok test=(\S+)$", proc.stdout, re.M))
    want = {"barriers", "shuffles", "votes", "atomics", "launch", "conversions", "math", "ldmatrix", "mma",
            "cp_async", "emu_failures"}
    assert want <= ran, f"tests that did not pass: {sorted(want - ran)}\n{out[-3000:]}"


def _nvcc():
    exe = shutil.which("nvcc")
    if exe is None and Path("/usr/local/cuda/bin/nvcc").exists():
        exe = "/usr/local/cuda/bin/nvcc"
    return exe


def test_selftest_compiles_with_nvcc(tmp_path):
    """selftest.cu is also a CUDA program (run on a GPU, it checks the emulator's expectations against the
    hardware). nvcc compiles it, and with it ptx.cuh's inline PTX, for sm_75 (ldmatrix, mma.m8n8k16), sm_80
    (mma.m16n8k16/k32, cp.async) and sm_90a."""
    nvcc = _nvcc()
    if nvcc is None:
        if os.environ.get("BNB_CORE_REQUIRE_CUDA_BUILD") == "1":
            pytest.fail("nvcc not found (BNB_CORE_REQUIRE_CUDA_BUILD=1)")
        pytest.skip("nvcc not found: the PTX wrappers' inline asm is not compiled here")
    cmd = [nvcc, "-c", "-std=c++17", f"-I{ROOT / 'backends' / 'common'}", f"-I{ROOT / 'backends' / 'cuda'}",
           "-diag-suppress=20091", "-gencode", "arch=compute_75,code=sm_75", "-gencode", "arch=compute_80,code=sm_80",
           "-gencode", "arch=compute_90a,code=sm_90a", str(ROOT / "tests" / "cuda_emu" / "selftest.cu"), "-o",
           str(tmp_path / "selftest.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]


@pytest.fixture(scope="module")
def results(emu_build):
    """{suite: {op: [result dicts]}} of one run of the conformance runner over every suite."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([sys.executable, str(RUNNER), str(_module(emu_build))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)
    rows, done, running = [], None, None
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row.get("done"):
            done = row
        elif "running" in row:
            running = row["running"]
        else:
            rows.append(row)
            running = None
    if proc.returncode != 0 or done is None:
        pytest.fail(f"the emulated-kernel run died (exit status {proc.returncode}; -11 is a memory fault in an "
                    f"emulated kernel, e.g. a read past the end of a guarded buffer) in case {running!r}, after "
                    f"{len(rows)} results:\n{proc.stderr[-4000:]}")
    grouped = _Results(lambda: collections.defaultdict(list))
    grouped.skipped_families = done.get("skipped_families", "")
    for row in rows:
        grouped[row["suite"]][row["op"]].append(row)
    return grouped


class _Results(collections.defaultdict):
    skipped_families = ""


def _assert_pass(rows, what):
    assert rows, f"{what}: no case ran"
    bad = [r for r in rows if r["status"] != "pass"]
    lines = "\n".join(f"  {r['op']} {r['id']}: {r['detail'][:400]}" for r in bad[:15])
    assert not bad, f"{what}: {len(bad)} of {len(rows)} cases failed:\n{lines}"


@pytest.mark.parametrize("op", sorted(cuda_backend.KERNELS))
def test_conformance(results, op):
    """Every conformance case of `op`, bit-exact against the reference, through the emulated CUDA kernel."""
    from bnb_core import conformance

    rows = results["conformance"][op]
    want = sum(1 for c in conformance.all_cases() if c.op == op)
    assert len(rows) == want, f"{op}: {len(rows)} of {want} conformance cases ran"
    # "skip": the case reached a kernel of a family left out of the emulator build (a glue path that does not
    # reach native code, e.g. the int8 matmul through torch._int_mm, still runs and must pass)
    if rows and any(r["status"] == "skip" for r in rows) and all(r["status"] in ("skip", "pass") for r in rows):
        assert cuda_backend.SUPPORT.get(op) != LEVEL, f"{op} claims {LEVEL!r} but its kernels are not emulated"
        pytest.skip(f"{op}: its kernel family is not emulator-ready (raw <<< launch or extern __shared__; "
                    f"skipped families: {results.skipped_families!r}): {rows[0]['detail']}")
    _assert_pass(rows, op)


@pytest.mark.parametrize("suite", ["layout", "grid", "schedule", "special", "errors"])
def test_suite(results, suite):
    rows = [r for op_rows in results[suite].values() for r in op_rows if r["status"] != "skip"]
    _assert_pass(rows, suite)


def test_support_level_matches_coverage(results):
    """The CUDA backend claims "kernel logic tested on CPU" exactly for the ops this test runs and passes."""
    claimed = {op for op, level in cuda_backend.SUPPORT.items() if level == LEVEL}
    covered = {op for op, rows in results["conformance"].items() if rows and all(r["status"] == "pass" for r in rows)}
    assert claimed, "no op claims the level"
    assert claimed <= covered, f"claimed without passing emulated conformance: {sorted(claimed - covered)}"
