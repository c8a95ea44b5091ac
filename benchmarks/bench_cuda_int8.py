"""LLM.int8() on a CUDA device: bnb-core's kernels vs torch fp16 dense and bitsandbytes, in one run.

    python benchmarks/bench_cuda_int8.py [--quick] [--shape 8192x8192] [--batches 1,16,64,2048]
                                         [--json benchmarks/results/cuda_int8.json]

Layer (fp16 activations [M, K] with 3 outlier columns |x| > 6, int8 weight [N, K] with row-wise absmax, bias):
  ours-<mode>   bnb_core.autograd.matmul (what Linear8bitLt runs in eval): int8_vectorwise_quant(x, 6.0)
                (one device-to-host copy of the outlier count) + int8_mixed_scaled_mm, with the int8 matmul
                kernel selected by mode: own (bnb_core._cuda tensor-core kernels), torch (torch._int_mm,
                cuBLASLt, where M > 16 and K, N % 8 == 0), auto (the default choice)
  ours-t0       the same with threshold 0.0 (no outlier decomposition, no synchronization), mode auto
  bnb / bnb-t0  bitsandbytes.nn.Linear8bitLt (threshold 6.0 / 0.0, int8 weight), eval, when importable
  fp16          torch.nn.functional.linear in fp16
Kernels alone (int8 operands prepared once):
  mm-own / mm-torch        int8_linear_matmul (int32 out): own kernel vs torch._int_mm
  smm-own / smm-torch      int8_scaled_mm (dequantized fp16 out + bias): own fused epilogue vs torch._int_mm +
                           our dequantization kernel
  quant-t6 / quant-t0      int8_vectorwise_quant with / without the outlier path
Host overhead: microseconds per call of each op on a tiny problem (1 x 64 x 64), launch-bound, no sync.

Times: CUDA events around `iters` back-to-back calls, median over rounds (min also recorded); contenders
are interleaved per round. Ratios are "x of fp16 dense time" (< 1 is faster than fp16). Only meaningful
within one run on one device. Without a CUDA device the script exits with a message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import statistics
import sys
import time
import warnings

import torch

warnings.filterwarnings("ignore")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _need_gpu():
    if not torch.cuda.is_available():
        raise SystemExit("bench_cuda_int8: no CUDA device (torch.cuda.is_available() is False); nothing to measure")


def cuda_time(fn, iters: int) -> float:
    """Seconds per call of fn over `iters` back-to-back calls (CUDA events)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / iters


def timed_rounds(fns: dict, iters: int, rounds: int) -> dict:
    out = {k: [] for k in fns}
    for f in fns.values():  # warm-up (lazy init, autotuning, allocator)
        f()
        f()
    torch.cuda.synchronize()
    for _ in range(rounds):
        for k, f in fns.items():
            out[k].append(cuda_time(f, iters))
    return {k: (statistics.median(v), min(v)) for k, v in out.items()}


