"""Built-in device backends. Each module registers its native kernels through bnb_core.registry;
one that cannot load (module not built, device absent) records why in registry.backend_status."""

import importlib

from .. import registry

BUILTIN = ("cpu",)


def load_builtin_backends() -> None:
    for name in BUILTIN:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
            registry.backend_status[name] = mod.load()
        except Exception as e:  # a broken backend must never break `import bnb_core`
            registry.backend_status[name] = f"{type(e).__name__}: {e}"
