"""Op benchmark: host overhead per call, and each op's native kernel vs the reference (and bitsandbytes
when installed) in the same run, on the current device. Ops with an .out overload are measured both
allocating (the cost a user sees, page faults included) and through .out (the kernel alone); allocating
ops also with bnb_core's output cache off (outputs from torch's allocator with the huge-page hint), and
with the hint off too (torch.empty as it is, what bitsandbytes gets). Each case has a target share of the copy
bandwidth.

    python benchmarks/bench_ops.py [--device cpu] [--quick] [--json benchmarks/results/ops.json]

Prints markdown tables; times are medians of repeated calls after warm-up. On the CPU each op is timed in
interleaved rounds with a 256 MiB copy, and its share of the copy bandwidth is taken against that copy. Ratios
are only meaningful within one run (absolute times drift between machines).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import torch

import bnb_core
from bnb_core import formats, reference, registry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import timed_rounds  # noqa: E402


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def bench(fn, device="cpu", min_time=0.3, max_reps=200, warmup=2) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_time or len(times) < 5):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth(device, nbytes=512 << 20, runs=5) -> float:
    """Bytes per second of a large device-to-device copy (torch's own threaded copy), counting bytes read plus
    written: the best of `runs` timed copies in each direction (a -> b and b -> a), buffers pre-faulted."""
    a = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    b = torch.empty_like(a).fill_(2)
    best = float("inf")
    for _ in range(2):  # warm-up
        b.copy_(a)
    _sync(device)
    for _ in range(runs):
        for dst, src in ((b, a), (a, b)):
            t0 = time.perf_counter()
            dst.copy_(src)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def memory_state(device) -> dict:
    """Transparent-huge-page state (Linux) and whether bnb_core advises fresh outputs (docs/architecture.md)."""
    if device != "cpu":
        return {}
    state = {}
    for name in ("enabled", "defrag"):
        try:
            text = pathlib.Path(f"/sys/kernel/mm/transparent_hugepage/{name}").read_text()
            state[f"thp_{name}"] = text[text.index("[") + 1:text.index("]")]
        except (OSError, ValueError):
            state[f"thp_{name}"] = "unavailable"
    try:
        from bnb_core import _cpu

        state["bnb_hugepage_hint"] = _cpu.hugepage_enabled() if hasattr(_cpu, "hugepage_enabled") else "n/a"
        state["bnb_output_cache_mib"] = ((_cpu.output_cache_limit() >> 20) if hasattr(_cpu, "output_cache_limit")
                                         else "n/a")
    except ImportError:
        state["bnb_hugepage_hint"] = None
    state["THP_MEM_ALLOC_ENABLE"] = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
    return state


def _bnb():
    try:
        import bitsandbytes  # noqa: F401
        import bitsandbytes.functional as bF

        return bF
    except Exception:
        return None


def host_overhead(device):
    """Per-call cost of going through torch.ops.bnb (dispatcher + check + registry) on a tiny input."""
    A = torch.randn(64, device=device)
    code = formats.table("dynamic", device)
    rows = []
    t_ref_direct = bench(lambda: reference.quantize_blockwise(A, code, 64), device, max_reps=2000)
    t_op = bench(lambda: torch.ops.bnb.quantize_blockwise(A, code, 64), device, max_reps=2000)
    t_torch = bench(lambda: torch.add(A, A), device, max_reps=2000)
    kernel = registry.kernel_for("quantize_blockwise", A, code, 64)
    direct = None
    if kernel != registry.REFERENCE:
        fn = next(k.fn for k in registry._kernels[("quantize_blockwise", torch.device(device).type)]
                  if k.name == kernel)
        direct = bench(lambda: fn(A, code, 64), device, max_reps=2000)
    else:
        direct = t_ref_direct
    rows.append(("torch.add (64 elements), baseline of any torch op", t_torch * 1e6, ""))
    rows.append((f"kernel function called directly ({kernel})", direct * 1e6, ""))
    rows.append(("torch.ops.bnb.quantize_blockwise (64 elements)", t_op * 1e6,
                 f"overhead of dispatcher + check + registry: {(t_op - direct) * 1e6:.1f} us"))
    return rows, {"op_us": t_op * 1e6, "direct_us": direct * 1e6, "overhead_us": (t_op - direct) * 1e6,
                  "torch_add_us": t_torch * 1e6, "kernel": kernel}


#: minimum share of copy bandwidth (bytes read + written) per case name prefix
TARGETS = {
    "quantize_4bit": 0.20,
    "dequantize_4bit.out": 0.80,
    "quantize_blockwise": 0.20,
    "dequantize_blockwise.out": 0.80,
}


def _target(name):
    return TARGETS.get(name.split(" ")[0])


def _memory(hint, cache):
    """Context: bnb_core's huge-page hint for fresh outputs on or off, and its output cache on (default limit) or off
    (limit 0: outputs from torch's allocator, as BNB_CPU_OUTPUT_CACHE_MB=0 gives). No-op without the native module."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        try:
            from bnb_core import _cpu
        except ImportError:
            _cpu = None
        if not hasattr(_cpu, "set_output_cache_limit"):  # not built, or a build without them
            yield
            return
        was_hint, was_limit = _cpu.hugepage_enabled(), _cpu.output_cache_limit()
        _cpu.set_hugepage_enabled(hint)
        _cpu.set_output_cache_limit(was_limit if cache else 0)
        _cpu.empty_output_cache()  # blocks mapped under another hint setting are not reused
        try:
            yield
        finally:
            _cpu.set_hugepage_enabled(was_hint)
            _cpu.set_output_cache_limit(was_limit)

    return cm()


#: the memory settings of an allocating op's rows: (name suffix, huge-page hint, output cache)
_ALLOC_VARIANTS = (("allocating", True, True), ("allocating, no cache", True, False),
                   ("allocating, no cache, hint off", False, False))


def op_table(device, quick):
    bF = _bnb() if device == "cpu" else None
    n4 = (2048, 2048) if quick else (4096, 4096)
    n8 = (1 << 22) if quick else (1 << 24)
    x4 = torch.randn(n4, device=device, dtype=torch.bfloat16)
    x8 = torch.randn(n8, device=device, dtype=torch.float32)
    code = formats.table("dynamic", device)
    rows, records = [], []

    q4, a4 = reference.quantize_4bit(x4, 64, "nf4", torch.uint8)
    q8, a8 = reference.quantize_blockwise(x8, code, 256)
    out4 = torch.empty_like(x4)
    out8 = torch.empty_like(x8)
    nb4 = x4.numel() * 2 + q4.numel() + a4.numel() * 4
    nb8 = x8.numel() * 4 + x8.numel() + a8.numel() * 4
    deq4 = lambda: torch.ops.bnb.dequantize_4bit(q4, a4, 64, "nf4", list(n4), torch.bfloat16)  # noqa: E731
    deq8 = lambda: torch.ops.bnb.dequantize_blockwise(q8, a8, code, 256, torch.float32)  # noqa: E731
    q4op = lambda: torch.ops.bnb.quantize_4bit(x4, 64, "nf4", torch.uint8)  # noqa: E731
    q8op = lambda: torch.ops.bnb.quantize_blockwise(x8, code, 256)  # noqa: E731

    # (name, shape, bytes, ours, reference, bitsandbytes, (hugepage hint for fresh outputs, output cache));
    # allocating ops get a row per memory setting, the reference and bitsandbytes only in the first
    cases = []

    def allocating(name, shape, nbytes, ours, ref, peer):
        for i, (suffix, hint, cache) in enumerate(_ALLOC_VARIANTS):
            cases.append((f"{name} ({suffix})", shape, nbytes, ours, ref if i == 0 else None,
                          peer if i == 0 else None, (hint, cache)))

    allocating("quantize_4bit nf4 bs64 bf16", f"{n4[0]}x{n4[1]}", nb4, q4op,
               lambda: reference.quantize_4bit(x4, 64, "nf4", torch.uint8),
               (lambda: bF.quantize_4bit(x4, blocksize=64, quant_type="nf4")) if bF else None)
    allocating("dequantize_4bit nf4 -> bf16", f"{n4[0]}x{n4[1]}", nb4, deq4,
               lambda: reference.dequantize_4bit(q4, a4, 64, "nf4", list(n4), torch.bfloat16),
               (lambda: bF.dequantize_4bit(q4, absmax=a4, blocksize=64, quant_type="nf4", out=None,
                                           quant_state=_bnb_state(bF, a4, n4))) if bF else None)
    cases.append(("dequantize_4bit.out nf4 -> bf16 (kernel)", f"{n4[0]}x{n4[1]}", nb4,
                  lambda: torch.ops.bnb.dequantize_4bit.out(q4, a4, 64, "nf4", list(n4), torch.bfloat16, out=out4),
                  lambda: reference.dequantize_4bit_out(q4, a4, 64, "nf4", list(n4), torch.bfloat16, out4),
                  None, (True, True)))
    allocating("quantize_blockwise 8-bit bs256 fp32", f"{n8 >> 20}M", nb8, q8op,
               lambda: reference.quantize_blockwise(x8, code, 256),
               (lambda: bF.quantize_blockwise(x8, blocksize=256)) if bF else None)
    allocating("dequantize_blockwise 8-bit -> fp32", f"{n8 >> 20}M", nb8, deq8,
               lambda: reference.dequantize_blockwise(q8, a8, code, 256, torch.float32),
               (lambda: bF.dequantize_blockwise(q8, absmax=a8, blocksize=256)) if bF else None)
    cases.append(("dequantize_blockwise.out 8-bit -> fp32 (kernel)", f"{n8 >> 20}M", nb8,
                  lambda: torch.ops.bnb.dequantize_blockwise.out(q8, a8, code, 256, torch.float32, out=out8),
                  lambda: reference.dequantize_blockwise_out(q8, a8, code, 256, torch.float32, out8),
                  None, (True, True)))
    # on the CPU each op is timed in interleaved rounds with a 256 MiB copy, and its share of the copy bandwidth is
    # taken against that copy (this machine's bandwidth drifts by 2x within minutes); elsewhere against the
    # copy bandwidth measured at the start
    copy_fn, copy_bytes = None, 0
    if device == "cpu":
        ca = torch.empty(256 << 20, dtype=torch.uint8).fill_(1)
        cb = torch.empty_like(ca).fill_(2)
        copy_fn, copy_bytes = (lambda: cb.copy_(ca)), 2 * ca.numel()
    for name, shape, nbytes, ours, ref, peer, (hint, cache) in cases:
        copy_bw = None
        with _memory(hint, cache):
            if copy_fn is not None:
                r = timed_rounds({"copy": copy_fn, "ours": ours}, min_time=1.5, rounds=5)
                t_ours, copy_bw = r["ours"][0], copy_bytes / r["copy"][1]  # median op, best copy (as at the start)
            else:
                t_ours = bench(ours, device)
        t_ref = bench(ref, device, min_time=0.2, max_reps=5) if ref else None
        t_peer = bench(peer, device, min_time=0.2, max_reps=5) if peer else None
        rows.append((name, shape, t_ours * 1e3, nbytes / t_ours / 1e9,
                     f"{t_ref * 1e3:.2f}" if t_ref else "-", f"{t_ref / t_ours:.1f}x" if t_ref else "-",
                     f"{t_peer * 1e3:.2f}" if t_peer else "-", f"{t_peer / t_ours:.1f}x" if t_peer else "-"))
        records.append({"op": name, "shape": shape, "ours_ms": t_ours * 1e3, "gbps": nbytes / t_ours / 1e9,
                        "copy_bw_gbps_next_to_it": copy_bw / 1e9 if copy_bw else None,
                        "reference_ms": t_ref * 1e3 if t_ref else None,
                        "bitsandbytes_ms": t_peer * 1e3 if t_peer else None, "hugepage_hint": hint,
                        "output_cache": cache,
                        "target_share_of_copy_bw": _target(name)})
    return rows, records


def _bnb_state(bF, absmax, shape):
    return bF.QuantState(absmax=absmax, shape=torch.Size(shape), dtype=torch.bfloat16, blocksize=64,
                         quant_type="nf4", code=bF.get_4bit_type("nf4", device="cpu"))


def _fmt(rows, headers):
    def cell(v):
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="smaller shapes")
    p.add_argument("--json", default="benchmarks/results/ops.json")
    args = p.parse_args(argv)
    device = args.device
    try:
        from bnb_core import _cpu
        isa = _cpu.isa()
    except ImportError:
        isa = "none (native module not built)"
    bw = copy_bandwidth(device)
    mem = memory_state(device)
    print(f"bnb_core {bnb_core.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"device {device}, threads {torch.get_num_threads()}, native cpu isa {isa}")
    print(f"copy bandwidth (read + write, best of 5 x 2 directions, 512 MiB): {bw / 1e9:.1f} GB/s")
    if mem:
        print("memory: " + ", ".join(f"{k} {v}" for k, v in mem.items()))
    print()
    oh_rows, oh = host_overhead(device)
    print(_fmt(oh_rows, ["host overhead per call", "us", "note"]) + "\n")
    rows, records = op_table(device, args.quick)
    out_rows = []
    for r, rec in zip(rows, records):
        near = rec["copy_bw_gbps_next_to_it"]
        share = rec["gbps"] / near if near else rec["gbps"] * 1e9 / bw
        rec["share_of_copy_bw"] = share
        tgt = rec["target_share_of_copy_bw"]
        rec["target_met"] = None if tgt is None else share >= tgt
        out_rows.append(r[:4] + (f"{near:.1f}" if near else f"{bw / 1e9:.1f}", f"{share:.0%}",
                                 f">= {tgt:.0%}" if tgt else "-",
                                 "-" if tgt is None else ("yes" if share >= tgt else "NO")) + r[4:])
    print(_fmt(out_rows, ["op", "shape", "bnb_core ms", "GB/s", "copy GB/s", "% of copy BW", "target", "met",
                          "reference ms", "speed-up vs reference", "bitsandbytes ms", "speed-up vs bitsandbytes"]))
    print("\n(allocating: the op allocates its outputs, as a user calls it (outputs of >= 4 MiB from bnb_core's output "
          "cache: a block a freed output of the same size left, else a fresh mapping with the huge-page hint); "
          "'no cache': outputs from torch's allocator with the MADV_HUGEPAGE hint (BNB_CPU_OUTPUT_CACHE_MB=0); "
          "'hint off': torch.empty as it is (4 KiB pages where glibc maps the block fresh; bitsandbytes allocates "
          "that way); .out: the kernel alone, writing "
          "into an existing tensor. Targets count bytes read + "
          "written against the copy bandwidth in the row: on the CPU a 256 MiB copy timed in interleaved rounds "
          "with the op, elsewhere the one measured at the start.)")
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": device, "isa": isa, "threads": torch.get_num_threads(),
                                "copy_bw_gbps": bw / 1e9, "memory": mem, "host_overhead": oh, "ops": records,
                                "torch": torch.__version__, "env": {k: v for k, v in os.environ.items()
                                                                    if k.startswith("BNB")}}, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
