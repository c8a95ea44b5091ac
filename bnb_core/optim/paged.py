"""Paged optimizer state: where the state of ``Paged*`` optimizers (and ``is_paged=True``) is allocated.

On CUDA the two large state tensors (``state1``, ``state2``) of a parameter with at least ``PAGED_MIN_NUMEL``
elements (as bitsandbytes) live in CUDA managed memory (``bnb_core._cuda.managed_alloc``: cudaMallocManaged). The
driver evicts their pages to host memory when the GPU runs short and brings them back on access; before each step
the optimizer prefetches them to the GPU on the current stream (``prefetch``, asynchronous, no synchronization),
``page_out`` moves them to host memory on request (e.g. around evaluation) and ``advise`` sets their preferred
location (cudaMemAdvise). Every other state tensor, and every
state on other devices, is ordinary device memory: there paged optimizers behave exactly as their unpaged twins.

Allocation decision (``decide``), per tensor, from the free memory of the GPU (cudaMemGetInfo) and the memory
torch's caching allocator holds but does not use. We never ask for more managed memory than the GPU has free (a
state that could never be resident at once would thrash on every step):

* ``need <= free``                  -> managed memory (paged);
* ``need <= free + torch's cache``  -> ordinary device memory, with a warning (torch serves it from its cache);
* otherwise                         -> ``torch.OutOfMemoryError`` (torch.cuda's) naming the sizes.

``need`` is the size rounded up to the 2 MiB granule of managed memory. A device without managed memory support,
or a build without the native CUDA module, gets ordinary device memory with a warning.

Lifetime: the managed allocation is owned by a ``bnb_core._cuda.ManagedBuffer`` that torch keeps alive for the life
of the tensor's storage (``torch.as_tensor`` on its ``__cuda_array_interface__`` takes a reference that the
storage's deleter drops); freeing it (cudaFree) waits for the device.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Optional

import torch

#: parameters with fewer elements keep ordinary state even in paged optimizers (bitsandbytes' threshold)
PAGED_MIN_NUMEL = 100_000
#: managed memory is handed out in 2 MiB pages
GRANULE = 2 << 20
_MIB = float(1 << 20)

_warned: set = set()
_OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


@dataclass(frozen=True)
class PagedInfo:
    """Attached to a paged state tensor as ``tensor._bnb_paged``."""

    ptr: int
    nbytes: int
    device: int
    concurrent: bool  # on-demand paging: prefetch / page-out are allowed


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, stacklevel=4)


# ------------------------------------------------------------------------------------ decision (pure)


def decide(nbytes: int, free_bytes: int, cached_free_bytes: int) -> str:
    """"managed", "device" or "error" for a state of ``nbytes`` (see the module docstring)."""
    need = -(-nbytes // GRANULE) * GRANULE
    if need <= free_bytes:
        return "managed"
    if nbytes <= free_bytes + cached_free_bytes:
        return "device"
    return "error"


# ------------------------------------------------------------------------------------ hooks (mocked in tests)


def _native():
    """The native CUDA (or HIP) module when it has the managed-memory entry points, else None."""
    from ..backends import cuda as cuda_backend

    mod = cuda_backend._mod
    return mod if mod is not None and hasattr(mod, "managed_alloc") else None


def _cached_free(index: int) -> int:
    return torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)


def _device_zeros(shape, dtype, device) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype, device=device)


def _view_managed(buf, index: int) -> torch.Tensor:
    """A uint8 CUDA tensor over the managed buffer that keeps `buf` alive (torch holds a reference)."""
    return torch.as_tensor(buf, device=torch.device("cuda", index))


def _stream(index: int) -> int:
    return torch._C._cuda_getCurrentRawStream(index)


# ------------------------------------------------------------------------------------ allocation


def _check(mod, status: int) -> None:
    if status != 0:
        raise RuntimeError(mod.error_message(status))


def zeros(shape, dtype: torch.dtype, device, paged: bool = True) -> torch.Tensor:
    """Zero-filled state tensor: managed memory for paged CUDA state (see the module docstring), else
    ``torch.zeros``."""
    device = torch.device(device)
    if not paged or device.type != "cuda":
        return _device_zeros(shape, dtype, device)
    numel = 1
    for s in shape:
        numel *= int(s)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if nbytes == 0:
        return _device_zeros(shape, dtype, device)
    mod = _native()
    if mod is None:
        _warn_once("native", "bnb_core: paged optimizer state is in ordinary device memory: the native CUDA module "
                             "with managed-memory support is not available")
        return _device_zeros(shape, dtype, device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    status, managed, concurrent = mod.managed_caps(index)
    _check(mod, status)
    if not managed:
        _warn_once(f"caps{index}", f"bnb_core: cuda:{index} has no managed memory; paged optimizer state is in "
                                   "ordinary device memory")
        return _device_zeros(shape, dtype, device)
    status, free, total = mod.mem_get_info(index)
    _check(mod, status)
    cached = _cached_free(index)
    choice = decide(nbytes, free, cached)
    if choice == "error":
        raise _OOM(
            f"bnb_core: paged optimizer state of {nbytes / _MIB:.1f} MiB does not fit on cuda:{index}: "
            f"{free / _MIB:.1f} MiB free of {total / _MIB:.1f} MiB, {cached / _MIB:.1f} MiB cached by torch (managed "
            "memory is never requested beyond the GPU's free memory)")
    if choice == "device":
        _warn_once(f"fallback{index}", f"bnb_core: paged optimizer state of {nbytes / _MIB:.1f} MiB is in ordinary "
                                       f"device memory: cuda:{index} has {free / _MIB:.1f} MiB free for managed "
                                       "memory (torch's cache serves it)")
        return _device_zeros(shape, dtype, device)
    status, buf = mod.managed_alloc(index, nbytes)
    _check(mod, status)
    raw = _view_managed(buf, index)
    t = raw.view(dtype).view(shape)
    t.zero_()  # on the current stream (first touch places the pages on this GPU)
    t._bnb_paged = PagedInfo(buf.ptr, nbytes, index, bool(concurrent))
    return t


def is_paged(t: Optional[torch.Tensor]) -> bool:
    return t is not None and getattr(t, "_bnb_paged", None) is not None


def _paged_infos(tensors: Iterable[Optional[torch.Tensor]]):
    for t in tensors:
        info = getattr(t, "_bnb_paged", None) if t is not None else None
        if info is not None and info.concurrent:  # without concurrent access the driver moves pages at launch
            yield info


def _move(tensors: Iterable[Optional[torch.Tensor]], to_host: bool) -> None:
    mod = None
    for info in _paged_infos(tensors):
        mod = mod or _native()
        _check(mod, mod.managed_prefetch(info.ptr, info.nbytes, -1 if to_host else info.device, info.device,
                                         _stream(info.device)))


def advise(tensors: Iterable[Optional[torch.Tensor]], location: Optional[str]) -> None:
    """Preferred location of paged tensors (cudaMemAdvise): "host" (under memory pressure their pages leave the GPU
    first; prefetch still brings them in for each step), "device" (their GPU), or None (no preference, the
    default)."""
    if location not in ("host", "device", None):
        raise ValueError(f"location must be 'host', 'device' or None, got {location!r}")
    mod = None
    for info in _paged_infos(tensors):
        mod = mod or _native()
        where = {"host": -1, "device": info.device, None: -2}[location]
        _check(mod, mod.managed_advise_preferred(info.ptr, info.nbytes, where))


def prefetch(tensors: Iterable[Optional[torch.Tensor]]) -> None:
    """Prefetch paged tensors to their GPU on the current stream (asynchronous; others are skipped)."""
    _move(tensors, to_host=False)


def page_out(tensors: Iterable[Optional[torch.Tensor]]) -> None:
    """Move paged tensors to host memory on the current stream (asynchronous; the next prefetch brings them back)."""
    _move(tensors, to_host=True)


__all__ = ["PAGED_MIN_NUMEL", "GRANULE", "PagedInfo", "decide", "zeros", "is_paged", "prefetch", "page_out", "advise"]
