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
  names a callable that is called once, with no arguments, when bnb_core is imported. A backend in a
  plain module (no package) loads with ``BNB_CORE_BACKENDS=module[:function],...`` (default ``register``).
* Each kernel carries a verification level (``LEVELS``; ``UNVERIFIED`` unless stated) and a priority
  (higher is tried first; ties in registration order).
* Strict mode (``BNB_CORE_STRICT=1``, ``set_strict(True)`` or ``with strict():``) turns every fallback to
  the reference into a ``ReferenceFallbackError`` naming the op, device, arguments and reason. Off, it costs
  nothing on the native path and one global lookup on the reference path.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

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
#: the level of a kernel registered at run time by a backend that stated none
UNVERIFIED = "registered (unverified)"
ENTRY_POINT_GROUP = "bnb_core.backends"

_IMPL_LIB = torch.library.Library("bnb", "IMPL")

_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA", "xpu": "XPU", "mps": "MPS", "hpu": "HPU"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0", "false", "False")


def force_reference() -> bool:
    return _env_flag("BNB_CORE_FORCE_REFERENCE")


@dataclass
class Kernel:
    name: str
    fn: Callable
    supports: Optional[Callable]
    level: str = UNVERIFIED  # one of LEVELS, or UNVERIFIED
    backend: str = ""  # the backend that registered it (built-in module, entry point, module name) or `name`
    priority: int = 0  # higher is tried first


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
        if _strict:  # a device with no native kernel for this op reached the default (reference) kernel
            _strict_fallback(opdef, None, args, kwargs)
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
        if _strict:
            _strict_fallback(opdef, kernels, args, kwargs)
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


def check_level(level: str) -> str:
    """`level` if it is one of LEVELS or UNVERIFIED, else ValueError."""
    if level not in LEVELS and level != UNVERIFIED:
        raise ValueError(f"unknown verification level {level!r}; one of {list(LEVELS)} (or {UNVERIFIED!r})")
    return level


#: (backend name, its SUPPORT dict) while a backend's load() / register() runs (set by the loaders)
_loading: Optional[tuple[str, dict]] = None


@contextlib.contextmanager
def loading_backend(name: str, support: Optional[dict] = None):
    """Attribute the kernels registered inside to backend `name`; those registered without a `level` take
    it from `support` ({op: level}, a built-in backend's SUPPORT)."""
    global _loading
    prev, _loading = _loading, (name, dict(support or {}))
    try:
        yield
    finally:
        _loading = prev


def register_kernel(op: str, device: str, fn: Callable, supports: Optional[Callable] = None,
                    name: Optional[str] = None, level: Optional[str] = None, priority: int = 0) -> bool:
    """Register `fn` to serve `op` on `device` (a device type such as "cpu", "cuda", "xpu", "mps").

    `fn` receives the op's arguments after the op's check passed and returns the op's outputs.
    `supports(*args)` (optional) declares what it covers; calls outside fall back to the reference (or to
    the next kernel). `level`: the verification level you reached (one of LEVELS; shown by
    ``python -m bnb_core support``); default: the backend's SUPPORT entry for built-in backends, else
    UNVERIFIED. `priority`: kernels with a higher one are tried first (default 0; ties: registration order).
    Returns False (and registers nothing) when BNB_CORE_FORCE_REFERENCE is set.
    """
    opdef = _resolve(op)
    backend, declared = _loading or (None, {})
    level = check_level(declared.get(opdef.name, UNVERIFIED) if level is None else level)
    if force_reference():
        return False
    device = _device_type(device)
    key = (opdef.name, device)
    first = key not in _kernels
    name = name or getattr(fn, "__module__", "kernel")
    ks = _kernels.setdefault(key, [])
    i = len(ks)
    while i and ks[i - 1].priority < priority:
        i -= 1
    ks.insert(i, Kernel(name, fn, supports, level, backend or name, int(priority)))
    if first:
        dispatch_key = _DISPATCH_KEYS.get(device, "PrivateUse1")
        _IMPL_LIB.impl(opdef.name, _make_dispatcher(opdef, device), dispatch_key)
    return True


