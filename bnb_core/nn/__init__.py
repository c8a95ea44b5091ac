"""Quantized layers with the constructor arguments of bitsandbytes.nn."""

from .modules import (  # noqa: F401
    Embedding, Embedding4bit, Embedding8bit, EmbeddingFP4, EmbeddingNF4, Int8Params, Linear4bit, Linear8bitLt,
    LinearFP4, LinearNF4, Params4bit, StableEmbedding,
)
from .replace import replace_linear  # noqa: F401
