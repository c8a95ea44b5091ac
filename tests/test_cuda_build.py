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
from _cuda_status_cases import P, QUANT_BAD_ARGS

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


@pytest.mark.parametrize(
    "call, status",
    [
        *QUANT_BAD_ARGS,
        # optimizer_update_32bit(device, stream, name, dtype, g, p, n, s1, s2, unorm, max_unorm, param_norm,
        #   b1, b2, b3, alpha, eps, wd, step, lr, gnorm_scale, skip_zeros, workspace, workspace_len)
        (lambda m: m.optimizer_update_32bit(0, 0, 8, 0, P, P, 100, P, P, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 0), 20),  # optimizer name
        (lambda m: m.optimizer_update_32bit(0, 0, 0, 3, P, P, 100, P, P, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 0), 2),  # dtype
        (lambda m: m.optimizer_update_32bit(0, 0, 0, 0, P, P, -1, P, P, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 0), 4),  # negative size
        (lambda m: m.optimizer_update_32bit(0, 0, 0, 0, P, P, 100, P, P, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 0, 1e-3,
                                            1.0, False, 0, 0), 4),  # step 0
        (lambda m: m.optimizer_update_32bit(-1, 0, 0, 0, P, P, 100, P, P, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 0), 7),  # device
        (lambda m: m.optimizer_update_32bit(0, 0, 0, 0, P, P, 100, P, 0, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 0), 1),  # adam without state2
        (lambda m: m.optimizer_update_32bit(0, 0, 5, 0, P, P, 100, P, P, 0, 1.0, 1.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, P, 1), 1),  # max_unorm > 0 without unorm_vec
        (lambda m: m.optimizer_update_32bit(0, 0, 5, 0, P, P, 100, P, P, P, 1.0, 1.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3,
                                            1.0, False, 0, 1), 1),  # ... without workspace
        (lambda m: m.optimizer_update_32bit(0, 0, 5, 0, P, P, 10**6, P, P, P, 1.0, 1.0, .9, .99, 0, 0, 1e-8, 0, 1,
                                            1e-3, 1.0, False, P, 1), 6),  # workspace too small (needs 977)
        # optimizer_update_8bit_blockwise(device, stream, name, dtype, g, p, n, s1, s2, b1, b2, b3, alpha, eps,
        #   step, lr, qmap1, qmap2, absmax1, absmax2, wd, gnorm_scale, skip_zeros)
        (lambda m: m.optimizer_update_8bit_blockwise(0, 0, -1, 0, P, P, 100, P, P, .9, .99, 0, 0, 1e-8, 1, 1e-3, P, P,
                                                     P, P, 0, 1.0, False), 20),  # optimizer name
        (lambda m: m.optimizer_update_8bit_blockwise(0, 0, 0, 7, P, P, 100, P, P, .9, .99, 0, 0, 1e-8, 1, 1e-3, P, P,
                                                     P, P, 0, 1.0, False), 2),  # dtype
        (lambda m: m.optimizer_update_8bit_blockwise(0, 0, 0, 0, P, P, 100, P, P, .9, .99, 0, 0, 1e-8, 0, 1e-3, P, P,
                                                     P, P, 0, 1.0, False), 4),  # step 0
        (lambda m: m.optimizer_update_8bit_blockwise(0, 0, 7, 0, P, P, 100, P, P, .9, .99, 0, 0, 1e-8, 1, 1e-3, P, 0,
                                                     P, P, 0, 1.0, False), 1),  # ademamix without qmap2
        (lambda m: m.optimizer_update_8bit_blockwise(0, 0, 1, 0, P, P, 100, P, 0, .9, .99, 0, 0, 1e-8, 1, 1e-3, 0, 0,
                                                     P, 0, 0, 1.0, False), 1),  # momentum without qmap1
        (lambda m: m.optimizer_update_8bit_blockwise(-3, 0, 1, 0, P, P, 100, P, 0, .9, .99, 0, 0, 1e-8, 1, 1e-3, P, 0,
                                                     P, 0, 0, 1.0, False), 7),  # device
        # managed memory (paged optimizers)
        (lambda m: m.managed_alloc(0, 0)[0], 4),                   # zero bytes
        (lambda m: m.managed_alloc(-1, 4096)[0], 7),               # device
        (lambda m: m.mem_get_info(-1)[0], 7),
        (lambda m: m.managed_caps(-2)[0], 7),
        (lambda m: m.managed_prefetch(0, 4096, 0, 0, 0), 1),       # null pointer
        (lambda m: m.managed_prefetch(P, 4096, -2, 0, 0), 7),      # location
        (lambda m: m.managed_advise_preferred(P, 4096, -3), 7),
    ],
)
def test_bad_arguments_return_status(mod, call, status):
    s = call(mod)
    assert s == status, mod.error_message(s)
    assert mod.error_message(s).startswith("bnb_core._cuda")


def test_empty_input_is_a_no_op(mod):
    assert mod.quantize_4bit(0, 0, 2, 0, 0, 64, 0, 0, 0, 0) == 0
    assert mod.dequantize_blockwise(0, 0, 0, 0, 0, 0, 0, 256, 0) == 0
    assert mod.optimizer_update_8bit_blockwise(0, 0, 0, 0, 0, 0, 0, 0, 0, .9, .99, 0, 0, 1e-8, 1, 1e-3, 0, 0, 0, 0, 0,
                                               1.0, False) == 0
    assert mod.optimizer_update_32bit(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3, 1.0,
                                      False, 0, 0) == 0
    assert mod.managed_prefetch(P, 0, 0, 0, 0) == 0
    assert mod.optimizer_32bit_workspace_len(0) == 0


def test_optimizer_workspace_len(mod):
    """One fp64 partial per CTA of 256 threads x 4 elements, at most 1024 (independent of the device)."""
    assert mod.optimizer_32bit_workspace_len(1) == 1
    assert mod.optimizer_32bit_workspace_len(1024) == 1
    assert mod.optimizer_32bit_workspace_len(1025) == 2
    assert mod.optimizer_32bit_workspace_len(1 << 40) == 1024


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_launch_without_gpu_reports_cuda_error(mod):
    s = mod.dequantize_4bit(0, 0, 2, P, 100, P, 64, 0, P)
    assert s == 100
    msg = mod.error_message(s)
    assert "CUDA error" in msg and "cuda" in msg.lower()
    assert mod.last_cuda_error() != 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
@pytest.mark.parametrize("call", [
    lambda m: m.optimizer_update_8bit_blockwise(0, 0, 0, 2, P, P, 1000, P, P, .9, .99, 0, 0, 1e-8, 1, 1e-3, P, P, P, P,
                                                0, 1.0, False),
    lambda m: m.optimizer_update_32bit(0, 0, 5, 0, P, P, 1000, P, P, P, 1.0, 1.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3, 1.0,
                                       False, P, 1),
    lambda m: m.optimizer_update_32bit(0, 0, 5, 0, 0, 0, 0, 0, 0, P, 1.0, 1.0, .9, .99, 0, 0, 1e-8, 0, 1, 1e-3, 1.0,
                                       False, 0, 0),  # empty with a norm: writes unorm_vec = 0 on the device
    lambda m: m.managed_alloc(0, 4096)[0],
    lambda m: m.mem_get_info(0)[0],
    lambda m: m.managed_caps(0)[0],
    lambda m: m.managed_prefetch(P, 4096, 0, 0, 0),
])
def test_optimizer_and_paging_without_gpu_report_cuda_error(mod, call):
    s = call(mod)
    assert s == 100, mod.error_message(s)
    assert "CUDA error" in mod.error_message(s)
