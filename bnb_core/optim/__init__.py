"""8-bit and 32-bit optimizers with the class names and arguments of bitsandbytes.optim.

Paged variants: on every device in this version they behave exactly as their unpaged twins (state in
ordinary device memory); CUDA managed-memory paging is not implemented yet.
"""

from .optimizer import GlobalOptimManager, Optimizer8bit  # noqa: F401
from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _all

__all__ = ["GlobalOptimManager", "Optimizer8bit", *_all]
