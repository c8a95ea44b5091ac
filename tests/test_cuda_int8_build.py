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


# ------------------------------------------------------------------------------------------------------
# The Python glue on CPU tensors with a stand-in native module: the pointer plumbing (outlier count at
# cols[K], workspace sizes, split-K workspace, torch._int_mm selection, the mixed outlier part) is checked
# without a GPU. The stand-in writes through the pointers it gets, as the kernels would.

import ctypes  # noqa: E402


class _FakeMod:
    PLATFORM = "cuda"

    def __init__(self, splits=1):
        self.calls = []
        self.splits = splits

    @staticmethod
    def int8_outlier_workspace_bytes(K):
        return (K + 15) // 16 * 16 + 16

    def int8_vectorwise_quant(self, d, stream, dtype, A, M, K, thr, out, stats, ws, cols, ncols):
        self.calls.append(("quant", dict(K=K, ws=ws, cols=cols, ncols=ncols, thr=thr)))
        if thr > 0:
            found = (ctypes.c_int64 * 2)(3, K - 1)
            ctypes.memmove(cols, found, 16)
            ctypes.memmove(ncols, ctypes.byref(ctypes.c_int64(2)), 8)
        return 0

    def int8_gemm_splits(self, d, M, N, K):
        return self.splits

    def int8_scaled_mm(self, d, stream, A, B, M, N, K, row, col, bdt, bias, odt, out, ws):
        self.calls.append(("scaled_mm", dict(M=M, N=N, K=K, ws=ws, bias_dtype=bdt, out_dtype=odt)))
        ctypes.memset(out, 0, M * N * (4 if odt == 0 else 2))
        return 0

    def int8_linear_matmul(self, d, stream, A, B, M, N, K, C):
        self.calls.append(("linear_matmul", dict(M=M, N=N, K=K)))
        return 0

    def int8_outlier_operands(self, d, stream, adt, A, CB, SCB, M, N, K, cols, n, sub_a, sub_b):
        self.calls.append(("outlier_operands", dict(M=M, N=N, K=K, n=n)))
        a = (ctypes.c_float * (M * n))(*[1.0 + i for i in range(M * n)])
        b = (ctypes.c_float * (N * n))(*[0.5 * (i % 3) for i in range(N * n)])
        ctypes.memmove(sub_a, a, 4 * M * n)
        ctypes.memmove(sub_b, b, 4 * N * n)
        return 0


@pytest.fixture
def fake(monkeypatch):
    f = _FakeMod()
    monkeypatch.setattr(cuda_backend, "_mod", f)
    monkeypatch.setattr(cuda_backend, "_raw_stream", lambda d: 0)
    monkeypatch.setattr(cuda_backend, "_dev", lambda t: 0)
    monkeypatch.setattr(cuda_backend, "_splits_cache", {})
    return f


def test_glue_quant_reads_the_outlier_count(fake):
    A = torch.randn(5, 40)
    out, stats, cols = cuda_backend.int8_vectorwise_quant(A, 6.0)
    assert cols.tolist() == [3, 39] and cols.dtype == torch.int64
    _, kw = fake.calls[-1]
    assert kw["ncols"] == kw["cols"] + 8 * 40 and kw["ws"] != 0
    out, stats, cols = cuda_backend.int8_vectorwise_quant(A, 0.0)
    assert cols is None and fake.calls[-1][1]["ws"] == 0 and fake.calls[-1][1]["ncols"] == 0
    assert out.shape == A.shape and out.dtype == torch.int8 and stats.shape == (5,)


@pytest.mark.parametrize("splits", [1, 3])
def test_glue_scaled_mm_workspace_only_when_split(fake, splits):
    fake.splits = splits
    CA = torch.zeros(2, 3, 32, dtype=torch.int8)
    CB = torch.zeros(24, 32, dtype=torch.int8)
    out = cuda_backend.int8_scaled_mm(CA, CB, torch.ones(6), torch.ones(24), None, torch.bfloat16)
    assert out.shape == (2, 3, 24) and out.dtype == torch.bfloat16
    kw = fake.calls[-1][1]
    assert (kw["ws"] != 0) == (splits > 1)
    assert kw["bias_dtype"] == -1 and kw["out_dtype"] == 2 and (kw["M"], kw["N"], kw["K"]) == (6, 24, 32)


def test_glue_int8_mm_selection(fake, monkeypatch):
    seen = []

    def int_mm(a, b, out=None):
        seen.append((tuple(a.shape), tuple(b.shape), b.stride()))
        return out if out is not None else torch.zeros(a.shape[0], b.shape[1], dtype=torch.int32)

    monkeypatch.setattr(torch, "_int_mm", int_mm)
    prev = cuda_backend.set_int8_mm("torch")
    try:
        B = torch.zeros(16, 32, dtype=torch.int8)
        cuda_backend.int8_linear_matmul(torch.zeros(32, 32, dtype=torch.int8), B)
        assert seen[-1] == ((32, 32), (32, 16), (1, 32))  # B.t(): a column-major view, no copy
        cuda_backend.int8_linear_matmul(torch.zeros(8, 32, dtype=torch.int8), B)  # M <= 16: own kernel
        assert fake.calls[-1][0] == "linear_matmul" and len(seen) == 1
        cuda_backend.set_int8_mm("own")
        cuda_backend.int8_linear_matmul(torch.zeros(32, 32, dtype=torch.int8), B)
        assert len(seen) == 1
    finally:
        cuda_backend.set_int8_mm(prev)


def test_glue_mixed_adds_the_outlier_product(fake):
    M, N, K = 3, 5, 16
    A = torch.randn(M, K)
    CA = torch.zeros(M, K, dtype=torch.int8)
    CB = torch.zeros(N, K, dtype=torch.int8)
    cols = torch.tensor([2, 9], dtype=torch.int32)
    out, sub_a = cuda_backend.int8_mixed_scaled_mm(A, CA, CB, torch.ones(M), torch.ones(N), cols, None)
    sa = torch.arange(1.0, 1.0 + M * 2).reshape(M, 2)
    sb = torch.tensor([0.5 * (i % 3) for i in range(N * 2)]).reshape(N, 2)
    assert torch.equal(sub_a, sa)
    assert torch.allclose(out, sa @ sb.T)  # the fused int8 part (zeros here) + the outlier product
    assert [c[0] for c in fake.calls[-2:]] == ["scaled_mm", "outlier_operands"]
    out, sub_a = cuda_backend.int8_mixed_scaled_mm(A, CA, CB, torch.ones(M), torch.ones(N),
                                                   torch.empty(0, dtype=torch.int64), None)
    assert sub_a.shape == (M, 0) and fake.calls[-1][0] == "scaled_mm"
