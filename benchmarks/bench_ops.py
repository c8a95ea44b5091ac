"""Op benchmark: host overhead per call, and each op's native kernel vs the reference (and bitsandbytes
when installed) in the same run, on the current device.

    python benchmarks/bench_ops.py [--device cpu] [--quick] [--json benchmarks/results/ops.json]

Prints markdown tables; times are medians of repeated calls after warm-up. Ratios are only meaningful
within one run (absolute times drift between machines).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import torch

import bnb_core
from bnb_core import formats, reference, registry


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


def copy_bandwidth(device, nbytes=256 << 20) -> float:
    """Bytes per second of a device-to-device copy, counting bytes read plus written."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    t = bench(lambda: dst.copy_(src), device)
    return 2 * nbytes / t


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

    cases = [
        ("quantize_4bit nf4 bs64 bf16", f"{n4[0]}x{n4[1]}", nb4,
         lambda: torch.ops.bnb.quantize_4bit(x4, 64, "nf4", torch.uint8),
         lambda: reference.quantize_4bit(x4, 64, "nf4", torch.uint8),
         (lambda: bF.quantize_4bit(x4, blocksize=64, quant_type="nf4")) if bF else None),
        ("dequantize_4bit nf4 -> bf16 (allocating)", f"{n4[0]}x{n4[1]}", nb4,
         lambda: torch.ops.bnb.dequantize_4bit(q4, a4, 64, "nf4", list(n4), torch.bfloat16),
         lambda: reference.dequantize_4bit(q4, a4, 64, "nf4", list(n4), torch.bfloat16),
         (lambda: bF.dequantize_4bit(q4, absmax=a4, blocksize=64, quant_type="nf4", out=None,
                                     quant_state=_bnb_state(bF, a4, n4))) if bF else None),
        ("dequantize_4bit.out nf4 -> bf16 (kernel)", f"{n4[0]}x{n4[1]}", nb4,
         lambda: torch.ops.bnb.dequantize_4bit.out(q4, a4, 64, "nf4", list(n4), torch.bfloat16, out=out4),
         lambda: reference.dequantize_4bit_out(q4, a4, 64, "nf4", list(n4), torch.bfloat16, out4),
         None),
        ("quantize_blockwise 8-bit bs256 fp32", f"{n8 >> 20}M", nb8,
         lambda: torch.ops.bnb.quantize_blockwise(x8, code, 256),
         lambda: reference.quantize_blockwise(x8, code, 256),
         (lambda: bF.quantize_blockwise(x8, blocksize=256)) if bF else None),
        ("dequantize_blockwise 8-bit -> fp32 (allocating)", f"{n8 >> 20}M", nb8,
         lambda: torch.ops.bnb.dequantize_blockwise(q8, a8, code, 256, torch.float32),
         lambda: reference.dequantize_blockwise(q8, a8, code, 256, torch.float32),
         (lambda: bF.dequantize_blockwise(q8, absmax=a8, blocksize=256)) if bF else None),
        ("dequantize_blockwise.out 8-bit -> fp32 (kernel)", f"{n8 >> 20}M", nb8,
         lambda: torch.ops.bnb.dequantize_blockwise.out(q8, a8, code, 256, torch.float32, out=out8),
         lambda: reference.dequantize_blockwise_out(q8, a8, code, 256, torch.float32, out8),
         None),
    ]
    for name, shape, nbytes, ours, ref, peer in cases:
        t_ours = bench(ours, device)
        t_ref = bench(ref, device, min_time=0.2, max_reps=5)
        t_peer = bench(peer, device, min_time=0.2, max_reps=5) if peer else None
        rows.append((name, shape, t_ours * 1e3, nbytes / t_ours / 1e9, t_ref * 1e3, t_ref / t_ours,
                     f"{t_peer * 1e3:.2f}" if t_peer else "-", f"{t_peer / t_ours:.1f}x" if t_peer else "-"))
        records.append({"op": name, "shape": shape, "ours_ms": t_ours * 1e3, "gbps": nbytes / t_ours / 1e9,
                        "reference_ms": t_ref * 1e3, "bitsandbytes_ms": t_peer * 1e3 if t_peer else None})
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
    print(f"bnb_core {bnb_core.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"device {device}, threads {torch.get_num_threads()}, native cpu isa {isa}")
    print(f"copy bandwidth (read + write): {bw / 1e9:.1f} GB/s\n")
    oh_rows, oh = host_overhead(device)
    print(_fmt(oh_rows, ["host overhead per call", "us", "note"]) + "\n")
    rows, records = op_table(device, args.quick)
    for r, rec in zip(rows, records):
        rec["share_of_copy_bw"] = rec["gbps"] * 1e9 / bw
    print(_fmt([r[:4] + (f"{r[3] * 1e9 / bw:.0%}",) + r[4:] for r in rows],
               ["op", "shape", "bnb_core ms", "GB/s", "% of copy BW", "reference ms", "speed-up vs reference",
                "bitsandbytes ms", "speed-up vs bitsandbytes"]))
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": device, "isa": isa, "threads": torch.get_num_threads(),
                                "copy_bw_gbps": bw / 1e9, "host_overhead": oh, "ops": records,
                                "torch": torch.__version__, "env": {k: v for k, v in os.environ.items()
                                                                    if k.startswith("BNB")}}, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
