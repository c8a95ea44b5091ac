"""docs/adding-a-backend.md is tested by following it: its marked blocks run in order in a temporary directory.

Markers (an HTML comment on the line before a fenced block):
  <!-- walkthrough: file NAME -->  write the block to NAME
  <!-- walkthrough: run -->        run each line of the block with bash (`python` is this interpreter); exit 0
  <!-- walkthrough: python -->     run the block as a Python script; exit 0
  <!-- walkthrough: expect -->     every line of the block appears in the output of the step before
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "adding-a-backend.md"
STEP = re.compile(r"<!-- walkthrough: (file|run|python|expect)(?: (\S+))? -->\n```[a-z]*\n(.*?)```", re.S)


def steps():
    return [(m.group(1), m.group(2), m.group(3)) for m in STEP.finditer(DOC.read_text())]


def test_walkthrough_is_marked():
    kinds = [k for k, _, _ in steps()]
    assert kinds.count("file") == 1 and kinds.count("run") >= 3 and "python" in kinds and "expect" in kinds, kinds
    assert kinds.count("expect") == sum(1 for i, k in enumerate(kinds) if k == "expect" and i and kinds[i - 1] in
                                        ("run", "python")), "every expect block follows a run/python block"


def _registered_cpu_native() -> bool:
    from bnb_core import registry

    return "cpu-native" in registry.kernels("int8_linear_matmul", "cpu")


def test_walkthrough_runs(tmp_path):
    if not _registered_cpu_native():  # the strict-mode step unregisters it and expects the CPU suite to pass
        if os.environ.get("BNB_CORE_REQUIRE_NATIVE_CPU") == "1":
            pytest.fail("the native CPU backend is not loaded (BNB_CORE_REQUIRE_NATIVE_CPU=1)")
        pytest.skip("the walk-through's strict-mode step needs the native CPU backend")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "python"  # a script, not a symlink: a venv's interpreter must be called by its own path
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BNB_CORE_STRICT", "BNB_CORE_BACKENDS",
                                                                      "BNB_CORE_FORCE_REFERENCE"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    last_output, ran = None, []
    for i, (kind, arg, body) in enumerate(steps()):
        if kind == "file":
            (work / arg).write_text(body)
            continue
        if kind == "expect":
            assert last_output is not None, "expect block with no step before it"
            for line in filter(None, (s.strip() for s in body.splitlines())):
                assert line in last_output, f"step {i}: expected {line!r} in the output of {ran[-1]!r}:\n{last_output}"
            continue
        if kind == "python":
            script = work / f"step{i}.py"
            script.write_text(body)
            cmds = [f'python "{script}"']
        else:
            cmds = [c for c in body.splitlines() if c.strip() and not c.lstrip().startswith("#")]
        last_output = ""
        for cmd in cmds:
            proc = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
            ran.append(cmd)
            assert proc.returncode == 0, f"step {i}: `{cmd}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            last_output += proc.stdout + proc.stderr