def unregister_kernel(op: str, device: str, name: str) -> None:
    """Remove a kernel registered under `name` (calls then go to the next kernel or the reference)."""
    ks = _kernels.get((_resolve(op).name, _device_type(device)), [])
    ks[:] = [k for k in ks if k.name != name]
    _warned.discard((op, _device_type(device)))


#: device type -> fn(tensor): how a backend places a long-lived weight in its memory (register_weight_placement)
_placements: dict[str, Callable] = {}


def register_weight_placement(device: str, fn: Callable) -> bool:
    """Register `fn(t)` to run on every quantized weight `t` of `device` that a layer holds (quantized by the
    layer, loaded pre-quantized, moved with `.to`). It may change only where the bytes live (e.g. back them by huge
    pages), in place: never the values, the layout, the shape or the tensor's identity, and it must not raise.
    Returns False (registers nothing) when BNB_CORE_FORCE_REFERENCE is set."""
    if force_reference():
        return False
    _placements[_device_type(device)] = fn
    return True


def place_weight(t: torch.Tensor) -> torch.Tensor:
    """Run the weight placement registered for t's device on `t` (nothing when none is); returns `t`."""
    fn = _placements.get(t.device.type)
    if fn is not None:
        fn(t)
    return t


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


def has_kernel(op: str, device_type: str) -> bool:
    """Whether a native kernel is registered for (op, device_type) (exact op and device type names; cheap
    enough for a per-call decision)."""
    return bool(_kernels.get((op, device_type)))


def kernels(op: str, device: str) -> list[str]:
    """Names of the kernels registered for (op, device), in the order they are tried."""
    return [k.name for k in _kernels.get((_resolve(op).name, _device_type(device)), [])]


def registrations() -> list[tuple[str, str, Kernel]]:
    """Every registered kernel as (op, device, Kernel), in the order they are tried per (op, device)."""
    return [(op, device, k) for (op, device), ks in _kernels.items() for k in ks]


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
            with loading_backend(ep.name):
                ep.load()()
            backend_status[ep.name] = None
        except Exception as e:
            backend_status[ep.name] = f"{type(e).__name__}: {e}"
            warnings.warn(f"bnb_core: backend entry point {ep.name!r} failed to load: {e}", stacklevel=2)
    load_env_backends()


def load_env_backends() -> None:
    """Load the backends named by ``BNB_CORE_BACKENDS=module[:function],...`` (a one-file backend under
    development, no packaging needed): import `module` and call `function` (default ``register``) once.
    Failures are recorded in backend_status under the module name, never raised."""
    import importlib

    for spec in filter(None, (s.strip() for s in os.environ.get("BNB_CORE_BACKENDS", "").split(","))):
        modname, _, func = spec.partition(":")
        if modname in backend_status:
            continue
        try:
            with loading_backend(modname):
                getattr(importlib.import_module(modname), func or "register")()
            backend_status[modname] = None
        except Exception as e:
            backend_status[modname] = f"{type(e).__name__}: {e}"
            warnings.warn(f"bnb_core: backend {spec!r} (BNB_CORE_BACKENDS) failed to load: {e}", stacklevel=2)


# --------------------------------------------------------------------------------------------------
# strict mode: a fallback to the reference is an error
# --------------------------------------------------------------------------------------------------


class ReferenceFallbackError(RuntimeError):
    """Raised in strict mode where a call would have run the reference instead of a native kernel.
    Attributes: op, device, dtypes (of the tensor arguments), arguments (a description), reason."""

    def __init__(self, op: str, device: str, dtypes: tuple, arguments: str, reason: str):
        self.op, self.device, self.dtypes, self.arguments, self.reason = op, device, dtypes, arguments, reason
        super().__init__(
            f"bnb_core strict mode: {op} on {device} ({', '.join(_dtype_name(d) for d in dtypes)}) would fall back "
            f"to the reference: {reason}. Arguments: {arguments}. (Strict mode is on: BNB_CORE_STRICT=1 or "
            f"bnb_core.registry.set_strict(True); strict(allow=[{op!r}]) accepts this op.)"
        )


