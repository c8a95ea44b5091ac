"""Native CPU backend runtime behaviour: transparent-huge-page hint for fresh outputs, threads (torch's
thread count, no oversubscription from concurrent callers, no deadlock)."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from bnb_core import formats, reference

_cpu = pytest.importorskip("bnb_core._cpu", reason="native CPU backend not built")


def _mappings():
    """(lo, hi, lines) of each mapping in /proc/self/smaps, lines being its "Key: value" lines."""
    with open("/proc/self/smaps") as f:
        lo = hi = None
        lines: list[str] = []
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                if lo is not None:
                    yield lo, hi, lines
                lo, hi = (int(v, 16) for v in head.split("-"))
                lines = []
            else:
                lines.append(line)
        if lo is not None:
            yield lo, hi, lines


def _vma_flags(addr: int) -> list[str]:
    """VmFlags of the mapping holding addr (/proc/self/smaps)."""
    for lo, hi, lines in _mappings():
        if lo <= addr < hi:
            return next(line.split()[1:] for line in lines if line.startswith("VmFlags:"))
    raise AssertionError(f"no mapping holds {addr:#x}")


# ------------------------------------------------------------------------------------ huge pages


def test_advise_hugepage_only_inside_the_buffer():
    mode = _cpu.thp_mode()
    assert mode in ("always", "madvise", "never", "unavailable")
    huge = 2 << 20
    buf = torch.empty(24 << 20, dtype=torch.uint8)
    p, n = buf.data_ptr(), buf.numel()
    assert _cpu.advise_hugepage(p, _cpu.HUGEPAGE_MIN_BYTES - 1) == 0  # too small: nothing done
    advised = _cpu.advise_hugepage(p, n)
    if mode != "madvise" or not _cpu.hugepage_enabled():
        assert advised == 0
        return
    # exactly the 2 MiB pages lying inside [p, p + n)
    first = -(-p // huge) * huge
    assert advised == (p + n) // huge * huge - first
    assert "hg" in _vma_flags(first) and "hg" in _vma_flags(first + advised - 1)
    if first - 1 >= p:  # the bytes of the buffer before the first huge page boundary are not advised
        assert "hg" not in _vma_flags(first - 1)
    buf.fill_(7)
    assert int(buf.sum()) == 7 * n


def test_hugepage_hint_switch_and_results_unchanged():
    x = torch.randn(2048, 2048, dtype=torch.bfloat16)  # 8 MiB bf16 output, 2 MiB packed
    q, a = torch.ops.bnb.quantize_4bit(x, 64, "nf4", torch.uint8)
    qr, ar = reference.quantize_4bit(x, 64, "nf4", torch.uint8)
    assert torch.equal(q, qr) and torch.equal(a, ar)
    was = _cpu.hugepage_enabled()
    _cpu.empty_output_cache()  # (a kept block keeps the hint it was mapped with)
    try:
        outs = []
        for on in (True, False):
            _cpu.set_hugepage_enabled(on)
            assert _cpu.hugepage_enabled() is on
            outs.append(torch.ops.bnb.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.bfloat16))
            if on and _cpu.thp_mode() == "madvise":  # the fresh output was advised
                first = -(-outs[-1].data_ptr() // (2 << 20)) * (2 << 20)
                assert "hg" in _vma_flags(first)
            if not on:
                assert _cpu.advise_hugepage(outs[-1].data_ptr(), outs[-1].numel() * 2) == 0
    finally:
        _cpu.set_hugepage_enabled(was)
    expect = reference.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.bfloat16)
    assert torch.equal(outs[0], expect) and torch.equal(outs[1], expect)


# ------------------------------------------------------------------------------------ output cache


@pytest.fixture
def output_cache():
    """The output cache emptied, its limit restored afterwards."""
    was = _cpu.output_cache_limit()
    _cpu.empty_output_cache()
    yield
    _cpu.set_output_cache_limit(was)
    _cpu.empty_output_cache()


_MIB = 1 << 20


def _deq8(q, a):  # an 8 MiB bf16 output
    return torch.ops.bnb.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.bfloat16)


def test_output_cache_reuses_only_released_blocks(output_cache):
    x = torch.randn(2048, 2048, dtype=torch.bfloat16)
    q, a = reference.quantize_4bit(x, 64, "nf4", torch.uint8)
    expect = reference.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.bfloat16)
    _cpu.set_output_cache_limit(64 * _MIB)
    s0 = _cpu.output_cache_stats()
    o1 = _deq8(q, a)
    p1 = o1.data_ptr()
    assert p1 % (2 * _MIB) == 0 and torch.equal(o1, expect)
    view = o1[100:200]  # a view keeps the block
    del o1
    o2 = _deq8(q, a)
    assert o2.data_ptr() != p1 and torch.equal(view, expect[100:200])
    s1 = _cpu.output_cache_stats()
    assert s1["hits"] == s0["hits"] and s1["misses"] == s0["misses"] + 2 and s1["held_blocks"] == 0
    del view
    assert _cpu.output_cache_stats()["held_bytes"] == 8 * _MIB  # released whole when the last view went
    o2.fill_(0)
    o3 = _deq8(q, a)  # the released block, rewritten in full
    assert o3.data_ptr() == p1 and torch.equal(o3, expect)
    assert _cpu.output_cache_stats()["hits"] == s0["hits"] + 1
    del o2, o3
    assert _cpu.output_cache_stats()["held_blocks"] == 2
    # another size does not take them
    o4 = torch.ops.bnb.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.float32)
    assert torch.equal(o4, reference.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.float32))
    assert _cpu.output_cache_stats()["held_blocks"] == 2


def test_output_cache_limit_and_release(output_cache):
    _cpu.set_output_cache_limit(12 * _MIB)
    bufs = [_cpu.output_buffer(8 * _MIB), _cpu.output_buffer(4 * _MIB + 1)]  # mapped: 8 MiB, 4 MiB + 4 KiB
    ptrs = [b.ptr for b in bufs]
    assert [b.nbytes for b in bufs] == [8 * _MIB, 4 * _MIB + 1]
    t = torch.frombuffer(bufs[1], dtype=torch.uint8)
    assert t.numel() == 4 * _MIB + 1 and t.data_ptr() == ptrs[1]
    t.fill_(3)
    del t
    bufs.pop(0)  # released: kept (8 MiB <= 12 MiB)
    assert _cpu.output_cache_stats()["held_bytes"] == 8 * _MIB
    bufs.pop(0)  # released: 8 + 4 MiB + 4 KiB > 12 MiB: the older one goes
    st = _cpu.output_cache_stats()
    assert st["held_blocks"] == 1 and st["held_bytes"] == 4 * _MIB + 4096
    big = _cpu.output_buffer(16 * _MIB)
    del big  # larger than the limit: never kept
    assert _cpu.output_cache_stats()["held_blocks"] == 1
    _cpu.set_output_cache_limit(4 * _MIB)  # lower: trimmed now
    assert _cpu.output_cache_stats()["held_bytes"] == 0
    _cpu.set_output_cache_limit(64 * _MIB)
    _cpu.output_buffer(8 * _MIB)  # released at once
    assert _cpu.output_cache_stats()["held_blocks"] == 1
    _cpu.empty_output_cache()
    assert _cpu.output_cache_stats()["held_bytes"] == 0
    # off: no block, outputs from torch's allocator (a resizable storage), results unchanged
    _cpu.set_output_cache_limit(0)
    assert _cpu.output_buffer(8 * _MIB) is None
    x = torch.randn(2048, 2048, dtype=torch.bfloat16)
    q, a = reference.quantize_4bit(x, 64, "nf4", torch.uint8)
    out = _deq8(q, a)
    assert out.untyped_storage().resizable()
    assert torch.equal(out, reference.dequantize_4bit(q, a, 64, "nf4", [2048, 2048], torch.bfloat16))
    assert _cpu.output_cache_stats()["held_blocks"] == 0


def test_output_cache_block_is_hinted_when_fresh(output_cache):
    if _cpu.thp_mode() != "madvise" or not _cpu.hugepage_enabled():
        pytest.skip("the hint only acts in THP mode madvise")
    b = _cpu.output_buffer(8 * _MIB)
    assert b.ptr % (2 * _MIB) == 0
    assert "hg" in _vma_flags(b.ptr) and "hg" in _vma_flags(b.ptr + 8 * _MIB - 1)


def test_output_cache_env_limit(tmp_path):
    import subprocess
    import sys

    code = ("import bnb_core, torch; from bnb_core import _cpu; print(_cpu.output_cache_limit()); "
            "x = torch.randn(4 << 20); q, a = torch.ops.bnb.quantize_4bit(x, 64, 'nf4', torch.uint8); "
            "print(int(torch.ops.bnb.dequantize_4bit(q, a, 64, 'nf4', [4 << 20], torch.float32)"
            ".untyped_storage().resizable()))")
    for value, limit, resizable in (("0", 0, 1), ("7", 7 * _MIB, 0)):
        env = dict(os.environ, BNB_CPU_OUTPUT_CACHE_MB=value)
        # (run outside the checkout: there `import bnb_core` would find the source tree, which has no _cpu)
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.split() == [str(limit), str(resizable)], out.stderr


def test_output_cache_tensors_behave_as_tensors(output_cache, tmp_path):
    """A tensor on a cached block saves, loads, pickles, moves to shared memory and keeps its values."""
    import io
    import pickle

    x = torch.randn(2048, 2048, dtype=torch.bfloat16)
    q, a = reference.quantize_4bit(x, 64, "nf4", torch.uint8)
    out = _deq8(q, a)
    assert not out.untyped_storage().resizable()  # from the cache
    expect = out.clone()
    buf = io.BytesIO()
    torch.save({"w": out}, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf)["w"], expect)
    assert torch.equal(pickle.loads(pickle.dumps(out)), expect)
    out.share_memory_()
    assert out.is_shared() and torch.equal(out, expect)
    out.add_(1)
    assert torch.equal(out, expect + 1)


def test_output_cache_concurrent_callers(output_cache):
    x = torch.randn(1024, 4096)  # 16 MiB fp32 output
    code = formats.table("dynamic", "cpu")
    q, a = reference.quantize_blockwise(x, code, 256)
    expect = reference.dequantize_blockwise(q, a, code, 256, torch.float32)
    errors = []

    def work():
        try:
            for _ in range(20):
                if not torch.equal(torch.ops.bnb.dequantize_blockwise(q, a, code, 256, torch.float32), expect):
                    errors.append("mismatch")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    st = _cpu.output_cache_stats()
    assert st["hits"] > 0 and st["held_bytes"] <= _cpu.output_cache_limit()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_output_cache_usable_in_a_child_forked_while_another_thread_uses_it(output_cache):
    """DataLoader workers fork: a child forked while another thread takes and releases blocks must not inherit the
    cache's lock held (it would hang on its first large output)."""
    import time

    stop = threading.Event()

    def churn():
        while not stop.is_set():
            _cpu.output_buffer(4 * _MIB)  # acquired and released at once: takes the lock twice

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(60):  # (without pthread_atfork in memory.cpp about one run in three hung)
            pid = os.fork()
            if pid == 0:  # child: take a block, write it, leave without running Python's shutdown
                try:  # (no torch op here: libgomp's threads do not survive a fork; that is not ours to test)
                    b = _cpu.output_buffer(4 * _MIB)
                    m = memoryview(b)
                    m[0], m[-1] = 1, 2
                    os._exit(0 if (m[0], m[-1]) == (1, 2) else 1)
                except BaseException:  # noqa: BLE001
                    os._exit(1)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail("a forked child hung on the output cache")
                time.sleep(0.01)
    finally:
        stop.set()
        t.join()


