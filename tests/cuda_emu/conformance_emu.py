"""Run the CUDA backend's kernels on CPU: bnb-core's conformance cases (and the layout, grid, schedule and
special-value cases below) through the kernels of backends/cuda compiled for the emulator (the ``_cuda_emu``
module built by tests/cuda_emu/run.sh), driven by the CUDA backend's own Python glue
(bnb_core/backends/cuda.py) with CPU tensors (under the emulator, device pointers are host pointers).

tests/test_cuda_emu.py runs this in a subprocess, so that a memory error in an emulated kernel (a read past
the end of a guarded buffer faults) fails the test instead of killing pytest:

    python tests/cuda_emu/conformance_emu.py build-cuda-emu/_cuda_emu.cpython-311-x86_64-linux-gnu.so

Output: one JSON object per line, {"suite", "op", "id", "status": "pass" | "fail" | "skip", "detail"}, then
{"done": true, ...}; "skip": the op's entry point is not in the module (its kernel family is not
emulator-ready yet, see SKIPPED_FAMILIES). Comparisons are the conformance suite's: codes, absmax and packing bit-exact.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib.util
import json
import mmap
import sys
import traceback

import torch

from bnb_core import conformance, formats, reference
from bnb_core._ops import OPS
from bnb_core.backends import cuda as glue

FLOATS = conformance.FLOATS
_DT = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
_QT = {"nf4": 0, "fp4": 1}


def load_module(path: str):
    spec = importlib.util.spec_from_file_location("_cuda_emu", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def emit(**kw):
    print(json.dumps(kw), flush=True)


# ------------------------------------------------------------------------------------ guarded buffers

_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_keep = []  # the mappings behind guarded tensors stay mapped for the whole run


def guarded(t: torch.Tensor, start: int | None = None) -> torch.Tensor:
    """A copy of `t` in a mapping followed by an inaccessible page.

    start=None: the last byte of `t` is the last accessible byte (a read past the end faults).
    start=k: `t` begins k bytes past a 64-byte aligned address (k sets which of the kernels' vector / scalar
    paths run); the bytes around it up to the guard page read as 0xFF (NaN / -1), so a read past the end
    that stays on the page shows up as a wrong result.
    """
    t = t.contiguous()
    nbytes = t.numel() * t.element_size()
    total = (64 + (start or 0) + nbytes + 2 * _PAGE - 1) // _PAGE * _PAGE + _PAGE
    m = mmap.mmap(-1, total)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    guard = base + total - _PAGE
    if _libc.mprotect(ctypes.c_void_p(guard), ctypes.c_size_t(_PAGE), 0) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    _keep.append(m)
    torch.frombuffer(m, dtype=torch.uint8, count=total - _PAGE).fill_(0xFF)
    first = guard - nbytes - base if start is None else (-base) % 64 + start
    # a tensor whose storage begins at that byte (any alignment; a uint8 view could not be viewed as wider types)
    out = torch.frombuffer(m, dtype=t.dtype, count=t.numel(), offset=first).view(t.shape)
    out.copy_(t)
    return out


def offset_view(t: torch.Tensor, offset_bytes: int) -> torch.Tensor:
    """A copy of `t` starting `offset_bytes` past a 64-byte aligned address, 0xFF bytes around it."""
    return guarded(t, offset_bytes)


# ------------------------------------------------------------------------------------ running cases


def run_case(case: conformance.Case, seed: int = 0, transform=None):
    """conformance.run_case with the CUDA glue's kernel called directly on CPU tensors. `transform(args)` may
    move arguments into guarded or misaligned buffers (values unchanged)."""
    g = torch.Generator().manual_seed(seed)
    args, kwargs = case.make(g)
    ref_args = [conformance._clone(a) for a in args]
    dev_args = [conformance._clone(a) for a in args]
    if transform is not None:
        dev_args = transform(list(dev_args))
    OPS[case.op].check(*dev_args, **kwargs)
    fn, supports = glue.KERNELS[case.op]
    if supports is not None and not supports(*dev_args, **kwargs):
        raise AssertionError("the CUDA kernel declines this case (the GPU would run the reference)")
    out = fn(*dev_args, **kwargs)
    ref = OPS[case.op].reference(*ref_args, **kwargs)
    mut = [dev_args[i] for i in case.mutates]
    mut_ref = [ref_args[i] for i in case.mutates]
    case.compare(ref_args, out, ref, mut, mut_ref)


def attempt(suite, op, cid, fn):
    emit(running=f"{suite} {op} {cid}")  # names the case if an emulated kernel kills the process
    try:
        fn()
    except AssertionError as e:
        emit(suite=suite, op=op, id=cid, status="fail", detail=str(e)[:2000])
    except Exception as e:  # noqa: BLE001 - any error is a failure of that case
        if isinstance(e, AttributeError) and "'_cuda_emu'" in str(e):
            # an entry point of a kernel family the emulator build left out (SKIPPED_FAMILIES)
            emit(suite=suite, op=op, id=cid, status="skip", detail=str(e)[:500])
            return
        emit(suite=suite, op=op, id=cid, status="fail",
             detail="".join(traceback.format_exception_only(type(e), e)).strip()[:2000])
    else:
        emit(suite=suite, op=op, id=cid, status="pass", detail="")


def cuda_cases():
    return [c for c in conformance.all_cases() if c.op in glue.KERNELS]


# ------------------------------------------------------------------------------------ suites


def suite_conformance(emu):
    for case in cuda_cases():
        attempt("conformance", case.op, case.id, lambda case=case: run_case(case))


def _pick(cases, ids, suite):
    picked = [c for c in cases if c.id in ids]
    for missing in sorted(ids - {c.id for c in picked}):  # a renamed conformance case must not shrink coverage
        emit(suite=suite, op="-", id=missing, status="fail", detail="no conformance case has this id any more")
    return picked


# a few cases per op: odd sizes, every dtype, large and small blocksizes, storage padding
_SUBSET = {
    "63-float32-bs16", "4097-float16-bs64", "4097-bfloat16-bs4096", "33x65-float32-bs256",
    "4097-float32-bs64-nonfinite", "3x100003-bfloat16-bs4096",
    "65x33-float32-nf4-bs64-uint8", "129x257-bfloat16-fp4-bs64-uint8", "7-float16-nf4-bs64-uint8",
    "5x4099-bfloat16-nf4-bs32-uint8-scaled", "5x4099-bfloat16-fp4-bs4096-uint8-scaled",
    "3x1001-float16-nf4-bs128-float32", "3x1001-float16-nf4-bs128-bfloat16", "4099-float32-fp4-bs64-uint8-nonfinite",
}


def suite_grid(emu):
    """Grids smaller than the work: every grid-stride loop (and the 4-bit padding loop) must still cover it."""
    cases = _pick(cuda_cases(), _SUBSET, "grid")
    try:
        for limit in (1, 2, 3):
            emu.set_max_grid(limit)
            for case in cases:
                attempt("grid", case.op, f"{case.id}-grid{limit}", lambda case=case: run_case(case))
    finally:
        emu.set_max_grid(0)


def suite_schedule(emu):
    """Threads of a block run in another order between barriers (a missing barrier changes results), blocks in
    reverse order."""
    cases = _pick(cuda_cases(), _SUBSET, "schedule")
    try:
        for name, mode, order in (("desc", 1, 0), ("random", 2, 1)):
            emu.set_schedule(mode, 12345)
            emu.set_block_order(order)
            for case in cases:
                attempt("schedule", case.op, f"{case.id}-{name}", lambda case=case: run_case(case))
    finally:
        emu.set_schedule(0, 0)
        emu.set_block_order(0)


def _misalign_transform(shift_elems):
    """Move every tensor argument `shift_elems` elements past a 64-byte aligned address: off the 128-bit
    alignment the kernels' vector paths need (they must take their scalar paths), values unchanged."""

    def transform(args):
        return [offset_view(a, shift_elems * a.element_size()) if isinstance(a, torch.Tensor) and a.numel() > 0
                else a for a in args]

    return transform


