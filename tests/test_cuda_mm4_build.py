"""The CUDA fused 4-bit matmul entry points without a GPU: argument validation statuses (before any device
call), a clean CUDA-error status when the launch cannot happen, the Python glue's registration and
supports() predicates. The kernels themselves run in tests/test_cuda_mm4_emu.py (emulated) and, on a GPU,
in the conformance suite.
"""

import os

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core.backends import cuda as cuda_backend

REQUIRE = os.environ.get("BNB_CORE_REQUIRE_CUDA_BUILD") == "1"
P = 1 << 20  # a non-null fake pointer: validation must reject bad arguments before touching memory
NK = 4096 * 64


@pytest.fixture(scope="module")
def mod():
    if cuda_backend._mod is None:
        if REQUIRE:
            pytest.fail(f"{cuda_backend.IMPORT_ERROR} (BNB_CORE_REQUIRE_CUDA_BUILD=1)")
        pytest.skip(cuda_backend.IMPORT_ERROR)
    return cuda_backend._mod


def call(m, device=0, dtype=1, A=P, M=4, K=64, B=P, b_nbytes=NK // 2, N=4096, absmax=P, blocksize=64, code=0,
         quant_type=0, a8=0, acode=0, aoff=0, bias=0, out=P, ws=0, ws_floats=0):
    return m.gemm_4bit(device, 0, dtype, A, M, K, B, b_nbytes, N, absmax, blocksize, code, quant_type, a8, acode,
                       aoff, bias, out, ws, ws_floats)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        (dict(dtype=3), 2),                  # dtype code
        (dict(dtype=-1), 2),
        (dict(blocksize=48), 5),             # not a power of two
        (dict(blocksize=16), 5),             # below 32
        (dict(blocksize=8192), 5),           # above 4096
        (dict(quant_type=2), 3),
        (dict(M=-1), 4),                     # negative sizes
        (dict(K=-1), 4),
        (dict(N=-1), 4),
        (dict(ws_floats=-1), 4),
        (dict(b_nbytes=NK // 2 - 1), 4),     # packed weight too small
        (dict(N=1 << 62, K=64, b_nbytes=1 << 62), 4),  # N * K overflows
        (dict(out=0), 1),                    # null pointers
        (dict(A=0), 1),
        (dict(B=0), 1),
        (dict(absmax=0), 1),
        (dict(a8=P), 1),                     # nested absmax without its code / offset
        (dict(a8=P, acode=P), 1),
        (dict(ws_floats=100), 1),            # workspace size without a workspace
        (dict(device=-1), 7),
    ],
)
def test_bad_arguments_return_status(mod, kwargs, status):
    s = call(mod, **kwargs)
    assert s == status, mod.error_message(s)
    assert mod.error_message(s).startswith("bnb_core._cuda")


def test_empty_output_is_a_no_op(mod):
    # nothing to write: no device is touched (this machine has none)
    assert call(mod, M=0, A=0, out=0) == 0
    assert call(mod, N=0, B=0, absmax=0, out=0) == 0


def test_splits_query_validates(mod):
    assert mod.gemm_4bit_splits(-1, 1, 1, 64, 64)[0] == 7
    assert mod.gemm_4bit_splits(0, 5, 1, 64, 64)[0] == 2
    assert mod.gemm_4bit_splits(0, 1, -1, 64, 64)[0] == 4
    assert mod.gemm_4bit_splits(0, 1, 0, 64, 64) == (0, 1)  # nothing to plan: no device query


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_launch_without_gpu_reports_cuda_error(mod):
    for kwargs in (dict(), dict(M=1), dict(M=64, dtype=2), dict(dtype=0, K=0, bias=P),
                   dict(a8=P, acode=P, aoff=P, code=P)):
        s = call(mod, **kwargs)
        assert s == 100, (kwargs, mod.error_message(s))
        msg = mod.error_message(s)
        assert "CUDA error" in msg and "cuda" in msg.lower()
    status, splits = mod.gemm_4bit_splits(0, 1, 1, 64, 8192)
    assert status == 100 and splits == 1


def test_registered_matmul_ops():
    for op in ("gemv_4bit", "gemv_4bit.out", "gemm_4bit"):
        assert op in cuda_backend.KERNELS
        assert cuda_backend.SUPPORT[op] == "compiles"
    # gemv_4bit.out writes only into a contiguous out (else the registry falls back to the reference)
    _, supports = cuda_backend.KERNELS["gemv_4bit.out"]
    A = torch.zeros(2, 64)
    args = (A, torch.zeros(2048, 1, dtype=torch.uint8), [64, 64], torch.zeros(64), torch.zeros(16), 64)
    assert supports(*args, torch.zeros(2, 64))
    assert not supports(*args, torch.zeros(64, 2).t())
    assert cuda_backend.KERNELS["gemv_4bit"][1] is None and cuda_backend.KERNELS["gemm_4bit"][1] is None
