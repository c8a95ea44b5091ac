"""``python -m bnb_core``: environment report, backend table and a quick self-check.

``python -m bnb_core check [--device D] [--op OP ...] [-v]`` runs the conformance suite
(bnb_core.conformance) on a device and prints pass / fail / unsupported per op; exit status 1 on any
failure.
"""

from __future__ import annotations

import argparse
import platform
import sys

import torch

import bnb_core
from bnb_core import conformance, registry
from bnb_core._ops import OPS


def _table(rows, headers) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def report() -> None:
    print(f"bnb_core {bnb_core.__version__}  torch {torch.__version__}  python {platform.python_version()}  "
          f"{platform.machine()} {platform.system()}")
    print(f"reference forced (BNB_CORE_FORCE_REFERENCE): {registry.force_reference()}")
    devices = conformance.available_devices()
    print(f"devices: {', '.join(devices)}; native cpu {_cpu_isa()}")
    print("\nbackends:")
    for name, why in sorted(registry.backend_status.items()):
        print(f"  {name:12s} {'loaded' if why is None else 'not loaded: ' + why}")
    table = registry.table()
    print("\nkernels serving each op (native where registered; everything else runs the reference):")
    rows = [(op, *[", ".join(table.get(d, {}).get(op, [])) or "reference" for d in devices]) for op in OPS]
    print(_table(rows, ["op", *devices]))


def self_check(device: str) -> bool:
    """A quick round trip of every op family on `device` against the reference."""
    picks = {}
    for case in conformance.all_cases():
        picks.setdefault(case.op, case)
    results = [conformance.run_case(c, device) for c in picks.values()]
    failed = [r for r in results if r.status == "fail"]
    print(f"\nself-check on {device}: {len(results) - len(failed)}/{len(results)} ops agree with the reference")
    for r in failed:
        print(f"  FAIL {r.case.op} [{r.case.id}] ({r.kernel}): {r.detail}")
    return not failed


def _cpu_isa() -> str:
    try:
        from bnb_core import _cpu
    except ImportError as e:
        return f"native module not available ({e})"
    thp = ""
    if hasattr(_cpu, "thp_mode"):
        thp = f", transparent huge pages {_cpu.thp_mode()}, output hint {'on' if _cpu.hugepage_enabled() else 'off'}"
    return f"isa={_cpu.isa()} (available: {', '.join(_cpu.available_isas())}){thp}"


def check(device: str, ops, verbose: bool) -> bool:
    results = conformance.run(device, ops)
    extra = f"; native cpu {_cpu_isa()}" if device == "cpu" else ""
    print(f"conformance on {device}: {len(results)} cases{extra}")
    print(_table(conformance.summarize(results), ["op", "pass", "fail", "unsupported", "served by"]))
    bad = [r for r in results if r.status != "pass"]
    for r in bad if verbose else [r for r in bad if r.status == "fail"]:
        print(f"{r.status.upper()} {r.case.op} [{r.case.id}] ({r.kernel}): {r.detail}")
    return not any(r.status == "fail" for r in results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnb_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    c = sub.add_parser("check", help="run the conformance suite on a device")
    c.add_argument("--device", default="cpu", help="torch device type (cpu, cuda, xpu, mps, ...)")
    c.add_argument("--op", action="append", choices=sorted(OPS), help="only this op (repeatable)")
    c.add_argument("-v", "--verbose", action="store_true", help="also list unsupported cases")
    args = parser.parse_args(argv)
    if args.cmd == "check":
        return 0 if check(args.device, args.op, args.verbose) else 1
    report()
    ok = all(self_check(d) for d in conformance.available_devices())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
