"""8-bit and 32-bit optimizers with the class names and arguments of bitsandbytes.optim.

Paged variants: on CUDA their large states live in CUDA managed memory that the driver can evict to host
memory under GPU memory pressure; they are prefetched to the GPU before each step (bnb_core.optim.paged). On
every other device paged variants behave exactly as their unpaged twins (state in ordinary device memory).
"""

from . import paged  # noqa: F401
from .optimizer import GlobalOptimManager, Optimizer8bit  # noqa: F401
from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _all

__all__ = ["GlobalOptimManager", "Optimizer8bit", *_all]
