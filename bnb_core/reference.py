"""Readable pure-PyTorch implementation of every op: the test oracle and the "default" kernel.

Every function here has the signature of its op in bnb_core/_ops.py and runs on any torch device.
It is registered for the CompositeExplicitAutograd key, so every op works everywhere before a
device has a native kernel; native kernels are tested against these functions (bit-exact for codes,
absmax and packing). The formats and policies are documented in docs/formats.md.

Any-device rules (docs/architecture.md, "The reference on any device"): only ops every torch device has, in
forms whose results do not depend on the device. No float64 where a device lacks it (MPS; XPU parts without
fp64: the square root is corrected with exact int64 arithmetic instead); no bit shifts or masks on uint8 (wrong on MPS before torch 2.6): nibbles are split and joined with integer
arithmetic; round half to even by the fp32 add-and-subtract of 1.5 * 2**23 (torch.round rounded halves away from
zero on MPS before torch 2.9); max reductions whose NaN propagation is explicit (MPS's max reductions have skipped
NaN); bucketize where the device type is known to implement it, a counting form elsewhere; expand instead of
repeat_interleave. Each form gives the same bits on CPU as the plain one (the CPU tests compare them), and
tests/test_reference_devices.py runs every conformance case of the reference on the "meta" device (shapes and
dtypes equal to the CPU run's).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from . import formats

FLT_MIN = 1.1754943508222875e-38  # smallest normal float32
_DENORMAL_RESCALE = 2.0**64
_ROUND_MAGIC = 12582912.0  # 1.5 * 2**23: fp32 (v + M) - M rounds v to an integer, half to even, for |v| < 2**22

#: device types whose torch implements bucketize (MPS since torch 2.2); elsewhere the counting form is used
_BUCKETIZE_DEVICES = frozenset({"cpu", "cuda", "xpu", "mps", "meta"})


def _has_float64(device: torch.device) -> bool:
    """Whether tensors of `device` can be float64 (MPS never; Intel XPUs without fp64 units)."""
    if device.type == "mps":
        return False
    if device.type == "xpu":
        try:
            return bool(torch.xpu.get_device_properties(device).has_fp64)
        except Exception:
            return False
    return True


def _nan_amax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """amax along `dim`, NaN where the reduced values hold a NaN, on every device (MPS's max reductions have
    returned the largest non-NaN value)."""
    m = x.amax(dim=dim)
    return torch.where(torch.isnan(x).any(dim=dim), torch.full_like(m, float("nan")), m)


def _round_half_even(v: torch.Tensor) -> torch.Tensor:
    """fp32 round to nearest integer, ties to even, for |v| < 2**22 (NaN/Inf give NaN): equal to torch.round on
    that range, where MPS's torch.round rounded ties away from zero before torch 2.9."""
    return (v + _ROUND_MAGIC) - _ROUND_MAGIC


# --------------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------------


def _blocks(A: torch.Tensor, blocksize: int) -> torch.Tensor:
    """Flattened fp32 view of A as [nblocks, blocksize], the last block zero-padded."""
    flat = A.reshape(-1).float()
    pad = (-flat.numel()) % blocksize
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    return flat.view(-1, blocksize)


def blockwise_absmax_and_scaled(A: torch.Tensor, blocksize: int):
    """absmax per block (NaN if the block holds a NaN) and y = x / absmax per element.

    y is computed as ``(x * s) * (1 / (absmax * s))`` in fp32 with ``s = 2**64`` for denormal
    absmax (keeps tiny blocks accurate) and 1 otherwise; a NaN y (absmax 0, NaN or Inf blocks)
    becomes 0, i.e. the zero code.
    """
    blocks = _blocks(A, blocksize)
    absmax = _nan_amax(blocks.abs(), dim=1)
    s = torch.where(absmax < FLT_MIN, _DENORMAL_RESCALE, 1.0).to(torch.float32)
    inv = torch.reciprocal(absmax * s)
    y = (blocks * s[:, None]) * inv[:, None]
    y = torch.where(torch.isnan(y), torch.zeros((), dtype=y.dtype, device=y.device), y)
    return absmax, y.reshape(-1)[: A.numel()]


