"""Integrations of bnb_core with other libraries.

Each integration lives in its own submodule and imports its library only when that submodule is imported,
so ``import bnb_core`` (and ``import bnb_core.integrations``) never imports transformers.

- ``bnb_core.integrations.transformers``: ``BnbCoreConfig`` (the ``BitsAndBytesConfig`` fields) and its
  ``HfQuantizer``, registered with transformers under ``quant_method="bnb_core"`` when imported, plus
  ``load_bitsandbytes_checkpoint`` for checkpoints written by bitsandbytes.
"""

_TRANSFORMERS_NAMES = ("BnbCoreConfig", "BnbCoreHfQuantizer", "load_bitsandbytes_checkpoint", "QUANT_METHOD")

__all__ = list(_TRANSFORMERS_NAMES)


def __getattr__(name):
    # lazy: ``from bnb_core.integrations import BnbCoreConfig`` imports (and registers) the transformers
    # integration on first use only
    if name in _TRANSFORMERS_NAMES:
        from . import transformers as _tf

        return getattr(_tf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
