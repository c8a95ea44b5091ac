"""Built-in device backends. Each module registers its native kernels through bnb_core.registry;
one that cannot load (module not built, device absent) records why in registry.backend_status.

Contract of a built-in backend module ``bnb_core/backends/<name>.py`` (importable without its native module
or its device, so the support matrix can be printed anywhere):

* ``DEVICE``: the torch device type it serves ("cpu", "cuda", "xpu", "mps").
* ``SUPPORT``: ``{op name (with overload, e.g. "gemv_4bit.out"): verification level}`` for every op it
  has a native kernel for; levels are ``registry.LEVELS`` (docs/architecture.md, "Verification levels").
* ``load() -> Optional[str]``: registers its kernels when it can; returns None, or why it did not load.
  Kernels it registers without ``level=`` take their level from ``SUPPORT``.

Build flavours (``FLAVOURS``): a backend built in another flavour for the same torch device declares that
flavour's levels in its own dict, e.g. ``SUPPORT_HIP`` in ``cuda.py`` for the ROCm/HIP build (ROCm PyTorch
uses the "cuda" device). ``python -m bnb_core support`` and the README table show it as its own column
("rocm"; "reference" everywhere until the dict exists). When the HIP build is the one loaded, ``load()``
passes ``level=SUPPORT_HIP[op]`` to ``registry.register_kernel``.
"""

import importlib
import importlib.util

from .. import registry

#: built-in backends in load order (ROCm is a build flavour of "cuda": backends/cuda.py loads bnb_core._hip)
BUILTIN = ("cpu", "cuda", "xpu", "mps")
#: build flavours shown as their own support column: column -> (built-in module, its SUPPORT-like dict)
FLAVOURS = {"rocm": ("cuda", "SUPPORT_HIP")}


def builtin_modules():
    """The built-in backend modules that exist in this source tree, imported (no native code loaded)."""
    mods = []
    for name in BUILTIN:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            mods.append(importlib.import_module(f"{__name__}.{name}"))
    return mods


def load_builtin_backends() -> None:
    for name in BUILTIN:
        try:
            if importlib.util.find_spec(f"{__name__}.{name}") is None:
                continue
            mod = importlib.import_module(f"{__name__}.{name}")
            with registry.loading_backend(name, getattr(mod, "SUPPORT", {})):
                registry.backend_status[name] = mod.load()
        except Exception as e:  # a broken backend must never break `import bnb_core`
            registry.backend_status[name] = f"{type(e).__name__}: {e}"