def _count_above(y: torch.Tensor, boundaries: torch.Tensor) -> torch.Tensor:
    """Number of boundaries strictly below y: nearest code, a value on a boundary goes to the lower one."""
    if y.device.type in _BUCKETIZE_DEVICES:
        return torch.bucketize(y, boundaries, right=False)
    return _count_above_by_compare(y, boundaries)


def _count_above_by_compare(y: torch.Tensor, boundaries: torch.Tensor) -> torch.Tensor:
    """The same count with comparisons and a sum only (devices without bucketize), in chunks of ~4M compares."""
    out = torch.empty(y.shape, dtype=torch.int64, device=y.device)
    flat_y, flat_out = y.reshape(-1), out.view(-1)
    step = max(1, 2**22 // max(1, boundaries.numel()))
    for i in range(0, flat_y.numel(), step):
        flat_out[i : i + step] = (flat_y[i : i + step, None] > boundaries).sum(dim=1)
    return out


def encode_4bit(y: torch.Tensor, quant_type: str) -> torch.Tensor:
    """4-bit codes (int64) of y = x / absmax."""
    dev = y.device
    if quant_type == "nf4":
        return _count_above(y, formats.table("nf4_boundaries", dev))
    rank = _count_above(y.abs(), formats.table("fp4_magnitude_boundaries", dev))
    rank_to_code = torch.tensor(formats.FP4_RANK_TO_CODE, dtype=torch.int64, device=dev)
    return rank_to_code[rank] + torch.where(y < 0, 8, 0)  # sign bit 0b1000 on a 0..7 magnitude code


def pack_4bit(codes: torch.Tensor, quant_type: str, nbytes: int) -> torch.Tensor:
    """Pack codes two per byte (element 2i in the high nibble) into nbytes, padding with the zero code."""
    zero = formats.ZERO_CODE[quant_type]
    full = torch.full((2 * nbytes,), zero, dtype=torch.uint8, device=codes.device)
    full[: codes.numel()] = codes.to(torch.uint8)
    return full[0::2] * 16 + full[1::2]  # high nibble * 16 + low nibble <= 255: exact in uint8, no shifts


def unpack_4bit(A: torch.Tensor, n: int) -> torch.Tensor:
    """First n 4-bit codes (int64) of a packed tensor of any storage dtype."""
    b = A.reshape(-1).view(torch.uint8)[: formats.packed_nbytes_4bit(n)].to(torch.int32)
    hi = torch.div(b, 16, rounding_mode="floor")
    codes = torch.stack([hi, b - hi * 16], dim=1).reshape(-1)[:n]
    return codes.long()


def _expand_absmax(absmax: torch.Tensor, n: int, blocksize: int) -> torch.Tensor:
    nb = formats.num_blocks(n, blocksize)
    return absmax.reshape(-1)[:nb, None].expand(nb, blocksize).reshape(-1)[:n]


def dequantize_codes(codes: torch.Tensor, code: torch.Tensor, absmax: torch.Tensor, blocksize: int) -> torch.Tensor:
    """fp32 ``code[q] * absmax[i // blocksize]``."""
    return code[codes] * _expand_absmax(absmax, codes.numel(), blocksize)


# --------------------------------------------------------------------------------------------------
# blockwise 8-bit
# --------------------------------------------------------------------------------------------------


def quantize_blockwise(A: torch.Tensor, code: torch.Tensor, blocksize: int):
    absmax, y = blockwise_absmax_and_scaled(A, blocksize)
    bounds = (code[:-1] + code[1:]) / 2
    q = _count_above(y, bounds).to(torch.uint8)
    return q.reshape(A.shape), absmax


def dequantize_blockwise(A: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor, blocksize: int, dtype):
    out = dequantize_codes(A.reshape(-1).long(), code, absmax, blocksize)
    return out.to(dtype).reshape(A.shape)


def dequantize_blockwise_out(A, absmax, code, blocksize, dtype, out):
    out.copy_(dequantize_blockwise(A, absmax, code, blocksize, dtype))


# --------------------------------------------------------------------------------------------------
# 4-bit
# --------------------------------------------------------------------------------------------------


def quantize_4bit(A: torch.Tensor, blocksize: int, quant_type: str, quant_storage):
    n = A.numel()
    absmax, y = blockwise_absmax_and_scaled(A, blocksize)
    numel = formats.storage_numel_4bit(n, quant_storage.itemsize)
    packed = pack_4bit(encode_4bit(y, quant_type), quant_type, numel * quant_storage.itemsize)
    return packed.view(quant_storage).reshape(numel, 1), absmax


def dequantize_4bit(A, absmax, blocksize: int, quant_type: str, shape: Sequence[int], dtype):
    n = math.prod(shape)
    out = dequantize_codes(unpack_4bit(A, n), formats.code_4bit(quant_type, A.device), absmax, blocksize)
    return out.to(dtype).reshape(tuple(shape))


def dequantize_4bit_out(A, absmax, blocksize, quant_type, shape, dtype, out):
    out.copy_(dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype))


