"""The ROCm/HIP build of the CUDA backend's sources (backends/rocm), without an AMD GPU.

The CUDA sources (backends/cuda: kernels and bindings) are configured and built as HIP with hipcc for
gfx90a (CDNA2, wave64) and gfx1030 (RDNA2, wave32), so a CUDA change that breaks the HIP build fails here.
The build directory is kept (build/hip-ci, or $BNB_HIP_BUILD) so reruns are incremental. The compat
header's probe (backends/rocm/compat_probe.cu) is part of that build, and is also compiled by nvcc when
it is installed (every name it uses is then known to be real CUDA). When the built module imports (HIP
runtime installed), its entry points must validate their arguments and report a clean HIP error without a
GPU, as tests/test_cuda_build.py checks for bnb_core._cuda.

CI (scripts/test.sh) installs Debian's hipcc and sets BNB_CORE_REQUIRE_HIP=1: a missing toolchain then
fails instead of skipping. Elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bnb_core  # noqa: F401
from bnb_core.backends import cuda as cuda_backend
from _cuda_status_cases import P, QUANT_BAD_ARGS

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("BNB_HIP_BUILD", ROOT / "build" / "hip-ci"))
ARCHS = ["gfx90a", "gfx1030"]  # one wave64 (CDNA) and one wave32 (RDNA) target
REQUIRE = os.environ.get("BNB_CORE_REQUIRE_HIP") == "1"


def _missing(msg: str):
    if REQUIRE:
        pytest.fail(msg + " (BNB_CORE_REQUIRE_HIP=1)")
    pytest.skip(msg)


def _hipcc():
    exe = shutil.which("hipcc")
    if exe:
        return exe
    for root in (os.environ.get("ROCM_PATH"), "/opt/rocm"):
        if root and os.access(os.path.join(root, "bin", "hipcc"), os.X_OK):
            return os.path.join(root, "bin", "hipcc")
    return None


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
def hip_build():
    """Configure + build bnb_core._hip (incremental); returns (build log, module path)."""
    hipcc = _hipcc()
    if hipcc is None:
        _missing("hipcc not found: the HIP build of the CUDA sources is unchecked here "
                 "(Debian: apt-get install hipcc)")
    cmake = _cmake()
    if cmake is None:
        _missing("cmake is needed to build the HIP module (apt-get install cmake, or pip install cmake)")
    try:
        import pybind11
    except ImportError:
        _missing("pybind11 is needed to build the HIP module (pip install pybind11)")
    BUILD.mkdir(parents=True, exist_ok=True)
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    if (BUILD / "CMakeCache.txt").exists():
        gen = []  # keep the generator of the existing build tree
    configure = [cmake, "-S", str(ROOT), "-B", str(BUILD), *gen, "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
                 "-DBNB_CPU=OFF", "-DBNB_CUDA=OFF", "-DBNB_HIP=ON", f"-DBNB_HIP_ARCHS={';'.join(ARCHS)}",
                 f"-DBNB_HIPCC={hipcc}"]
    log = ""
    for cmd in (configure, [cmake, "--build", str(BUILD), "-j", str(os.cpu_count() or 2)]):
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
        log += proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{log[-8000:]}"
    mods = sorted((BUILD / "backends" / "rocm").glob("_hip*.so"))
    assert mods, f"no _hip module in {BUILD}/backends/rocm:\n{log[-4000:]}"
    return log, mods[0]


def _sources(var: str) -> list[str]:
    """Entries of a list in backends/cuda/sources.cmake (the lists both builds compile)."""
    text = (ROOT / "backends" / "cuda" / "sources.cmake").read_text()
    body = re.search(r"set\(%s\s(.*?)\)" % var, text, re.S).group(1)
    return [w for line in body.splitlines() for w in line.split("#")[0].split()]


def test_hip_build_compiles_every_kernel_source_for_both_wave_sizes(hip_build):
    """Every kernel source of the CUDA backend is built as HIP, with device code for gfx90a and gfx1030."""
    objs = BUILD / "backends" / "rocm" / "hip_objs"
    kernels = _sources("BNB_CUDA_KERNEL_SOURCES")
    assert kernels and all(k.endswith(".cu") for k in kernels), kernels
    for src in kernels + ["compat_probe.cu"]:
        obj = objs / (Path(src).stem + ".o")
        assert obj.exists(), f"{src} was not compiled as HIP"
        data = obj.read_bytes()
        for arch in ARCHS:  # offload bundle entry "hipv4-amdgcn-amd-amdhsa--<arch>"
            assert f"amdgcn-amd-amdhsa--{arch}".encode() in data, f"{obj.name}: no {arch} device code"


def test_compat_probe_is_real_cuda():
    """compat_probe.cu (every name hip_compat.h maps, CUDA spelling) also compiles with nvcc."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: the probe's CUDA spelling is unchecked here")
    out = BUILD / "compat_probe_nvcc.o"
    BUILD.mkdir(parents=True, exist_ok=True)
    src = ROOT / "backends" / "rocm" / "compat_probe.cu"
    cmd = [nvcc, "-std=c++17", "-arch=sm_90a", "--expt-relaxed-constexpr", "-diag-suppress=20091",
           f"-I{ROOT / 'backends' / 'common'}", f"-I{ROOT / 'backends' / 'cuda'}", "-c", str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ the built module


@pytest.fixture(scope="module")
def mod(hip_build):
    _, path = hip_build
    spec = importlib.util.spec_from_file_location("_hip", path)
    m = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(m)  # needs the HIP runtime (libamdhip64), not a GPU
    except ImportError as e:
        _missing(f"the built bnb_core._hip does not import here ({e})")
    return m


NO_AMD_GPU = not os.path.exists("/dev/kfd")


def test_module_identity(mod):
    assert mod.PLATFORM == "hip"
    assert mod.ARCHS == ";".join(ARCHS)
    assert mod.runtime_version() > 0


def test_module_has_every_entry_point_the_glue_calls(mod):
    """Every native function bnb_core/backends/cuda.py calls (`_mod.<name>`) exists in the HIP build."""
    tree = ast.parse(Path(cuda_backend.__file__).read_text())
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "_mod"}
    assert "quantize_4bit" in used
    missing = sorted(u for u in used if not hasattr(mod, u))
    assert not missing, f"bnb_core._hip lacks {missing}"


