"""The CUDA fused 4-bit matmul kernels, run without a GPU in a SIMT emulator.

backends/cuda/mm4_impl.cuh (argument validation, plan, every kernel and its launch) is compiled with the host
C++ compiler against tests/cuda_emu/cuda_emu.h, which runs CUDA threads as fibers with __syncthreads, warp
shuffles, mma.sync m16n8k16 (PTX fragment layouts) and cp.async (completing at the latest or at the earliest
moment the hardware may) emulated, and global loads/stores checked against the tensors' bounds. The outputs
are held to the conformance bound (bnb_core.conformance._matmul_bound), and each case asserts which kernel
the plan took, so every path (gemv, mma for each batch tile, SIMT, split-K, K == 0) is exercised.

The emulator also counts the shared-memory wavefronts of the kernels' hot-loop loads under the 32-bank model
(test_hot_loops_free_of_bank_conflicts). What this does not show: the real PTX of the asm statements (their
operand order follows the PTX ISA and cuda_fp16.hpp), timing, occupancy. On a GPU, `python -m bnb_core check --device cuda` runs
the same shapes through the real kernels.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest
import torch

from bnb_core import formats, reference
from bnb_core.conformance import _EPS, _matmul_bound, _within

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [
    os.path.join(ROOT, "tests", "cuda_emu", "emu_mm4.cpp"),
    os.path.join(ROOT, "tests", "cuda_emu", "cuda_emu.h"),
    os.path.join(ROOT, "backends", "cuda", "mm4_impl.cuh"),
    os.path.join(ROOT, "backends", "common", "bnb_quant_math.h"),
    os.path.join(ROOT, "backends", "common", "bnb_formats.h"),
]
KINDS = {0: "gemv", 1: "mma", 2: "simt", 3: "fill"}
DT = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


@pytest.fixture(scope="module")
def emu():
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no host C++ compiler")
    h = hashlib.sha256()
    for path in SOURCES:
        with open(path, "rb") as f:
            h.update(f.read())
    out_dir = os.path.join(tempfile.gettempdir(), f"bnb_cuda_emu_{h.hexdigest()[:16]}")
    lib = os.path.join(out_dir, "libemu_mm4.so")
    if not os.path.exists(lib):
        os.makedirs(out_dir, exist_ok=True)
        tmp = lib + f".{os.getpid()}.tmp"
        cmd = [cxx, "-std=c++17", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wno-unknown-pragmas",
               "-DBNB_MM4_EMU", "-I" + os.path.join(ROOT, "backends", "cuda"),
               "-I" + os.path.join(ROOT, "backends", "common"), "-I" + os.path.join(ROOT, "tests", "cuda_emu"),
               SOURCES[0], "-o", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-4000:]
        os.replace(tmp, lib)
    so = ctypes.CDLL(lib)
    P, I64, I = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    pi = ctypes.POINTER(I)
    so.emu_gemm_4bit.argtypes = [I, P, I64, I64, P, I64, I64, P, I64, I64, P, I, P, I64, P, P, P, P, I, I, I, I,
                                 pi, pi, pi, ctypes.c_char_p, I]
    so.emu_gemm_4bit.restype = I
    so.emu_plan.argtypes = [I, I64, I64, I64, I, I, I, I64, pi, pi, pi]
    so.emu_record_smem.argtypes = [I]
    so.emu_smem_stats.argtypes = [ctypes.POINTER(ctypes.c_uint64)]
    return so


def _ptr(t):
    return 0 if t is None else t.data_ptr()


def _weights(g, N, K, qt, bs, nested, custom_code):
    W = torch.randn(N, K, generator=g) * 0.1
    packed, absmax = reference.quantize_4bit(W, bs, qt, torch.uint8)
    code = torch.randn(16, generator=g) if custom_code else formats.code_4bit(qt).clone()
    full = absmax
    nest = (None, None, None)
    if nested:
        offset = absmax.mean()
        q, absmax2 = reference.quantize_blockwise(absmax - offset, formats.table("dynamic"), formats.NESTED_BLOCKSIZE)
        dyn = formats.table("dynamic").clone()
        full = reference.nested_absmax(q, absmax2, dyn, offset)
        absmax = absmax2
        nest = (q, dyn, offset.reshape(()).clone())
    W32 = reference.dequantize_codes(reference.unpack_4bit(packed, N * K), code, full, bs).reshape(N, K)
    return packed, absmax, code, nest, W32


def run_emu(emu, M, N, K, dtype=torch.float16, qt="nf4", bs=64, nested=False, bias=False, cc=9, sms=132, ws=True,
            async_mode=0, custom_code=False, pass_code=True, misalign=False, absmax_short=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    packed, absmax, code, (q8, dyn, offset), W32 = _weights(g, N, K, qt, bs, nested, custom_code)
    A = torch.randn(M, K, generator=g).to(dtype)
    if misalign:  # a view 1 element into its storage: 16-byte alignment is lost
        A = torch.cat([torch.zeros(1, dtype=dtype), A.reshape(-1)])[1:].reshape(M, K)
    b = torch.randn(N, generator=g).to(dtype) if bias else None
    out = torch.full((M, N), float("nan"), dtype=dtype)
    kind, mb, splits = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    err = ctypes.create_string_buffer(1024)
    status = emu.emu_gemm_4bit(DT[dtype], _ptr(A), M, K, _ptr(packed), packed.numel(), N, _ptr(absmax),
                               absmax.numel() - absmax_short, bs, _ptr(code) if pass_code else 0, 0 if qt == "nf4" else 1, _ptr(q8),
                               0 if q8 is None else q8.numel(), _ptr(dyn), _ptr(offset), _ptr(b), _ptr(out), cc, sms,
                               int(ws), async_mode, ctypes.byref(kind), ctypes.byref(mb), ctypes.byref(splits), err,
                               len(err))
    if absmax_short:
        return status, err.value.decode()
    assert status == 0, f"status {status}: {err.value.decode()}"
    if K == 0:
        exact, bound = torch.zeros(M, N, dtype=torch.float64), torch.zeros(M, N, dtype=torch.float64)
    else:
        exact, bound = _matmul_bound(A, W32, dtype)
    if b is not None:
        exact = exact + b.double()
        bound = bound + _EPS[dtype] * b.double().abs()
    _within(out, exact, bound, "emulated output")
    return KINDS[kind.value], mb.value, splits.value


f16, bf16, f32 = torch.float16, torch.bfloat16, torch.float32

# (M, N, K, options, expected kind, expected tile (gemv rows of A / mma BM), expected splits or None)
CASES = [
    # batch 1: the gemv kernel, 128-bit path (K % 32 == 0) and element path (odd K)
    (1, 64, 64, dict(), "gemv", 1, 1),
    (1, 33, 130, dict(), "gemv", 1, 1),
    (1, 37, 4128, dict(dtype=bf16, nested=True, bias=True), "gemv", 1, 1),
    (1, 5, 96, dict(dtype=f32, bias=True, bs=32), "gemv", 1, 1),
    (1, 9, 77, dict(dtype=f32, custom_code=True), "gemv", 1, 1),
    (1, 33, 256, dict(custom_code=True, qt="fp4"), "gemv", 1, 1),
    (1, 40, 256, dict(misalign=True, dtype=bf16), "gemv", 1, 1),
    # narrow output, long K: split K over CTAs + the ordered reduction
    (1, 16, 12288, dict(nested=True), "gemv", 1, 3),
    (1, 16, 12288, dict(dtype=f32, bias=True, bs=4096), "gemv", 1, 3),
    (1, 16, 12288, dict(ws=False), "gemv", 1, 1),
    # 2..4 rows without the mma path (fp32, sm_75): gemv with MB rows of A
    (2, 33, 320, dict(dtype=f32, bias=True), "gemv", 2, 1),
    (3, 100, 256, dict(cc=7, dtype=bf16, nested=True), "gemv", 3, 1),
    (4, 20, 77, dict(cc=7), "gemv", 4, 1),
    # tensor cores: every batch tile, N and K not multiples of the tiles, nested absmax, bias, FP4, blocksizes
    (2, 16, 64, dict(), "mma", 8, 1),
    (3, 100, 256, dict(dtype=bf16, bias=True), "mma", 8, 1),
    (8, 40, 256, dict(bs=4096, qt="fp4"), "mma", 8, 1),
    (9, 130, 544, dict(dtype=bf16, bias=True, nested=True), "mma", 16, 1),
    (16, 72, 160, dict(bs=32), "mma", 16, 1),
    (17, 257, 320, dict(bias=True), "mma", 32, 1),
    (32, 64, 96, dict(dtype=bf16, custom_code=True), "mma", 32, 1),
    (33, 200, 384, dict(qt="fp4", bs=128), "mma", 64, 1),
    (64, 128, 512, dict(nested=True, bias=True, async_mode=1), "mma", 64, 2),
    (65, 136, 256, dict(dtype=bf16), "mma", 128, 1),
    (130, 72, 160, dict(bs=32, bias=True, async_mode=1), "mma", 128, 1),
    (256, 24, 128, dict(dtype=bf16, nested=True, pass_code=False), "mma", 128, 1),
    # mma + split K (narrow N, long K), both cp.async completion orders
    (2, 64, 4096, dict(bias=True), "mma", 8, 8),
    (16, 64, 8192, dict(nested=True, bias=True), "mma", 16, 16),
    (16, 64, 8192, dict(nested=True, bias=True, async_mode=1), "mma", 16, 16),
    (40, 128, 2048, dict(dtype=bf16, bias=True, sms=16), "mma", 64, 8),
    # SIMT kernel: fp32, sm_75, odd K, unaligned A
    (5, 9, 77, dict(), "simt", None, 1),
    (40, 70, 96, dict(dtype=f32, bias=True, nested=True), "simt", None, 1),
    (33, 65, 130, dict(cc=7, dtype=bf16, qt="fp4", bs=32), "simt", None, 1),
    (8, 40, 256, dict(misalign=True), "simt", None, 1),  # workspace sized for the aligned plan
    (70, 16, 4096, dict(dtype=f32, bias=True), "simt", None, 32),
    # K == 0: bias (or zeros)
    (3, 10, 0, dict(bias=True), "fill", None, 0),
]


@pytest.mark.parametrize("M, N, K, opts, kind, tile, splits", CASES,
                         ids=[f"{c[0]}x{c[1]}x{c[2]}-{c[4]}-{i}" for i, c in enumerate(CASES)])
def test_emulated_kernels_within_bound(emu, M, N, K, opts, kind, tile, splits):
    got_kind, got_tile, got_splits = run_emu(emu, M, N, K, **opts)
    assert got_kind == kind
    if tile is not None:
        assert got_tile == tile
    if splits is not None:
        assert got_splits == splits


def test_plan_splits_only_narrow_outputs(emu):
    def plan(M, N, K, dtype=1, cc=9, sms=132, aligned=1, max_splits=64):
        k, mb, s = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        emu.emu_plan(dtype, M, N, K, cc, sms, aligned, max_splits, ctypes.byref(k), ctypes.byref(mb), ctypes.byref(s))
        return KINDS[k.value], mb.value, s.value

    # the LLM shapes of ANCHORS.md fill an H100 without splitting K
    for N, K in [(4096, 4096), (14336, 4096), (4096, 14336), (8192, 8192), (28672, 8192)]:
        assert plan(1, N, K) == ("gemv", 1, 1)
    assert plan(16, 28672, 8192)[2] == 1
    assert plan(16, 4096, 4096)[:2] == ("mma", 16) and plan(16, 4096, 4096)[2] > 1  # 64 CTAs: split
    assert plan(256, 8192, 8192) == ("mma", 128, 1)
    # no workspace: never split
    assert plan(1, 16, 65536, max_splits=1)[2] == 1
    assert plan(1, 16, 65536)[2] > 1
    # fp32 and sm_75 never take the mma path; unaligned tensors neither
    assert plan(16, 4096, 4096, dtype=0)[0] == "simt"
    assert plan(16, 4096, 4096, cc=7)[0] == "simt"
    assert plan(16, 4096, 4096, aligned=0)[0] == "simt"
    assert plan(1, 4096, 4096, aligned=0)[0] == "gemv"


@pytest.mark.parametrize("M, N, K, opts, kind", [
    (1, 64, 4096, dict(), "gemv"),
    (1, 40, 4096, dict(dtype=f32, nested=True), "gemv"),
    (8, 64, 512, dict(), "mma"),
    (16, 64, 512, dict(dtype=bf16), "mma"),
    (32, 128, 256, dict(), "mma"),
    (64, 128, 256, dict(), "mma"),
    (128, 128, 256, dict(), "mma"),
    (40, 64, 128, dict(dtype=f32), "simt"),
])
def test_hot_loops_free_of_bank_conflicts(emu, M, N, K, opts, kind):
    """Every shared-memory load of the hot loops (codebook lookups, 128-bit fragment reads of the swizzled
    weight and activation tiles) takes the minimum number of wavefronts, and all lanes of a warp load alike."""
    emu.emu_record_smem(1)
    try:
        assert run_emu(emu, M, N, K, **opts)[0] == kind
        stats = (ctypes.c_uint64 * 4)()
        emu.emu_smem_stats(stats)
    finally:
        emu.emu_record_smem(0)
    requests, wavefronts, ideal, divergent = stats
    assert requests > 0 and divergent == 0
    assert wavefronts == ideal, f"{wavefronts} wavefronts for {requests} loads, conflict-free: {ideal}"


@pytest.mark.parametrize("M, N, K, dtype", [(1, 64, 256, f16), (16, 64, 256, f16), (16, 64, 256, f32)])
def test_emulator_catches_out_of_bounds_reads(emu, M, N, K, dtype):
    """The bounds checking is live: with the last absmax value outside the registered tensor, the kernel's read
    of it is reported (so the passing cases above read nothing outside their tensors)."""
    status, msg = run_emu(emu, M, N, K, dtype=dtype, absmax_short=1)
    assert status == -1 and "out-of-bounds" in msg, (status, msg)
