"""``python -m bnb_core``: environment report, backend table and a quick self-check.

``python -m bnb_core check [--device D] [--op OP ...] [-v] [--strict]`` runs the conformance suite
(bnb_core.conformance) on a device and prints the kernels registered there, pass / fail / unsupported and
the kernel that served the cases per op (-v: every case); exit status 1 on any failure. ``--strict``: a case
that falls back to the reference fails (registry strict mode).

``python -m bnb_core support [--markdown] [--builtin-only] [--write-readme [--readme PATH]]`` prints the
support matrix op x backend x verification level (bnb_core.support): built-in backends from their SUPPORT
declarations, third-party backends from what they registered here. ``--write-readme`` rewrites the README's
generated support section.
"""

from __future__ import annotations

import argparse
import platform
import sys

import torch

import bnb_core
from bnb_core import conformance, registry, support
from bnb_core._ops import OPS


def _table(rows, headers) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def report() -> None:
    print(f"bnb_core {bnb_core.__version__}  torch {torch.__version__}  python {platform.python_version()}  "
          f"{platform.machine()} {platform.system()}")
    print(f"reference forced (BNB_CORE_FORCE_REFERENCE): {registry.force_reference()}; "
          f"strict mode (BNB_CORE_STRICT): {registry.is_strict()}")
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
    if hasattr(_cpu, "output_cache_limit"):
        thp += f", output cache {_cpu.output_cache_limit() >> 20} MiB"
    return f"isa={_cpu.isa()} (available: {', '.join(_cpu.available_isas())}){thp}"


def _registered(device: str, ops) -> None:
    by_kernel: dict = {}
    for op, dev, k in registry.registrations():
        if dev == device and (not ops or op in ops):
            by_kernel.setdefault((k.name, k.backend, k.level, k.priority), []).append(op)
    if not by_kernel:
        print(f"kernels registered for {device}: none (the reference serves every op)")
        return
    print(f"kernels registered for {device} (per op, tried by priority then registration order; the reference "
          "serves what none accepts):")
    for (name, backend, level, priority), kops in by_kernel.items():
        where = f"backend {backend}" if backend != name else "registered by code"
        what = f"{len(kops)} ops" if len(kops) > 3 else ", ".join(kops)
        print(f"  {name}: {where}, level {level!r}{f', priority {priority}' if priority else ''}: {what}")


def check(device: str, ops, verbose: bool, strict: bool = False) -> bool:
    _registered(device, ops)
    with registry.strict(strict or registry.is_strict()):
        results = conformance.run(device, ops)
    extra = f"; native cpu {_cpu_isa()}" if device == "cpu" else ""
    extra += "; strict mode: a fallback to the reference fails" if strict or registry.is_strict() else ""
    print(f"conformance on {device}: {len(results)} cases{extra}")
    print(_table(conformance.summarize(results), ["op", "pass", "fail", "unsupported", "served by"]))
    for r in results if verbose else [r for r in results if r.status == "fail"]:
        print(f"{r.status.upper()} {r.case.op} [{r.case.id}] ({r.kernel})" + (f": {r.detail}" if r.detail else ""))
    return not any(r.status == "fail" for r in results)


def support_cmd(markdown: bool, builtin_only: bool, write_readme: bool, readme: str) -> int:
    if write_readme:
        changed = support.write_readme(readme)
        print(f"{readme}: support section {'rewritten' if changed else 'already up to date'}")
        return 0
    cols = support.columns(include_runtime=not builtin_only)
    if markdown:
        print(support.render(cols, markdown=True))
        return 0
    print(support.render(cols, markdown=False, with_status=True))
    failed = {name: why for name, why in registry.backend_status.items() if why}
    for name, why in sorted(failed.items()):
        print(f"backend {name} did not load here: {why}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnb_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    c = sub.add_parser("check", help="run the conformance suite on a device")
    c.add_argument("--device", default="cpu", help="torch device type (cpu, cuda, xpu, mps, ...)")
    c.add_argument("--op", action="append", choices=sorted(OPS), help="only this op (repeatable)")
    c.add_argument("-v", "--verbose", action="store_true", help="list every case: status, kernel, detail")
    c.add_argument("--strict", action="store_true", help="a fallback to the reference fails the case")
    s = sub.add_parser("support", help="print the support matrix op x backend x verification level")
    s.add_argument("--markdown", action="store_true", help="markdown (as in the README)")
    s.add_argument("--builtin-only", action="store_true", help="only the built-in backends (as in the README)")
    s.add_argument("--write-readme", action="store_true", help="rewrite the README's generated support section")
    s.add_argument("--readme", default="README.md", help="README path for --write-readme (default: ./README.md)")
    args = parser.parse_args(argv)
    if args.cmd == "check":
        return 0 if check(args.device, args.op, args.verbose, args.strict) else 1
    if args.cmd == "support":
        return support_cmd(args.markdown, args.builtin_only, args.write_readme, args.readme)
    report()
    ok = all(self_check(d) for d in conformance.available_devices())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
