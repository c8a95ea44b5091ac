"""LLM.int8() linear layer on the CPU: bnb-core's Linear8bitLt path vs fbgemm, torch._int_mm, bitsandbytes
and bf16 dense, in one run.

    python benchmarks/bench_int8.py [--quick] [--threads 2] [--json benchmarks/results/int8.json]

Contenders (fp32 activations [M, K] with 3 outlier columns |x| > 6, weight [N, K]):
  ours      bnb_core.nn.Linear8bitLt(threshold=6.0, int8 weight), eval: int8_vectorwise_quant(x, 6.0) +
            int8_mixed_scaled_mm (native CPU kernels); its weight on transparent huge pages where the system
            has them, as the layer places every weight it holds (registry.place_weight)
  ours_4k   (stream rows only) the same layer with its weight copied to plain memory (4 KiB pages, as every
            peer's weight here): the kernel against the kernels, without the placement
  fbgemm    torch.ao dynamic quantized Linear (quantize_dynamic, qint8, fbgemm engine)
  int_mm    row-wise int8 quantization in torch + torch._int_mm + fp32 dequantization (+ bias)
  bnb       bitsandbytes.nn.Linear8bitLt(threshold=6.0, int8 weight), eval (its CPU path)
  bf16      torch.nn.functional.linear in bf16 (activations and weight bf16)
Modes: "hot" (one weight copy, cache-warm) at every batch, and "stream" at batch 1 (calls rotate through
weight copies totalling > 512 MiB per contender, so weights come from DRAM). Contenders are timed in
interleaved rounds (the machine may be shared: interleaving keeps the ratios fair); times are medians
(min also recorded). Ratios are only meaningful within one run. %BW = weight bytes read per call / time,
relative to the copy bandwidth measured in the run (bytes read + written by a large memcpy).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import pathlib
import platform
import sys
import statistics
import time
import warnings
from typing import Optional

import torch

import bnb_core
from bnb_core.nn import Linear8bitLt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import timed_rounds  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

SHAPES = [(4096, 4096), (14336, 4096), (4096, 14336)]  # (N out_features, K in_features)
BATCHES = [1, 4, 16, 64]
STREAM_BYTES = 512 << 20


def copy_bandwidth(nbytes=256 << 20) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8).fill_(1)
    dst = torch.empty_like(src)
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        dst.copy_(src)
        ts.append(time.perf_counter() - t0)
    return 2 * nbytes / statistics.median(ts)


class Rotator:
    """Calls fn(i) with i cycling over [0, n)."""

    def __init__(self, fn, n):
        self.fn, self.n, self.i = fn, n, 0

    def __call__(self):
        self.i = (self.i + 1) % self.n
        return self.fn(self.i)


def _int_mm_ok():
    try:
        torch._int_mm(torch.ones(1, 64, dtype=torch.int8), torch.ones(64, 8, dtype=torch.int8))
        return True
    except Exception:
        return False


def make_contenders(N, K, copies, bnb_mod, have_int_mm):
    """dict name -> list of `copies` callables x -> y (each with its own weight storage)."""
    g = torch.Generator().manual_seed(N * 7 + K)
    W = torch.randn(N, K, generator=g) * 0.02
    b = torch.randn(N, generator=g) * 0.1
    sd = {"weight": W, "bias": b}
    out = {}
    ours = []
    for _ in range(copies):
        m = Linear8bitLt(K, N, has_fp16_weights=False, threshold=6.0)
        m.load_state_dict(sd)
        m.eval()
        ours.append(m)
    out["ours"] = ours
    x0 = torch.zeros(1, K)
    ours_4k = []
    for m in ours:
        m4 = copy.deepcopy(m)
        m4(x0)  # quantizes (and places) the weight; then a plain copy of it replaces it
        m4.weight.CB = m4.weight.data = m4.weight.data.clone()
        ours_4k.append(m4)
    out["ours_4k"] = ours_4k
    lin = torch.nn.Linear(K, N)
    lin.load_state_dict(sd)
    out["fbgemm"] = [torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear},
                                                            dtype=torch.qint8) for _ in range(copies)]
    if have_int_mm:
        CB, SCB, _ = torch.ops.bnb.int8_vectorwise_quant(W, 0.0)
        scale_b = (SCB / 127.0)[None, :]

        def int_mm_fn(CBt):
            def f(x):
                sa = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
                xa = torch.round(x * (127.0 / sa)).to(torch.int8)
                acc = torch._int_mm(xa, CBt)
                return acc.float() * (sa / 127.0) * scale_b + b

            return f

        out["int_mm"] = [int_mm_fn(CB.clone().t()) for _ in range(copies)]  # [K, N] view of a row-major [N, K] copy
    if bnb_mod is not None:
        mods = []
        for _ in range(copies):
            m = bnb_mod.nn.Linear8bitLt(K, N, has_fp16_weights=False, threshold=6.0)
            m.load_state_dict(sd)
            m = m.to("cpu")
            m.eval()
            mods.append(m)
        out["bnb"] = mods
    Wb, bb = W.to(torch.bfloat16), b.to(torch.bfloat16)
    out["bf16"] = [(lambda Wc: (lambda x: torch.nn.functional.linear(x, Wc, bb)))(Wb.clone()) for _ in range(copies)]
    return out


def huge_page_share(tensors) -> Optional[float]:
    """Share of the tensors' bytes on transparent huge pages (AnonHugePages of the mappings they lie in, from
    /proc/self/smaps; None where that is unreadable). Approximate: a mapping shared with other memory counts whole."""
    try:
        vmas, cur = [], None
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split()[0]
                if "-" in head and not head.endswith(":"):
                    cur = [int(v, 16) for v in head.split("-")]
                elif head == "AnonHugePages:" and cur is not None:
                    vmas.append((cur[0], cur[1], int(line.split()[1]) * 1024))
    except OSError:
        return None
    total = huge = 0
    for t in tensors:
        lo, n = t.data_ptr(), t.numel() * t.element_size()
        total += n
        huge += min(n, sum(h for a, b, h in vmas if a < lo + n and lo < b))
    return huge / total if total else None


def weight_bytes(name, N, K):
    return N * K * (2 if name == "bf16" else 1)


def activations(M, K, dtype):
    g = torch.Generator().manual_seed(M)
    x = torch.randn(M, K, generator=g)
    x[:, [7, K // 3, K - 5]] *= 10.0  # three outlier columns (|x| >= 6 in most rows)
    return x.to(dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only 4096x4096")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per contender per measurement")
    ap.add_argument("--json", default="benchmarks/results/int8.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import bitsandbytes as bnb_mod  # noqa: F401
    except Exception:
        bnb_mod = None
    have_int_mm = _int_mm_ok()
    shapes = SHAPES[:1] if args.quick else SHAPES
    bw = copy_bandwidth()
    from bnb_core.backends import cpu as cpu_backend

    info = cpu_backend.info()
    print(f"# bench_int8: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {args.threads}, isa {info.get('isa')}, bitsandbytes "
          f"{getattr(bnb_mod, '__version__', 'absent')}, copy bandwidth {bw / 1e9:.1f} GB/s (read+write)")
    rows = []
    with torch.inference_mode():
        for (N, K) in shapes:
            copies = max(2, -(-STREAM_BYTES // (N * K)) + 1)
            cont = make_contenders(N, K, copies, bnb_mod, have_int_mm)
            for mode, batches in (("stream", [1]), ("hot", BATCHES)):
                for M in batches:
                    x = activations(M, K, torch.float32)
                    xb = x.to(torch.bfloat16)
                    fns = {}
                    for name, calls in cont.items():
                        if name == "ours_4k" and mode == "hot":
                            continue
                        xi = xb if name == "bf16" else x
                        if mode == "hot":
                            fns[name] = (lambda c, xi: (lambda: c(xi)))(calls[0], xi)
                        else:
                            n = max(2, -(-STREAM_BYTES // weight_bytes(name, N, K)) + 1)
                            n = min(n, len(calls))
                            fns[name] = Rotator((lambda cs, xi: (lambda i: cs[i](xi)))(calls, xi), n)
                            for i in range(n):  # one-time first-call work (lazy weight quantization) untimed
                                fns[name].fn(i)
                    if mode == "stream":
                        shares = {n: huge_page_share([m.weight.data for m in cont[n]]) for n in ("ours", "ours_4k")}
                        print("  weights on huge pages: " + ", ".join(
                            f"{n} {'?' if v is None else f'{100 * v:.0f}%'}" for n, v in shares.items()))
                    res = timed_rounds(fns, args.min_time)
                    t_ours = res["ours"][0]
                    row = {"N": N, "K": K, "M": M, "mode": mode}
                    if mode == "stream":
                        row["huge_page_share"] = shares
                    for name, (med, mn) in res.items():
                        row[name] = {"median_ms": med * 1e3, "min_ms": mn * 1e3,
                                     "pct_copy_bw": 100.0 * weight_bytes(name, N, K) / med / (bw / 2),
                                     "ours_speedup": med / t_ours}
                    rows.append(row)
                    print(_fmt_row(row, list(res)), flush=True)
            del cont
    _print_table(rows)
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"threads": args.threads, "isa": info.get("isa"), "copy_bw_GBps": bw / 1e9,
                                "torch": torch.__version__, "bitsandbytes": getattr(bnb_mod, "__version__", None),
                                "cpu_count": os.cpu_count(), "rows": rows}, indent=1))
    print(f"\nwrote {path}")


def _fmt_row(row, names):
    parts = [f"{n} {row[n]['median_ms']:.3f}" for n in names]
    return f"  {row['mode']:6s} {row['N']}x{row['K']} M={row['M']}: " + ", ".join(parts) + " ms"


def _print_table(rows):
    names = [n for n in ("ours", "ours_4k", "fbgemm", "int_mm", "bnb", "bf16") if any(n in r for r in rows)]
    print("\n| shape NxK | M | mode | " + " | ".join(f"{n} ms" for n in names) +
          " | ours %BW | vs fbgemm | vs int_mm | vs bnb | vs bf16 | 4k vs fbgemm |")
    print("|" + "---|" * (3 + len(names) + 6))
    for r in rows:
        cells = [f"{r[n]['median_ms']:.3f}" if n in r else "-" for n in names]
        sp = [f"{r[n]['ours_speedup']:.2f}x" if n in r else "-" for n in ("fbgemm", "int_mm", "bnb", "bf16")]
        k4 = f"{r['fbgemm']['median_ms'] / r['ours_4k']['median_ms']:.2f}x" if "ours_4k" in r and "fbgemm" in r else "-"
        print(f"| {r['N']}x{r['K']} | {r['M']} | {r['mode']} | " + " | ".join(cells) +
              f" | {r['ours']['pct_copy_bw']:.0f}% | " + " | ".join(sp) + f" | {k4} |")


if __name__ == "__main__":
    main()
