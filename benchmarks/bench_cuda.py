"""CUDA benchmark of bnb-core's native kernels against torch and bitsandbytes, in one run on one GPU.

Measures, with CUDA events over many back-to-back calls (medians of repeated runs):
  copy        device-to-device copy bandwidth of a large buffer (bytes read + written): the 100% line
  quant       quantize_4bit / dequantize_4bit (NF4, blocksize 64, 8192x8192 fp16) and blockwise 8-bit
              quantize / dequantize (blocksize 256, 64M fp32): % of the copy bandwidth on the bytes each op
              must move, and bitsandbytes' time for the same op
  matmul      NF4 (blocksize 64) A[M, K] @ W[N, K].T for the ANCHORS.md shapes and M = 1, 4, 16, 64, 256:
              ours (torch.ops.bnb.gemv_4bit at M = 1, gemm_4bit above) vs torch fp16 dense
              (torch.nn.functional.linear) vs bitsandbytes.matmul_4bit when importable. "mem" rows rotate
              through weight copies totalling >= --rotate-mib (default 512 MiB, >> the 50 MB L2), so every
              call streams its weight from HBM as LLM decoding does; batch 1 is also timed "hot" (one weight).
              At batch 1, % of the copy bandwidth on the packed weight + absmax bytes. A spot check compares
              ours with F.linear on the dequantized weight (max |diff| / max |ref|).
  overhead    host time per call of tiny ops (wall clock over calls that are not synchronized, against the
              GPU time of the same calls from CUDA events), through torch.ops.bnb (check + dispatch + glue)
              and through the backend glue alone, with torch and bitsandbytes baselines

    python benchmarks/bench_cuda.py [--quick] [--json out.json] [--dtype float16|bfloat16] [--no-bnb]

Prints markdown tables of times and ratios; --json writes every number. Ratios are only meaningful within
one run. Without a CUDA device it exits with status 2 and says so (--dry-run-cpu runs every code path on
the CPU with tiny shapes, to test the script itself; its numbers mean nothing).
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

SHAPES = [(4096, 4096), (14336, 4096), (4096, 14336), (8192, 8192), (28672, 8192)]
QUICK_SHAPES = [(4096, 4096), (8192, 8192)]
DRY_SHAPES = [(256, 128), (64, 256)]
BATCHES = (1, 4, 16, 64, 256)
BS = 64


class Timer:
    """Seconds per call: CUDA events around `iters` back-to-back calls (CPU dry run: perf_counter)."""

    def __init__(self, device: str, target_s: float):
        self.cuda = device == "cuda"
        self.target_s = target_s

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def _run(self, fn, iters):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1e-3 / iters
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        return (time.perf_counter() - t0) / iters

    def time(self, fn, reps: int = 5, warmup: int = 3) -> float:
        for _ in range(warmup):
            fn()
        self.sync()
        rough = self._run(fn, 3)
        iters = int(min(2000, max(3, self.target_s / max(rough, 1e-7))))
        return statistics.median(self._run(fn, iters) for _ in range(reps))

    def host(self, fn, calls: int = 2000):
        """(wall seconds per call without synchronizing between calls, device seconds per call)."""
        for _ in range(20):
            fn()
        self.sync()
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = (time.perf_counter() - t0) / calls
        if self.cuda:
            end.record()
            end.synchronize()
            return wall, start.elapsed_time(end) * 1e-3 / calls
        return wall, wall


def rotating(fns):
    state = [0]

    def call():
        f = fns[state[0] % len(fns)]
        state[0] += 1
        return f()

    return call


def copy_bandwidth(timer: Timer, device: str, nbytes: int) -> float:
    a = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    b = torch.empty_like(a).fill_(2)
    t = timer.time(lambda: b.copy_(a))
    del a, b
    return 2 * nbytes / t


def load_bnb(no_bnb: bool):
    if no_bnb:
        return None, "skipped (--no-bnb)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import bitsandbytes
            import bitsandbytes.functional  # noqa: F401

        return bitsandbytes, getattr(bitsandbytes, "__version__", "?")
    except Exception as e:  # noqa: BLE001
        return None, f"not importable ({type(e).__name__}: {e})"


def _try(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {str(e)[:160]}"


def us(t):
    return "-" if t is None else f"{t * 1e6:.1f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


# ------------------------------------------------------------------------------------------ sections


def bench_quant(timer, device, bnb, copy_bw, dry, res):
    import bnb_core  # noqa: F401
    from bnb_core import formats

    print("\n## Quantization ops: % of copy bandwidth on the bytes each op moves; x bnb = bitsandbytes time / ours")
    print("| op | shape | ours us | ours %BW | bnb us | bnb %BW | x bnb |")
    print("|---|---|---|---|---|---|---|")
    n4 = 256 * 256 if dry else 8192 * 8192
    n8 = 1 << 16 if dry else 64 << 20
    W = torch.randn(n4, device=device, dtype=torch.float16).reshape(-1, 256 if dry else 8192)
    X = torch.randn(n8, device=device, dtype=torch.float32)
    dyn = formats.table("dynamic").to(device)
    packed, absmax = torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8)
    q8, am8 = torch.ops.bnb.quantize_blockwise(X, dyn, 256)
    rows = [
        ("quantize_4bit nf4 bs64", tuple(W.shape), n4 * 2 + n4 // 2 + n4 // BS * 4,
         lambda: torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8),
         (lambda: bnb.functional.quantize_4bit(W, blocksize=BS, quant_type="nf4")) if bnb else None),
        ("dequantize_4bit nf4 bs64", tuple(W.shape), n4 // 2 + n4 // BS * 4 + n4 * 2,
         lambda: torch.ops.bnb.dequantize_4bit(packed, absmax, BS, "nf4", list(W.shape), torch.float16), None),
        ("quantize_blockwise 8-bit bs256", (n8,), n8 * 4 + n8 + n8 // 256 * 4,
         lambda: torch.ops.bnb.quantize_blockwise(X, dyn, 256),
         (lambda: bnb.functional.quantize_blockwise(X, blocksize=256)) if bnb else None),
        ("dequantize_blockwise 8-bit bs256", (n8,), n8 + n8 // 256 * 4 + n8 * 4,
         lambda: torch.ops.bnb.dequantize_blockwise(q8, am8, dyn, 256, torch.float32), None),
    ]
    if bnb:  # bitsandbytes' dequantize needs its own quantized state
        bp, bqs = bnb.functional.quantize_4bit(W, blocksize=BS, quant_type="nf4")
        rows[1] = rows[1][:4] + (lambda: bnb.functional.dequantize_4bit(bp, bqs),)
        b8, b8qs = bnb.functional.quantize_blockwise(X, blocksize=256)
        rows[3] = rows[3][:4] + (lambda: bnb.functional.dequantize_blockwise(b8, b8qs),)
    for name, shape, nbytes, ours, peer in rows:
        t = timer.time(ours)
        tb, err = _try(lambda: timer.time(peer)) if peer else (None, "bitsandbytes not importable")
        row = {"op": name, "shape": shape, "bytes": nbytes, "ours_s": t, "ours_pct_bw": 100 * nbytes / t / copy_bw,
               "bnb_s": tb, "bnb_pct_bw": None if tb is None else 100 * nbytes / tb / copy_bw, "bnb_error": err}
        res["quant"].append(row)
        bpct = "-" if tb is None else f"{row['bnb_pct_bw']:.0f}%"
        print(f"| {name} | {'x'.join(map(str, shape))} | {us(t)} | {row['ours_pct_bw']:.0f}% | {us(tb)} | {bpct} | "
              f"{ratio(tb, t)} |")


def bench_matmul(timer, device, bnb, copy_bw, dtype, shapes, batches, rotate_bytes, res):
    import bnb_core  # noqa: F401
    from bnb_core import formats

    print(f"\n## NF4 matmul, {str(dtype)[6:]} activations, blocksize {BS}: us per call; x P = P's time / ours "
          "(> 1: ours faster); mem = weights streamed from HBM (rotating copies), hot = one weight")
    print("| N x K | M | mode | ours us | fp16 dense us | bnb us | x dense | x bnb | ours %BW | bnb %BW | "
          "max rel diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    g = torch.Generator(device="cpu").manual_seed(0)
    code = formats.code_4bit("nf4").to(device)
    for (N, K) in shapes:
        W = (torch.randn(N, K, generator=g) * 0.02).to(device=device, dtype=dtype)
        packed, absmax = torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8)
        w4_bytes = packed.numel() + absmax.numel() * 4
        n_ours = max(2, math.ceil(rotate_bytes / w4_bytes) + 1)
        n_dense = max(2, math.ceil(rotate_bytes / (N * K * 2)) + 1)
        ours_w = [(packed, absmax)] + [(packed.clone(), absmax.clone()) for _ in range(n_ours - 1)]
        dense_w = [W] + [W.clone() for _ in range(n_dense - 1)]
        W_deq = torch.ops.bnb.dequantize_4bit(packed, absmax, BS, "nf4", [N, K], dtype)
        bnb_w, bnb_err = None, "bitsandbytes not importable"
        if bnb is not None:
            bnb_w, bnb_err = _try(lambda: [bnb.functional.quantize_4bit(W, blocksize=BS, quant_type="nf4")
                                           for _ in range(n_ours)])
        for M in batches:
            A = (torch.randn(M, K, generator=g)).to(device=device, dtype=dtype)

            def ours_fn(p, a, A=A):
                if M == 1:
                    return lambda: torch.ops.bnb.gemv_4bit(A, p, [N, K], a, code, BS)
                return lambda: torch.ops.bnb.gemm_4bit(A, p, [N, K], a, BS, "nf4")

            out = ours_fn(packed, absmax)()
            ref = torch.nn.functional.linear(A, W_deq)
            rel = ((out.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-30)).item()
            for mode in (("mem", "hot") if M == 1 else ("mem",)):
                sel = slice(None) if mode == "mem" else slice(0, 1)
                t = timer.time(rotating([ours_fn(p, a) for p, a in ours_w[sel]]))
                td = timer.time(rotating([(lambda w=w, A=A: torch.nn.functional.linear(A, w)) for w in dense_w[sel]]))
                tb, err = None, bnb_err
                if bnb_w is not None:
                    tb, err = _try(lambda: timer.time(rotating([
                        (lambda p=p, s=s, A=A: bnb.matmul_4bit(A, p.t(), quant_state=s)) for p, s in bnb_w[sel]])))
                row = {"N": N, "K": K, "M": M, "mode": mode, "ours_s": t, "dense_s": td, "bnb_s": tb, "bnb_error": err,
                       "max_rel_diff_vs_dequantized_linear": rel, "weight_bytes": w4_bytes,
                       "speedup_vs_dense": td / t, "speedup_vs_bnb": None if tb is None else tb / t}
                if M == 1:
                    row["ours_pct_bw"] = 100 * w4_bytes / t / copy_bw
                    row["bnb_pct_bw"] = None if tb is None else 100 * w4_bytes / tb / copy_bw
                res["matmul"].append(row)
                pb, po = row.get("bnb_pct_bw"), row.get("ours_pct_bw")
                print(f"| {N}x{K} | {M} | {mode} | {us(t)} | {us(td)} | {us(tb)} | {ratio(td, t)} | {ratio(tb, t)} | "
                      f"{'-' if po is None else f'{po:.0f}%'} | {'-' if pb is None else f'{pb:.0f}%'} | {rel:.1e} |",
                      flush=True)
        del ours_w, dense_w, bnb_w, W, W_deq


def bench_overhead(timer, device, bnb, dtype, res):
    import bnb_core
    from bnb_core import formats, registry

    print("\n## Host overhead per call (tiny tensors): wall = host time per unsynchronized call, gpu = device time "
          "per call (CUDA events); both in us")
    print("| call | path | wall us | gpu us |")
    print("|---|---|---|---|")
    N = K = 64
    W = torch.randn(N, K, device=device, dtype=dtype)
    packed, absmax = torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8)
    code = formats.code_4bit("nf4").to(device)
    A1 = torch.randn(1, K, device=device, dtype=dtype)
    A16 = torch.randn(16, K, device=device, dtype=dtype)
    x = torch.randn(64, device=device, dtype=dtype)
    calls = [
        ("torch.add (baseline)", "torch", lambda: torch.add(x, x)),
        ("torch F.linear 16x64x64 (baseline)", "torch", lambda: torch.nn.functional.linear(A16, W)),
        ("gemv_4bit 1x64x64", "torch.ops.bnb", lambda: torch.ops.bnb.gemv_4bit(A1, packed, [N, K], absmax, code, BS)),
        ("gemm_4bit 16x64x64", "torch.ops.bnb", lambda: torch.ops.bnb.gemm_4bit(A16, packed, [N, K], absmax, BS, "nf4")),
        ("dequantize_4bit 64x64", "torch.ops.bnb",
         lambda: torch.ops.bnb.dequantize_4bit(packed, absmax, BS, "nf4", [N, K], dtype)),
        ("quantize_4bit 64x64", "torch.ops.bnb", lambda: torch.ops.bnb.quantize_4bit(W, BS, "nf4", torch.uint8)),
    ]
    native = registry.table().get(device, {})
    if device == "cuda" and "gemm_4bit" in native:
        from bnb_core.backends import cuda as be

        calls += [
            ("gemv_4bit 1x64x64", "backend glue", lambda: be.gemv_4bit(A1, packed, [N, K], absmax, code, BS)),
            ("gemm_4bit 16x64x64", "backend glue", lambda: be.gemm_4bit(A16, packed, [N, K], absmax, BS, "nf4")),
        ]
    qs = bnb_core.functional.quantize_4bit(W, blocksize=BS, quant_type="nf4")[1]
    calls.append(("matmul_4bit 1x64x64", "bnb_core.matmul_4bit", lambda: bnb_core.matmul_4bit(A1, packed, qs)))
    if bnb is not None:
        ok, err = _try(lambda: bnb.functional.quantize_4bit(W, blocksize=BS, quant_type="nf4"))
        if ok is not None:
            bp, bqs = ok
            calls += [
                ("matmul_4bit 1x64x64", "bitsandbytes", lambda: bnb.matmul_4bit(A1, bp.t(), quant_state=bqs)),
                ("matmul_4bit 16x64x64", "bitsandbytes", lambda: bnb.matmul_4bit(A16, bp.t(), quant_state=bqs)),
                ("dequantize_4bit 64x64", "bitsandbytes", lambda: bnb.functional.dequantize_4bit(bp, bqs)),
            ]
        else:
            res["overhead_bnb_error"] = err
    res["native_ops"] = sorted(native)
    for name, path, fn in calls:
        got, err = _try(lambda: timer.host(fn))
        wall, gpu = got if got else (None, None)
        res["overhead"].append({"call": name, "path": path, "wall_s": wall, "gpu_s": gpu, "error": err})
        print(f"| {name} | {path} | {us(wall)} | {us(gpu)} |" + (f" {err}" if err else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"shapes {QUICK_SHAPES}, batches 1,16,64")
    ap.add_argument("--batches", type=str, default=None, help="comma list (default 1,4,16,64,256)")
    ap.add_argument("--dtype", choices=("float16", "bfloat16"), default="float16", help="activation dtype")
    ap.add_argument("--rotate-mib", type=int, default=512, help="weight copies per kernel for the mem rows (MiB)")
    ap.add_argument("--copy-mib", type=int, default=1024, help="buffer size of the copy-bandwidth measurement")
    ap.add_argument("--no-bnb", action="store_true", help="skip bitsandbytes even when importable")
    ap.add_argument("--skip", type=str, default="", help="comma list of sections to skip: quant,matmul,overhead")
    ap.add_argument("--json", type=str, default=None, help="write every number to this JSON file")
    ap.add_argument("--dry-run-cpu", action="store_true",
                    help="run every code path on the CPU with tiny shapes (tests the script; numbers are meaningless)")
    args = ap.parse_args(argv)

    if args.dry_run_cpu:
        device = "cpu"
    else:
        if not torch.cuda.is_available():
            print("bench_cuda: no CUDA device (torch.cuda.is_available() is False): nothing to measure. "
                  "Run it on a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
            return 2
        device = "cuda"
    import bnb_core
    from bnb_core import registry

    dtype = getattr(torch, args.dtype)
    dry = args.dry_run_cpu
    timer = Timer(device, target_s=0.002 if dry else 0.02)
    shapes = DRY_SHAPES if dry else (QUICK_SHAPES if args.quick else SHAPES)
    batches = (tuple(int(b) for b in args.batches.split(",")) if args.batches
               else ((1, 16) if dry else ((1, 16, 64) if args.quick else BATCHES)))
    skip = set(filter(None, args.skip.split(",")))
    bnb, bnb_info = load_bnb(args.no_bnb)
    res = {"device": device, "torch": torch.__version__, "bnb_core": bnb_core.__version__, "bitsandbytes": bnb_info,
           "machine": platform.node(), "time": time.strftime("%Y-%m-%d %H:%M:%S"), "dtype": args.dtype,
           "backend_status": {k: v for k, v in registry.backend_status.items()}, "quant": [], "matmul": [],
           "overhead": []}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        res.update(gpu=p.name, sms=p.multi_processor_count, cuda=torch.version.cuda,
                   l2_bytes=getattr(p, "L2_cache_size", None))
        from bnb_core.backends import cuda as be

        res["cuda_backend"] = be.info()
    copy_bw = copy_bandwidth(timer, device, (1 << 20) if dry else args.copy_mib << 20)
    res["copy_bandwidth_Bps"] = copy_bw
    native = registry.table().get(device, {})
    print(f"# bench_cuda: {res.get('gpu', device)}  torch {torch.__version__}  bitsandbytes {bnb_info}")
    print(f"copy bandwidth {copy_bw / 1e12:.3f} TB/s (read + write); native {device} ops: "
          f"{', '.join(sorted(native)) or 'none (reference fallback: ' + str(registry.backend_status.get(device)) + ')'}")
    if "quant" not in skip:
        bench_quant(timer, device, bnb, copy_bw, dry, res)
    if "matmul" not in skip:
        bench_matmul(timer, device, bnb, copy_bw, dtype, shapes, batches,
                     (1 << 20) if dry else args.rotate_mib << 20, res)
    if "overhead" not in skip:
        bench_overhead(timer, device, bnb, dtype, res)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