def test_same_entry_points_as_the_cuda_module(mod):
    cu = cuda_backend._mod
    if cu is None or cu.PLATFORM != "cuda":
        pytest.skip("bnb_core._cuda is not built here")
    names = lambda m: {n for n in dir(m) if not n.startswith("__")}  # noqa: E731
    assert names(mod) == names(cu)


def test_support_hip_declares_the_compiled_kernels():
    """SUPPORT_HIP: every registered op of the cuda backend, at "compiles" (CI builds all its sources as
    HIP: test_hip_build_compiles_every_kernel_source_for_both_wave_sizes)."""
    assert set(cuda_backend.SUPPORT_HIP) == set(cuda_backend.KERNELS)
    assert set(cuda_backend.SUPPORT_HIP.values()) == {"compiles"}
    assert "compiles" in bnb_core.registry.LEVELS


@pytest.mark.parametrize("call, status", QUANT_BAD_ARGS)
def test_bad_arguments_return_status(mod, call, status):
    s = call(mod)
    assert s == status, mod.error_message(s)
    assert mod.error_message(s).startswith("bnb_core._hip: ")


def test_empty_input_is_a_no_op(mod):
    assert mod.quantize_4bit(0, 0, 2, 0, 0, 64, 0, 0, 0, 0) == 0
    assert mod.dequantize_blockwise(0, 0, 0, 0, 0, 0, 0, 256, 0) == 0


@pytest.mark.skipif(not NO_AMD_GPU, reason="checks the no-GPU path")
def test_launch_without_gpu_reports_hip_error(mod):
    assert mod.device_count() == 0
    for call in (lambda: mod.dequantize_4bit(0, 0, 2, P, 100, P, 64, 0, P),
                 lambda: mod.quantize_blockwise(0, 0, 1, P, 1000, P, 256, P, P)):
        s = call()
        assert s == 100
        msg = mod.error_message(s)
        assert msg.startswith("bnb_core._hip: HIP error: hip"), msg
        assert mod.last_cuda_error() != 0
