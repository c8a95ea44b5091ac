"""The torch-free CPU kernel cores (tests/native/): built natively and cross-compiled for AArch64.

The C++ test program links the per-ISA kernel sources + ops*.cpp + thread_pool.cpp (no pybind11, no
Python) and checks them bit-exactly against the scalar reference code in tests/native/test_*.cpp, on every
ISA path: natively (x86-64: scalar, avx2, avx512, avx512vnni, amx as the CPU allows) and, cross-compiled with
aarch64-linux-gnu-g++, under qemu-aarch64 (scalar, neon).

The AArch64 part is skipped when the cross compiler or qemu-aarch64 is missing, unless
BNB_CORE_REQUIRE_CROSS=1 (scripts/test.sh sets it after installing them), which turns that into a failure.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "native" / "run.sh"


def _cmake():
    exe = shutil.which("cmake")
    if exe:
        return exe
    try:  # the `cmake` pip package
        import cmake

        return str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
    except Exception:
        return None


def _run(target: str, timeout: float) -> subprocess.CompletedProcess:
    cmake = _cmake()
    if cmake is None:
        pytest.fail("cmake is needed to build tests/native (apt-get install cmake, or pip install cmake)")
    env = dict(os.environ, CMAKE=cmake)
    return subprocess.run(["bash", str(RUN), target], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check(proc: subprocess.CompletedProcess, want_isas: list[str]):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert re.search(r"^OK: \d+ checks, 0 failures$", proc.stdout, re.M), out[-6000:]
    ran = set(re.findall(r"^ok isa=(\S+) test=", proc.stdout, re.M))
    for isa in want_isas:
        assert isa in ran, f"ISA path {isa} did not run:\n{out[-6000:]}"


def _host_isas() -> list[str]:
    """ISA paths the host CPU can run (so the native run must have checked them)."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return ["scalar", "neon"]
    want = ["scalar"]
    if machine in ("x86_64", "amd64"):
        try:
            flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
        except Exception:
            flags = set()
        if {"avx2", "fma", "f16c"} <= flags:
            want.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            want.append("avx512")
            if {"avx512_vnni", "avx512vbmi", "avx512_bf16"} <= flags:
                want.append("avx512vnni")
                # the amx tier also needs the OS to grant the tile state (the harness asks, as the module does)
                if {"amx_tile", "amx_bf16", "amx_int8"} <= flags:
                    want.append("amx")
    return want


def test_native_cores_host():
    """Every ISA path of this machine, bit-exact against the harness's reference."""
    _check(_run("host", timeout=300), _host_isas())


def test_native_cores_aarch64_qemu():
    """The AArch64 build (scalar + neon), cross-compiled and run under qemu-aarch64."""
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64") if shutil.which(t) is None]
    if missing:
        msg = (f"{' and '.join(missing)} not found: the AArch64 NEON kernel cores are untested here "
               "(Debian: apt-get install g++-aarch64-linux-gnu qemu-user)")
        if os.environ.get("BNB_CORE_REQUIRE_CROSS") == "1":
            pytest.fail(msg + "; BNB_CORE_REQUIRE_CROSS=1 requires them")
        pytest.skip(msg)
    _check(_run("aarch64", timeout=300), ["scalar", "neon"])
