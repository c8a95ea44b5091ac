"""bnb-core: k-bit quantization kernels for PyTorch behind ``torch.ops.bnb.*``.

Importing the package defines every op (bnb_core._ops), registers the pure-PyTorch reference as the
default kernel of each (bnb_core.reference), loads the native backends that were built and the
third-party backends that registered the ``bnb_core.backends`` entry point (bnb_core.registry).
"""

from . import _ops, formats, reference, registry

__version__ = "0.1.0"

for _name, _fn in reference.KERNELS.items():
    registry.register_reference(_name, _fn)
del _name, _fn

from .backends import load_builtin_backends  # noqa: E402

load_builtin_backends()
registry.load_entry_point_backends()

from . import functional  # noqa: E402
from .functional import QuantState  # noqa: E402
from .autograd import MatmulLtState, matmul, matmul_4bit  # noqa: E402
from . import nn  # noqa: E402
from .nn import replace_linear  # noqa: E402

__all__ = ["MatmulLtState", "QuantState", "formats", "functional", "matmul", "matmul_4bit", "nn", "reference",
           "registry", "replace_linear", "__version__"]
