"""Every op on every available device against the reference (bnb_core.conformance).

On CPU the native kernels serve the ops they support; the rest, and every other device without a
native kernel, run the reference through the dispatcher. Unsupported cases are listed in the terminal
summary, never skipped silently. Separate subprocess runs cover the reference path on CPU
(BNB_CORE_FORCE_REFERENCE=1) and every native CPU ISA path (BNB_CPU_ISA).
"""

import os
import subprocess
import sys
import tempfile

import pytest

from bnb_core import conformance, registry
from conftest import DEVICES, report_unsupported

CASES = conformance.all_cases()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}[{c.id}]" for c in CASES])
def test_conformance(case, device):
    result = conformance.run_case(case, device)
    if result.status == "unsupported":
        report_unsupported(f"{device} {case.op}[{case.id}]: {result.detail}")
        return
    assert result.status == "pass", f"{case.op}[{case.id}] on {device} via {result.kernel}: {result.detail}"


def _check_subprocess(env_extra, ops=()):
    env = dict(os.environ, **env_extra)
    # --strict: a case that falls back to the reference fails (BNB_CORE_FORCE_REFERENCE asks for the reference)
    cmd = [sys.executable, "-m", "bnb_core", "check", "--device", "cpu", "--strict"]
    for op in ops:
        cmd += ["--op", op]
    # run outside the source tree so the INSTALLED package (with its native module) is imported
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tempfile.gettempdir())
    return proc


def test_conformance_reference_path_through_dispatcher():
    """With BNB_CORE_FORCE_REFERENCE=1 no native kernel registers and every op passes via the reference."""
    proc = _check_subprocess({"BNB_CORE_FORCE_REFERENCE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    served = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "served by" not in line]
    assert served and all(line.rstrip(" |").endswith("reference") for line in served), proc.stdout


def test_native_cpu_backend_loaded():
    """CI (BNB_CORE_REQUIRE_NATIVE_CPU=1) must run the native CPU kernels, not silently the reference."""
    if os.environ.get("BNB_CORE_REQUIRE_NATIVE_CPU") != "1" and registry.backend_status.get("cpu"):
        pytest.skip(f"native CPU backend not built here: {registry.backend_status['cpu']}")
    assert registry.backend_status.get("cpu") is None, registry.backend_status
    assert {"quantize_4bit", "dequantize_4bit", "quantize_blockwise", "dequantize_blockwise"} <= set(
        registry.table().get("cpu", {}))


def _isas():
    try:
        from bnb_core import _cpu
    except ImportError:
        return []
    return list(_cpu.available_isas())


@pytest.mark.parametrize("isa", _isas() or ["native-module-missing"])
def test_conformance_every_cpu_isa(isa):
    """The native CPU ops pass the conformance cases on every ISA path this machine can run."""
    if isa == "native-module-missing":
        pytest.fail("bnb_core._cpu is not built: the native CPU backend must be part of every install")
    ops = registry.table().get("cpu", {})
    assert ops, "no native CPU kernels registered"
    proc = _check_subprocess({"BNB_CPU_ISA": isa}, ops=sorted(ops))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"isa={isa}" in proc.stdout or isa in proc.stdout, proc.stdout
