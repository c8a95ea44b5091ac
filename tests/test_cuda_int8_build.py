"""The LLM.int8() family of the CUDA backend without a GPU: argument validation returns statuses before the
device is touched, empty problems are no-ops, a launch without a GPU reports a clean CUDA-error status, and
the Python side declares and selects what it should. The kernels themselves run in the conformance suite on
a machine with a GPU (tests/test_backend_ops.py, `python -m bnb_core check --device cuda`).
"""

import os
import subprocess
import sys

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core.backends import cuda as cuda_backend

REQUIRE = os.environ.get("BNB_CORE_REQUIRE_CUDA_BUILD") == "1"
P = 1 << 20  # a non-null, 16-byte aligned fake pointer: validation must reject bad arguments before using it
OK, NULL, DTYPE, SIZE, DEVICE, CUDA_ERR = 0, 1, 2, 4, 7, 100

INT8_OPS = ("int8_vectorwise_quant", "int8_vectorwise_dequant", "int8_double_quant", "int8_linear_matmul",
            "int8_linear_matmul.out", "int8_mm_dequant", "int8_scaled_mm", "int8_mixed_scaled_mm")


@pytest.fixture(scope="module")
def mod():
    if cuda_backend._mod is None:
        if REQUIRE:
            pytest.fail(f"{cuda_backend.IMPORT_ERROR} (BNB_CORE_REQUIRE_CUDA_BUILD=1)")
        pytest.skip(cuda_backend.IMPORT_ERROR)
    return cuda_backend._mod


def test_int8_ops_declared():
    for op in INT8_OPS:
        assert op in cuda_backend.KERNELS, op
        assert cuda_backend.SUPPORT[op] == "compiles"


def test_outlier_workspace_size(mod):
    assert mod.int8_outlier_workspace_bytes(0) == 16
    assert mod.int8_outlier_workspace_bytes(1) == 32
    assert mod.int8_outlier_workspace_bytes(16) == 32
    assert mod.int8_outlier_workspace_bytes(8193) == 8208 + 16


# (device, stream, ...) argument lists; P stands for any valid pointer
QUANT = dict(device=0, stream=0, dtype=1, A_ptr=P, M=4, K=64, threshold=6.0, out_ptr=P, stats_ptr=P,
             workspace_ptr=P, cols_ptr=P, ncols_ptr=P)
DQUANT = dict(device=0, stream=0, dtype=1, A_ptr=P, M=4, K=64, threshold=6.0, out_row_ptr=P, out_col_ptr=P,
              row_stats_ptr=P, col_stats_ptr=P, workspace_ptr=P, cols_ptr=P, ncols_ptr=P)
DEQ = dict(device=0, stream=0, A_ptr=P, M=4, K=64, stats_ptr=P, out_ptr=P)
MM = dict(device=0, stream=0, A_ptr=P, B_ptr=P, M=4, N=8, K=64, C_ptr=P)
MMDQ = dict(device=0, stream=0, acc_ptr=P, M=4, N=8, row_stats_ptr=P, col_stats_ptr=P, bias_dtype=1, bias_ptr=P,
            out_dtype=1, out_ptr=P)
SMM = dict(device=0, stream=0, A_ptr=P, B_ptr=P, M=4, N=8, K=64, row_stats_ptr=P, col_stats_ptr=P, bias_dtype=-1,
           bias_ptr=0, out_dtype=2, out_ptr=P, workspace_ptr=0)
OUTL = dict(device=0, stream=0, a_dtype=1, A_ptr=P, CB_ptr=P, SCB_ptr=P, M=4, N=8, K=64, cols_ptr=P, n_cols=3,
            sub_a_ptr=P, sub_b_ptr=P)