def _anon_huge_bytes(lo: int, hi: int) -> int:
    """AnonHugePages of the mappings overlapping [lo, hi) (/proc/self/smaps), in bytes."""
    return sum(int(line.split()[1]) * 1024 for a, b, lines in _mappings() if a < hi and lo < b
               for line in lines if line.startswith("AnonHugePages:"))


def test_collapse_hugepage_in_place_keeps_the_values():
    huge = 2 << 20
    buf = torch.arange(24 << 20, dtype=torch.int64).remainder_(251).to(torch.uint8)
    expect = buf.clone()
    p, n = buf.data_ptr(), buf.numel()
    assert _cpu.collapse_hugepage(p, _cpu.HUGEPAGE_MIN_BYTES - 1) == 0  # too small: nothing done
    was = _cpu.hugepage_enabled()
    try:
        _cpu.set_hugepage_enabled(False)
        assert _cpu.collapse_hugepage(p, n) == 0  # switched off: nothing done
    finally:
        _cpu.set_hugepage_enabled(was)
    done = _cpu.collapse_hugepage(p, n)
    if _cpu.thp_mode() not in ("madvise", "always") or not was:
        assert done == 0
    first = -(-p // huge) * huge
    # all of the 2 MiB pages lying inside [p, p + n), or nothing (an old kernel, no free huge page: only a hint)
    assert done in (0, (p + n) // huge * huge - first)
    if done:
        assert _anon_huge_bytes(first, first + done) >= done
    assert torch.equal(buf, expect)  # in place: same address, same values


def test_layers_weights_on_huge_pages_after_a_prequantized_load():
    probe = torch.ones(8 << 20, dtype=torch.uint8)
    if _cpu.collapse_hugepage(probe.data_ptr(), probe.numel()) == 0:
        pytest.skip("MADV_COLLAPSE unavailable or switched off here")
    from bnb_core.nn import Linear4bit, Linear8bitLt

    huge = 2 << 20
    src4 = Linear4bit(2048, 4096, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4").to("cpu")
    src8 = Linear8bitLt(2048, 4096, bias=False, has_fp16_weights=False).to("cpu")
    for src, dst in ((src4, Linear4bit(2048, 4096, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")),
                     (src8, Linear8bitLt(2048, 4096, bias=False, has_fp16_weights=False))):
        sd = {k: v.clone() for k, v in src.state_dict().items()}  # fresh 4 KiB pages
        dst.load_state_dict(sd)
        w = dst.weight.data
        assert torch.equal(w, sd["weight"])
        first = -(-w.data_ptr() // huge) * huge
        last = (w.data_ptr() + w.numel() * w.element_size()) // huge * huge
        assert _anon_huge_bytes(first, last) >= last - first
        x = torch.randn(3, 2048, dtype=torch.bfloat16)
        assert torch.equal(dst(x), src(x))


# ------------------------------------------------------------------------------------ streaming stores


@pytest.mark.parametrize("isa", list(_cpu.available_isas()))
def test_streaming_store_dequantize_equals_reference(isa):
    """With the streaming-store threshold at 0 every 64-byte-aligned dequantize output is written with
    non-temporal stores (x86): 4-bit and 8-bit, every output dtype, .out and allocating, a partial last block,
    and a misaligned .out view (which must fall back to normal stores), all equal the reference."""
    gen = torch.Generator().manual_seed(11)
    n = 64 * 97 + 40  # a partial last block
    x = torch.randn(n, generator=gen)
    code = formats.table("dynamic", "cpu")
    was_isa, was_min = _cpu.isa(), _cpu.stream_min_bytes()
    try:
        assert _cpu.set_isa(isa) == 0
        _cpu.set_stream_min_bytes(0)
        assert _cpu.stream_min_bytes() == 0
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            xd = x.to(dtype)
            for qt in ("nf4", "fp4"):
                q, a = reference.quantize_4bit(xd, 64, qt, torch.uint8)
                expect = reference.dequantize_4bit(q, a, 64, qt, [n], dtype)
                assert torch.equal(torch.ops.bnb.dequantize_4bit(q, a, 64, qt, [n], dtype), expect)
                buf = torch.full((n + 1,), 7.0, dtype=dtype)
                for off in (0, 1):  # an aligned and a misaligned view
                    out = buf[off:off + n]
                    torch.ops.bnb.dequantize_4bit.out(q, a, 64, qt, [n], dtype, out=out)
                    assert torch.equal(out, expect), (qt, dtype, off)
            q8, a8 = reference.quantize_blockwise(x, code, 256)
            expect8 = reference.dequantize_blockwise(q8, a8, code, 256, dtype)
            assert torch.equal(torch.ops.bnb.dequantize_blockwise(q8, a8, code, 256, dtype), expect8)
            buf = torch.zeros(n + 1, dtype=dtype)
            for off in (0, 1):
                out = buf[off:off + n]
                torch.ops.bnb.dequantize_blockwise.out(q8, a8, code, 256, dtype, out=out)
                assert torch.equal(out, expect8), (dtype, off)
    finally:
        _cpu.set_isa(was_isa)
        _cpu.set_stream_min_bytes(-1)
    assert _cpu.stream_min_bytes() > 0
    del was_min


# ------------------------------------------------------------------------------------ threads


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_kernels_follow_torch_num_threads(torch_threads):
    x = torch.randn(1 << 20)  # large enough to be split into tasks
    torch.set_num_threads(1)
    torch.ops.bnb.quantize_4bit(x, 64, "nf4", torch.uint8)
    assert _cpu.last_threads() == 1
    torch.ops.bnb.dequantize_blockwise(*torch.ops.bnb.quantize_blockwise(x, formats.table("dynamic", "cpu"), 256),
                                       formats.table("dynamic", "cpu"), 256, torch.float32)
    assert _cpu.last_threads() == 1
    torch.set_num_threads(2)
    torch.ops.bnb.quantize_4bit(x, 64, "nf4", torch.uint8)
    assert _cpu.last_threads() == 2  # nothing else uses the pool now
    torch.ops.bnb.quantize_4bit(x[:1000], 64, "nf4", torch.uint8)  # small: on the calling thread
    assert _cpu.last_threads() == 1


def test_concurrent_callers_exact_no_deadlock_no_oversubscription(torch_threads):
    """4 Python threads quantize at once: results bit-exact, every call returns, and the threads running
    our kernels never exceed the callers plus one pool (callers + torch threads - 1)."""
    torch.set_num_threads(2)
    nthreads = torch.get_num_threads()
    ncallers, rounds = 4, 6
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1 << 18, generator=gen, dtype=torch.bfloat16) * (i + 1) for i in range(ncallers)]
    expect = [reference.quantize_4bit(x, 64, "nf4", torch.uint8) for x in inputs]
    results = [[] for _ in range(ncallers)]
    errors = []
    start = threading.Barrier(ncallers)

    def worker(i):
        try:
            start.wait(timeout=60)
            for _ in range(rounds):
                results[i].append(torch.ops.bnb.quantize_4bit(inputs[i], 64, "nf4", torch.uint8))
        except Exception as e:  # reported below
            errors.append(e)

    _cpu.reset_threads_high_water()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(ncallers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a quantize_4bit call did not return (deadlock?)"
    assert not errors, errors
    for i in range(ncallers):
        assert len(results[i]) == rounds
        for q, a in results[i]:
            assert torch.equal(q, expect[i][0]) and torch.equal(a, expect[i][1])
    assert 1 <= _cpu.threads_high_water() <= ncallers + nthreads - 1


# ------------------------------------------------------------------------------------ exactness at boundaries


def _boundary_values(code: torch.Tensor) -> torch.Tensor:
    """Every boundary of `code`, its two float neighbours, and every bf16 value in [-1, 1] (as fp32)."""
    b = ((code[:-1] + code[1:]) * 0.5).float()
    vals = [b, torch.nextafter(b, torch.full_like(b, -2.0)), torch.nextafter(b, torch.full_like(b, 2.0))]
    bf = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16).float()
    vals.append(bf[bf.abs() <= 1])  # includes -0.0 and +0.0
    v = torch.cat(vals)
    return v[~torch.isnan(v)]


def _unit_absmax_blocks(v: torch.Tensor, bs: int) -> torch.Tensor:
    """v in blocks of bs elements that each start with 1.0 (absmax 1, so y == x), zero-padded."""
    per = bs - 1
    nblk = -(-v.numel() // per)
    body = torch.zeros(nblk * per)
    body[: v.numel()] = v
    return torch.cat([torch.ones(nblk, 1), body.view(nblk, per)], dim=1).view(-1)


@pytest.mark.parametrize("isa", list(_cpu.available_isas()))
@pytest.mark.parametrize("table", ["dynamic", "dynamic_unsigned", "random", "negative_zero_boundary"])
def test_quantize_blockwise_exact_on_boundaries(isa, table):
    """Values on and next to every boundary (ties go to the lower code) and every bf16 value in [-1, 1],
    in blocks whose absmax is 1 (y == x), quantize exactly as the reference on every ISA path (the x86 paths
    use a bucket table over the float bits of y)."""
    if table == "random":
        gen = torch.Generator().manual_seed(5)
        code = torch.sort(torch.rand(256, generator=gen) * 2 - 1).values
        code[0], code[-1] = -1.0, 1.0
    elif table == "negative_zero_boundary":  # boundary 126 is (-0 + -0) / 2 = -0.0
        code = formats.table("dynamic", "cpu").clone()
        code[126] = code[127] = -0.0
    else:
        code = formats.table(table, "cpu")
    bs = 256
    v = _boundary_values(code).repeat(4)  # large enough for every task to take the bucket path
    v = v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))]
    x = _unit_absmax_blocks(v, bs)
    was = _cpu.isa()
    try:
        assert _cpu.set_isa(isa) == 0
        q, a = torch.ops.bnb.quantize_blockwise(x, code, bs)
    finally:
        _cpu.set_isa(was)
    qr, ar = reference.quantize_blockwise(x, code, bs)
    assert torch.equal(a, ar)
    bad = (q != qr).nonzero()
    assert bad.numel() == 0, f"{bad.numel()} codes differ, e.g. x={x[bad[0]].item()!r}: {q[bad[0]]} vs {qr[bad[0]]}"


@pytest.mark.parametrize("isa", list(_cpu.available_isas()))
@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_quantize_4bit_exact_on_boundaries(isa, quant_type):
    """Every 4-bit boundary and its float neighbours, every multiple of 1/16 in [-1, 1] (the AVX-512 path looks
    codes up in 1/16-wide buckets) and its neighbours, and every bf16 value in [-1, 1], in blocks whose absmax
    is 1 (y == x), quantize exactly as the reference on every ISA path."""
    code = formats.table(quant_type, "cpu")
    srt = torch.sort(code).values
    edges = torch.arange(-16, 17, dtype=torch.float32) / 16
    v = torch.cat([_boundary_values(srt), edges, torch.nextafter(edges, edges - 1), torch.nextafter(edges, edges + 1)])
    v = v[v.abs() <= 1]
    v = v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(1))]
    bs = 64
    x = _unit_absmax_blocks(v, bs)
    was = _cpu.isa()
    try:
        assert _cpu.set_isa(isa) == 0
        q, a = torch.ops.bnb.quantize_4bit(x, bs, quant_type, torch.uint8)
    finally:
        _cpu.set_isa(was)
    qr, ar = reference.quantize_4bit(x, bs, quant_type, torch.uint8)
    assert torch.equal(a, ar)
    bad = (q != qr).view(-1).nonzero()
    assert bad.numel() == 0, f"{bad.numel()} packed bytes differ"
