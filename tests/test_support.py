"""The support matrix (bnb_core.support, `python -m bnb_core support`), the README table generated from it,
and the registration metadata it reads (levels, priorities, backend attribution, BNB_CORE_BACKENDS)."""

import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import types

import pytest
import torch

from bnb_core import backends, reference, registry, support
from bnb_core._ops import OPS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_support_table_is_generated():
    drift = support.readme_drift(README)
    assert drift is None, drift


def test_readme_drift_is_detected_and_fixed(tmp_path):
    readme = tmp_path / "README.md"
    text = README.read_text()
    readme.write_text(text.replace("| quantize_4bit | runs in CI |", "| quantize_4bit | source only |"))
    drift = support.readme_drift(readme)
    assert drift and "python -m bnb_core support --write-readme" in drift, drift
    assert support.write_readme(readme) is True
    assert support.readme_drift(readme) is None and readme.read_text() == text
    assert support.write_readme(readme) is False
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers are missing"):
        support.readme_drift(readme)


def test_every_level_has_a_meaning():
    for level in (*registry.LEVELS, registry.UNVERIFIED, support.REFERENCE_CELL):
        assert support.LEVEL_MEANINGS.get(level), level


def test_builtin_columns_cover_every_backend_and_op():
    cols = support.builtin_columns()  # raises on a SUPPORT with an unknown op or level
    names = [c.name for c in cols]
    assert names[:3] == ["cpu", "cuda", "rocm"] and set(backends.BUILTIN) <= set(names), names
    rows = support.matrix_rows(cols)
    assert [r[0] for r in rows] == list(OPS)
    for row in rows:
        for cell in row[1:]:
            assert cell == support.REFERENCE_CELL or cell in registry.LEVELS, row
    cpu = cols[0]
    assert cpu.device == "cpu" and set(cpu.support) == set(OPS), "the CPU backend declares every op"


def test_rocm_column_comes_from_cuda_support_hip():
    cuda = types.SimpleNamespace(DEVICE="cuda", SUPPORT={"quantize_4bit": "runs on hardware"},
                                 SUPPORT_HIP={"quantize_4bit": "compiles"})
    cols = {c.name: c for c in support.builtin_columns({"cuda": cuda})}
    assert support.cell(cols["cuda"], "quantize_4bit") == "runs on hardware"
    assert support.cell(cols["rocm"], "quantize_4bit") == "compiles" and cols["rocm"].device == "cuda"
    assert support.cell(cols["rocm"], "gemm_4bit") == support.REFERENCE_CELL
    assert support.cell(cols["cpu"], "quantize_4bit") == support.REFERENCE_CELL  # no cpu module given
    no_hip = {c.name: c for c in support.builtin_columns({"cuda": types.SimpleNamespace(SUPPORT={})})}
    assert no_hip["rocm"].support == {} and "not declared yet" in no_hip["rocm"].source
    for bad, match in (({"quantize_5bit": "compiles"}, "unknown op"), ({"quantize_4bit": "works"}, "unknown verification")):
        with pytest.raises(ValueError, match=match):
            support.builtin_columns({"cuda": types.SimpleNamespace(SUPPORT={}, SUPPORT_HIP=bad)})


def test_builtin_kernels_take_their_level_from_support():
    from bnb_core.backends import cpu

    for op, device, k in registry.registrations():
        if k.backend == "cpu":
            assert device == "cpu" and k.level == cpu.SUPPORT[op], (op, k)
    if registry.backend_status.get("cpu") is None:
        assert {op for op, d, k in registry.registrations() if k.backend == "cpu"} == set(cpu.SUPPORT)


def _fn(A, stats):
    return reference.int8_vectorwise_dequant(A, stats)