BAD = [
    ("int8_vectorwise_quant", QUANT, dict(device=-1), DEVICE),
    ("int8_vectorwise_quant", QUANT, dict(dtype=3), DTYPE),
    ("int8_vectorwise_quant", QUANT, dict(M=-1), SIZE),
    ("int8_vectorwise_quant", QUANT, dict(K=-2), SIZE),
    ("int8_vectorwise_quant", QUANT, dict(threshold=-1.0), SIZE),
    ("int8_vectorwise_quant", QUANT, dict(threshold=float("nan")), SIZE),
    ("int8_vectorwise_quant", QUANT, dict(threshold=float("inf")), SIZE),
    ("int8_vectorwise_quant", QUANT, dict(A_ptr=0), NULL),
    ("int8_vectorwise_quant", QUANT, dict(out_ptr=0), NULL),
    ("int8_vectorwise_quant", QUANT, dict(stats_ptr=0), NULL),
    ("int8_vectorwise_quant", QUANT, dict(workspace_ptr=0), NULL),  # needed when threshold > 0
    ("int8_vectorwise_quant", QUANT, dict(cols_ptr=0), NULL),
    ("int8_vectorwise_quant", QUANT, dict(ncols_ptr=0), NULL),
    ("int8_vectorwise_quant", QUANT, dict(ncols_ptr=0, M=0), NULL),  # the count is written even for no rows
    ("int8_double_quant", DQUANT, dict(dtype=-1), DTYPE),
    ("int8_double_quant", DQUANT, dict(out_col_ptr=0), NULL),
    ("int8_double_quant", DQUANT, dict(col_stats_ptr=0), NULL),
    ("int8_double_quant", DQUANT, dict(col_stats_ptr=0, M=0), NULL),  # K column stats (zeros) still written
    ("int8_double_quant", DQUANT, dict(row_stats_ptr=0), NULL),
    ("int8_double_quant", DQUANT, dict(M=-3), SIZE),
    ("int8_vectorwise_dequant", DEQ, dict(device=-2), DEVICE),
    ("int8_vectorwise_dequant", DEQ, dict(K=-1), SIZE),
    ("int8_vectorwise_dequant", DEQ, dict(stats_ptr=0), NULL),
    ("int8_linear_matmul", MM, dict(device=-1), DEVICE),
    ("int8_linear_matmul", MM, dict(N=-1), SIZE),
    ("int8_linear_matmul", MM, dict(K=-1), SIZE),
    ("int8_linear_matmul", MM, dict(C_ptr=0), NULL),
    ("int8_linear_matmul", MM, dict(B_ptr=0), NULL),
    ("int8_mm_dequant", MMDQ, dict(out_dtype=5), DTYPE),
    ("int8_mm_dequant", MMDQ, dict(bias_dtype=3), DTYPE),
    ("int8_mm_dequant", MMDQ, dict(bias_dtype=-2), DTYPE),
    ("int8_mm_dequant", MMDQ, dict(bias_ptr=0), NULL),  # bias_dtype >= 0 needs a bias
    ("int8_mm_dequant", MMDQ, dict(col_stats_ptr=0), NULL),
    ("int8_mm_dequant", MMDQ, dict(M=-1), SIZE),
    ("int8_scaled_mm", SMM, dict(out_dtype=-1), DTYPE),
    ("int8_scaled_mm", SMM, dict(row_stats_ptr=0), NULL),
    ("int8_scaled_mm", SMM, dict(bias_dtype=0), NULL),
    ("int8_scaled_mm", SMM, dict(A_ptr=0), NULL),
    ("int8_scaled_mm", SMM, dict(K=-1), SIZE),
    ("int8_scaled_mm", SMM, dict(device=-1), DEVICE),
    ("int8_outlier_operands", OUTL, dict(a_dtype=7), DTYPE),
    ("int8_outlier_operands", OUTL, dict(n_cols=-1), SIZE),
    ("int8_outlier_operands", OUTL, dict(cols_ptr=0), NULL),
    ("int8_outlier_operands", OUTL, dict(sub_b_ptr=0), NULL),
    ("int8_outlier_operands", OUTL, dict(CB_ptr=0), NULL),
]


@pytest.mark.parametrize("fn, base, change, status", BAD, ids=[f"{b[0]}-{'-'.join(b[2])}" for b in BAD])
def test_bad_arguments_return_status(mod, fn, base, change, status):
    s = getattr(mod, fn)(**{**base, **change})
    assert s == status, mod.error_message(s)
    assert mod.error_message(s).startswith("bnb_core._cuda")


