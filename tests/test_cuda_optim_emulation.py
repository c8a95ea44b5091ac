"""The CUDA optimizer kernels' logic without a GPU: bnb_core._cuda.emulate_* run the kernels' lane-level code
(backends/cuda/optim_core.cuh: loads/stores, update rules, Eytzinger nearest-code search, sign fix, table
construction) and their reduction order lane by lane on host memory. Checked here against the reference:
bit-exact wherever the reference's result does not depend on a summation order (everything except the
trust-ratio norm), within the conformance bounds otherwise. The kernels themselves run on a GPU only
(tests/test_backend_ops.py there); the warp/CTA plumbing around this code is not covered here.
"""

import math

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core import conformance, formats, reference
from bnb_core._ops import OPTIMIZER_NAMES, TWO_STATE_OPTIMIZERS
from bnb_core.backends import cuda as cuda_backend

_DT = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


@pytest.fixture(scope="module")
def mod():
    if cuda_backend._mod is None:
        pytest.skip(cuda_backend.IMPORT_ERROR)
    return cuda_backend._mod


def _p(t):
    return 0 if t is None else t.data_ptr()


def emu32(m, name, g, p, s1, s2, uv, max_unorm, param_norm, b1, b2, b3, alpha, eps, wd, step, lr, gs, skip=False):
    st = m.emulate_optimizer_update_32bit(OPTIMIZER_NAMES.index(name), _DT[p.dtype], g.data_ptr(), p.data_ptr(),
                                          p.numel(), s1.data_ptr(), _p(s2), _p(uv), max_unorm, param_norm, b1, b2, b3,
                                          alpha, eps, wd, step, lr, gs, skip)
    assert st == 0, m.error_message(st)


def emu8(m, name, g, p, s1, s2, b1, b2, b3, alpha, eps, step, lr, q1, q2, a1, a2, wd, gs, skip=False):
    st = m.emulate_optimizer_update_8bit_blockwise(OPTIMIZER_NAMES.index(name), _DT[p.dtype], g.data_ptr(),
                                                   p.data_ptr(), p.numel(), s1.data_ptr(), _p(s2), b1, b2, b3, alpha,
                                                   eps, step, lr, q1.data_ptr(), _p(q2), a1.data_ptr(), _p(a2), wd, gs,
                                                   skip)
    assert st == 0, m.error_message(st)


def _clone(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if a.is_floating_point():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return torch.equal(a, b)


_CASES = [c for c in conformance.all_cases() if c.op.startswith("optimizer_update")]


@pytest.mark.parametrize("case", _CASES, ids=[f"{c.op[17:]}-{c.id}" for c in _CASES])
def test_conformance_cases(mod, case):
    args, _ = case.make(torch.Generator().manual_seed(0))
    ref, emu = _clone(args), _clone(args)
    reference.KERNELS[case.op](*ref)
    (emu32 if case.op.endswith("32bit") else emu8)(mod, *emu)
    mut, mut_ref = [emu[i] for i in case.mutates], [ref[i] for i in case.mutates]
    case.compare(args, None, None, mut, mut_ref)
    norm = case.op.endswith("32bit") and args[6] > 0.0  # max_unorm: the norm is a sum, its order differs
    if norm:
        torch.testing.assert_close(emu[5], ref[5], rtol=1e-5, atol=0)  # unorm_vec
    else:
        for i, (a, b) in enumerate(zip(mut, mut_ref)):
            assert _same(a, b), f"written argument {case.mutates[i]} is not bit-exact"


def _inputs32(name, dtype, n, seed, offset=0):
    g = torch.Generator().manual_seed(seed)
    halves = 2 if name == "ademamix" else 1
    # `offset` elements in front: misaligned bases exercise the scalar (non-vector) paths
    p = torch.randn(n + offset, generator=g).to(dtype)[offset:]
    gr = (torch.randn(n + offset, generator=g) * 0.1).to(dtype)[offset:]
    gr[::7] = 0
    s1 = (torch.randn(halves * n + offset, generator=g) * 0.01)[offset:]
    if name in ("rmsprop", "adagrad"):
        s1 = s1.abs()
    s2 = (torch.rand(n + offset, generator=g) * 1e-3)[offset:] if name in TWO_STATE_OPTIMIZERS else None
    return gr, p, s1, s2


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,offset,step,skip,gs,wd", [
    (1, 0, 1, False, 1.0, 0.0), (7, 1, 1, True, 0.5, 0.01), (257, 3, 2, True, 1.0, 0.0), (1029, 1, 5, False, 2.0, 0.1),
])
def test_32bit_edge_cases_bit_exact(mod, name, dtype, n, offset, step, skip, gs, wd):
    gr, p, s1, s2 = _inputs32(name, dtype, n, seed=n + step, offset=offset)
    args = [name, gr, p, s1, s2, None, 0.0, 0.0, 0.9, 0.99, 0.999, 5.0, 1e-8, wd, step, 1e-2, gs, skip]
    ref, emu = _clone(args), _clone(args)
    reference.optimizer_update_32bit(*ref)
    emu32(mod, *emu)
    for i in (2, 3, 4):
        assert _same(emu[i], ref[i]), (i, emu[i], ref[i])