def _guard_transform(start):
    def transform(args):
        return [guarded(a, start) if isinstance(a, torch.Tensor) and a.numel() > 0 else a for a in args]

    return transform


def suite_layout(emu):
    """Misaligned views (the scalar paths next to the 128-bit ones) and buffers that end at an inaccessible page
    (a kernel reading past its input faults)."""
    cases = _pick(cuda_cases(), _SUBSET, "layout")
    for case in cases:
        for shift in (1, 2, 3):
            attempt("layout", case.op, f"{case.id}-offset{shift}",
                    lambda case=case, shift=shift: run_case(case, transform=_misalign_transform(shift)))
        for start in (None, 0, 2, 4):
            attempt("layout", case.op, f"{case.id}-guard{'end' if start is None else start}",
                    lambda case=case, start=start: run_case(case, transform=_guard_transform(start)))
    # quantize outputs at misaligned addresses: the native entry points take any pointer (the glue allocates)
    code = formats.table("dynamic").clone()
    for dtype in FLOATS:
        for n, bs in ((4097, 64), (1000, 16), (300, 256)):
            x = torch.randn(n, generator=torch.Generator().manual_seed(n)).to(dtype)
            for off in (1, 3, 5):
                def q8(x=x, bs=bs, off=off, n=n, dtype=dtype):
                    buf = torch.full((n + off + 8,), 0xAB, dtype=torch.uint8)
                    am = torch.empty(formats.num_blocks(n, bs))
                    xg = guarded(x)
                    s = emu.quantize_blockwise(0, 0, _DT[dtype], xg.data_ptr(), n, code.data_ptr(), bs,
                                               buf.data_ptr() + off, am.data_ptr())
                    assert s == 0, emu.error_message(s)
                    rq, ra = reference.quantize_blockwise(x, code, bs)
                    conformance._exact(buf[off:off + n], rq.reshape(-1), "codes")
                    conformance._exact(am, ra, "absmax")
                    assert bool((buf[:off] == 0xAB).all()) and bool((buf[off + n:] == 0xAB).all()), "wrote outside"

                attempt("layout", "quantize_blockwise", f"{n}-{str(dtype)[6:]}-bs{bs}-out+{off}", q8)
                for qt in ("nf4", "fp4"):
                    def q4(x=x, off=off, n=n, dtype=dtype, qt=qt):
                        nbytes = (n + 1) // 2 + 3  # 3 bytes of storage padding
                        buf = torch.full((nbytes + off + 8,), 0xAB, dtype=torch.uint8)
                        am = torch.empty(formats.num_blocks(n, 64))
                        s = emu.quantize_4bit(0, 0, _DT[dtype], guarded(x).data_ptr(), n, 64, _QT[qt],
                                              buf.data_ptr() + off, nbytes, am.data_ptr())
                        assert s == 0, emu.error_message(s)
                        absmax, y = reference.blockwise_absmax_and_scaled(x, 64)
                        rp = reference.pack_4bit(reference.encode_4bit(y, qt), qt, nbytes)
                        conformance._exact(buf[off:off + nbytes], rp, "packed")
                        conformance._exact(am, absmax, "absmax")
                        assert bool((buf[:off] == 0xAB).all()) and bool((buf[off + nbytes:] == 0xAB).all()), \
                            "wrote outside"

                    attempt("layout", "quantize_4bit", f"{n}-{str(dtype)[6:]}-{qt}-out+{off}", q4)


