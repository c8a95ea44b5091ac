"""Optimizer benchmark: step time and state bytes per parameter of bnb_core's optimizers vs torch.optim
(foreach and fused) and bitsandbytes' classes, in one run on one model (a 4096x4096 weight + 4096 bias:
16.8M parameters, fp32).

    python benchmarks/bench_optim.py [--quick] [--threads N] [--device all|cpu|cuda]
                                     [--json benchmarks/results/optim.json] [--cuda-json benchmarks/results/optim_cuda.json]

Times are medians of repeated optimizer.step() calls after warm-up (gradients fixed, set once). Ratios are
only meaningful within one run; on a shared machine repeat and compare. --quick uses a 1024x1024 model.

CUDA mode (--device cuda, or "all" when a CUDA device is present; without one the CUDA part is skipped with a
message, and --device cuda exits with an error): 8-bit Adam on 64M fp32 parameters (one 8192x8192 weight), the
issue's target being <= 0.45 ms per step on an H100 (bitsandbytes 0.50.2: 2.1 ms), against
torch.optim.Adam/AdamW(fused=True) and bitsandbytes' Adam8bit / AdamW8bit / PagedAdamW8bit when importable. Times
are CUDA-event medians per step; "op" rows time the update op alone (the kernel), "step" rows optimizer.step()
(which adds the optimizer's NaN/Inf gradient check: one reduction over g and a host read per parameter).
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
from bnb_core import optim as O


def bench(fn, min_time=1.0, max_reps=50, warmup=2) -> tuple[float, float]:
    """(median, min) seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_time or len(times) < 5):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _params(dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(dim, dim, generator=g) * 0.02)
    b = torch.nn.Parameter(torch.zeros(dim))
    w.grad = torch.randn(dim, dim, generator=g) * 1e-3
    b.grad = torch.randn(dim, generator=g) * 1e-3
    return [w, b]


def _state_bytes(opt) -> int:
    total = 0
    for st in opt.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and k not in ("step", "qmap1", "qmap2"):
                total += v.numel() * v.element_size()
    return total


def _bnb_optim():
    try:
        import bitsandbytes as bnb

        return bnb.optim, bnb.__version__
    except Exception as e:  # not installed or no CPU support
        return None, f"unavailable ({type(e).__name__}: {e})"