def activations(M, K, device, dtype=torch.float16):
    g = torch.Generator().manual_seed(M)
    x = torch.randn(M, K, generator=g)
    x[:, [7, K // 3, K - 5]] *= 10.0  # three outlier columns (|x| >= 6 in most rows)
    return x.to(dtype).to(device)


def try_bnb():
    try:
        import bitsandbytes as bnb  # noqa: F401

        m = bnb.nn.Linear8bitLt(64, 64, has_fp16_weights=False, threshold=6.0).cuda()
        m(torch.randn(2, 64, dtype=torch.float16, device="cuda"))
        return bnb, getattr(bnb, "__version__", "?")
    except Exception as e:  # not installed, or no CUDA build
        return None, f"unavailable ({type(e).__name__}: {str(e)[:80]})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds/iterations")
    ap.add_argument("--shape", default="8192x8192", help="NxK (out_features x in_features)")
    ap.add_argument("--batches", default="1,16,64,2048")
    ap.add_argument("--json", default="benchmarks/results/cuda_int8.json")
    args = ap.parse_args()
    _need_gpu()

    import bnb_core
    from bnb_core import autograd
    from bnb_core.backends import cuda as cb

    why = cb.load()
    if why is not None:
        raise SystemExit(f"bench_cuda_int8: the CUDA backend is not loaded: {why}")
    dev = torch.device("cuda", torch.cuda.current_device())
    d = dev.index
    N, K = (int(v) for v in args.shape.lower().split("x"))
    batches = [int(b) for b in args.batches.split(",")]
    rounds, iters = (3, 5) if args.quick else (7, 20)
    bnb, bnb_version = try_bnb()
    props = torch.cuda.get_device_properties(dev)
    print(f"# {props.name}, torch {torch.__version__}, bnb-core {getattr(bnb_core, '__version__', '?')}, "
          f"bitsandbytes {bnb_version}; N x K = {N} x {K}; rounds {rounds} x {iters} calls")

    g = torch.Generator().manual_seed(N + K)
    W = (torch.randn(N, K, generator=g) * 0.02).to(torch.float16).to(dev)
    b = (torch.randn(N, generator=g) * 0.1).to(torch.float16).to(dev)
    CB, SCB, _ = torch.ops.bnb.int8_vectorwise_quant(W, 0.0)

    def ours(threshold, mode):
        state = autograd.MatmulLtState(CB=CB, SCB=SCB, threshold=threshold, has_fp16_weights=False,
                                       is_training=False)

        def f(x):
            prev = cb.set_int8_mm(mode)
            try:
                return autograd.matmul(x, CB, state=state, threshold=threshold, bias=b)
            finally:
                cb.set_int8_mm(prev)

        return f

    bnb_mods = {}
    if bnb is not None:
        for t in (6.0, 0.0):
            m = bnb.nn.Linear8bitLt(K, N, has_fp16_weights=False, threshold=t)
            m.load_state_dict({"weight": W.float().cpu(), "bias": b.float().cpu()})
            bnb_mods[t] = m.to(dev).half().eval()

    rows, kernel_rows = [], []
    with torch.no_grad():
        for M in batches:
            x = activations(M, K, dev)
            layer = {
                "fp16": lambda x=x: torch.nn.functional.linear(x, W, b),
                "ours-own": lambda x=x, f=ours(6.0, "own"): f(x),
                "ours-auto": lambda x=x, f=ours(6.0, "auto"): f(x),
                "ours-t0": lambda x=x, f=ours(0.0, "auto"): f(x),
            }
            if _torch_ok(M, N, K):
                layer["ours-torch"] = lambda x=x, f=ours(6.0, "torch"): f(x)
            for t, name in ((6.0, "bnb"), (0.0, "bnb-t0")):
                if t in bnb_mods:
                    layer[name] = lambda x=x, m=bnb_mods[t]: m(x)
            # the layers agree (a loose sanity check: both compute LLM.int8() of the same weight)
            ref = layer["fp16"]().float()
            for k in layer:
                y = layer[k]().float()
                rel = ((y - ref).norm() / ref.norm()).item()
                if not rel < 0.05:
                    print(f"  warning: {k} at M={M} differs from fp16 dense by {rel:.3g} (relative norm)")
            res = timed_rounds(layer, iters, rounds)
            base = res["fp16"][0]
            row = {"M": M, "N": N, "K": K, "config_own": cb._mod.int8_gemm_config_name(d, M, N, K)}
            for k, (med, mn) in res.items():
                row[k] = {"us": med * 1e6, "min_us": mn * 1e6, "x_fp16": med / base}
            rows.append(row)

            # kernels alone
            CA, SCA, _ = torch.ops.bnb.int8_vectorwise_quant(x, 0.0)
            out32 = torch.empty(M, N, dtype=torch.int32, device=dev)
            kern = {
                "mm-own": lambda: cb._mod.int8_linear_matmul(d, torch._C._cuda_getCurrentRawStream(d), CA.data_ptr(),
                                                             CB.data_ptr(), M, N, K, out32.data_ptr()),
                "smm-own": lambda: _with_mode(cb, "own", cb.int8_scaled_mm, CA, CB, SCA, SCB, b, torch.float16),
                "quant-t6": lambda x=x: torch.ops.bnb.int8_vectorwise_quant(x, 6.0),
                "quant-t0": lambda x=x: torch.ops.bnb.int8_vectorwise_quant(x, 0.0),
            }
            if _torch_ok(M, N, K):
                CBt = CB.t()
                kern["mm-torch"] = lambda: torch._int_mm(CA, CBt, out=out32)
                kern["smm-torch"] = lambda: _with_mode(cb, "torch", cb.int8_scaled_mm, CA, CB, SCA, SCB, b,
                                                       torch.float16)
            kres = timed_rounds(kern, iters, rounds)
            krow = {"M": M, "N": N, "K": K}
            for k, (med, mn) in kres.items():
                krow[k] = {"us": med * 1e6, "min_us": mn * 1e6,
                           "TOPS": 2 * M * N * K / med / 1e12 if k.startswith(("mm", "smm")) else None}
            kernel_rows.append(krow)
            _print_row(row, krow)

    host = host_overhead(dev)
    print("\n# host overhead per call (tiny problem, launch-bound; us)")
    for k, v in host.items():
        print(f"  {k:28s} {v:7.2f}")
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": props.name, "torch": torch.__version__, "bitsandbytes": bnb_version,
                                "layer": rows, "kernels": kernel_rows, "host_overhead_us": host,
                                "env_BNB_CUDA_INT8_MM": os.environ.get("BNB_CUDA_INT8_MM"),
                                "time": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    print(f"\nwrote {path}")


def _torch_ok(M, N, K):
    return M > 16 and K % 8 == 0 and N % 8 == 0


def _with_mode(cb, mode, fn, *a):
    prev = cb.set_int8_mm(mode)
    try:
        return fn(*a)
    finally:
        cb.set_int8_mm(prev)


def _print_row(row, krow):
    M = row["M"]
    names = [k for k in row if isinstance(row[k], dict)]
    print(f"\nM={M} (own kernel config: {row['config_own']})")
    print("  layer   " + "  ".join(f"{k:>11s}" for k in names))
    print("  us      " + "  ".join(f"{row[k]['us']:11.1f}" for k in names))
    print("  x fp16  " + "  ".join(f"{row[k]['x_fp16']:11.2f}" for k in names))
    knames = [k for k in krow if isinstance(krow[k], dict)]
    print("  kernel  " + "  ".join(f"{k:>11s}" for k in knames))
    print("  us      " + "  ".join(f"{krow[k]['us']:11.1f}" for k in knames))
    print("  TOPS    " + "  ".join(f"{krow[k]['TOPS']:11.1f}" if krow[k]["TOPS"] else f"{'':11s}" for k in knames))


def host_overhead(dev, n=2000) -> dict:
    """Python-side microseconds per call on a 1 x 64 x 64 problem (the GPU work is ~2 us, so a long queue of
    launches is host-bound: wall time / calls ~ host overhead)."""
    M, N, K = 1, 64, 64
    x = torch.randn(M, K, device=dev, dtype=torch.float16)
    W = torch.randn(N, K, device=dev, dtype=torch.float16)
    CB, SCB, _ = torch.ops.bnb.int8_vectorwise_quant(W, 0.0)
    CA, SCA, _ = torch.ops.bnb.int8_vectorwise_quant(x, 0.0)
    bias = torch.randn(N, device=dev, dtype=torch.float16)
    acc = torch.ops.bnb.int8_linear_matmul(CA, CB)
    calls = {
        "int8_vectorwise_quant t=0": lambda: torch.ops.bnb.int8_vectorwise_quant(x, 0.0),
        "int8_linear_matmul": lambda: torch.ops.bnb.int8_linear_matmul(CA, CB),
        "int8_mm_dequant": lambda: torch.ops.bnb.int8_mm_dequant(acc, SCA, SCB, torch.float16, bias),
        "int8_scaled_mm": lambda: torch.ops.bnb.int8_scaled_mm(CA, CB, SCA, SCB, bias, torch.float16),
        "torch.nn.functional.linear": lambda: torch.nn.functional.linear(x, W, bias),
    }
    out = {}
    for k, f in calls.items():
        for _ in range(50):
            f()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        out[k] = (t1 - t0) / n * 1e6
    return out


if __name__ == "__main__":
    sys.exit(main())