def _weight_4bit(B, shapeB, absmax, code, blocksize, dtype):
    n = math.prod(shapeB)
    w = dequantize_codes(unpack_4bit(B, n), code, absmax, blocksize)
    return w.to(dtype).reshape(tuple(shapeB))


def gemv_4bit(A, B, shapeB, absmax, code, blocksize):
    """A @ W.T with W dequantized (with the given 16-entry codebook) to A's dtype."""
    return torch.nn.functional.linear(A, _weight_4bit(B, shapeB, absmax, code, blocksize, A.dtype))


def gemv_4bit_out(A, B, shapeB, absmax, code, blocksize, out):
    out.copy_(gemv_4bit(A, B, shapeB, absmax, code, blocksize))


def nested_absmax(absmax_8bit, absmax2, absmax_code, absmax_offset):
    """Reconstruct double-quantized absmax: ``code[q] * absmax2[i // 256] + offset`` in fp32."""
    codes = absmax_8bit.reshape(-1).long()
    return dequantize_codes(codes, absmax_code, absmax2, formats.NESTED_BLOCKSIZE) + absmax_offset


def gemm_4bit(
    A, B, shapeB, absmax, blocksize, quant_type, bias=None, absmax_8bit=None, absmax_code=None, absmax_offset=None
):
    if absmax_8bit is not None:
        absmax = nested_absmax(absmax_8bit, absmax, absmax_code, absmax_offset)
    w = _weight_4bit(B, shapeB, absmax, formats.code_4bit(quant_type, A.device), blocksize, A.dtype)
    return torch.nn.functional.linear(A, w, bias)


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


def _as_rows(A: torch.Tensor) -> torch.Tensor:
    return A.reshape(-1, A.shape[-1]) if A.dim() != 2 else A