def configs(bnbo):
    lr = 1e-3
    rows = [
        ("Adam8bit", "bnb_core", lambda p: O.Adam8bit(p, lr=lr)),
        ("Adam8bit", "bitsandbytes", (lambda p: bnbo.Adam8bit(p, lr=lr)) if bnbo else None),
        ("Adam", "torch foreach", lambda p: torch.optim.Adam(p, lr=lr, foreach=True)),
        ("Adam", "torch fused", lambda p: torch.optim.Adam(p, lr=lr, fused=True)),
        ("Adam", "bnb_core 32-bit", lambda p: O.Adam(p, lr=lr)),
        ("Adam", "bitsandbytes 32-bit", (lambda p: bnbo.Adam(p, lr=lr)) if bnbo else None),
        ("AdamW8bit", "bnb_core", lambda p: O.AdamW8bit(p, lr=lr, weight_decay=0.01)),
        ("AdamW8bit", "bitsandbytes", (lambda p: bnbo.AdamW8bit(p, lr=lr, weight_decay=0.01)) if bnbo else None),
        ("AdamW", "torch foreach", lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01, foreach=True)),
        ("AdamW", "torch fused", lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01, fused=True)),
        ("Lion8bit", "bnb_core", lambda p: O.Lion8bit(p, lr=1e-4)),
        ("Lion8bit", "bitsandbytes", (lambda p: bnbo.Lion8bit(p, lr=1e-4)) if bnbo else None),
    ]
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1024x1024 model, shorter timing")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                    help="all: the CPU benchmark, then the CUDA one when a CUDA device is present")
    ap.add_argument("--json", default="benchmarks/results/optim.json")
    ap.add_argument("--cuda-json", default="benchmarks/results/optim_cuda.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device in ("all", "cpu"):
        cpu_main(args)
    if args.device in ("all", "cuda"):
        why = _cuda_unavailable()
        if why:
            msg = f"bench_optim: CUDA part skipped: {why}"
            if args.device == "cuda":
                raise SystemExit(msg)
            print(f"\n{msg}")
        else:
            cuda_main(args)


def cpu_main(args):
    dim = 1024 if args.quick else 4096
    min_time = 0.3 if args.quick else 1.5
    bnbo, bnb_version = _bnb_optim()
    nparams = dim * dim + dim
    from bnb_core import _cpu

    print(f"# optimizer step, {nparams / 1e6:.1f}M fp32 params (weight {dim}x{dim} + bias), "
          f"threads={torch.get_num_threads()}, isa={_cpu.isa()}, torch {torch.__version__}, bitsandbytes {bnb_version}")
    results = []
    for name, impl, make in configs(bnbo):
        row = dict(optimizer=name, impl=impl)
        if make is None:
            row["error"] = "bitsandbytes " + bnb_version
            results.append(row)
            continue
        params = _params(dim)
        try:
            opt = make(params)
            med, best = bench(opt.step, min_time=min_time)
            row.update(ms=med * 1e3, min_ms=best * 1e3, state_bytes_per_param=_state_bytes(opt) / nparams)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        results.append(row)
        del params

    def ms(name, impl):
        for r in results:
            if r["optimizer"] == name and r["impl"] == impl and "ms" in r:
                return r["ms"]
        return None

    ours = {"Adam8bit": "Adam8bit", "AdamW8bit": "AdamW8bit", "Lion8bit": "Lion8bit"}
    print("\n| optimizer | implementation | step ms (median) | min ms | state B/param | vs bnb_core |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['optimizer']} | {r['impl']} | - | - | - | {r['error']} |")
            continue
        base_name = ours.get(r["optimizer"]) or ("Adam8bit" if r["optimizer"] == "Adam" else "AdamW8bit")
        base = ms(base_name, "bnb_core")
        ratio = f"{r['ms'] / base:.2f}x" if base else "-"
        print(f"| {r['optimizer']} | {r['impl']} | {r['ms']:.1f} | {r['min_ms']:.1f} | "
              f"{r['state_bytes_per_param']:.3f} | {ratio} |")
    ratios = {}
    for label, (n1, i1), (n2, i2) in [
        ("Adam8bit: bitsandbytes / bnb_core", ("Adam8bit", "bitsandbytes"), ("Adam8bit", "bnb_core")),
        ("Adam: torch foreach / bnb_core Adam8bit", ("Adam", "torch foreach"), ("Adam8bit", "bnb_core")),
        ("Adam: torch fused / bnb_core Adam8bit", ("Adam", "torch fused"), ("Adam8bit", "bnb_core")),
        ("Adam 32-bit: torch fused / bnb_core", ("Adam", "torch fused"), ("Adam", "bnb_core 32-bit")),
        ("AdamW8bit: bitsandbytes / bnb_core", ("AdamW8bit", "bitsandbytes"), ("AdamW8bit", "bnb_core")),
        ("AdamW: torch fused / bnb_core AdamW8bit", ("AdamW", "torch fused"), ("AdamW8bit", "bnb_core")),
        ("Lion8bit: bitsandbytes / bnb_core", ("Lion8bit", "bitsandbytes"), ("Lion8bit", "bnb_core")),
    ]:
        a, b = ms(n1, i1), ms(n2, i2)
        if a and b:
            ratios[label] = a / b
    print("\nspeedups (time of the other / time of bnb_core; > 1: bnb_core faster):")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        params=nparams, dim=dim, threads=torch.get_num_threads(), isa=_cpu.isa(), torch=torch.__version__,
        bitsandbytes=bnb_version, bnb_core=getattr(bnb_core, "__version__", "?"), machine=platform.machine(),
        cpus=os.cpu_count(), results=results, speedups=ratios,
    ), indent=2))
    print(f"\nwrote {out}")


