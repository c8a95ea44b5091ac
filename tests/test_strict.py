"""Strict mode: every fallback to the reference raises registry.ReferenceFallbackError, naming the op, the
device, the dtypes and the reason, on both routes (a device with no native kernel at all reaches the
CompositeExplicitAutograd reference; a device whose kernels all decline falls back in the registry's
dispatcher). Never for meta / fake tensors or torch.compile tracing; off by default."""

import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest
import torch

from bnb_core import conformance, formats, reference, registry

OP = "quantize_blockwise"


def only_blocksize_64(A, code, blocksize):
    """blocksize 64 only"""
    return blocksize == 64


@contextlib.contextmanager
def only_kernel(op, supports, name="strict-test-kernel"):
    """For the block, (op, cpu) is served by one test kernel (the reference's algorithm) that declines what
    `supports` rejects; the kernels registered before are restored after."""
    calls = []

    def fn(*args):
        calls.append(1)
        return reference.KERNELS[op](*args)

    registry.register_kernel(op, "cpu", fn, supports=supports, name=name, level="runs in CI")
    ks = registry._kernels[(op, "cpu")]
    saved = [k for k in ks if k.name != name]
    ks[:] = [k for k in ks if k.name == name]
    try:
        yield calls
    finally:
        ks[:] = saved
        registry._warned.discard((op, "cpu"))


def _args(blocksize, dtype=torch.bfloat16):
    return torch.randn(300, dtype=dtype), formats.table("dynamic").clone(), blocksize


def test_strict_is_off_by_default_and_api_switches():
    assert not registry.is_strict()  # BNB_CORE_STRICT is not set for the test suite
    with registry.strict():
        assert registry.is_strict()
        with registry.strict(False):
            assert not registry.is_strict()
        assert registry.is_strict()
    assert not registry.is_strict()
    registry.set_strict(True)
    try:
        assert registry.is_strict()
    finally:
        registry.set_strict(False)
    assert not registry.is_strict()
    with pytest.raises(ValueError, match="unknown op"):
        registry.set_strict(True, allow=["no_such_op"])
    assert not registry.is_strict()


def test_declined_route_raises_with_op_device_dtype_and_reason():
    with only_kernel(OP, only_blocksize_64) as calls:
        with registry.strict():
            q, absmax = torch.ops.bnb.quantize_blockwise(*_args(64))  # accepted: served, no error
            assert calls == [1]
            with pytest.raises(registry.ReferenceFallbackError) as info:
                torch.ops.bnb.quantize_blockwise(*_args(128))
        e = info.value
        assert isinstance(e, RuntimeError)
        assert (e.op, e.device, e.dtypes) == (OP, "cpu", (torch.bfloat16, torch.float32))
        msg = str(e)
        for part in ("quantize_blockwise on cpu", "bfloat16", "kernel strict-test-kernel declined these arguments",
                     "supports=only_blocksize_64: blocksize 64 only", "A=bfloat16[300]", "blocksize=128"):
            assert part in msg, (part, msg)
        # strict mode off again: the same call falls back (one warning) instead of raising
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            q2, a2 = torch.ops.bnb.quantize_blockwise(*_args(128))
        assert any("using the reference implementation" in str(x.message) for x in w)
        assert calls == [1]


def test_declined_route_with_every_kernel_unregistered():
    with only_kernel(OP, None):
        registry.unregister_kernel(OP, "cpu", "strict-test-kernel")
        with registry.strict(), pytest.raises(registry.ReferenceFallbackError, match="no native kernel for device 'cpu'"):
            torch.ops.bnb.quantize_blockwise(*_args(64))


def test_allow_list():
    with only_kernel(OP, only_blocksize_64):
        with registry.strict(allow=[OP]):
            torch.ops.bnb.quantize_blockwise(*_args(128))
        with registry.strict(allow=[(OP, "cpu")]):
            torch.ops.bnb.quantize_blockwise(*_args(128))
        with registry.strict(allow=[(OP, "cuda")]), pytest.raises(registry.ReferenceFallbackError):
            torch.ops.bnb.quantize_blockwise(*_args(128))


def test_meta_fake_and_compile_tracing_never_raise():
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(x, code):
        return torch.ops.bnb.quantize_blockwise(x, code, 128)[1] * 2

    with only_kernel(OP, only_blocksize_64), registry.strict():
        q, absmax = torch.ops.bnb.quantize_blockwise(torch.randn(300, device="meta"), formats.table("dynamic", "meta"),
                                                     128)
        assert absmax.shape == (3,) and absmax.device.type == "meta"
        mode = FakeTensorMode()
        fake = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in _args(128)]
        with mode:
            assert torch.ops.bnb.quantize_blockwise(*fake)[1].shape == (3,)
        make_fx(f, tracing_mode="fake")(torch.randn(300), formats.table("dynamic").clone())
        traced = []

        def backend(gm, example_inputs):
            traced.append(gm)
            return gm.forward

        torch._dynamo.reset()
        compiled = torch.compile(f, backend=backend, fullgraph=True)
        # tracing succeeds; the compiled code's real call then falls back, which strict mode reports
        with pytest.raises(registry.ReferenceFallbackError, match="quantize_blockwise on cpu"):
            compiled(torch.randn(300), formats.table("dynamic").clone())
        assert traced, "torch.compile did not trace"
        torch._dynamo.reset()