def _int8_scale(x: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """round-half-even(x * s) with s = fp32(fp32(1 / absmax) * 127) (torch's 127 / absmax: a reciprocal, then a
    multiply); absmax 0 (or NaN) quantizes to 0."""
    q = _round_half_even(x * (torch.reciprocal(absmax) * formats.INT8_SCALE))
    q = torch.where(torch.isfinite(q), q, torch.zeros((), dtype=q.dtype, device=q.device))
    return q.clamp_(-127, 127).to(torch.int8)


def _outliers(A2: torch.Tensor, threshold: float):
    """(|A| with outliers zeroed, outlier mask or None, outlier column indices or None)."""
    absA = A2.float().abs()
    if threshold <= 0.0:
        return absA, None, None
    mask = absA >= threshold
    cols = torch.argwhere(mask.any(dim=0)).view(-1)
    return absA.masked_fill(mask, 0.0), mask, cols


def int8_vectorwise_quant(A: torch.Tensor, threshold: float = 0.0):
    """Row-wise absmax int8 quantization; with threshold > 0, outlier columns are zeroed."""
    A2 = _as_rows(A)
    absA, mask, cols = _outliers(A2, threshold)
    row_stats = _nan_amax(absA, dim=1) if A2.shape[1] else absA.new_zeros(A2.shape[0])
    x = A2.float() if mask is None else A2.float().masked_fill(mask, 0.0)
    q = _int8_scale(x, row_stats[:, None])
    if cols is not None and cols.numel():
        q[:, cols] = 0
    return q.reshape(A.shape), row_stats, cols


def int8_vectorwise_dequant(A: torch.Tensor, stats: torch.Tensor):
    A2 = _as_rows(A)
    return (A2.float() * stats.reshape(-1, 1) * formats.INT8_DEQUANT_SCALE).reshape(A.shape)


def int8_double_quant(A: torch.Tensor, threshold: float = 0.0):
    """Row-wise and column-wise int8 quantization (the column stats exclude outliers too)."""
    out_row, row_stats, cols = int8_vectorwise_quant(A, threshold)
    A2 = _as_rows(A)
    absA, mask, _ = _outliers(A2, threshold)
    col_stats = _nan_amax(absA, dim=0) if A2.shape[0] else absA.new_zeros(A2.shape[1])
    x = A2.float() if mask is None else A2.float().masked_fill(mask, 0.0)
    out_col = _int8_scale(x, col_stats[None, :])
    return out_row, out_col.reshape(A.shape), row_stats, col_stats, cols


_EXACT_K_CHUNK = 1024  # |int8 * int8| <= 2**14, so 1024 products sum exactly in fp32 (<= 2**24)


def int8_linear_matmul(A: torch.Tensor, B: torch.Tensor):
    """Exact int32 ``A @ B.T`` on any device: fp32 matmuls over K chunks whose sums are exact."""
    A2 = _as_rows(A)
    out = torch.zeros((A2.shape[0], B.shape[0]), dtype=torch.int32, device=A.device)
    for k0 in range(0, A2.shape[1], _EXACT_K_CHUNK):
        a = A2[:, k0 : k0 + _EXACT_K_CHUNK].float()
        b = B[:, k0 : k0 + _EXACT_K_CHUNK].float()
        out += (a @ b.T).to(torch.int32)
    return out.reshape(*A.shape[:-1], B.shape[0])


def int8_linear_matmul_out(A, B, out):
    out.copy_(int8_linear_matmul(A, B))


def int8_mm_dequant(A, row_stats, col_stats, dtype=None, bias=None):
    A2 = _as_rows(A)
    out = A2.float() * (row_stats.reshape(-1, 1) * col_stats.reshape(1, -1)) * formats.INT8_MM_DEQUANT_SCALE
    if bias is not None:
        out = out + bias.float()
    return out.to(dtype or torch.float16).reshape(A.shape)


def int8_scaled_mm(A, B, row_stats, col_stats, bias=None, dtype=None):
    return int8_mm_dequant(int8_linear_matmul(A, B), row_stats, col_stats, dtype=dtype or torch.float16, bias=bias)


def int8_mixed_scaled_mm(A, CA, CB, SCA, SCB, outlier_cols=None, bias=None):
    """LLM.int8(): int8 matmul of the inlier part plus the outlier columns in A's dtype."""
    out = int8_scaled_mm(CA, CB, SCA, SCB, bias=bias, dtype=A.dtype)
    A2 = _as_rows(A)
    if outlier_cols is None or outlier_cols.numel() == 0:
        return out, A2.new_empty((A2.shape[0], 0))
    subA = A2[:, outlier_cols]
    subB = int8_vectorwise_dequant(CB[:, outlier_cols], SCB).to(A.dtype)
    out2 = _as_rows(out).addmm(subA, subB.T)
    return out2.reshape(out.shape), subA


def int8_mixed_linear(A, CB, SCB, bias=None, threshold=0.0):
    """LLM.int8() inference forward in one op: int8_vectorwise_quant(A, threshold), then int8_mixed_scaled_mm
    with its outlier columns (int8_scaled_mm in A's dtype when there are none); out [..., N] in A's dtype."""
    A2 = _as_rows(A)
    CA, SCA, cols = int8_vectorwise_quant(A2, threshold)
    if cols is None:
        out = int8_scaled_mm(CA, CB, SCA, SCB, bias=bias, dtype=A.dtype)
    else:
        out, _ = int8_mixed_scaled_mm(A2, CA, CB, SCA, SCB, cols, bias)
    return out.reshape(*A.shape[:-1], CB.shape[0])


# --------------------------------------------------------------------------------------------------
# optimizers (formulas of bitsandbytes 0.50.2; policies in docs/formats.md)
# --------------------------------------------------------------------------------------------------


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded fp32 square root (IEEE sqrt, as native kernels compute it). torch.sqrt on CPU may
    go through MKL VML, which is off by one ulp on ~15% of inputs; the fp64 root rounded once is exact.
    Devices without float64 (MPS) get the same bits from _sqrt_fp32_exact."""
    if not _has_float64(x.device):
        return _sqrt_fp32_exact(x)
    return torch.sqrt(x.double()).to(x.dtype)


_MANT = 2**23  # fp32: one unit of the exponent field in the bit pattern


def _fields(bits: torch.Tensor):
    """(integer significand m, exponent e) of non-negative finite fp32 bit patterns (int32): value = m * 2**(e - 150)."""
    field = torch.div(bits, _MANT, rounding_mode="floor")
    frac = bits - field * _MANT
    normal = field > 0
    return (torch.where(normal, frac + _MANT, frac).long(), torch.where(normal, field, torch.ones_like(field)).long())


def _sqrt_fp32_exact(x: torch.Tensor, guess: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Correctly rounded fp32 sqrt without float64 (and without bit shifts): the device's fp32 sqrt, then each
    result r is checked against the rounding midpoints with exact int64 arithmetic on the significands
    (x > (r + ulp/2)**2 -> next float up; x < (r - ulp_below/2)**2 -> next float down), twice (the device's sqrt
    is within an ulp or two; `guess` replaces it in tests). Zero, +Inf, NaN and negative inputs keep the device's
    sqrt."""
    r = torch.sqrt(x) if guess is None else guess
    ok = (x > 0) & torch.isfinite(x)
    xs = torch.where(ok, x, torch.ones_like(x))  # placeholders keep the integer steps in range
    mx, ex = _fields(xs.view(torch.int32))
    pow2 = torch.tensor([2**i for i in range(63)], dtype=torch.int64, device=x.device)
    for _ in range(2):
        rs = torch.where(ok, r, torch.ones_like(r))
        rbits = rs.view(torch.int32)
        mr, er = _fields(rbits)  # r is normal: sqrt of the smallest subnormal is about 2**-74.5
        # x vs (mr + h)**2 * 2**(2 er - 300) with h = 1/2 (1/4 below a power of two): compare x * 2**(302 - 2 er)
        # (or * 2**(304 - 2 er)) = mx * 2**d with d = ex - 2 er + 152 (+ 2), an exact int64, to (2 mr +- 1)**2
        d = (ex - 2 * er + 152).clamp(0, 60)
        lhs = mx * pow2[d]
        up = lhs > (2 * mr + 1) * (2 * mr + 1)
        pow_of_two = mr == _MANT
        down_mid = torch.where(pow_of_two, (4 * mr - 1) * (4 * mr - 1), (2 * mr - 1) * (2 * mr - 1))
        down = torch.where(pow_of_two, mx * pow2[(d + 2).clamp(0, 62)], lhs) < down_mid
        step = torch.where(up, 1, torch.where(down, -1, 0)).to(torch.int32)
        r = torch.where(ok, (rbits + step).view(torch.float32), r)
    return r


def _optimizer_step_fp32(name, g, p, s1, s2, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr, max_unorm,
                         param_norm, unorm_vec):
    """One update in fp32 on flat tensors. Returns (p, s1, s2); s1 is [2, n] for ademamix."""
    if name in ("momentum", "lars", "rmsprop", "adagrad") and weight_decay > 0.0:
        g = g + p * weight_decay  # coupled (L2) weight decay
    if name in ("adam", "lamb", "ademamix", "lion") and weight_decay > 0.0:
        p = p * (1.0 - lr * weight_decay)  # decoupled weight decay
    if name in ("adam", "lamb"):
        s1 = s1 * beta1 + (1.0 - beta1) * g
        s2 = s2 * beta2 + (1.0 - beta2) * g * g
        c1 = 1.0 - beta1**step
        c2 = math.sqrt(1.0 - beta2**step)
        update = (s1 / c1) / (_sqrt(s2 / (c2 * c2)) + eps)  # direction used for the update norm
        step_dir = (-lr * c2 / c1) * (s1 / (_sqrt(s2) + eps * c2))
    elif name == "ademamix":
        m1 = s1[0] * beta1 + (1.0 - beta1) * g
        m2 = s1[1] * beta3 + (1.0 - beta3) * g
        s2 = s2 * beta2 + (1.0 - beta2) * g * g
        c1 = 1.0 - beta1**step
        c2 = math.sqrt(1.0 - beta2**step)
        s1 = torch.stack([m1, m2])
        update = (m1 / c1 + alpha * m2) / (_sqrt(s2) / c2 + eps)
        step_dir = -lr * update
    elif name in ("momentum", "lars"):
        s1 = g.clone() if step == 1 else s1 * beta1 + g
        update = s1
        step_dir = -lr * s1
    elif name == "lion":
        step_dir = -lr * torch.sign(s1 * beta1 + (1.0 - beta1) * g)
        s1 = s1 * beta2 + (1.0 - beta2) * g
        update = s1
    elif name == "rmsprop":
        s1 = s1 * beta1 + (1.0 - beta1) * g * g
        update = g / (_sqrt(s1) + eps)
        step_dir = -lr * update
    elif name == "adagrad":
        s1 = s1 + g * g
        update = g / (_sqrt(s1) + eps)
        step_dir = -lr * update
    else:  # unreachable: names are checked
        raise ValueError(f"unknown optimizer_name {name!r}")
    if max_unorm > 0.0:
        unorm = torch.sqrt(torch.sum(update * update))
        unorm_vec.copy_((unorm * unorm).reshape(unorm_vec.shape))
        limit = max_unorm * param_norm + (eps if name in ("momentum", "lars", "rmsprop", "adagrad", "lion") else 0.0)
        scale = torch.where(unorm > limit, limit / unorm, torch.ones_like(unorm))
        step_dir = step_dir * scale
    return p + step_dir, s1, s2


def _grad_mask(g: torch.Tensor, skip_zeros: bool) -> torch.Tensor:
    """Elements that get updated: finite gradients (and non-zero ones with skip_zeros)."""
    keep = torch.isfinite(g)
    if skip_zeros:
        keep &= g != 0
    return keep


def optimizer_update_32bit(optimizer_name, g, p, state1, state2, unorm_vec, max_unorm, param_norm, beta1, beta2,
                           beta3, alpha, eps, weight_decay, step, lr, gnorm_scale, skip_zeros=False):
    n = p.numel()
    gf = g.reshape(-1).float() * gnorm_scale
    keep = _grad_mask(gf, skip_zeros)
    gf = torch.where(keep, gf, torch.zeros_like(gf))
    pf = p.reshape(-1).float()
    s1 = state1.reshape(2, n) if optimizer_name == "ademamix" else state1.reshape(-1)
    s2 = state2.reshape(-1) if state2 is not None else None
    new_p, new_s1, new_s2 = _optimizer_step_fp32(
        optimizer_name, gf, pf, s1, s2, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr, max_unorm,
        param_norm, unorm_vec,
    )
    p.copy_(torch.where(keep, new_p, pf).to(p.dtype).reshape(p.shape))
    state1.copy_(torch.where(keep, new_s1, s1).reshape(state1.shape))
    if state2 is not None:
        state2.copy_(torch.where(keep, new_s2, s2).reshape(state2.shape))


def _requantize_state(x: torch.Tensor, qmap: torch.Tensor, keep_sign: bool):
    """Blockwise (256) nearest-code quantization of optimizer state; optionally keeps nonzero signs."""
    codes, absmax = quantize_blockwise(x, qmap, formats.OPTIMIZER_BLOCKSIZE)
    if keep_sign:
        q = codes.long()
        v = qmap[q]
        up = (x > 0) & (v <= 0)
        down = (x < 0) & (v >= 0)
        q = torch.where(up, (q + 1).clamp(max=255), torch.where(down, (q - 1).clamp(min=0), q))
        codes = q.to(torch.uint8)
    return codes, absmax


def optimizer_update_8bit_blockwise(optimizer_name, g, p, state1, state2, beta1, beta2, beta3, alpha, eps, step, lr,
                                    qmap1, qmap2, absmax1, absmax2, weight_decay, gnorm_scale, skip_zeros=False):
    n = p.numel()
    bs = formats.OPTIMIZER_BLOCKSIZE
    nb = formats.num_blocks(n, bs)
    halves = 2 if optimizer_name == "ademamix" else 1
    s1_codes = state1.reshape(halves, n)
    am1 = absmax1.reshape(-1)[: halves * nb].reshape(halves, nb)
    s1 = torch.stack([dequantize_codes(s1_codes[h].long(), qmap1, am1[h], bs) for h in range(halves)])
    s1 = s1 if halves == 2 else s1[0]
    s2 = None
    if state2 is not None:
        s2 = dequantize_codes(state2.reshape(-1).long(), qmap2, absmax2.reshape(-1), bs)

    gf = g.reshape(-1).float() * gnorm_scale
    keep = _grad_mask(gf, skip_zeros)
    gf = torch.where(keep, gf, torch.zeros_like(gf))
    pf = p.reshape(-1).float()
    new_p, new_s1, new_s2 = _optimizer_step_fp32(
        optimizer_name, gf, pf, s1, s2, beta1, beta2, beta3, alpha, eps, weight_decay, step, lr, 0.0, 1.0, None
    )
    p.copy_(torch.where(keep, new_p, pf).to(p.dtype).reshape(p.shape))
    new_s1 = torch.where(keep, new_s1, s1).reshape(halves, n)
    for h in range(halves):
        codes, am = _requantize_state(new_s1[h], qmap1, keep_sign=True)
        s1_codes[h].copy_(codes)
        am1[h].copy_(am)
    state1.copy_(s1_codes.reshape(state1.shape))
    absmax1.reshape(-1)[: halves * nb].copy_(am1.reshape(-1))
    if state2 is not None:
        codes, am = _requantize_state(torch.where(keep, new_s2, s2), qmap2, keep_sign=False)
        state2.copy_(codes.reshape(state2.shape))
        absmax2.reshape(-1)[:nb].copy_(am)


# op name -> reference function (the registry registers these as the "default" kernels)
KERNELS = {
    "quantize_blockwise": quantize_blockwise,
    "dequantize_blockwise": dequantize_blockwise,
    "dequantize_blockwise.out": dequantize_blockwise_out,
    "quantize_4bit": quantize_4bit,
    "dequantize_4bit": dequantize_4bit,
    "dequantize_4bit.out": dequantize_4bit_out,
    "gemv_4bit": gemv_4bit,
    "gemv_4bit.out": gemv_4bit_out,
    "gemm_4bit": gemm_4bit,
    "int8_vectorwise_quant": int8_vectorwise_quant,
    "int8_vectorwise_dequant": int8_vectorwise_dequant,
    "int8_double_quant": int8_double_quant,
    "int8_linear_matmul": int8_linear_matmul,
    "int8_linear_matmul.out": int8_linear_matmul_out,
    "int8_mm_dequant": int8_mm_dequant,
    "int8_scaled_mm": int8_scaled_mm,
    "int8_mixed_scaled_mm": int8_mixed_scaled_mm,
    "int8_mixed_linear": int8_mixed_linear,
    "optimizer_update_32bit": optimizer_update_32bit,
    "optimizer_update_8bit_blockwise": optimizer_update_8bit_blockwise,
}
