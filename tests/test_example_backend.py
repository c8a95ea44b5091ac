"""examples/bnb_core_example_backend: an out-of-tree backend registered through the `bnb_core.backends` entry
point. `python -m bnb_core check` must show its kernel serving (and passing) the cases its supports() accepts
(float32 outputs) and `python -m bnb_core support` must list it.

Two runs: the INSTALLED package, and the source tree through a temporary dist-info holding the example's own
entry point (always, no install needed). scripts/test.sh pip-installs the example into its own directory
(BNB_CORE_EXAMPLE_BACKEND_PATH), not into the venv, because on the CPU it serves float32 dequantize_blockwise
ahead of the native kernel, which the rest of the suite must test; it also sets BNB_CORE_REQUIRE_EXAMPLE_BACKEND=1,
which makes a missing install a failure (elsewhere that test skips). A package installed into the environment
itself is verified the same way.
"""

import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bnb_core_example_backend"
OP = "dequantize_blockwise"
KERNEL = "example-dequantize-blockwise"


def _installed() -> bool:
    return any(ep.name == "example" and ep.value.startswith("bnb_core_example_backend")
               for ep in importlib.metadata.entry_points(group="bnb_core.backends"))


def _entry_point_line() -> str:
    text = (EXAMPLE / "pyproject.toml").read_text()
    m = re.search(r'\[project\.entry-points\."bnb_core\.backends"\]\n(\w+ = "[\w.:]+")', text)
    assert m, "the example's pyproject.toml declares no bnb_core.backends entry point"
    return m.group(1).replace('"', "")


def _source_env(tmp_path) -> dict:
    """PYTHONPATH with the example's source and a dist-info declaring its entry point (as pip would)."""
    dist = tmp_path / "bnb_core_example_backend-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bnb-core-example-backend\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text(f"[bnb_core.backends]\n{_entry_point_line()}\n")
    path = os.pathsep.join(filter(None, [str(EXAMPLE), str(tmp_path), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


def _bnb(args, env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("BNB_CORE_FORCE_REFERENCE", "BNB_CORE_STRICT")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "bnb_core", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tempfile.gettempdir())


def _verify(env_extra):
    from bnb_core import registry

    # strict: no case may reach the reference (the plugin or the native CPU kernel serves each), when built
    strict = ["--strict"] if registry.backend_status.get("cpu") is None else []
    proc = _bnb(["check", "--device", "cpu", "--op", OP, "-v", *strict], env_extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"{KERNEL}: backend example, level 'runs in CI', priority 1: {OP}" in out, out
    cases = re.findall(rf"^(\w+) {OP} \[(\S+)\] \((\S+)\)", proc.stdout, re.M)
    assert len(cases) >= 24, out
    for status, cid, kernel in cases:
        assert status == "PASS", (cid, out)
        # the plugin's supports(): float32 outputs; every other case is served by another kernel
        assert (kernel == KERNEL) == ("-float32-" in cid), (cid, kernel)
    proc = _bnb(["support"], env_extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "example (cpu)" in proc.stdout, proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith(f"| {OP} "))
    assert row.rstrip(" |").endswith("runs in CI"), row


def test_example_backend_installed():
    target = os.environ.get("BNB_CORE_EXAMPLE_BACKEND_PATH")
    if target and list(pathlib.Path(target).glob("bnb_core_example_backend-*.dist-info/entry_points.txt")):
        _verify({"PYTHONPATH": os.pathsep.join(filter(None, [target, os.environ.get("PYTHONPATH")]))})
    elif _installed():
        _verify({})
    else:
        msg = ("examples/bnb_core_example_backend is not installed (pip install ./examples/bnb_core_example_backend, "
               f"or pip install --target DIR and BNB_CORE_EXAMPLE_BACKEND_PATH=DIR; got {target!r})")
        if os.environ.get("BNB_CORE_REQUIRE_EXAMPLE_BACKEND") == "1":
            pytest.fail(msg + "; BNB_CORE_REQUIRE_EXAMPLE_BACKEND=1 requires it")
        pytest.skip(msg)


def test_example_backend_from_source(tmp_path):
    if _installed():
        pytest.skip("installed: test_example_backend_installed verifies it (a second copy would register twice)")
    _verify(_source_env(tmp_path))