def test_cpu_conformance_under_strict_mode():
    """One case per op in process (the full suite runs under --strict on every ISA in test_backend_ops.py)."""
    if registry.backend_status.get("cpu"):
        if os.environ.get("BNB_CORE_REQUIRE_NATIVE_CPU") == "1":
            pytest.fail(f"native CPU backend not loaded: {registry.backend_status['cpu']}")
        pytest.skip(f"native CPU backend not built here: {registry.backend_status['cpu']}")
    picks = {}
    for case in conformance.all_cases():
        picks.setdefault(case.op, case)
    with registry.strict():
        results = [conformance.run_case(c, "cpu") for c in picks.values()]
    assert {r.case.op for r in results} == set(registry.table()["cpu"])
    bad = [(r.case.op, r.kernel, r.detail) for r in results if r.status != "pass" or r.kernel == registry.REFERENCE]
    assert not bad, bad


def _run(code, env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("BNB_CORE_STRICT", "BNB_CORE_FORCE_REFERENCE")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), timeout=300)


_NO_NATIVE = """
    import sys
    sys.modules["bnb_core._cpu"] = None  # as on a machine where the native CPU module is not built
    import torch, bnb_core
    from bnb_core import registry
    assert registry.backend_status["cpu"], registry.backend_status
    assert registry.kernels("quantize_4bit", "cpu") == []
    print("strict", registry.is_strict())
    A = torch.randn(100, dtype=torch.float16)
    try:
        torch.ops.bnb.quantize_4bit(A, 64, "nf4", torch.uint8)
        print("reference served")
    except registry.ReferenceFallbackError as e:
        print("raised:", e)
    torch.ops.bnb.quantize_4bit(torch.empty(100, device="meta"), 64, "nf4", torch.uint8)  # never raises
    with registry.strict(False):
        torch.ops.bnb.quantize_4bit(A, 64, "nf4", torch.uint8)
    print("ok")
"""


@pytest.mark.parametrize("env", ["unset", "BNB_CORE_STRICT=1", "BNB_CORE_STRICT=0", "strict+force-reference"])
def test_no_native_kernel_route_and_env_var(env):
    """A device with no native kernel: the call reaches the CompositeExplicitAutograd reference registration."""
    extra = {"unset": {}, "BNB_CORE_STRICT=1": {"BNB_CORE_STRICT": "1"}, "BNB_CORE_STRICT=0": {"BNB_CORE_STRICT": "0"},
             "strict+force-reference": {"BNB_CORE_STRICT": "1", "BNB_CORE_FORCE_REFERENCE": "1"}}[env]
    proc = _run(_NO_NATIVE, extra)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
    if env == "BNB_CORE_STRICT=1":
        assert "strict True" in proc.stdout
        for part in ("raised: bnb_core strict mode: quantize_4bit on cpu (float16)", "no native kernel for device 'cpu'",
                     "the built-in cpu backend did not load", "A=float16[100]", "quant_type='nf4'"):
            assert part in proc.stdout, (part, proc.stdout)
    else:  # off, or BNB_CORE_FORCE_REFERENCE asked for the reference
        assert "reference served" in proc.stdout, proc.stdout
        assert ("strict True" if env == "strict+force-reference" else "strict False") in proc.stdout


def test_env_var_declined_route():
    """BNB_CORE_STRICT=1 in a fresh process: the native CPU kernel declines a non-contiguous `out`."""
    proc = _run("""
        import torch, bnb_core
        from bnb_core import registry, formats
        assert registry.is_strict()
        A = torch.randint(0, 256, (10,), dtype=torch.uint8)
        code, absmax = formats.table("dynamic"), torch.ones(1)
        torch.ops.bnb.dequantize_blockwise.out(A, absmax, code, 64, torch.float32, torch.empty(10))  # native
        try:
            torch.ops.bnb.dequantize_blockwise.out(A, absmax, code, 64, torch.float32, torch.empty(10, 2)[:, 0])
        except registry.ReferenceFallbackError as e:
            print("raised:", e)
    """, {"BNB_CORE_STRICT": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "raised: bnb_core strict mode: dequantize_blockwise.out on cpu (uint8, float32)" in proc.stdout, proc.stdout
    if "no native kernel" not in proc.stdout:  # the native CPU backend is built: it is the one that declined
        assert "cpu-native declined these arguments" in proc.stdout and "out=float32[10] (non-contiguous)" in proc.stdout
