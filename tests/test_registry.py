"""The dispatch registry: kernel selection, fallback with a one-time warning, the query, the
BNB_CORE_FORCE_REFERENCE switch and third-party backends through the entry-point group."""

import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest
import torch

from bnb_core import formats, reference, registry


def _args():
    return (torch.randn(300), formats.table("dynamic").clone(), 64)


def test_kernel_selection_and_fallback_warning():
    op, calls = "quantize_blockwise", []

    def fake_native(A, code, blocksize):
        calls.append(blocksize)
        return reference.quantize_blockwise(A, code, blocksize)

    registry.register_kernel(op, "cpu", fake_native, supports=lambda A, code, blocksize: blocksize == 64,
                             name="test-kernel")
    ks = registry._kernels[(op, "cpu")]
    saved = [k for k in ks if k.name != "test-kernel"]
    ks[:] = [k for k in ks if k.name == "test-kernel"]  # only ours, for the duration of the test
    try:
        assert registry.kernels(op, "cpu") == ["test-kernel"]
        assert registry.kernel_for(op, *_args()) == "test-kernel"
        torch.ops.bnb.quantize_blockwise(*_args())
        assert calls == [64]
        A, code, _ = _args()
        assert registry.kernel_for(op, A, code, 128) == registry.REFERENCE
        with warnings.catch_warnings(record=True) as w:  # it declines: the reference, with ONE warning
            warnings.simplefilter("always")
            q1, a1 = torch.ops.bnb.quantize_blockwise(A, code, 128)
            torch.ops.bnb.quantize_blockwise(A, code, 128)
        assert sum("using the reference implementation" in str(x.message) for x in w) == 1
        q2, a2 = reference.quantize_blockwise(A, code, 128)
        assert torch.equal(q1, q2) and torch.equal(a1, a2) and calls == [64]
    finally:
        registry.unregister_kernel(op, "cpu", "test-kernel")
        ks[:] = saved + ks
    assert "test-kernel" not in registry.kernels(op, "cpu")


def test_kernel_for_validates_arguments():
    with pytest.raises(ValueError, match="blocksize"):
        registry.kernel_for("quantize_blockwise", torch.randn(10), formats.table("dynamic"), 7)
    with pytest.raises(ValueError, match="unknown op"):
        registry.kernel_for("no_such_op", torch.randn(1))


def test_layers_hand_every_weight_they_hold_to_the_placement(monkeypatch):
    """Linear4bit / Linear8bitLt pass each weight they take over (quantized by them, loaded pre-quantized, moved)
    through registry.place_weight, which runs the device's placement on it in place."""
    from bnb_core.nn import Linear4bit, Linear8bitLt

    seen = []
    monkeypatch.setitem(registry._placements, "cpu", lambda t: seen.append(t.data_ptr()))
    l4 = Linear4bit(64, 32, quant_type="nf4").to("cpu")  # quantized by the layer
    assert seen == [l4.weight.data_ptr()]
    l8 = Linear8bitLt(64, 32, has_fp16_weights=False)
    l8(torch.randn(2, 64))  # quantized on its first call
    assert seen[-1] == l8.weight.data_ptr() and len(seen) == 2
    for src, dst in ((l4, Linear4bit(64, 32, quant_type="nf4")), (l8, Linear8bitLt(64, 32, has_fp16_weights=False))):
        dst.load_state_dict({k: v.clone() for k, v in src.state_dict().items()})  # pre-quantized
        assert seen[-1] == dst.weight.data_ptr()
        n = len(seen)
        dst.to("cpu")
        assert len(seen) == n + 1 and seen[-1] == dst.weight.data_ptr()  # moved (here: to where it was)
    t = torch.zeros(3)
    assert registry.place_weight(t) is t and seen[-1] == t.data_ptr()
    assert registry.place_weight(torch.zeros(3, device="meta")).device.type == "meta"  # none for meta: a no-op


def _run(code, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    cwd = cwd or tempfile.gettempdir()  # outside the source tree: import the installed package
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_force_reference_env():
    proc = _run("""
        import torch, bnb_core
        from bnb_core import registry, formats
        assert registry.table() == {}, registry.table()
        assert registry._placements == {}, registry._placements
        x = torch.randn(100)
        assert registry.kernel_for("quantize_4bit", x, 64, "nf4", torch.uint8) == "reference"
        print("ok")
    """, {"BNB_CORE_FORCE_REFERENCE": "1"})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_third_party_backend_via_entry_point(tmp_path):
    (tmp_path / "my_bnb_backend.py").write_text(textwrap.dedent("""
        from bnb_core import registry, reference
        CALLS = []
        def register():
            def k(A, stats):
                CALLS.append(1)
                return reference.int8_vectorwise_dequant(A, stats)
            registry.register_kernel("int8_vectorwise_dequant", "cpu", k, name="my-backend")
    """))
    dist = tmp_path / "my_bnb_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-bnb-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bnb_core.backends]\nmine = my_bnb_backend:register\n")
    proc = _run("""
        import torch, bnb_core, my_bnb_backend
        from bnb_core import registry
        assert registry.backend_status["mine"] is None, registry.backend_status
        assert "my-backend" in registry.kernels("int8_vectorwise_dequant", "cpu")
        # the first registered kernel serves a call: take the native CPU one (if built) out of the way
        registry.unregister_kernel("int8_vectorwise_dequant", "cpu", "cpu-native")
        A = torch.randint(-127, 128, (4, 8), dtype=torch.int8)
        assert registry.kernel_for("int8_vectorwise_dequant", A, torch.ones(4)) == "my-backend"
        torch.ops.bnb.int8_vectorwise_dequant(A, torch.ones(4))
        assert my_bnb_backend.CALLS == [1]
        print("ok")
    """, {"PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


def test_broken_entry_point_is_reported_not_raised(tmp_path):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bnb_core.backends]\nbroken = no_such_module:register\n")
    proc = _run("""
        import bnb_core
        from bnb_core import registry
        assert "ModuleNotFoundError" in registry.backend_status["broken"], registry.backend_status
        print("ok")
    """, {"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
