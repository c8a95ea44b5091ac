"""benchmarks/bench_cuda.py without a GPU: it imports, --help works, it exits with a clear message when no CUDA
device is present, and --dry-run-cpu runs every code path (tiny shapes on the CPU) and writes its JSON."""

import json
import os
import subprocess
import sys

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_cuda.py")


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout)


def test_help():
    p = _run("--help")
    assert p.returncode == 0, p.stderr
    assert "--json" in p.stdout and "--dry-run-cpu" in p.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_exits_cleanly_without_cuda():
    p = _run()
    assert p.returncode == 2, p.stdout + p.stderr
    assert "no CUDA device" in p.stderr
    assert "Traceback" not in p.stderr


def test_dry_run_cpu_covers_every_section(tmp_path):
    out = tmp_path / "bench.json"
    p = _run("--dry-run-cpu", "--no-bnb", "--json", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(out.read_text())
    assert res["copy_bandwidth_Bps"] > 0
    assert {r["op"].split()[0] for r in res["quant"]} == {"quantize_4bit", "dequantize_4bit", "quantize_blockwise",
                                                          "dequantize_blockwise"}
    modes = {(r["M"], r["mode"]) for r in res["matmul"]}
    assert {(1, "mem"), (1, "hot"), (16, "mem")} <= modes
    for r in res["matmul"]:
        assert r["ours_s"] > 0 and r["dense_s"] > 0
        assert r["max_rel_diff_vs_dequantized_linear"] < 1e-2, r
    assert any(r["call"].startswith("gemv_4bit") and r["wall_s"] for r in res["overhead"])
    assert all(r["error"] is None for r in res["overhead"]), res["overhead"]
