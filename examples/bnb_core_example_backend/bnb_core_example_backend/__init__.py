"""An out-of-tree bnb_core backend: one kernel, for one op, on one device.

``dequantize_blockwise`` (8-bit blockwise codes -> values) for float32 outputs on the CPU, in plain PyTorch so it
reads like the format's definition (docs/formats.md): value = code[byte] * absmax[block], a block being
``blocksize`` consecutive bytes of the flattened input (the last one may be short). bnb_core's own CPU kernel
serves every other call: this kernel's ``supports()`` accepts float32 outputs only and it is registered with a
higher priority, so it is tried first.

bnb_core calls ``register()`` once when it is imported (entry point ``example`` in the group
``bnb_core.backends``, pyproject.toml). ``python -m bnb_core check --device cpu --op dequantize_blockwise -v``
shows which kernel served each conformance case; ``python -m bnb_core support`` lists the backend and its level.
"""

import torch

from bnb_core import registry

NAME = "example-dequantize-blockwise"
DEVICE = "cpu"
#: the level this kernel reached: bnb_core's CI installs this package and runs the conformance suite on it
#: (tests/test_example_backend.py)
LEVEL = "runs in CI"


def dequantize_blockwise(A, absmax, code, blocksize, dtype):
    """float32 ``code[A] * absmax[block]``, shaped like A. The op's check (bnb_core/_ops.py) has already
    validated dtypes (A uint8, absmax and code float32), code's 256 entries, absmax's length and devices."""
    n = A.numel()
    nblocks = -(-n // blocksize)
    values = torch.zeros(nblocks * blocksize, dtype=torch.float32)  # whole blocks: pad the last one
    values[:n] = code[A.reshape(-1).long()]  # the code value of every byte
    out = values.view(nblocks, blocksize) * absmax[:nblocks].view(nblocks, 1)  # one fp32 product per value
    return out.view(-1)[:n].reshape(A.shape)


def supports(A, absmax, code, blocksize, dtype):
    """float32 outputs only (fp16/bf16 outputs are left to the next kernel)"""
    return dtype == torch.float32


def register():
    registry.register_kernel("dequantize_blockwise", DEVICE, dequantize_blockwise, supports=supports, name=NAME,
                             level=LEVEL, priority=1)