def test_register_kernel_level_priority_and_runtime_column():
    op = "int8_vectorwise_dequant"
    with pytest.raises(ValueError, match="unknown verification level"):
        registry.register_kernel(op, "cpu", _fn, name="t-bad", level="works great")
    assert "t-bad" not in registry.kernels(op, "cpu")
    before = registry.kernels(op, "cpu")
    try:
        registry.register_kernel(op, "cpu", _fn, name="t-low", priority=-1)
        registry.register_kernel(op, "cpu", _fn, name="t-high", level="compiles", priority=5)
        with registry.loading_backend("third-party"):
            registry.register_kernel(op, "cpu", _fn, name="t-mid", level="source only", priority=5)
        assert registry.kernels(op, "cpu") == ["t-high", "t-mid", *before, "t-low"]
        A = torch.randint(-127, 128, (4, 8), dtype=torch.int8)
        assert registry.kernel_for(op, A, torch.ones(4)) == "t-high"
        ks = {k.name: k for o, d, k in registry.registrations() if o == op}
        assert ks["t-low"].level == registry.UNVERIFIED and ks["t-low"].backend == "t-low"
        assert ks["t-mid"].backend == "third-party"
        cols = {c.name: c for c in support.runtime_columns()}
        assert support.cell(cols["third-party"], op) == "source only" and cols["third-party"].device == "cpu"
        assert support.cell(cols["third-party"], "quantize_4bit") == support.NOT_REGISTERED_CELL
        assert support.cell(cols["t-low"], op) == registry.UNVERIFIED
        text = support.render(support.columns(), markdown=False)
        assert "third-party (cpu)" in text and "t-high (cpu)" in text
        assert "third-party (cpu)" not in support.readme_block()  # the README shows built-in backends only
    finally:
        for name in ("t-low", "t-high", "t-mid"):
            registry.unregister_kernel(op, "cpu", name)
    assert registry.kernels(op, "cpu") == before


def _run(args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          cwd=cwd or tempfile.gettempdir(), timeout=300)


def test_support_cli():
    proc = _run(["-m", "bnb_core", "support", "--markdown", "--builtin-only"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == support.render(support.builtin_columns(), markdown=True).strip()
    proc = _run(["-m", "bnb_core", "support"])
    assert proc.returncode == 0, proc.stderr
    for op in OPS:
        assert f"| {op} " in proc.stdout, op
    assert "| rocm " in proc.stdout and "here" in proc.stdout


def test_write_readme_cli(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{support.README_BEGIN}\nstale\n{support.README_END}\n\nafter\n")
    proc = _run(["-m", "bnb_core", "support", "--write-readme", "--readme", str(readme)])
    assert proc.returncode == 0 and "rewritten" in proc.stdout, proc.stdout + proc.stderr
    text = readme.read_text()
    assert text.startswith("intro\n\n") and text.endswith("\n\nafter\n") and support.readme_drift(readme) is None
    proc = _run([str(ROOT / "tools" / "gen_readme_support.py"), "--check"])
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr


def test_env_backends(tmp_path):
    (tmp_path / "one_file_backend.py").write_text(textwrap.dedent("""
        from bnb_core import reference, registry
        def setup():
            registry.register_kernel("int8_vectorwise_dequant", "cpu", reference.int8_vectorwise_dequant,
                                     name="one-file", level="runs in CI", priority=1)
    """))
    proc = _run(["-c", textwrap.dedent("""
        import bnb_core
        from bnb_core import registry, support
        assert registry.backend_status["one_file_backend"] is None, registry.backend_status
        assert "ModuleNotFoundError" in registry.backend_status["no_such_backend_module"], registry.backend_status
        assert registry.kernels("int8_vectorwise_dequant", "cpu")[0] == "one-file"
        col = {c.name: c for c in support.runtime_columns()}["one_file_backend"]
        assert col.support == {"int8_vectorwise_dequant": "runs in CI"}, col
        print("ok")
    """)], {"BNB_CORE_BACKENDS": "one_file_backend:setup, no_such_backend_module",
            "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
