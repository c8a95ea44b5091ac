"""The conformance suite: every op on a device against the reference (bnb_core.reference) on the CPU.

Used by tests/test_backend_ops.py and by ``python -m bnb_core check [--device D]``, so a kernel author
runs on their hardware exactly what CI runs. Codes, absmax and packing must be bit-exact; matmul
outputs are held to a bound derived from the formats (see ``_matmul_bound``).

A case's status is "pass", "fail" or "unsupported" (the device cannot hold the inputs, e.g. a dtype it
lacks); the kernel that served it (native name or "reference") is reported alongside.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from . import formats, reference, registry
from ._ops import OPS

FLOATS = (torch.float32, torch.float16, torch.bfloat16)
_EPS = {torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


@dataclass
class Case:
    op: str
    id: str
    make: Callable[[torch.Generator], tuple]  # -> (args, kwargs) on CPU
    compare: Callable  # (args_cpu, out_dev, out_ref, mutated_dev, mutated_ref) -> None, raises AssertionError
    mutates: tuple = ()  # argument positions the op writes (out= and optimizer states)


@dataclass
class Result:
    case: Case
    device: str
    status: str  # pass / fail / unsupported
    kernel: str
    detail: str = ""


# --------------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------------


def _exact(a, b, what):
    if a is None or b is None:
        assert a is None and b is None, f"{what}: one result is None"
        return
    a, b = a.cpu(), b.cpu()
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != reference {tuple(b.shape)}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != reference {b.dtype}"
    if a.is_floating_point():
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    else:
        same = a == b
    if not bool(same.all()):
        idx = int((~same).reshape(-1).nonzero()[0])
        raise AssertionError(
            f"{what}: {int((~same).sum())} of {a.numel()} values differ from the reference; first at flat "
            f"index {idx}: {a.reshape(-1)[idx].item()} != {b.reshape(-1)[idx].item()}"
        )


def _within(out, exact64, bound, what):
    out = out.cpu().double()
    err = (out - exact64).abs()
    bad = ~((err <= bound) | (out == exact64) | (torch.isnan(out) & torch.isnan(exact64)))
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {out.numel()} outputs exceed the error bound; first at {i}: "
            f"|{out.reshape(-1)[i].item()} - {exact64.reshape(-1)[i].item()}| > {bound.reshape(-1)[i].item()}"
        )


def _matmul_bound(A, W32, dtype):
    """exact fp64 ``A @ W32.T`` and the bound: one output rounding in `dtype` (eps * |exact|), the weight
    rounded to `dtype` or not (eps/2 per product), fp32 accumulation (K * 2**-24 per product), all
    relative to S = |A| @ |W32|.T."""
    A64 = A.double().reshape(-1, A.shape[-1])
    W64 = W32.double()
    exact = A64 @ W64.T
    S = A64.abs() @ W64.abs().T
    eps = _EPS[dtype]
    bound = eps * exact.abs() + (eps + A.shape[-1] * 2.0**-23) * S + 1e-30
    return exact.reshape(*A.shape[:-1], -1), bound.reshape(*A.shape[:-1], -1)


def _cmp_outputs(names):
    def compare(args, out, ref, mut, mut_ref):
        outs = out if isinstance(out, (tuple, list)) else (out,)
        refs = ref if isinstance(ref, (tuple, list)) else (ref,)
        for name, o, r in zip(names, outs, refs):
            _exact(o, r, name)
        for i, (m, r) in enumerate(zip(mut, mut_ref)):
            _exact(m, r, f"written argument {i}")

    return compare


# --------------------------------------------------------------------------------------------------
# input makers
# --------------------------------------------------------------------------------------------------


def _randn(g, shape, dtype, special=None):
    x = torch.randn(shape, generator=g, dtype=torch.float32)
    if special == "scaled":  # a wide range of block magnitudes
        x = x * torch.exp2(torch.randint(-20, 20, (x.shape[0],) + (1,) * (x.dim() - 1), generator=g).float())
    elif special == "nonfinite":
        flat = x.reshape(-1)
        n = flat.numel()
        if n >= 3:
            flat[n // 3] = float("nan")
            flat[-1] = float("inf")
        if n >= 200:
            flat[100:164] = 0.0  # an all-zero block at blocksize 64
            flat[170:180] = 1e-40  # denormals
    return x.to(dtype)


def _quant_blockwise_cases():
    cases = []
    for shape in [(1,), (63,), (4097,), (33, 65), (3, 100_003)]:
        for dtype in FLOATS:
            for bs in (16, 64, 256, 4096):
                for special in (None, "nonfinite") if shape == (4097,) else (None,):
                    def make(g, shape=shape, dtype=dtype, bs=bs, special=special):
                        return (_randn(g, shape, dtype, special), formats.table("dynamic").clone(), bs), {}

                    cid = f"{'x'.join(map(str, shape))}-{str(dtype)[6:]}-bs{bs}" + (f"-{special}" if special else "")
                    cases.append(Case("quantize_blockwise", cid, make, _cmp_outputs(["codes", "absmax"])))

                    def make_d(g, shape=shape, dtype=dtype, bs=bs, special=special):
                        x = _randn(g, shape, torch.float32, special)
                        q, absmax = reference.quantize_blockwise(x, formats.table("dynamic"), bs)
                        return (q, absmax, formats.table("dynamic").clone(), bs, dtype), {}

                    cases.append(Case("dequantize_blockwise", cid, make_d, _cmp_outputs(["out"])))

                    def make_do(g, make_d=make_d, shape=shape, dtype=dtype):
                        args, _ = make_d(g)
                        return args + (torch.full(shape, 7.0, dtype=dtype),), {}

                    cases.append(Case("dequantize_blockwise.out", cid, make_do, _cmp_outputs([]), mutates=(5,)))
    return cases


def _quant_4bit_cases():
    cases = []
    configs = []
    for shape in [(1,), (7,), (63,), (65, 33), (129, 257)]:
        for dtype in FLOATS:
            for qt in formats.QUANT_TYPES_4BIT:
                configs.append((shape, dtype, qt, 64, torch.uint8, None))
    for bs in formats.BLOCKSIZES_4BIT:
        for qt in formats.QUANT_TYPES_4BIT:
            configs.append(((5, 4099), torch.bfloat16, qt, bs, torch.uint8, "scaled"))
    for storage in (torch.bfloat16, torch.float16, torch.float32, torch.int8):
        configs.append(((3, 1001), torch.float16, "nf4", 128, storage, None))
    for qt in formats.QUANT_TYPES_4BIT:
        configs.append(((4099,), torch.float32, qt, 64, torch.uint8, "nonfinite"))
    for shape, dtype, qt, bs, storage, special in configs:
        cid = f"{'x'.join(map(str, shape))}-{str(dtype)[6:]}-{qt}-bs{bs}-{str(storage)[6:]}" + (
            f"-{special}" if special else ""
        )

        def make(g, shape=shape, dtype=dtype, qt=qt, bs=bs, storage=storage, special=special):
            return (_randn(g, shape, dtype, special), bs, qt, storage), {}

        cases.append(Case("quantize_4bit", cid, make, _cmp_outputs(["packed", "absmax"])))

        def make_d(g, shape=shape, dtype=dtype, qt=qt, bs=bs, storage=storage, special=special):
            packed, absmax = reference.quantize_4bit(_randn(g, shape, torch.float32, special), bs, qt, storage)
            return (packed, absmax, bs, qt, list(shape), dtype), {}

        cases.append(Case("dequantize_4bit", cid, make_d, _cmp_outputs(["out"])))

        def make_do(g, make_d=make_d, shape=shape, dtype=dtype):
            args, _ = make_d(g)
            return args + (torch.full(shape, 7.0, dtype=dtype),), {}

        cases.append(Case("dequantize_4bit.out", cid, make_do, _cmp_outputs([]), mutates=(6,)))
    return cases


def _weight_4bit(g, N, K, qt, bs, nested=False):
    # each block scaled by 2**u, u uniform in [-3, 3): a kernel that pairs a unit with another block's absmax is
    # off by up to 64x there, far outside the bound (with one scale everywhere such a mix-up could stay within it)
    nblocks = formats.num_blocks(N * K, bs)
    scale = torch.exp2(torch.rand(nblocks, generator=g) * 6 - 3).repeat_interleave(bs)[: N * K]
    W = (torch.randn(N * K, generator=g) * 0.1 * scale).reshape(N, K)
    packed, absmax = reference.quantize_4bit(W, bs, qt, torch.uint8)
    extra = None
    if nested:
        offset = absmax.mean()
        q, absmax2 = reference.quantize_blockwise(absmax - offset, formats.table("dynamic"), formats.NESTED_BLOCKSIZE)
        extra = (q, absmax2, formats.table("dynamic").clone(), offset)
        absmax_full = reference.nested_absmax(q, absmax2, formats.table("dynamic"), offset)
    else:
        absmax_full = absmax
    W32 = reference.dequantize_codes(
        reference.unpack_4bit(packed, N * K), formats.code_4bit(qt), absmax_full, bs
    ).reshape(N, K)
    return packed, absmax, extra, W32


def _matmul_compare(A_pos, W32_fn, bias_pos=None):
    def compare(args, out, ref, mut, mut_ref):
        A = args[A_pos]
        outs = [out] if not mut else [mut[0]]
        refs = [ref] if not mut_ref else [mut_ref[0]]
        exact, bound = _matmul_bound(A, W32_fn(args), A.dtype)
        if bias_pos is not None and args[bias_pos] is not None:
            exact = exact + args[bias_pos].double()
            bound = bound + _EPS[A.dtype] * args[bias_pos].double().abs()
        for o, r in zip(outs, refs):
            assert o.dtype == A.dtype and o.shape == r.shape, f"out: {o.dtype}{tuple(o.shape)} != {r.dtype}{tuple(r.shape)}"
            _within(r, exact, bound, "reference output")
            _within(o, exact, bound, "output")

    return compare


def _gemm_4bit_cases():
    cases = []
    # extra blocksizes per shape: blocks crossing rows (K % blocksize != 0, odd K), blocksize 32 and 4096
    extra_bs = {(3, 100, 256): (64, 128), (8, 40, 256): (32, 4096), (5, 9, 77): (32,), (2, 8, 4096): (4096,)}
    for (M, N, K) in [(1, 64, 64), (1, 33, 130), (3, 100, 256), (1, 512, 4096), (17, 257, 320), (64, 128, 512),
                      (8, 40, 256), (5, 9, 77), (2, 8, 4096)]:
        for dtype in FLOATS:
            for qt in formats.QUANT_TYPES_4BIT:
                for bs in extra_bs.get((M, N, K), (64,)):
                    cid = f"{M}x{N}x{K}-{str(dtype)[6:]}-{qt}-bs{bs}"
                    weights = {}

                    def make(g, M=M, N=N, K=K, dtype=dtype, qt=qt, bs=bs, weights=weights):
                        packed, absmax, _, W32 = _weight_4bit(g, N, K, qt, bs)
                        weights["W32"] = W32
                        A = torch.randn(M, K, generator=g).to(dtype)
                        return (A, packed, [N, K], absmax, formats.code_4bit(qt).clone(), bs), {}

                    cases.append(Case("gemv_4bit", cid, make, _matmul_compare(0, lambda a, w=weights: w["W32"])))

                    def make_o(g, make=make, M=M, N=N, dtype=dtype):
                        args, _ = make(g)
                        return args + (torch.zeros(M, N, dtype=dtype),), {}

                    cases.append(Case("gemv_4bit.out", cid, make_o,
                                      _matmul_compare(0, lambda a, w=weights: w["W32"]), mutates=(6,)))
                    for nested in (False, True):
                        w2 = {}

                        def make_g(g, M=M, N=N, K=K, dtype=dtype, qt=qt, bs=bs, nested=nested, w2=w2):
                            packed, absmax, extra, W32 = _weight_4bit(g, N, K, qt, bs, nested)
                            w2["W32"] = W32
                            A = torch.randn(M, K, generator=g).to(dtype)
                            bias = torch.randn(N, generator=g).to(dtype) if M > 1 else None
                            if nested:
                                q, absmax2, code, offset = extra
                                return (A, packed, [N, K], absmax2, bs, qt, bias, q, code, offset), {}
                            return (A, packed, [N, K], absmax, bs, qt, bias), {}

                        cases.append(Case("gemm_4bit", cid + ("-nested" if nested else ""), make_g,
                                          _matmul_compare(0, lambda a, w=w2: w["W32"], bias_pos=6)))
    return cases


def _gemm_4bit_tile_cases():
    """Shapes around the CUDA kernels' tiles: batch tiles 8/16/32/64/128 (and two row tiles of 128), weight
    tiles of 64/128 rows and 128-wide K slices with N and K off those multiples, K % 32 != 0 (SIMT path), and
    narrow outputs with long K that split K on an H100 (batch 1 and batch 16). Every device runs them."""
    cases = []
    shapes = [  # M, N, K, blocksize, quant types
        (1, 64, 12288, 64, ("nf4",)),
        (1, 200, 544, 128, ("fp4",)),
        (4, 72, 160, 64, ("nf4",)),
        (12, 136, 288, 32, ("nf4",)),
        (16, 64, 4096, 64, ("nf4",)),
        (24, 200, 544, 256, ("fp4",)),
        (48, 130, 416, 64, ("nf4",)),
        (100, 72, 160, 64, ("nf4",)),
        (200, 136, 288, 64, ("nf4",)),
        (256, 64, 512, 4096, ("nf4",)),
        (33, 65, 100, 64, ("nf4",)),
        (7, 72, 192, 64, ("fp4",)),  # CPU bf16: direct path, a 4-row group then a 3-row remainder
        (12, 80, 320, 32, ("nf4",)),  # CPU bf16: tile path at blocksize 32, a 16-row partial tile
        (40, 72, 448, 32, ("fp4",)),  # CPU bf16: pipelined path (>= 24 rows) at blocksize 32, a 64-column last tile
        (33, 130, 768, 64, ("nf4",)),  # CPU amx: three 16-row groups (the last of 1 row), 3 K chunks, N % 64 = 2
        # CPU amx, 2-16 rows at blocksize >= 64 (tile products scaled by absmax): an odd unit count per row (17), a
        # last 8-row panel, several thread tasks; blocks that cross rows (K % blocksize != 0)
        (5, 200, 1088, 128, ("nf4",)),
        (16, 72, 320, 256, ("fp4",)),
        # CPU bf16 gemv (K <= 4096): thread tasks of 20 rows, each a 16-row group of 4 tiles with rows 4 apart, then a
        # 4-row tile; the last task 1 row
        (1, 301, 2048, 64, ("nf4",)),
    ]
    for i, (M, N, K, bs, qts) in enumerate(shapes):
        for dtype in FLOATS:
            for qt in qts:
                cid = f"tile-{M}x{N}x{K}-{str(dtype)[6:]}-{qt}-bs{bs}"
                weights = {}

                def make(g, M=M, N=N, K=K, dtype=dtype, qt=qt, bs=bs, weights=weights):
                    packed, absmax, _, W32 = _weight_4bit(g, N, K, qt, bs)
                    weights["W32"] = W32
                    A = torch.randn(M, K, generator=g).to(dtype)
                    return (A, packed, [N, K], absmax, formats.code_4bit(qt).clone(), bs), {}

                cases.append(Case("gemv_4bit", cid, make, _matmul_compare(0, lambda a, w=weights: w["W32"])))
                nested = i % 2 == 1
                w2 = {}

                def make_g(g, M=M, N=N, K=K, dtype=dtype, qt=qt, bs=bs, nested=nested, w2=w2):
                    packed, absmax, extra, W32 = _weight_4bit(g, N, K, qt, bs, nested)
                    w2["W32"] = W32
                    A = torch.randn(M, K, generator=g).to(dtype)
                    bias = torch.randn(N, generator=g).to(dtype)
                    if nested:
                        q, absmax2, code, offset = extra
                        return (A, packed, [N, K], absmax2, bs, qt, bias, q, code, offset), {}
                    return (A, packed, [N, K], absmax, bs, qt, bias), {}

                cases.append(Case("gemm_4bit", cid + ("-nested" if nested else ""), make_g,
                                  _matmul_compare(0, lambda a, w=w2: w["W32"], bias_pos=6)))
    return cases


def _int8_act(g, shape, dtype, outliers, special=None):
    A = torch.randn(shape, generator=g) * 2
    if outliers:
        cols = torch.randint(0, shape[-1], (3,), generator=g)
        A[..., cols] *= 8  # several columns with |a| >= 6
    if len(shape) >= 2 and shape[0] > 2:
        A.reshape(-1, shape[-1])[1] = 0.0  # an all-zero row
    if special == "small":  # threshold > 0 but no outlier at all
        A = A.clamp(-5.5, 5.5)
    elif special == "nonfinite":  # a NaN row, an Inf row (an outlier column when threshold > 0), a -Inf
        A2 = A.reshape(-1, shape[-1])
        A2[0, -1] = float("nan")
        if A2.shape[0] > 2:
            A2[2, 0] = float("inf")
            A2[-1, shape[-1] // 2] = -float("inf")
    return A.to(dtype)


# (M, N, K) at the device kernels' tile and path boundaries (see _int8_cases)
# (40, 72, 320) and (130, 136, 512): the CPU's packed int8 path (>= 24 rows of A per 64-row block, K % 64 == 0)
# with a partial 64-column panel and a partial K chunk; 130 rows also leave a 2-row block to the dot kernel.
_INT8_TILE_SHAPES = ((1, 8, 16), (17, 24, 48), (130, 72, 96), (33, 136, 160), (129, 41, 272), (2048, 40, 160),
                     (8, 264, 1040), (40, 72, 320), (130, 136, 512),
                     (9, 10, 192),  # CPU amx: one partial 16-row group, every weight row past N zero-padded
                     (3, 20, 8192))  # CPU below 5 rows: the dot kernel reads whole rows past its 4096-column chunks


def _int8_bias(g, N, dtype, kind):
    """kind: "same" (a bias of the output dtype), "fp32", or "none"."""
    b = torch.randn(N, generator=g)
    return None if kind == "none" else (b if kind == "fp32" else b.to(dtype))


def _int8_cases():
    cases = []
    for shape in [(1, 64), (5, 33), (4, 3, 130), (128, 1024), (3, 4097)]:
        for dtype in FLOATS:
            for threshold in (0.0, 6.0):
                cid = f"{'x'.join(map(str, shape))}-{str(dtype)[6:]}-t{threshold:g}"

                def make(g, shape=shape, dtype=dtype, threshold=threshold):
                    return (_int8_act(g, shape, dtype, threshold > 0), threshold), {}

                cases.append(Case("int8_vectorwise_quant", cid, make, _cmp_outputs(["CA", "SCA", "outlier_cols"])))
                cases.append(Case("int8_double_quant", cid, make,
                                  _cmp_outputs(["out_row", "out_col", "row_stats", "col_stats", "outlier_cols"])))

                def make_dq(g, shape=shape, dtype=dtype):
                    CA, SCA, _ = reference.int8_vectorwise_quant(_int8_act(g, shape, dtype, False))
                    return (CA, SCA), {}

                cases.append(Case("int8_vectorwise_dequant", cid, make_dq, _cmp_outputs(["out"])))

    # device kernels' edges: a warp per row vs a CTA per row (K > 2048), vector tails (K % 8), many rows,
    # threshold > 0 without outliers, NaN / Inf rows
    for shape, specials in [((2048, 40), (None,)), ((7, 2049), (None,)), ((17, 2056), (None, "small")),
                            ((9, 100), ("small", "nonfinite")), ((6, 3000), ("nonfinite",))]:
        for dtype in FLOATS:
            for threshold in (0.0, 6.0):
                for special in specials:
                    cid = f"{'x'.join(map(str, shape))}-{str(dtype)[6:]}-t{threshold:g}" + (
                        f"-{special}" if special else "")

                    def make_s(g, shape=shape, dtype=dtype, threshold=threshold, special=special):
                        return (_int8_act(g, shape, dtype, threshold > 0 and special is None, special), threshold), {}

                    cases.append(Case("int8_vectorwise_quant", cid, make_s,
                                      _cmp_outputs(["CA", "SCA", "outlier_cols"])))
                    cases.append(Case("int8_double_quant", cid, make_s,
                                      _cmp_outputs(["out_row", "out_col", "row_stats", "col_stats", "outlier_cols"])))

    # K not a multiple of 4/16/64 (vector tails), M = 1 with K >= 4096, a K of 1, and more than one K chunk;
    # then device tile edges: M around 16 / 128 (kernel and torch._int_mm thresholds), K % 16 == 0 (tensor-core
    # path) with partial 128-byte K tiles, N not a multiple of the tile, many rows, and no bias
    for (M, N, K) in [(1, 16, 64), (5, 33, 130), (16, 64, 2100), (64, 256, 512), (1, 40, 4100), (3, 7, 1),
                      (2, 9, 8195), *_INT8_TILE_SHAPES]:
        cid = f"{M}x{N}x{K}"

        def make_mm(g, M=M, N=N, K=K):
            A = torch.randint(-128, 128, (M, K), generator=g, dtype=torch.int8)
            B = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
            return (A, B), {}

        cases.append(Case("int8_linear_matmul", cid, make_mm, _cmp_outputs(["out"])))

        def make_mmo(g, make_mm=make_mm, M=M, N=N):
            (A, B), _ = make_mm(g)
            return (A, B, torch.full((M, N), 7, dtype=torch.int32)), {}

        cases.append(Case("int8_linear_matmul.out", cid, make_mmo, _cmp_outputs([]), mutates=(2,)))

        # the first shapes keep a bias of the output dtype; the later ones alternate no bias / an fp32 bias
        for dtype in FLOATS:
            did = f"{cid}-{str(dtype)[6:]}"
            bias_kind = "same"
            if (M, N, K) in _INT8_TILE_SHAPES:
                bias_kind = "none" if dtype == torch.float32 or (M + N + K) % 2 == 0 else "fp32"
            if bias_kind != "same":
                did += f"-bias_{bias_kind}"

            def make_deq(g, M=M, N=N, K=K, dtype=dtype, kind=bias_kind):
                acc = torch.randint(-(2**20), 2**20, (M, N), generator=g, dtype=torch.int32)
                rs = torch.rand(M, generator=g) * 4
                cs = torch.rand(N, generator=g) * 4
                bias = _int8_bias(g, N, dtype, kind)
                return (acc, rs, cs, dtype, bias), {}

            cases.append(Case("int8_mm_dequant", did, make_deq, _close_compare()))

            def make_smm(g, M=M, N=N, K=K, dtype=dtype, kind=bias_kind):
                A = _int8_act(g, (M, K), dtype, False)
                W = torch.randn(N, K, generator=g).to(dtype)
                CA, SCA, _ = reference.int8_vectorwise_quant(A)
                CB, SCB, _ = reference.int8_vectorwise_quant(W)
                return (CA, CB, SCA, SCB, _int8_bias(g, N, dtype, kind), dtype), {}

            cases.append(Case("int8_scaled_mm", did, make_smm, _close_compare()))

            for outliers in (True, False) if bias_kind != "same" else (True,):
                mid = did if outliers else did + "-no_outliers"

                def make_mix(g, M=M, N=N, K=K, dtype=dtype, kind=bias_kind, outliers=outliers):
                    A = _int8_act(g, (M, K), dtype, outliers, None if outliers else "small")
                    W = torch.randn(N, K, generator=g).to(dtype)
                    CA, SCA, cols = reference.int8_vectorwise_quant(A, 6.0)
                    CB, SCB, _ = reference.int8_vectorwise_quant(W)
                    return (A, CA, CB, SCA, SCB, cols, _int8_bias(g, N, dtype, kind)), {}

                cases.append(Case("int8_mixed_scaled_mm", mid, make_mix, _mixed_compare))

    # a few outlier columns on both sides of 4096 (native kernels chunk K there: the CPU forms the outlier
    # weights per K chunk) and none elsewhere
    for dtype in FLOATS:
        def make_late(g, dtype=dtype):
            A = (torch.randn(3, 8200, generator=g) * 2).clamp(-5.5, 5.5)
            A[:, [7, 4095, 4096, 8199]] *= 4
            W = torch.randn(40, 8200, generator=g).to(dtype)
            A = A.to(dtype)
            CA, SCA, cols = reference.int8_vectorwise_quant(A, 6.0)
            CB, SCB, _ = reference.int8_vectorwise_quant(W)
            return (A, CA, CB, SCA, SCB, cols, None), {}

        cases.append(Case("int8_mixed_scaled_mm", f"3x40x8200-{str(dtype)[6:]}-outliers_around_4096", make_late,
                          _mixed_compare))

    # a few outlier columns (at most 32: the weights are formed per block of weight rows) with enough rows of A
    # for the CPU's AMX path and 100 weight rows: 64-row blocks of 4 and 2 (partial) 16-row groups
    for dtype in FLOATS:
        def make_few(g, dtype=dtype):
            A = (torch.randn(24, 320, generator=g) * 2).clamp(-5.5, 5.5)
            A[:, [0, 63, 64, 200, 319]] *= 4
            W = torch.randn(100, 320, generator=g).to(dtype)
            A = A.to(dtype)
            CA, SCA, cols = reference.int8_vectorwise_quant(A, 6.0)
            CB, SCB, _ = reference.int8_vectorwise_quant(W)
            return (A, CA, CB, SCA, SCB, cols, torch.randn(100, generator=g).to(dtype)), {}

        cases.append(Case("int8_mixed_scaled_mm", f"24x100x320-{str(dtype)[6:]}-few_outliers", make_few,
                          _mixed_compare))

    # the fused inference op: shapes of the kernels' paths (one row, the AMX path from 5 rows, more than 64 rows,
    # K % 64 != 0, 3-D activations), outliers or none, threshold 0 (no outlier handling), biases
    for (shape, N) in [((1, 320), 72), ((24, 320), 100), ((2, 3, 130), 33), ((70, 256), 40)]:
        for dtype in FLOATS:
            for threshold, outliers in ((6.0, True), (6.0, False), (0.0, True)):
                lid = f"{'x'.join(map(str, shape))}x{N}-{str(dtype)[6:]}-t{threshold:g}" + ("" if outliers else "-none")

                def make_lin(g, shape=shape, N=N, dtype=dtype, threshold=threshold, outliers=outliers):
                    A = _int8_act(g, shape, dtype, outliers, None if outliers else "small")
                    W = torch.randn(N, shape[-1], generator=g).to(dtype)
                    CB, SCB, _ = reference.int8_vectorwise_quant(W)
                    bias = torch.randn(N, generator=g).to(dtype) if shape[0] != 2 else None
                    return (A, CB, SCB, bias, threshold), {}

                cases.append(Case("int8_mixed_linear", lid, make_lin, _mixed_linear_compare))
    return cases


def _close_compare():
    """int8 dequantization: fp32 products and one rounding to the output dtype; allow one output ulp."""

    def compare(args, out, ref, mut, mut_ref):
        assert out.dtype == ref.dtype and out.shape == ref.shape, f"out {out.dtype}{tuple(out.shape)} != {ref.dtype}"
        eps = _EPS[ref.dtype]
        r = ref.double()
        _within(out, r, eps * r.abs() + 1e-30 + 2.0**-20 * r.abs(), "out")

    return compare


def _mixed_compare(args, out, ref, mut, mut_ref):
    A, CA, CB, SCA, SCB, cols, bias = args
    o, r = out[0], ref[0]
    assert o.dtype == A.dtype and o.shape == r.shape
    exact_int = (CA.double() @ CB.double().T) * SCA.double()[:, None] * SCB.double()[None, :] / 127**2
    subA = A[:, cols].double()
    subB = CB[:, cols].double() * SCB.double()[:, None] / 127
    b = bias.double() if bias is not None else torch.zeros(CB.shape[0], dtype=torch.float64)
    exact = exact_int + subA @ subB.T + b
    S = exact_int.abs() + subA.abs() @ subB.abs().T + b.abs()
    eps = _EPS[A.dtype]
    bound = 2 * eps * S + A.shape[-1] * 2.0**-23 * S + 1e-30
    _within(r, exact, bound, "reference output")
    _within(o, exact, bound, "output")
    _exact(out[1].to(r.dtype) if out[1] is not None else None, ref[1], "subA")


def _mixed_linear_compare(args, out, ref, mut, mut_ref):
    """int8_mixed_linear against the composition it stands for: the reference's int8_vectorwise_quant, then
    _mixed_compare's bound (or int8_scaled_mm's, threshold 0) on the same quantized operands."""
    A, CB, SCB, bias, threshold = args
    assert out.dtype == A.dtype and out.shape == (*A.shape[:-1], CB.shape[0]) and out.shape == ref.shape
    A2 = A.reshape(-1, A.shape[-1])
    CA, SCA, cols = reference.int8_vectorwise_quant(A2, threshold)
    if cols is None:
        cols = torch.zeros(0, dtype=torch.int64)
    sub = (A2, CA, CB, SCA, SCB, cols, bias)
    _mixed_compare(sub, (out.reshape(A2.shape[0], -1), None), (ref.reshape(A2.shape[0], -1), None), mut, mut_ref)


def _optimizer_cases():
    cases = []
    hyper = dict(beta1=0.9, beta2=0.99, beta3=0.999, alpha=5.0, eps=1e-8, lr=1e-3, gnorm_scale=1.0)
    for name in ("adam", "momentum", "rmsprop", "lion", "adagrad", "lamb", "lars", "ademamix"):
        for dtype in FLOATS:
            for n in (1000, 4097):
                cid = f"{name}-{str(dtype)[6:]}-n{n}"
                two = name in ("adam", "lamb", "ademamix")
                halves = 2 if name == "ademamix" else 1
                max_unorm = 1.0 if name in ("lamb", "lars") else 0.0

                def make32(g, name=name, dtype=dtype, n=n, two=two, halves=halves, max_unorm=max_unorm):
                    p = torch.randn(n, generator=g).to(dtype)
                    gr = (torch.randn(n, generator=g) * 0.1).to(dtype)
                    gr[3] = float("nan")
                    s1 = torch.randn((halves, n) if halves == 2 else (n,), generator=g) * 0.01
                    if name in ("rmsprop", "adagrad"):  # second-moment states are non-negative
                        s1 = s1.abs()
                    s2 = torch.rand(n, generator=g) * 1e-3 if two else None
                    unorm = torch.zeros(1)
                    h = hyper
                    return (name, gr, p, s1, s2, unorm, max_unorm, 1.0, h["beta1"], h["beta2"], h["beta3"],
                            h["alpha"], h["eps"], 0.01, 3, h["lr"], h["gnorm_scale"], False), {}

                cases.append(Case("optimizer_update_32bit", cid, make32, _optim_compare(2, (3, 4, 5)),
                                  mutates=(2, 3, 4, 5)))

                def make8(g, name=name, dtype=dtype, n=n, two=two, halves=halves):
                    p = torch.randn(n, generator=g).to(dtype)
                    gr = (torch.randn(n, generator=g) * 0.1).to(dtype)
                    gr[3] = float("inf")
                    nb = formats.num_blocks(n, formats.OPTIMIZER_BLOCKSIZE)
                    low = 127 if name in ("rmsprop", "adagrad") else 0  # non-negative codes of the signed map
                    s1 = torch.randint(low, 256, (halves, n) if halves == 2 else (n,), generator=g, dtype=torch.uint8)
                    a1 = torch.rand((halves, nb) if halves == 2 else (nb,), generator=g) * 0.01
                    s2 = torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8) if two else None
                    a2 = torch.rand(nb, generator=g) * 1e-3 if two else None
                    q2 = formats.table("dynamic_unsigned").clone() if two else None
                    h = hyper
                    return (name, gr, p, s1, s2, h["beta1"], h["beta2"], h["beta3"], h["alpha"], h["eps"], 3,
                            h["lr"], formats.table("dynamic").clone(), q2, a1, a2, 0.01, h["gnorm_scale"], False), {}

                cases.append(Case("optimizer_update_8bit_blockwise", cid, make8, _optim8_compare,
                                  mutates=(2, 3, 4, 14, 15)))
    return cases


def _optim_compare(p_pos, state_pos):
    def compare(args, out, ref, mut, mut_ref):
        for i, (m, r) in enumerate(zip(mut, mut_ref)):
            if m is None:
                continue
            m, r = m.cpu().double(), r.double()
            tol = (_EPS[args[p_pos].dtype] if i == 0 else 2.0**-20) * (r.abs() + 1e-3)
            _within(m, r, tol, f"written argument {i}")

    return compare


def _optim8_compare(args, out, ref, mut, mut_ref):
    p, s1, s2, a1, a2 = mut
    rp, rs1, rs2, ra1, ra2 = mut_ref
    _within(p, rp.double(), _EPS[rp.dtype] * (rp.double().abs() + 1e-3), "p")
    for name, a, r in (("absmax1", a1, ra1), ("absmax2", a2, ra2)):
        if r is not None:
            _within(a, r.double(), 2.0**-20 * r.double().abs(), name)
    for name, a, r in (("state1", s1, rs1), ("state2", s2, rs2)):
        if r is not None:
            d = (a.cpu().int() - r.int()).abs()
            assert int(d.max()) <= 1 and int((d > 0).sum()) <= max(1, r.numel() // 1000), (
                f"{name}: {int((d > 0).sum())} codes differ (max by {int(d.max())}); at most one step on 0.1% allowed"
            )


def all_cases() -> list[Case]:
    return (_quant_blockwise_cases() + _quant_4bit_cases() + _gemm_4bit_cases() + _gemm_4bit_tile_cases() + _int8_cases()
            + _optimizer_cases())


# --------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------


def _to(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in x):
        return type(x)(_to(v, device) for v in x)
    return x


def _clone(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


def run_case(case: Case, device: str, seed: int = 0, kernel: Optional[tuple] = None) -> Result:
    """Run `case` on `device` through the op's dispatcher and compare with the reference on CPU.

    ``kernel=(name, fn)`` runs ``fn`` (after the op's check) instead of the dispatcher: a backend's kernel
    exercised off its device (tests/test_mps_kernels.py runs the MPS glue and Metal kernel bodies on CPU)."""
    g = torch.Generator().manual_seed(seed)
    args, kwargs = case.make(g)
    ref_args = [_clone(a) for a in args]
    try:
        dev_args = [_to(_clone(a), device) for a in args]
        dev_kwargs = {k: _to(v, device) for k, v in kwargs.items()}
    except (RuntimeError, TypeError) as e:
        return Result(case, device, "unsupported", "-", f"inputs cannot live on {device}: {e}")
    fn = OPS[case.op].packet if kernel is None else kernel[1]
    try:
        if kernel is None:
            kernel = registry.kernel_for(case.op, *dev_args, **dev_kwargs)
        else:
            OPS[case.op].check(*dev_args, **dev_kwargs)
            kernel = kernel[0]
    except Exception as e:  # the check rejected a case it should accept: a failure
        return Result(case, device, "fail", "-", f"check rejected the case: {type(e).__name__}: {e}")
    try:
        out = fn(*dev_args, **dev_kwargs)
        ref = OPS[case.op].reference(*ref_args, **kwargs)
        mut = [_to(dev_args[i], "cpu") for i in case.mutates]
        mut_ref = [ref_args[i] for i in case.mutates]
        case.compare(ref_args, _to(out, "cpu"), ref, mut, mut_ref)
    except NotImplementedError as e:
        return Result(case, device, "unsupported", kernel, str(e))
    except AssertionError as e:
        return Result(case, device, "fail", kernel, str(e))
    except Exception as e:
        return Result(case, device, "fail", kernel, "".join(traceback.format_exception_only(type(e), e)).strip())
    return Result(case, device, "pass", kernel)


#: outputs whose size depends on the input values (op -> {output index: dims}; the fake kernels in _ops.py give
#: them a dynamic size): on "meta", with no values, the reference returns an upper bound (every column an outlier)
DATA_DEPENDENT_DIMS = {
    "int8_vectorwise_quant": {2: (0,)},
    "int8_double_quant": {4: (0,)},
    "int8_mixed_scaled_mm": {1: (1,)},
}


def _meta_nonzero_context():
    """nonzero/argwhere on "meta" return their upper-bound size (all elements nonzero) instead of raising."""
    try:
        from torch.fx.experimental import _config

        return _config.patch(meta_nonzero_assume_all_nonzero=True)
    except Exception:  # older torch: nonzero on meta raises, and such cases report it
        import contextlib

        return contextlib.nullcontext()


def _same_structure(a, b, what, dynamic=()):
    if isinstance(b, (tuple, list)):
        assert isinstance(a, (tuple, list)) and len(a) == len(b), f"{what}: {type(a).__name__} != {type(b).__name__}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same_structure(x, y, f"{what}[{i}]", dynamic.get(i, ()) if isinstance(dynamic, dict) else ())
        return
    if b is None or a is None:
        assert a is None and b is None, f"{what}: {a!r} != {b!r}"
        return
    dynamic = dynamic if isinstance(dynamic, tuple) else ()
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype} (CPU)"
    assert a.dim() == b.dim(), f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)} (CPU)"
    for d, (x, y) in enumerate(zip(a.shape, b.shape)):
        ok = x >= y if d in dynamic else x == y
        assert ok, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)} (CPU)" + (
            f" (dim {d} depends on the values: at least the CPU size)" if d in dynamic else "")


def run_case_meta(case: Case, device: str = "meta", seed: int = 0, check_values: bool = True) -> Result:
    """Run the REFERENCE (bnb_core.reference, not the fake kernel) of `case` on `device`, "meta" by default (a
    device with no data): every output and written argument must have the dtype and shape of the reference run on
    CPU (sizes that depend on the values: at least the CPU size, DATA_DEPENDENT_DIMS). Shows that the reference
    uses only ops, dtypes and shape logic that work on a device other than the CPU. With `check_values` the CPU
    run's outputs also pass the case's comparison (the matmul bounds, the optimizer tolerances)."""
    g = torch.Generator().manual_seed(seed)
    args, kwargs = case.make(g)
    cpu_args = [_clone(a) for a in args]
    dev_args = [_to(_clone(a), device) for a in args]
    dev_kwargs = {k: _to(v, device) for k, v in kwargs.items()}
    try:
        cpu_out = OPS[case.op].reference(*cpu_args, **kwargs)
        if check_values:  # the CPU run passes the case's comparison (exact oracles: trivially; bounds: really)
            mut = [cpu_args[i] for i in case.mutates]
            case.compare(args, cpu_out, cpu_out, mut, mut)
        with _meta_nonzero_context():
            dev_out = OPS[case.op].reference(*dev_args, **dev_kwargs)
        for name, o in (("output", dev_out), *((f"written argument {i}", dev_args[i]) for i in case.mutates)):
            tensors = o if isinstance(o, (tuple, list)) else (o,)
            for t in tensors:
                assert t is None or t.device.type == torch.device(device).type, f"{name} is on {t.device}"
        _same_structure(dev_out, cpu_out, "output", DATA_DEPENDENT_DIMS.get(case.op, {}))
        for i in case.mutates:
            _same_structure(dev_args[i], cpu_args[i], f"written argument {i}")
    except AssertionError as e:
        return Result(case, device, "fail", registry.REFERENCE, str(e))
    except Exception as e:
        return Result(case, device, "fail", registry.REFERENCE,
                      "".join(traceback.format_exception_only(type(e), e)).strip())
    return Result(case, device, "pass", registry.REFERENCE)


def run(device: str, ops: Optional[list[str]] = None) -> list[Result]:
    return [run_case(c, device) for c in all_cases() if ops is None or c.op in ops]


def summarize(results: list[Result]) -> list[tuple]:
    """Rows (op, pass, fail, unsupported, kernels) in op order; kernels: the kernel that served the op's cases,
    or "name: count" per kernel when several did."""
    rows = {}
    for r in results:
        row = rows.setdefault(r.case.op, [0, 0, 0, {}])
        row[("pass", "fail", "unsupported").index(r.status)] += 1
        row[3][r.kernel] = row[3].get(r.kernel, 0) + 1
    return [(op, p, f, u, ", ".join(k) if len(k) == 1 else ", ".join(f"{n}: {c}" for n, c in k.items()))
            for op, (p, f, u, k) in rows.items()]


def available_devices() -> list[str]:
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        devs.append("xpu")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        devs.append("mps")
    return devs