_strict = _env_flag("BNB_CORE_STRICT")
_strict_allow: frozenset = frozenset()


def is_strict() -> bool:
    return _strict


def set_strict(on: bool = True, allow: Iterable = ()) -> None:
    """Strict mode on or off (process-wide). `allow`: ops for which the reference is accepted, as op names
    (any device) or (op, device) pairs (e.g. an op where the reference is the intended implementation)."""
    global _strict, _strict_allow
    allowed = set()
    for a in allow:
        if isinstance(a, str):
            allowed.add(_resolve(a).name)
        else:
            op, device = a
            allowed.add((_resolve(op).name, _device_type(device)))
    _strict, _strict_allow = bool(on), frozenset(allowed)


@contextlib.contextmanager
def strict(on: bool = True, allow: Iterable = ()):
    """``with registry.strict():`` strict mode inside the block (restores the previous state after)."""
    prev = (_strict, _strict_allow)
    set_strict(on, allow)
    try:
        yield
    finally:
        _set_strict_state(*prev)


def _set_strict_state(on, allow):
    global _strict, _strict_allow
    _strict, _strict_allow = on, allow


def _dtype_name(d) -> str:
    return str(d).replace("torch.", "")


def _describe(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"{_dtype_name(v.dtype)}{list(v.shape)}" + ("" if v.is_contiguous() else " (non-contiguous)")
    if isinstance(v, torch.dtype):
        return _dtype_name(v)
    if isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v):
        return "[" + ", ".join(_describe(x) for x in v) + "]"
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _predicate(k: Kernel) -> str:
    s = getattr(k.supports, "__qualname__", None) or repr(k.supports)
    doc = (getattr(k.supports, "__doc__", None) or "").strip().splitlines()
    return f"supports={s}" + (f": {doc[0]}" if doc else "")


def _is_fake(tensors) -> bool:
    try:
        from torch._subclasses.fake_tensor import is_fake
    except ImportError:  # pragma: no cover - older torch
        return False
    return any(is_fake(t) for t in tensors)


def _strict_fallback(opdef, kernels: Optional[list], args, kwargs) -> None:
    """Strict mode only (never on the fast path): raise ReferenceFallbackError for this call unless it is a
    meta / fake-tensor / tracing call, BNB_CORE_FORCE_REFERENCE asked for the reference, or it is allowed."""
    values = list(args) + list(kwargs.values())
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return
    device = tensors[0].device.type
    if device == "meta" or force_reference() or _is_fake(tensors) or torch.compiler.is_compiling():
        return
    if opdef.name in _strict_allow or (opdef.name, device) in _strict_allow:
        return
    if kernels:
        names = ", ".join(k.name for k in kernels)
        reason = (f"{'kernel' if len(kernels) == 1 else 'kernels'} {names} declined these arguments "
                  f"({'; '.join(f'{k.name}: {_predicate(k)}' for k in kernels)})")
    else:
        reason = f"no native kernel for device {device!r}"
        others = sorted(op for (op, d) in _kernels if d == device and _kernels[(op, d)])
        if others:
            reason += f" (native {device} kernels are registered for {len(others)} other ops)"
        why = backend_status.get(device)
        if why:
            reason += f"; the built-in {device} backend did not load: {why}"
    try:
        names = [a.name for a in opdef.packet._schema.arguments]
    except Exception:  # pragma: no cover
        names = [f"arg{i}" for i in range(len(args))]
    described = [f"{n}={_describe(v)}" for n, v in zip(names, args)] + [f"{n}={_describe(v)}" for n, v in kwargs.items()]
    dtypes = tuple(dict.fromkeys(t.dtype for t in tensors))
    raise ReferenceFallbackError(opdef.name, device, dtypes, ", ".join(described), reason)