@pytest.mark.parametrize("name", ["lamb", "lars", "adam", "lion"])
@pytest.mark.parametrize("n", [5, 4097, 300_001])
def test_32bit_trust_ratio(mod, name, n):
    """unorm_vec = ||update||^2 and the steps scaled by min(1, limit / ||update||); 300k elements use several
    norm partials (CTAs) and the fixed-order reduction."""
    gr, p, s1, s2 = _inputs32(name, torch.float32, n, seed=3)
    pn = float(p.norm())
    for max_unorm in (1e-4, 10.0):  # clipped, and not clipped
        args = [name, gr, p, s1, s2, torch.full((1,), 7.0), max_unorm, pn, 0.9, 0.99, 0.0, 0.0, 1e-8, 0.01, 3, 1e-2,
                1.0, False]
        ref, emu = _clone(args), _clone(args)
        reference.optimizer_update_32bit(*ref)
        emu32(mod, *emu)
        torch.testing.assert_close(emu[5], ref[5], rtol=2e-6, atol=0)
        travel = (ref[2] - p).abs().max()
        torch.testing.assert_close(emu[2], ref[2], rtol=0, atol=float(travel) * 1e-5 + 1e-30)
        torch.testing.assert_close(emu[3], ref[3], rtol=0, atol=0)  # states do not depend on the norm


def _inputs8(name, dtype, n, seed, offset=0):
    g = torch.Generator().manual_seed(seed)
    halves = 2 if name == "ademamix" else 1
    nb = formats.num_blocks(n, formats.OPTIMIZER_BLOCKSIZE)
    p = torch.randn(n + offset, generator=g).to(dtype)[offset:]
    gr = (torch.randn(n + offset, generator=g) * 0.1).to(dtype)[offset:]
    gr[5::11] = 0
    if n > 9:
        gr[9] = float("nan")
    low = 127 if name in ("rmsprop", "adagrad") else 0
    s1 = torch.randint(low, 256, (halves * n + offset,), generator=g, dtype=torch.uint8)[offset:]
    a1 = torch.rand(halves * nb, generator=g) * 0.01
    two = name in TWO_STATE_OPTIMIZERS
    s2 = torch.randint(0, 256, (n + offset,), generator=g, dtype=torch.uint8)[offset:] if two else None
    a2 = torch.rand(nb, generator=g) * 1e-3 if two else None
    q1 = formats.table("dynamic").clone()
    q2 = formats.table("dynamic_unsigned").clone() if two else None
    return gr, p, s1, s2, q1, q2, a1, a2


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,offset,step,skip,gs,wd", [
    (1, 0, 1, False, 1.0, 0.0), (255, 1, 1, True, 0.5, 0.01), (257, 3, 2, True, 1.0, 0.0),
    (2053, 0, 7, False, 2.0, 0.1), (4096, 2, 3, False, 1.0, 0.0),
])
def test_8bit_edge_cases_bit_exact(mod, name, dtype, n, offset, step, skip, gs, wd):
    gr, p, s1, s2, q1, q2, a1, a2 = _inputs8(name, dtype, n, seed=n * 3 + step, offset=offset)
    args = [name, gr, p, s1, s2, 0.9, 0.99, 0.999, 5.0, 1e-8, step, 1e-2, q1, q2, a1, a2, wd, gs, skip]
    ref, emu = _clone(args), _clone(args)
    reference.optimizer_update_8bit_blockwise(*ref)
    emu8(mod, *emu)
    for i in (2, 3, 4, 14, 15):
        assert _same(emu[i], ref[i]), (i, emu[i], ref[i])