def _special_input(dtype, bs):
    """Blocks of special values, one kind per block: NaN, +-Inf, subnormals, zeros, -0, the largest finite
    value, a lone NaN or Inf among normal values, values just below a power of two."""
    info = torch.finfo(dtype)
    tiny_sub = info.smallest_normal / 4 if dtype != torch.float32 else 1e-40
    kinds = [
        torch.full((bs,), float("nan")),
        torch.full((bs,), float("inf")),
        torch.tensor([float("inf"), float("-inf")] * (bs // 2)),
        torch.full((bs,), tiny_sub) * torch.linspace(-1, 1, bs),
        torch.zeros(bs),
        -torch.zeros(bs),
        torch.full((bs,), info.max) * torch.linspace(-1, 1, bs),
        torch.cat([torch.tensor([float("nan")]), torch.linspace(-3, 3, bs - 1)]),
        torch.cat([torch.linspace(-3, 3, bs - 1), torch.tensor([float("-inf")])]),
        torch.full((bs,), 0.99999994) * torch.linspace(-1, 1, bs),
        torch.full((bs,), 1e-30),
    ]
    x = torch.cat(kinds)
    return torch.cat([x, torch.linspace(-1, 1, bs // 2 + 3)]).to(dtype)  # and a partial last block


def suite_special(emu):
    """NaN / Inf / subnormal / zero / extreme blocks for every dtype and blocksize class; 8-bit codes that are
    not the default map, including unsorted ones (the kernel's counting path)."""
    dyn = formats.table("dynamic").clone()
    for dtype in FLOATS:
        for bs in (16, 64, 256, 1024):
            x = _special_input(dtype, bs)
            n = x.numel()

            def q8(x=x, bs=bs):
                q, am = glue.quantize_blockwise(x, dyn, bs)
                rq, ra = reference.quantize_blockwise(x, dyn, bs)
                conformance._exact(q, rq, "codes")
                conformance._exact(am, ra, "absmax")
                for od in FLOATS:
                    out = glue.dequantize_blockwise(rq, ra, dyn, bs, od)
                    conformance._exact(out, reference.dequantize_blockwise(rq, ra, dyn, bs, od), f"dequant {od}")

            attempt("special", "quantize_blockwise", f"{str(dtype)[6:]}-bs{bs}", q8)
            if bs < 32:
                continue
            for qt in ("nf4", "fp4"):
                for storage in (torch.uint8, torch.float32):
                    def q4(x=x, bs=bs, qt=qt, storage=storage, n=n):
                        p, am = glue.quantize_4bit(x, bs, qt, storage)
                        rp, ra = reference.quantize_4bit(x, bs, qt, storage)
                        conformance._exact(p, rp, "packed")
                        conformance._exact(am, ra, "absmax")
                        for od in FLOATS:
                            out = glue.dequantize_4bit(rp, ra, bs, qt, [n], od)
                            conformance._exact(out, reference.dequantize_4bit(rp, ra, bs, qt, [n], od),
                                               f"dequant {od}")

                    attempt("special", "quantize_4bit", f"{str(dtype)[6:]}-{qt}-bs{bs}-{str(storage)[6:]}", q4)

    g = torch.Generator().manual_seed(5)
    codes = {
        "unsigned": formats.table("dynamic_unsigned").clone(),
        "linear": torch.linspace(-1, 1, 256),
        "unsorted": dyn[torch.randperm(256, generator=g)].contiguous(),
        "with-nan": torch.where(torch.arange(256) == 77, torch.tensor(float("nan")), dyn),
    }
    for name, code in codes.items():
        for dtype in FLOATS:
            x = (torch.randn(3000, generator=g) * 3).to(dtype)

            def qc(x=x, code=code):
                q, am = glue.quantize_blockwise(x, code, 64)
                absmax, y = reference.blockwise_absmax_and_scaled(x, 64)
                bounds = (code[:-1] + code[1:]) * 0.5
                # docs/formats.md: code index = number of decision boundaries strictly below y
                want = (y[:, None] > bounds[None, :]).sum(1).to(torch.uint8)
                conformance._exact(q.reshape(-1), want, "codes")
                conformance._exact(am, absmax, "absmax")

            attempt("special", "quantize_blockwise", f"code-{name}-{str(dtype)[6:]}", qc)


# the argument-validation table of tests/test_cuda_build.py: the same host code, so the same statuses
_P = 1 << 20
_BAD = [
    (lambda m: m.quantize_4bit(0, 0, 3, _P, 100, 64, 0, _P, 50, _P), 2),
    (lambda m: m.quantize_4bit(0, 0, 2, _P, 100, 48, 0, _P, 50, _P), 5),
    (lambda m: m.quantize_4bit(0, 0, 2, _P, 100, 8192, 0, _P, 50, _P), 5),
    (lambda m: m.quantize_4bit(0, 0, 2, _P, 100, 64, 2, _P, 50, _P), 3),
    (lambda m: m.quantize_4bit(0, 0, 2, _P, 100, 64, 0, _P, 49, _P), 6),
    (lambda m: m.quantize_4bit(0, 0, 2, 0, 100, 64, 0, _P, 50, _P), 1),
    (lambda m: m.quantize_4bit(-1, 0, 2, _P, 100, 64, 0, _P, 50, _P), 7),
    (lambda m: m.dequantize_4bit(0, 0, 0, _P, -5, _P, 64, 0, _P), 4),
    (lambda m: m.quantize_blockwise(0, 0, 0, _P, 100, _P, 8, _P, _P), 5),
    (lambda m: m.dequantize_blockwise(0, 0, 1, _P, 100, _P, _P, 256, 0), 1),
]


def suite_errors(emu):
    for i, (call, status) in enumerate(_BAD):
        def bad(call=call, status=status):
            s = call(emu)
            assert s == status, f"status {s} ({emu.error_message(s)}), want {status}"

        attempt("errors", "validation", f"bad-{i}", bad)

    def empty():
        assert emu.quantize_4bit(0, 0, 2, 0, 0, 64, 0, 0, 0, 0) == 0
        assert emu.dequantize_blockwise(0, 0, 0, 0, 0, 0, 0, 256, 0) == 0

    attempt("errors", "validation", "empty-no-op", empty)

    def device():  # the emulator has one device: index 1 fails in cudaSetDevice, reported as a CUDA error
        x = torch.randn(100)
        q = torch.empty(100, dtype=torch.uint8)
        am = torch.empty(2)
        code = formats.table("dynamic")
        s = emu.quantize_blockwise(1, 0, 0, x.data_ptr(), 100, code.data_ptr(), 64, q.data_ptr(), am.data_ptr())
        assert s == 100, s
        msg = emu.error_message(s)
        assert "cudaErrorInvalidDevice" in msg, msg
        assert emu.last_cuda_error() == 101
        s = emu.quantize_blockwise(0, 0, 0, x.data_ptr(), 100, code.data_ptr(), 64, q.data_ptr(), am.data_ptr())
        assert s == 0, emu.error_message(s)

    attempt("errors", "device", "invalid-device", device)


SUITES = {
    "conformance": suite_conformance,
    "layout": suite_layout,
    "grid": suite_grid,
    "schedule": suite_schedule,
    "special": suite_special,
    "errors": suite_errors,
}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    faulthandler.enable()
    emu = load_module(argv[1])
    glue._mod = emu
    glue._raw_stream = lambda index: 0
    glue._dev = lambda t: 0  # the emulator's one device
    torch.set_num_threads(1)
    names = argv[2:] or list(SUITES)
    for name in names:
        SUITES[name](emu)
    emit(done=True, stats=emu.stats(), skipped_families=emu.SKIPPED_FAMILIES)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