EMPTY = [
    ("int8_vectorwise_quant", QUANT, dict(M=0, threshold=0.0, A_ptr=0, out_ptr=0, stats_ptr=0, workspace_ptr=0,
                                          cols_ptr=0, ncols_ptr=0)),
    ("int8_vectorwise_dequant", DEQ, dict(M=0, A_ptr=0, stats_ptr=0, out_ptr=0)),
    ("int8_vectorwise_dequant", DEQ, dict(K=0, A_ptr=0, stats_ptr=0, out_ptr=0)),
    ("int8_linear_matmul", MM, dict(M=0, A_ptr=0, B_ptr=0, C_ptr=0)),
    ("int8_linear_matmul", MM, dict(N=0, A_ptr=0, B_ptr=0, C_ptr=0)),
    ("int8_mm_dequant", MMDQ, dict(N=0, acc_ptr=0, row_stats_ptr=0, col_stats_ptr=0, bias_ptr=0, out_ptr=0)),
    ("int8_scaled_mm", SMM, dict(M=0, A_ptr=0, B_ptr=0, row_stats_ptr=0, col_stats_ptr=0, out_ptr=0)),
    ("int8_outlier_operands", OUTL, dict(n_cols=0, A_ptr=0, CB_ptr=0, SCB_ptr=0, cols_ptr=0, sub_a_ptr=0,
                                         sub_b_ptr=0)),
]


@pytest.mark.parametrize("fn, base, change", EMPTY, ids=[f"{e[0]}-{'-'.join(e[2])[:20]}" for e in EMPTY])
def test_empty_problem_is_a_no_op(mod, fn, base, change):
    assert getattr(mod, fn)(**{**base, **change}) == OK


LAUNCH = [
    ("int8_vectorwise_quant", QUANT, {}),
    ("int8_vectorwise_quant", QUANT, dict(threshold=0.0, workspace_ptr=0, cols_ptr=0, ncols_ptr=0)),
    ("int8_double_quant", DQUANT, {}),
    ("int8_vectorwise_dequant", DEQ, {}),
    ("int8_linear_matmul", MM, {}),
    ("int8_linear_matmul", MM, dict(K=0, A_ptr=0, B_ptr=0)),  # K == 0 still writes zeros
    ("int8_mm_dequant", MMDQ, {}),
    ("int8_scaled_mm", SMM, {}),
    ("int8_outlier_operands", OUTL, {}),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
@pytest.mark.parametrize("fn, base, change", LAUNCH, ids=[f"{e[0]}-{len(e[2])}" for e in LAUNCH])
def test_launch_without_gpu_reports_cuda_error(mod, fn, base, change):
    s = getattr(mod, fn)(**{**base, **change})
    assert s == CUDA_ERR
    msg = mod.error_message(s)
    assert "CUDA error" in msg and "cuda" in msg.lower()
    assert mod.last_cuda_error() != 0


def test_gemm_plan_queries_without_gpu(mod):
    # no device: no SM count, so no split; the configuration query names the portable path
    assert mod.int8_gemm_splits(0, 1, 8192, 8192) >= 1
    assert mod.int8_gemm_splits(-1, 1, 8192, 8192) == 1
    assert mod.int8_gemm_config_name(-1, 1, 8, 8) == "invalid"
    name = mod.int8_gemm_config_name(0, 1, 8192, 8192)
    assert name.split("+")[0] in ("tc-s", "tc-m", "tc-l", "simt")
    if not torch.cuda.is_available():
        assert name == "simt"


def test_int8_mm_mode_selection():
    prev = cuda_backend.set_int8_mm("own")
    try:
        assert not cuda_backend._use_torch_int_mm(2048, 8192, 8192)
        cuda_backend.set_int8_mm("torch")
        assert cuda_backend._use_torch_int_mm(17, 8, 16)
        assert not cuda_backend._use_torch_int_mm(16, 8, 16)  # torch._int_mm needs M > 16
        assert not cuda_backend._use_torch_int_mm(64, 12, 16)  # ... and N, K multiples of 8
        assert not cuda_backend._use_torch_int_mm(64, 16, 20)
        cuda_backend.set_int8_mm("auto")
        assert not cuda_backend._use_torch_int_mm(64, 8192, 8192)  # memory-bound: own kernels
        assert cuda_backend._use_torch_int_mm(2048, 8192, 8192)
        with pytest.raises(ValueError, match="mode must be one of"):
            cuda_backend.set_int8_mm("cublas")
    finally:
        cuda_backend.set_int8_mm(prev)


def test_int8_mm_env_var_is_read_at_import():
    code = "from bnb_core.backends import cuda; print(cuda._INT8_MM)"
    env = {**os.environ, "BNB_CUDA_INT8_MM": "torch"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "torch"
    env["BNB_CUDA_INT8_MM"] = "bogus"
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "auto" and "BNB_CUDA_INT8_MM" in out.stderr