def test_8bit_requantization_on_every_boundary(mod):
    """Momentum with beta1 = 0 and lr = 0 makes the new state equal g; with a 1.0 in each block (absmax 1) the
    scaled value is g itself. g runs over every boundary of the signed map and both float neighbours: codes must
    be the reference's (ties go to the lower code, nonzero values keep their sign)."""
    q = formats.table("dynamic")
    b = (q[:-1] + q[1:]) / 2
    vals = torch.cat([b, torch.nextafter(b, torch.full_like(b, -2)), torch.nextafter(b, torch.full_like(b, 2)), q])
    vals = vals[vals.abs() <= 1]
    per = 255
    nblk = math.ceil(vals.numel() / per)
    blocks = torch.zeros(nblk, 256)
    blocks[:, 0] = 1.0
    flat = torch.cat([vals, torch.zeros(nblk * per - vals.numel())]).view(nblk, per)
    blocks[:, 1:] = flat
    g = blocks.reshape(-1).contiguous()
    n = g.numel()
    p = torch.zeros(n)
    s1 = torch.full((n,), 127, dtype=torch.uint8)
    a1 = torch.ones(nblk)
    args = ["momentum", g, p, s1, None, 0.0, 0.0, 0.0, 0.0, 0.0, 2, 0.0, q.clone(), None, a1, None, 0.0, 1.0, False]
    ref, emu = _clone(args), _clone(args)
    reference.optimizer_update_8bit_blockwise(*ref)
    emu8(mod, *emu)
    assert torch.equal(emu[14], torch.ones(nblk))
    assert torch.equal(emu[3], ref[3])


def test_8bit_unsorted_code_counts_every_boundary(mod):
    """A code table whose boundaries do not ascend takes the counting path: the code is the number of fp32
    boundaries strictly below the scaled value (then the sign fix), for any table."""
    g0 = torch.Generator().manual_seed(1)
    q = formats.table("dynamic")[torch.randperm(256, generator=g0)].contiguous()
    n = 777
    nb = formats.num_blocks(n, 256)
    gr = torch.randn(n, generator=g0) * 0.1
    p = torch.randn(n, generator=g0)
    s1 = torch.randint(0, 256, (n,), generator=g0, dtype=torch.uint8)
    a1 = torch.rand(nb, generator=g0) * 0.01
    # momentum, step 3: s = old * beta1 + g
    old = q[s1.long()] * a1.repeat_interleave(256)[:n]
    new = old * 0.9 + gr
    emu8(mod, "momentum", gr, p, s1, None, 0.9, 0.0, 0.0, 0.0, 0.0, 3, 1e-3, q, None, a1, None, 0.0, 1.0)
    x = torch.nn.functional.pad(new, (0, nb * 256 - n)).view(nb, 256)
    am = x.abs().amax(1)
    assert torch.equal(a1, am)
    y = (x * 1.0) * torch.reciprocal(am)[:, None]
    bnd = (q[:-1] + q[1:]) / 2
    codes = (y.reshape(-1, 1) > bnd[None, :]).sum(1)[:n]
    v = q[codes]
    codes = torch.where((new > 0) & (v <= 0), (codes + 1).clamp(max=255),
                        torch.where((new < 0) & (v >= 0), (codes - 1).clamp(min=0), codes))
    assert torch.equal(s1.long(), codes)


def test_8bit_nan_state_block(mod):
    """A NaN in a block's new state makes that block's absmax NaN (codes of the zero), as quantize_blockwise."""
    n = 512
    gr, p, s1, s2, q1, q2, a1, a2 = _inputs8("adam", torch.float32, n, seed=2)
    a1[1] = float("nan")  # block 1 dequantizes to NaN
    args = ["adam", gr, p, s1, s2, 0.9, 0.99, 0.0, 0.0, 1e-8, 2, 1e-3, q1, q2, a1, a2, 0.0, 1.0, False]
    ref, emu = _clone(args), _clone(args)
    reference.optimizer_update_8bit_blockwise(*ref)
    emu8(mod, *emu)
    assert torch.isnan(emu[14][1]) and not torch.isnan(emu[14][0])
    for i in (2, 3, 4, 14, 15):
        assert _same(emu[i], ref[i]), i
