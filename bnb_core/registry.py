"""Device dispatch registry: which kernel serves (op, device, arguments).

* The reference (bnb_core/reference.py) is registered for every op under torch's
  CompositeExplicitAutograd key, so every device works with no native code.
* A backend calls ``register_kernel(op, device, fn, supports=..., name=...)``. The first kernel for
  (op, device) installs ONE dispatcher function for that device's dispatch key with the low-level
  ``torch.library.Library.impl`` API (no custom_op wrapper: host overhead per call is a budget).
  The dispatcher runs the op's check function, then the first kernel whose ``supports(*args)`` is
  true; if none is, it falls back to the reference with a one-time warning.
* ``kernel_for(op, *args)`` tells which kernel serves a call; ``table()`` lists everything.
* ``BNB_CORE_FORCE_REFERENCE=1`` makes ``register_kernel`` a no-op: only the reference runs.
* Third-party backends register through the entry-point group ``bnb_core.backends``: each entry point
  names a callable that is called once, with no arguments, when bnb_core is imported.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ._ops import OPS

REFERENCE = "reference"

#: verification levels a backend may claim for an op (shared/DESIGN.md section 6; README support table)
LEVELS = (
    "runs in CI",                  # every case of the conformance suite passes in CI on this machine type
    "runs on hardware",            # the conformance suite passed on a real device of this kind (not in CI)
    "runs on a CPU SYCL device",   # SYCL kernels built by DPC++'s run-time compiler pass on the OpenCL CPU device
    "kernel logic tested on CPU",  # kernel bodies run on CPU through a compat header (no device compiler here)
    "compiles",                    # built with the vendor toolchain in CI, never run
    "source only",                 # written, never built here
)
ENTRY_POINT_GROUP = "bnb_core.backends"

_IMPL_LIB = torch.library.Library("bnb", "IMPL")

_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA", "xpu": "XPU", "mps": "MPS", "hpu": "HPU"}


def force_reference() -> bool:
    return os.environ.get("BNB_CORE_FORCE_REFERENCE", "0") not in ("", "0", "false", "False")


@dataclass
class Kernel:
    name: str
    fn: Callable
    supports: Optional[Callable]


_kernels: dict[tuple[str, str], list[Kernel]] = {}
_warned: set[tuple[str, str]] = set()
#: backend name -> None (loaded) or the reason it did not load; shown by `python -m bnb_core`
backend_status: dict[str, Optional[str]] = {}


def _resolve(op: str):
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known ops: {sorted(OPS)}")
    return OPS[op]


def _device_type(device) -> str:
    return torch.device(device).type if not isinstance(device, str) or ":" in device else device


def _checked(opdef, fn):
    check = opdef.check

    def kernel(*args, **kwargs):
        check(*args, **kwargs)
        return fn(*args, **kwargs)

    kernel.__name__ = f"{opdef.name}_{getattr(fn, '__name__', 'kernel')}"
    return kernel


def register_reference(op: str, fn: Callable) -> None:
    """Register the pure-PyTorch reference of `op` as its default kernel (done by bnb_core itself)."""
    opdef = _resolve(op)
    opdef.reference = fn
    _IMPL_LIB.impl(op, _checked(opdef, fn), "CompositeExplicitAutograd")


def _make_dispatcher(opdef, device: str):
    kernels = _kernels[(opdef.name, device)]
    check, reference = opdef.check, opdef.reference

    def dispatch(*args, **kwargs):
        check(*args, **kwargs)
        for k in kernels:
            if k.supports is None or k.supports(*args, **kwargs):
                return k.fn(*args, **kwargs)
        key = (opdef.name, device)
        if kernels and key not in _warned:
            _warned.add(key)
            warnings.warn(
                f"bnb_core: no {device} kernel of {opdef.name} supports these arguments "
                f"({', '.join(k.name for k in kernels)} declined); using the reference implementation",
                stacklevel=2,
            )
        return reference(*args, **kwargs)

    dispatch.__name__ = f"{opdef.name}_{device}_dispatch"
    return dispatch


def register_kernel(op: str, device: str, fn: Callable, supports: Optional[Callable] = None,
                    name: Optional[str] = None) -> bool:
    """Register `fn` to serve `op` on `device` (a device type such as "cpu", "cuda", "xpu", "mps").

    `fn` receives the op's arguments after the op's check passed and returns the op's outputs.
    `supports(*args)` (optional) declares what it covers; calls outside fall back to the reference.
    Returns False (and registers nothing) when BNB_CORE_FORCE_REFERENCE is set.
    """
    opdef = _resolve(op)
    if force_reference():
        return False
    device = _device_type(device)
    key = (opdef.name, device)
    first = key not in _kernels
    _kernels.setdefault(key, []).append(Kernel(name or getattr(fn, "__module__", "kernel"), fn, supports))
    if first:
        dispatch_key = _DISPATCH_KEYS.get(device, "PrivateUse1")
        _IMPL_LIB.impl(opdef.name, _make_dispatcher(opdef, device), dispatch_key)
    return True


def unregister_kernel(op: str, device: str, name: str) -> None:
    """Remove a kernel registered under `name` (calls then go to the next kernel or the reference)."""
    ks = _kernels.get((_resolve(op).name, _device_type(device)), [])
    ks[:] = [k for k in ks if k.name != name]
    _warned.discard((op, _device_type(device)))


def kernel_for(op: str, *args, **kwargs) -> str:
    """Name of the kernel that serves ``torch.ops.bnb.<op>(*args, **kwargs)`` (the device is taken from
    the first tensor argument), or "reference"."""
    opdef = _resolve(op)
    tensor = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
    if tensor is None:
        raise ValueError("kernel_for needs the op's arguments, including at least one tensor")
    opdef.check(*args, **kwargs)
    for k in _kernels.get((opdef.name, tensor.device.type), []):
        if k.supports is None or k.supports(*args, **kwargs):
            return k.name
    return REFERENCE


def kernels(op: str, device: str) -> list[str]:
    """Names of the kernels registered for (op, device), in the order they are tried."""
    return [k.name for k in _kernels.get((_resolve(op).name, _device_type(device)), [])]


def table() -> dict[str, dict[str, list[str]]]:
    """{device: {op: [kernel names]}} for every device that has at least one native kernel."""
    out: dict[str, dict[str, list[str]]] = {}
    for (op, device), ks in _kernels.items():
        out.setdefault(device, {})[op] = [k.name for k in ks]
    return out


def load_entry_point_backends() -> None:
    """Call every ``bnb_core.backends`` entry point once; failures are recorded, never raised."""
    try:
        from importlib.metadata import entry_points

        eps = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as e:  # pragma: no cover - broken metadata
        backend_status["entry-points"] = f"could not read entry points: {e}"
        return
    for ep in eps:
        try:
            ep.load()()
            backend_status[ep.name] = None
        except Exception as e:
            backend_status[ep.name] = f"{type(e).__name__}: {e}"
            warnings.warn(f"bnb_core: backend entry point {ep.name!r} failed to load: {e}", stacklevel=2)