# ------------------------------------------------------------------------------------ CUDA mode

def _cuda_unavailable():
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def cuda_bench(fn, min_time=1.0, max_reps=200, warmup=5) -> tuple[float, float]:
    """(median, min) seconds per call from CUDA events around each call (device time, launch gaps included)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_time or len(times) < 10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) * 1e-3)
    return statistics.median(times), min(times)


def _cuda_params(shape, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(shape, device="cuda", generator=g) * 0.02)
    w.grad = torch.randn(shape, device="cuda", generator=g) * 1e-3
    return [w]


def _bnb_cuda_optim():
    try:
        import bitsandbytes as bnb

        return bnb.optim, bnb.__version__
    except Exception as e:
        return None, f"unavailable ({type(e).__name__}: {e})"


def _op_8bit_adam(params, lr=1e-3):
    """The 8-bit Adam update op alone on fresh zero state (what Adam8bit.step launches per parameter)."""
    from bnb_core import formats

    p = params[0]
    n = p.numel()
    nb = formats.num_blocks(n, formats.OPTIMIZER_BLOCKSIZE)
    s1 = torch.zeros(p.shape, dtype=torch.uint8, device="cuda")
    s2 = torch.zeros(p.shape, dtype=torch.uint8, device="cuda")
    a1 = torch.zeros(nb, device="cuda")
    a2 = torch.zeros(nb, device="cuda")
    q1 = formats.table("dynamic", p.device).clone()
    q2 = formats.table("dynamic_unsigned", p.device).clone()
    step = [0]
    op = torch.ops.bnb.optimizer_update_8bit_blockwise

    def run():
        step[0] += 1
        op("adam", p.grad, p.data, s1, s2, 0.9, 0.999, 0.0, 0.0, 1e-8, step[0], lr, q1, q2, a1, a2, 0.0, 1.0, False)

    kernel = bnb_core.registry.kernel_for("optimizer_update_8bit_blockwise", "adam", p.grad, p.data, s1, s2, 0.9,
                                          0.999, 0.0, 0.0, 1e-8, 1, lr, q1, q2, a1, a2, 0.0, 1.0, False)
    return run, kernel, (s1.numel() + s2.numel() + (a1.numel() + a2.numel()) * 4)


def cuda_main(args):
    shape = (2048, 2048) if args.quick else (8192, 8192)
    nparams = shape[0] * shape[1]
    min_time = 0.3 if args.quick else 1.0
    bnbo, bnb_version = _bnb_cuda_optim()
    lr = 1e-3
    dev_name = torch.cuda.get_device_name()
    print(f"\n# CUDA optimizer step, {nparams / 2**20:.0f}Mi fp32 params (one {shape[0]}x{shape[1]} weight), "
          f"{dev_name}, torch {torch.__version__}, bitsandbytes {bnb_version}, "
          f"cuda backend: {bnb_core.registry.backend_status.get('cuda') or 'loaded'}")
    rows = [
        ("Adam8bit", "bnb_core op", None),
        ("Adam8bit", "bnb_core step", lambda p: O.Adam8bit(p, lr=lr)),
        ("AdamW8bit", "bnb_core step", lambda p: O.AdamW8bit(p, lr=lr, weight_decay=0.01)),
        ("PagedAdamW8bit", "bnb_core step", lambda p: O.PagedAdamW8bit(p, lr=lr, weight_decay=0.01)),
        ("Adam", "bnb_core 32-bit step", lambda p: O.Adam(p, lr=lr)),
        ("Adam", "torch fused", lambda p: torch.optim.Adam(p, lr=lr, fused=True)),
        ("AdamW", "torch fused", lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01, fused=True)),
        ("Adam8bit", "bitsandbytes", (lambda p: bnbo.Adam8bit(p, lr=lr)) if bnbo else None),
        ("AdamW8bit", "bitsandbytes", (lambda p: bnbo.AdamW8bit(p, lr=lr, weight_decay=0.01)) if bnbo else None),
        ("PagedAdamW8bit", "bitsandbytes",
         (lambda p: bnbo.PagedAdamW8bit(p, lr=lr, weight_decay=0.01)) if bnbo else None),
    ]
    results = []
    for name, impl, make in rows:
        row = dict(optimizer=name, impl=impl)
        if impl.startswith("bitsandbytes") and make is None:
            row["error"] = "bitsandbytes " + bnb_version
            results.append(row)
            continue
        params = _cuda_params(shape)
        try:
            if make is None:  # the op alone
                fn, kernel, state_bytes = _op_8bit_adam(params, lr)
                row["kernel"] = kernel
            else:
                opt = make(params)
                fn = opt.step
                fn()
                state_bytes = _state_bytes(opt)
            med, best = cuda_bench(fn, min_time=min_time)
            row.update(ms=med * 1e3, min_ms=best * 1e3, state_bytes_per_param=state_bytes / nparams)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        results.append(row)
        del params
        torch.cuda.empty_cache()

    def ms(name, impl):
        for r in results:
            if r["optimizer"] == name and r["impl"] == impl and "ms" in r:
                return r["ms"]
        return None

    print("\n| optimizer | implementation | ms (median) | min ms | state B/param |")
    print("|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['optimizer']} | {r['impl']} | - | - | {r['error']} |")
            continue
        extra = f" ({r['kernel']})" if "kernel" in r else ""
        print(f"| {r['optimizer']} | {r['impl']}{extra} | {r['ms']:.3f} | {r['min_ms']:.3f} | "
              f"{r['state_bytes_per_param']:.3f} |")
    ratios = {}
    for label, (n1, i1), (n2, i2) in [
        ("Adam8bit: bitsandbytes / bnb_core step", ("Adam8bit", "bitsandbytes"), ("Adam8bit", "bnb_core step")),
        ("Adam8bit: bitsandbytes / bnb_core op", ("Adam8bit", "bitsandbytes"), ("Adam8bit", "bnb_core op")),
        ("Adam: torch fused / bnb_core Adam8bit step", ("Adam", "torch fused"), ("Adam8bit", "bnb_core step")),
        ("Adam: torch fused / bnb_core Adam8bit op", ("Adam", "torch fused"), ("Adam8bit", "bnb_core op")),
        ("AdamW8bit: bitsandbytes / bnb_core", ("AdamW8bit", "bitsandbytes"), ("AdamW8bit", "bnb_core step")),
        ("PagedAdamW8bit: bitsandbytes / bnb_core", ("PagedAdamW8bit", "bitsandbytes"),
         ("PagedAdamW8bit", "bnb_core step")),
        ("Adam 32-bit: torch fused / bnb_core", ("Adam", "torch fused"), ("Adam", "bnb_core 32-bit step")),
    ]:
        a, b = ms(n1, i1), ms(n2, i2)
        if a and b:
            ratios[label] = a / b
    print("\nspeedups (time of the other / time of bnb_core; > 1: bnb_core faster):")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")
    target = ms("Adam8bit", "bnb_core step")
    if target is not None and not args.quick:
        print(f"\nAdam8bit step on {nparams / 2**20:.0f}Mi params: {target:.3f} ms (issue target <= 0.45 ms on H100; "
              f"op alone {ms('Adam8bit', 'bnb_core op') or float('nan'):.3f} ms)")
    out = pathlib.Path(args.cuda_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        params=nparams, shape=list(shape), device=dev_name, torch=torch.__version__, cuda=torch.version.cuda,
        bitsandbytes=bnb_version, bnb_core=getattr(bnb_core, "__version__", "?"), results=results, speedups=ratios,
    ), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
