"""The CUDA backend without a GPU: the module built by nvcc imports, its entry points validate their
arguments and report errors as statuses (never a crash), and the Python backend declares what it
registers. On a machine with a GPU the conformance suite (tests/test_backend_ops.py) runs the kernels.

CI (scripts/test.sh) sets BNB_CORE_REQUIRE_CUDA_BUILD=1 when nvcc is installed: the module must then exist.
"""

import os

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core._ops import OPS
from bnb_core.backends import cuda as cuda_backend

REQUIRE = os.environ.get("BNB_CORE_REQUIRE_CUDA_BUILD") == "1"


@pytest.fixture(scope="module")
def mod():
    if cuda_backend._mod is None:
        if REQUIRE:
            pytest.fail(f"{cuda_backend.IMPORT_ERROR} (BNB_CORE_REQUIRE_CUDA_BUILD=1)")
        pytest.skip(cuda_backend.IMPORT_ERROR)
    return cuda_backend._mod


def test_module_identity(mod):
    assert mod.PLATFORM in ("cuda", "hip")
    assert mod.ARCHS and mod.ARCHS != "unknown"
    assert mod.runtime_version() > 0


def test_support_declares_only_registered_ops():
    assert set(cuda_backend.SUPPORT) == set(cuda_backend.KERNELS)
    for op, level in cuda_backend.SUPPORT.items():
        assert op in OPS, op
        assert level in bnb_core.registry.LEVELS


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_not_loaded_without_device(mod):
    why = bnb_core.registry.backend_status.get("cuda")
    assert why and "no CUDA device" in why
    assert cuda_backend.load() == why
    assert "cuda" not in bnb_core.registry.table()


P = 1 << 20  # a non-null fake pointer: validation must reject bad arguments before touching memory


@pytest.mark.parametrize(
    "call, status",
    [
        (lambda m: m.quantize_4bit(0, 0, 3, P, 100, 64, 0, P, 50, P), 2),     # dtype
        (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 48, 0, P, 50, P), 5),     # blocksize not a power of two
        (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 8192, 0, P, 50, P), 5),   # blocksize above 4096
        (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 64, 2, P, 50, P), 3),     # quant_type
        (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 64, 0, P, 49, P), 6),     # packed output too small
        (lambda m: m.quantize_4bit(0, 0, 2, 0, 100, 64, 0, P, 50, P), 1),     # null input
        (lambda m: m.quantize_4bit(-1, 0, 2, P, 100, 64, 0, P, 50, P), 7),    # device
        (lambda m: m.dequantize_4bit(0, 0, 0, P, -5, P, 64, 0, P), 4),        # negative size
        (lambda m: m.quantize_blockwise(0, 0, 0, P, 100, P, 8, P, P), 5),     # 8-bit blocksize below 16
        (lambda m: m.dequantize_blockwise(0, 0, 1, P, 100, P, P, 256, 0), 1),  # null output
    ],
)
def test_bad_arguments_return_status(mod, call, status):
    s = call(mod)
    assert s == status, mod.error_message(s)
    assert mod.error_message(s).startswith("bnb_core._cuda")


def test_empty_input_is_a_no_op(mod):
    assert mod.quantize_4bit(0, 0, 2, 0, 0, 64, 0, 0, 0, 0) == 0
    assert mod.dequantize_blockwise(0, 0, 0, 0, 0, 0, 0, 256, 0) == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_launch_without_gpu_reports_cuda_error(mod):
    s = mod.dequantize_4bit(0, 0, 2, P, 100, P, 64, 0, P)
    assert s == 100
    msg = mod.error_message(s)
    assert "CUDA error" in msg and "cuda" in msg.lower()
    assert mod.last_cuda_error() != 0
