"""Fused 4-bit matmul on the CPU (torch.ops.bnb.gemv_4bit / gemm_4bit) against its peers, in one run.

For Llama linear shapes W [N, K] (NF4, blocksize 64, bf16 activations) and batch M in (1, 4, 16, 64):
  ours        torch.ops.bnb.gemv_4bit (M == 1) / torch.ops.bnb.gemm_4bit (M > 1)
  ours_L      bnb_core.nn.Linear4bit in eval, double-quantized absmax (compress_statistics=True, the default of both
              libraries' Linear4bit, as bnb_eval below): the layer path users call; its streamed weight copies are
              placed as the layer places its weight (transparent huge pages where the system has them), while
              'ours' and every peer read plain copies (clone())
  dense       torch.nn.functional.linear with a bf16 weight
  int4        torch.ops.aten._weight_int4pack_mm_for_cpu (int4, group 64)
  bnb_eval    bitsandbytes Linear4bit in eval mode (its repacked CPU path; called once before timing)
  bnb_mm4     bitsandbytes.matmul_4bit (the train-mode functional path)
Contenders are timed in interleaved rounds (benchmarks/_timing.py: the machine may be shared, and drift then
hits every contender alike); times are medians. Batch 1 is timed hot (one weight, in cache where it fits) and streamed (rotating through weight copies
totalling > 512 MiB, so every call reads its weight from memory: ours, dense, int4, and bnb_eval through
copies of its repacked weight and absmax); for the streamed rows the copy bandwidth measured in this run gives
each kernel's % of it on its weight bytes (packed bytes for 4-bit); it is measured at the start and again
right before each shape's streamed timings (the latter is used for that shape's %). A copy reads and writes,
so a read-only kernel can exceed 100% of it.

    PYTHONPATH=. python benchmarks/bench_matmul_4bit.py [--quick] [--threads T]

Writes benchmarks/results/matmul_4bit-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bnb_core  # noqa: E402,F401
from _timing import timed_rounds  # noqa: E402
from bnb_core import formats, registry  # noqa: E402

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096), (4096, 14336), (8192, 8192), (28672, 8192)]
QUICK_SHAPES = [(4096, 4096), (14336, 4096), (4096, 14336)]
BATCHES = (1, 4, 16, 64)
STREAM_BYTES = 512 << 20
BS = 64


def timeit(fn, min_time=0.25, max_reps=200, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    t_end = time.perf_counter() + min_time
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth():
    n = 256 << 20
    src = torch.empty(n, dtype=torch.uint8).fill_(1)
    dst = torch.empty_like(src)
    t = timeit(lambda: dst.copy_(src), min_time=0.5, max_reps=20)
    return 2 * n / t  # bytes read + written per second


def rotating(fns):
    state = {"i": 0}

    def call():
        f = fns[state["i"] % len(fns)]
        state["i"] += 1
        return f()

    return call


def ncopies(nbytes):
    return max(2, math.ceil(STREAM_BYTES / nbytes) + 1)


def make_ours(N, K, W):
    packed, absmax = torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8)
    code = formats.code_4bit("nf4").clone()

    def fn_for(A, packed=packed, absmax=absmax):
        if A.shape[0] == 1:
            return lambda: torch.ops.bnb.gemv_4bit(A, packed, [N, K], absmax, code, BS)
        return lambda: torch.ops.bnb.gemm_4bit(A, packed, [N, K], absmax, BS, "nf4")

    return packed, absmax, fn_for


def make_ours_layer(W):
    from bnb_core.nn import Linear4bit

    N, K = W.shape
    layer = Linear4bit(K, N, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True)
    layer.load_state_dict({"weight": W.float()})
    layer = layer.to("cpu").eval()
    return layer


def make_int4(N, K, g):
    try:
        q = torch.randint(0, 16, (N, K), dtype=torch.int32, generator=g)
        w = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
        sz = (torch.rand(K // 64, N, 2, generator=g) * 0.01).to(torch.bfloat16)
        return w, sz
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"


def make_bnb(W):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import bitsandbytes as bnb

            N, K = W.shape
            layer = bnb.nn.Linear4bit(K, N, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(W.clone(), requires_grad=False, quant_type="nf4", blocksize=BS)
            layer = layer.to("cpu")
            if getattr(layer.weight, "quant_state", None) is None:
                layer.weight = bnb.nn.Params4bit(W.clone(), requires_grad=False, quant_type="nf4",
                                                 blocksize=BS)._quantize("cpu")
            return bnb, layer
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 shapes (4096x4096, 14336x4096, 4096x14336)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batches", type=str, default=None, help="comma list, default 1,4,16,64")
    ap.add_argument("--no-peers", action="store_true", help="skip the bitsandbytes peers")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else BATCHES
    g = torch.Generator().manual_seed(0)
    bw = copy_bandwidth()
    res = {"isa": bnb_core._cpu.isa() if hasattr(bnb_core, "_cpu") else None, "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "copy_bandwidth_GBps": bw / 1e9, "rows": []}
    try:
        from bnb_core import _cpu

        res["isa"] = _cpu.isa()
    except Exception:  # noqa: BLE001
        pass
    print(f"isa {res['isa']}  threads {res['threads']}  copy bandwidth {bw / 1e9:.1f} GB/s (read+write)")
    cols = ["ours", "ours_L", "dense", "int4", "bnb_eval", "bnb_mm4"]
    hdr = f"{'shape NxK':>12} {'M':>8} " + " ".join(f"{c + ' ms':>11}" for c in cols)
    hdr += f" {'x dense':>8} {'x int4':>7} {'x bnbE':>7} {'x bnbMM':>7} {'L x bnbE':>8} {'ours %bw':>8} {'int4 %bw':>8}"
    hdr += f" {'bnbE %bw':>8}"
    print(hdr)
    for (N, K) in shapes:
        W = (torch.randn(N, K, generator=g) * 0.02).to(torch.bfloat16)
        packed, absmax, ours_for = make_ours(N, K, W)
        Wd = W
        w4, sz = make_int4(N, K, g)
        bnbmod, layer = (None, "skipped") if args.no_peers else make_bnb(W)
        ours_layer = make_ours_layer(W)
        packed_bytes = packed.numel() * packed.element_size()
        int4_bytes = N * K // 2
        for M in batches:
            for mode in (("hot", "stream") if M == 1 else ("hot",)):
                A = torch.randn(M, K, generator=g).to(torch.bfloat16)
                row = {"N": N, "K": K, "M": M, "mode": mode}
                # contenders are timed in interleaved rounds (the machine may be shared: drift hits all alike)
                fns = {}
                restore = None
                if mode == "hot":
                    fns["ours"] = ours_for(A)
                    fns["ours_L"] = lambda: ours_layer(A)
                    fns["dense"] = lambda: torch.nn.functional.linear(A, Wd)
                    if w4 is not None:
                        fns["int4"] = lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(A, w4, 64, sz)
                    if bnbmod is not None:
                        layer.eval()
                        with torch.no_grad():
                            layer(A)  # repacks once
                        qs = layer.weight.quant_state
                        wt = layer.weight
                        fns["bnb_eval"] = lambda: layer(A)
                        try:
                            with torch.no_grad():
                                bnbmod.matmul_4bit(A, wt.t(), quant_state=qs)
                            fns["bnb_mm4"] = lambda: bnbmod.matmul_4bit(A, wt.t(), quant_state=qs)
                        except Exception as e:  # noqa: BLE001
                            row["bnb_mm4_error"] = str(e)[:200]
                    min_time = 0.25
                else:
                    # the machine may be shared: copy bandwidth again, next to the streamed timings it scales
                    bw_row = copy_bandwidth()
                    row["copy_bandwidth_GBps"] = bw_row / 1e9
                    code = formats.code_4bit("nf4").clone()
                    copies = [(packed.clone(), absmax.clone()) for _ in range(ncopies(packed_bytes))]
                    fns["ours"] = rotating([
                        (lambda p=p, a=a: torch.ops.bnb.gemv_4bit(A, p, [N, K], a, code, BS)) for p, a in copies])
                    # the layer through copies of its packed weight and its absmax codes (double-quantized)
                    lqs = ours_layer.weight.quant_state
                    lbase = (ours_layer.weight.data, lqs.absmax)
                    # placed as the layer places every weight it holds (CPU: huge pages, registry.place_weight)
                    lcopies = [(registry.place_weight(lbase[0].clone()), lbase[1].clone())
                               for _ in range(ncopies(packed_bytes))]

                    def call_ours_layer(w, q, layer=ours_layer, qs=lqs):
                        layer.weight.data = w
                        qs.absmax = q
                        return layer(A)

                    fns["ours_L"] = rotating([(lambda w=w, q=q: call_ours_layer(w, q)) for w, q in lcopies])
                    dcopies = [Wd.clone() for _ in range(min(ncopies(N * K * 2), 8))]
                    fns["dense"] = rotating([(lambda w=w: torch.nn.functional.linear(A, w)) for w in dcopies])
                    if w4 is not None:
                        icopies = [w4.clone() for _ in range(ncopies(int4_bytes))]
                        fns["int4"] = rotating([
                            (lambda w=w: torch.ops.aten._weight_int4pack_mm_for_cpu(A, w, 64, sz)) for w in icopies])
                    if bnbmod is not None:
                        # its repacked layer, rotating through copies of the repacked weight and its absmax
                        layer.eval()
                        with torch.no_grad():
                            layer(A)  # repacks once
                        qs = layer.weight.quant_state
                        base_w, base_a = layer.weight.data, qs.absmax
                        bcopies = [(base_w.clone(), base_a.clone()) for _ in range(ncopies(packed_bytes))]

                        def call_bnb(w, a, layer=layer, qs=qs):
                            layer.weight.data = w
                            qs.absmax = a
                            return layer(A)

                        fns["bnb_eval"] = rotating([(lambda w=w, a=a: call_bnb(w, a)) for w, a in bcopies])

                        def restore(layer=layer, qs=qs, base_w=base_w, base_a=base_a):
                            layer.weight.data, qs.absmax = base_w, base_a
                    min_time = 0.5
                with torch.no_grad():
                    for k, (med, _mn) in timed_rounds(fns, min_time * len(fns)).items():
                        row[k] = med
                if restore is not None:
                    restore()
                fns.clear()
                if mode == "stream":
                    ours_layer.weight.data, ours_layer.weight.quant_state.absmax = lbase
                    del copies, dcopies, lcopies
                    if w4 is not None:
                        del icopies
                    if bnbmod is not None:
                        del bcopies
                        row["bnb_eval_pct_bw"] = 100 * packed_bytes / row["bnb_eval"] / bw_row
                    row["ours_pct_bw"] = 100 * packed_bytes / row["ours"] / bw_row
                    if "int4" in row:
                        row["int4_pct_bw"] = 100 * int4_bytes / row["int4"] / bw_row
                for peer in ("dense", "int4", "bnb_eval", "bnb_mm4"):
                    if peer in row:
                        row[f"speedup_vs_{peer}"] = row[peer] / row["ours"]
                if "bnb_eval" in row:
                    row["layer_speedup_vs_bnb_eval"] = row["bnb_eval"] / row["ours_L"]
                res["rows"].append(row)

                def ms(k):
                    return f"{row[k] * 1e3:11.3f}" if k in row else f"{'-':>11}"

                def x(k):
                    return f"{row['speedup_vs_' + k]:.2f}" if "speedup_vs_" + k in row else "-"

                def pct(k):
                    return f"{row[k]:.0f}%" if k in row else "-"

                print(f"{f'{N}x{K}':>12} {str(M) + ('s' if mode == 'stream' else ''):>8} "
                      + " ".join(ms(c) for c in cols)
                      + f" {x('dense'):>8} {x('int4'):>7} {x('bnb_eval'):>7} {x('bnb_mm4'):>7}"
                      + f" {(format(row['layer_speedup_vs_bnb_eval'], '.2f') if 'bnb_eval' in row else '-'):>8}"
                      + f" {pct('ours_pct_bw'):>8} {pct('int4_pct_bw'):>8} {pct('bnb_eval_pct_bw'):>8}", flush=True)
        del layer, ours_layer
    if w4 is None:
        res["int4_error"] = sz
    os.makedirs(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"), exist_ok=True)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                        f"matmul_4bit-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print(f"M = batch rows ('1s' = batch 1 streamed from memory); 'x P' = P's time / ours (> 1: ours faster);"
          f" 'L x bnbE' = bnb_eval's time / ours_L (both layers, double-quantized absmax);"
          f" %bw = weight bytes / time / copy bandwidth measured next to the row\nwrote {path}")


if __name__ == "__main__":
    main()
