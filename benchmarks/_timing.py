"""Timing shared by the CPU benchmarks."""

from __future__ import annotations

import statistics
import time


def timed_rounds(fns: dict, min_time: float, rounds: int = 5) -> dict:
    """Interleaved timing: `rounds` rounds, each running every contender for ~min_time/rounds seconds, so a
    shared machine's drift hits every contender alike. Returns {name: (median, min)} in seconds."""
    times = {k: [] for k in fns}
    for k, f in fns.items():  # warm-up
        f()
        f()
    for _ in range(rounds):
        for k, f in fns.items():
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
                if time.perf_counter() - start > min_time / rounds and len(times[k]) >= 3:
                    break
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}
