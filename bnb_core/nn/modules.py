"""nn layers with the constructor arguments of bitsandbytes.nn: code written for it ports by changing the
import. Everything runs on every device through the op contract (native kernels or the reference).

Weights quantize when the module (or parameter) is moved to a device with ``.to(...)``/``.cuda()``/
``.cpu()``, or at the first forward, whichever comes first. A freshly constructed Linear4bit or
Linear8bitLt accepts the state_dict of a quantized one (bitsandbytes' own keys) and then computes the
same outputs.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import torch
import torch.nn.functional as Fn
from torch import nn

from .. import formats, registry
from .. import functional as F
from ..autograd import MatmulLtState, matmul, matmul_4bit

__all__ = [
    "Params4bit", "Linear4bit", "LinearNF4", "LinearFP4", "Int8Params", "Linear8bitLt", "Embedding4bit",
    "EmbeddingNF4", "EmbeddingFP4", "Embedding8bit", "StableEmbedding", "Embedding",
]


# --------------------------------------------------------------------------------------------------
# 4-bit
# --------------------------------------------------------------------------------------------------


_KEEP = object()  # Params4bit._like: keep this attribute as it is


class _MovesThroughTo:
    """.cpu() / .cuda() go through .to(), where the quantized parameters quantize or move their state."""

    def cpu(self):
        return self.to(device="cpu")

    def cuda(self, device=None, non_blocking: bool = False):
        return self.to(device="cuda" if device is None else device, non_blocking=non_blocking)


class Params4bit(_MovesThroughTo, nn.Parameter):
    """A 4-bit weight: packed codes as the tensor data, its QuantState beside it.

    Holds the 16/32-bit weight until quantized (``bnb_quantized`` False); ``.to(device)`` on a non-meta
    device quantizes it there.
    """

    def __new__(cls, data: Optional[torch.Tensor] = None, requires_grad: bool = False,
                quant_state: Optional[F.QuantState] = None, blocksize: Optional[int] = None,
                compress_statistics: bool = True, quant_type: str = "fp4", quant_storage: torch.dtype = torch.uint8,
                module: Optional["Linear4bit"] = None, bnb_quantized: bool = False):
        if data is None:
            data = torch.empty(0)
        self = torch.Tensor._make_subclass(cls, data, requires_grad)
        self.blocksize = formats.DEFAULT_BLOCKSIZE_4BIT if blocksize is None else blocksize
        self.compress_statistics = compress_statistics
        self.quant_type = quant_type
        self.quant_state = quant_state
        self.quant_storage = quant_storage
        self.bnb_quantized = bnb_quantized
        self.module = module
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state["data"] = self.data
        state["requires_grad"] = self.requires_grad
        return state

    def __setstate__(self, state):
        self.requires_grad = state.pop("requires_grad")
        self.data = state.pop("data")
        self.__dict__.update(state)

    def __reduce_ex__(self, proto):
        return (_rebuild_params4bit, (self.data, self.requires_grad, self.__getstate__()))

    def _like(self, data: torch.Tensor, quant_state=_KEEP, module=_KEEP) -> "Params4bit":
        """A Params4bit over `data` with this one's settings (quant_state / module kept unless given)."""
        return type(self)(data, requires_grad=self.requires_grad,
                          quant_state=self.quant_state if quant_state is _KEEP else quant_state,
                          blocksize=self.blocksize, compress_statistics=self.compress_statistics,
                          quant_type=self.quant_type, quant_storage=self.quant_storage,
                          module=self.module if module is _KEEP else module, bnb_quantized=self.bnb_quantized)

    def __deepcopy__(self, memo):
        new = self._like(copy.deepcopy(self.data, memo), quant_state=copy.deepcopy(self.quant_state, memo),
                         module=None)
        memo[id(self)] = new
        return new

    def __copy__(self):
        return self.__deepcopy__({})

    @classmethod
    def from_prequantized(cls, data: torch.Tensor, quantized_stats: dict[str, Any], requires_grad: bool = False,
                          device="cpu", module: Optional["Linear4bit"] = None, **kwargs) -> "Params4bit":
        """Wrap packed codes and their state_dict items (keys without the ``weight.`` prefix)."""
        qs = F.QuantState.from_dict(qs_dict=quantized_stats, device=device)
        # the device's weight placement (CPU: huge pages, in place; registry.place_weight)
        self = cls(registry.place_weight(data.to(device)), requires_grad=requires_grad, quant_state=qs,
                   blocksize=qs.blocksize, compress_statistics=qs.nested, quant_type=qs.quant_type,
                   quant_storage=data.dtype, module=module, bnb_quantized=True)
        if module is not None:
            module.quant_state = qs
        return self

    def _quantize(self, device) -> "Params4bit":
        w = self.data.contiguous().to(device)
        if not w.is_floating_point():
            raise TypeError(f"Params4bit can only quantize a floating-point weight, got {w.dtype}")
        packed, state = F.quantize_4bit(w, blocksize=self.blocksize, compress_statistics=self.compress_statistics,
                                        quant_type=self.quant_type, quant_storage=self.quant_storage)
        self.data = registry.place_weight(packed)
        self.quant_state = state
        self.bnb_quantized = True
        if self.module is not None:
            self.module.quant_state = state
        return self

    def to(self, *args, **kwargs):
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if device is not None and device.type != "meta" and not self.bnb_quantized:
            return self._quantize(device)
        if self.quant_state is not None and device is not None:
            self.quant_state.to(device)
        # dtype never changes the packed codes; only the device moves (then placed as that device's backend wants)
        new = self._like(registry.place_weight(super().to(device=device, non_blocking=non_blocking)))
        if self.module is not None:
            self.module.quant_state = self.quant_state
        return new

    # FSDP splits flat parameters with torch.chunk / split: keep the subclass and its attributes
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        if func in (torch.chunk, torch.split, torch.Tensor.chunk, torch.Tensor.split):
            return tuple(args[0]._like(t) for t in out)
        return out


def _rebuild_params4bit(data, requires_grad, state):
    p = Params4bit(data, requires_grad=requires_grad)
    state = dict(state)
    state.pop("data", None)
    state.pop("requires_grad", None)
    p.__dict__.update(state)
    return p


def _prefixed(state_dict: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


class Linear4bit(nn.Linear):
    """QLoRA's 4-bit linear layer: NF4/FP4 weight (optionally double-quantized), 16-bit compute."""

    def __init__(self, input_features: int, output_features: int, bias: bool = True,
                 compute_dtype: Optional[torch.dtype] = None, compress_statistics: bool = True,
                 quant_type: str = "fp4", quant_storage: torch.dtype = torch.uint8, device=None):
        super().__init__(input_features, output_features, bias, device)
        if quant_type not in formats.QUANT_TYPES_4BIT:
            raise ValueError(f"quant_type must be one of {formats.QUANT_TYPES_4BIT}, got {quant_type!r}")
        self.weight = Params4bit(self.weight.data, requires_grad=False, compress_statistics=compress_statistics,
                                 quant_type=quant_type, quant_storage=quant_storage, module=self)
        self.compute_dtype = compute_dtype
        self.compute_type_is_set = compute_dtype is not None
        self.quant_state: Optional[F.QuantState] = None
        self.quant_storage = quant_storage

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if getattr(self.weight, "quant_state", None) is not None:
            for k, v in self.weight.quant_state.as_dict(packed=True).items():
                destination[prefix + "weight." + k] = v if keep_vars else v.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        stats = _prefixed(state_dict, prefix + "weight.")
        if any(k.startswith("quant_state.") for k in stats):
            packed = state_dict[prefix + "weight"]
            device = self.weight.device if self.weight.device.type != "meta" else packed.device
            self.weight = Params4bit.from_prequantized(packed, stats, device=device, module=self)
            for k in stats:
                state_dict.pop(prefix + "weight." + k)
            if self.bias is not None and prefix + "bias" in state_dict:
                b = state_dict[prefix + "bias"]
                self.bias = nn.Parameter(b.to(device), requires_grad=self.bias.requires_grad)
            for name in ("weight", "bias"):
                if prefix + name not in state_dict and (name == "weight" or self.bias is not None):
                    missing_keys.append(prefix + name)
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def set_compute_type(self, x: torch.Tensor) -> None:
        if x.dtype in (torch.float16, torch.bfloat16, torch.float32):
            self.compute_dtype = x.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # FSDP2 (fully_shard) swaps the Params4bit for a plain Parameter (DTensor shard, then the all-gathered
        # packed codes) that carries no attributes: the QuantState is then the one kept on the module
        # (parameters are read once each: nn.Module.__getattr__ is a Python call; matmul_4bit takes the packed
        # weight in either orientation, so no .t() view either)
        weight = self.weight
        if not getattr(weight, "bnb_quantized", self.quant_state is not None):
            weight = self.weight = weight._quantize(weight.device if weight.device.type != "meta" else x.device)
        quant_state = getattr(weight, "quant_state", None)
        if quant_state is None:
            quant_state = self.quant_state
        if not self.compute_type_is_set:
            self.set_compute_type(x)
            self.compute_type_is_set = True
        inp_dtype = x.dtype
        if self.compute_dtype is not None and x.dtype != self.compute_dtype:
            x = x.to(self.compute_dtype)
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        out = matmul_4bit(x, weight, quant_state=quant_state, bias=bias)
        return out if out.dtype == inp_dtype else out.to(inp_dtype)


class LinearFP4(Linear4bit):
    def __init__(self, input_features, output_features, bias=True, compute_dtype=None, compress_statistics=True,
                 quant_storage=torch.uint8, device=None):
        super().__init__(input_features, output_features, bias, compute_dtype, compress_statistics, "fp4",
                         quant_storage, device)


class LinearNF4(Linear4bit):
    def __init__(self, input_features, output_features, bias=True, compute_dtype=None, compress_statistics=True,
                 quant_storage=torch.uint8, device=None):
        super().__init__(input_features, output_features, bias, compute_dtype, compress_statistics, "nf4",
                         quant_storage, device)


# --------------------------------------------------------------------------------------------------
# 8-bit (LLM.int8())
# --------------------------------------------------------------------------------------------------


class Int8Params(_MovesThroughTo, nn.Parameter):
    """An int8 weight with row-wise absmax (``CB``, ``SCB``), or a 16-bit weight with has_fp16_weights."""

    def __new__(cls, data: Optional[torch.Tensor] = None, requires_grad: bool = True,
                has_fp16_weights: bool = False, CB: Optional[torch.Tensor] = None,
                SCB: Optional[torch.Tensor] = None):
        if data is None:
            data = torch.empty(0)
        obj = torch.Tensor._make_subclass(cls, data, requires_grad)
        obj.CB = CB
        obj.SCB = SCB
        obj.has_fp16_weights = has_fp16_weights
        return obj

    def _quantize(self, device) -> "Int8Params":
        w = self.data.contiguous().to(device)
        CB, SCB, _ = torch.ops.bnb.int8_vectorwise_quant(w, 0.0)
        self.data = registry.place_weight(CB)
        self.CB = CB
        self.SCB = SCB
        return self

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self), data=copy.deepcopy(self.data, memo), requires_grad=self.requires_grad,
                                 has_fp16_weights=self.has_fp16_weights, CB=copy.deepcopy(self.CB, memo),
                                 SCB=copy.deepcopy(self.SCB, memo))
        memo[id(self)] = new
        return new

    def to(self, *args, **kwargs):
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if (device is not None and device.type != "meta" and not self.has_fp16_weights and self.SCB is None
                and self.data.is_floating_point()):
            return self._quantize(device)
        if self.has_fp16_weights:
            moved = super().to(device=device, dtype=dtype, non_blocking=non_blocking)
        else:
            moved = registry.place_weight(super().to(device=device, non_blocking=non_blocking))
        new = Int8Params(moved, requires_grad=self.requires_grad, has_fp16_weights=self.has_fp16_weights)
        new.CB = new.data if (self.CB is not None and not self.has_fp16_weights) else None
        new.SCB = self.SCB.to(device) if (self.SCB is not None and device is not None) else self.SCB
        return new


class Linear8bitLt(nn.Linear):
    """LLM.int8() linear layer: int8 weight with row-wise absmax; activation columns with any
    |x| >= threshold are multiplied in 16-bit (threshold 0.0 turns the decomposition off)."""

    def __init__(self, input_features: int, output_features: int, bias: bool = True,
                 has_fp16_weights: bool = True, threshold: float = 0.0, index=None, device=None):
        super().__init__(input_features, output_features, bias, device)
        self.state = MatmulLtState(threshold=threshold, has_fp16_weights=has_fp16_weights)
        self.index = index
        self.weight = Int8Params(self.weight.data, has_fp16_weights=has_fp16_weights,
                                 requires_grad=has_fp16_weights)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        scb = self.weight.SCB if self.weight.SCB is not None else self.state.SCB
        if not self.state.has_fp16_weights and scb is not None:
            destination[prefix + "SCB"] = scb if keep_vars else scb.detach()
            destination[prefix + "weight_format"] = torch.tensor(0, dtype=torch.uint8)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        scb = state_dict.pop(prefix + "SCB", None)
        fmt = state_dict.pop(prefix + "weight_format", None)
        if fmt is not None and int(fmt) != 0:
            error_msgs.append(f"{prefix}weight_format {int(fmt)} is not supported (only 0, row-major)")
        if scb is not None:
            w = state_dict[prefix + "weight"]
            if w.dtype != torch.int8:
                error_msgs.append(f"{prefix}weight must be int8 when SCB is present, got {w.dtype}")
                return
            device = self.weight.device if self.weight.device.type != "meta" else w.device
            self.weight = Int8Params(registry.place_weight(w.to(device)), requires_grad=False, has_fp16_weights=False,
                                     CB=None, SCB=scb.to(device))
            self.weight.CB = self.weight.data
            self.state.has_fp16_weights = False
            self.state.CB, self.state.SCB = self.weight.CB, self.weight.SCB
            state_dict = {k: v for k, v in state_dict.items() if k != prefix + "weight"}
            if self.bias is not None and prefix + "bias" in state_dict:
                self.bias = nn.Parameter(state_dict[prefix + "bias"].to(device), requires_grad=self.bias.requires_grad)
            elif self.bias is not None:
                missing_keys.append(prefix + "bias")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # parameters are read once each (nn.Module.__getattr__ is a Python call: ~1-2 us a read with cold caches)
        state, weight, bias = self.state, self.weight, self.bias
        state.is_training = self.training
        if not state.has_fp16_weights:
            if weight.SCB is None:
                weight = self.weight = weight._quantize(weight.device)
            state.CB, state.SCB = weight.CB, weight.SCB
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        return matmul(x, weight, bias=bias, state=state)


# --------------------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------------------


class StableEmbedding(nn.Embedding):
    """Embedding with Xavier-uniform init and a LayerNorm, for stable training with 8-bit optimizers
    (its weight should keep 32-bit optimizer state)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 max_norm: Optional[float] = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Optional[torch.Tensor] = None, device=None, dtype=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type, scale_grad_by_freq,
                         sparse, _weight, device, dtype)
        self.norm = nn.LayerNorm(embedding_dim, device=device)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        self._fill_padding_idx_with_zero()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        emb = Fn.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)
        emb = emb.to(torch.get_default_dtype())
        return self.norm(emb).to(self.weight.dtype)


class Embedding(nn.Embedding):
    """nn.Embedding with Xavier-uniform init (bitsandbytes.nn.Embedding)."""

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        self._fill_padding_idx_with_zero()


class Embedding8bit(nn.Embedding):
    """Embedding whose table is int8 with one absmax per row; looked-up rows are dequantized."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype=None):
        super().__init__(num_embeddings, embedding_dim, device=device, dtype=dtype)
        self.dtype = self.weight.data.dtype
        self.weight = Int8Params(self.weight.data, has_fp16_weights=False, requires_grad=False)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        raise NotImplementedError("Saving Embedding8bit is not supported yet (neither is it in bitsandbytes)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.weight.SCB is None:
            self.weight = self.weight._quantize(self.weight.device)
        rows = Fn.embedding(input, self.weight.data)
        scales = Fn.embedding(input, self.weight.SCB.view(-1, 1))
        return (rows.float() * scales * formats.INT8_DEQUANT_SCALE).to(self.dtype)


class Embedding4bit(nn.Embedding):
    """Embedding whose table is 4-bit (NF4/FP4). When embedding_dim is a multiple of the blocksize only the
    looked-up rows are dequantized; otherwise the table is dequantized whole."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=None, quant_type: str = "fp4",
                 quant_storage: torch.dtype = torch.uint8, device=None):
        super().__init__(num_embeddings, embedding_dim, device=device, dtype=dtype)
        self.dtype = self.weight.data.dtype
        self.weight = Params4bit(self.weight.data, requires_grad=False, compress_statistics=False,
                                 quant_type=quant_type, quant_storage=quant_storage, module=self)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        raise NotImplementedError("Saving Embedding4bit is not supported yet (neither is it in bitsandbytes)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.weight.bnb_quantized:
            self.weight = self.weight._quantize(self.weight.device)
        qs = self.weight.quant_state
        bs = qs.blocksize
        if self.embedding_dim % bs == 0:
            bytes_per_row = self.embedding_dim // 2
            packed = self.weight.data.view(torch.uint8).reshape(-1)[: self.num_embeddings * bytes_per_row]
            rows = Fn.embedding(input, packed.view(self.num_embeddings, bytes_per_row)).reshape(-1)
            blocks_per_row = self.embedding_dim // bs
            absmax = qs.full_absmax()[: self.num_embeddings * blocks_per_row]
            row_absmax = Fn.embedding(input, absmax.view(self.num_embeddings, blocks_per_row)).reshape(-1)
            shape = (*input.shape, self.embedding_dim)
            return torch.ops.bnb.dequantize_4bit(rows, row_absmax.contiguous(), bs, qs.quant_type, list(shape),
                                                 self.dtype)
        table = F.dequantize_4bit(self.weight.data, qs).to(self.dtype)
        return Fn.embedding(input, table)


class EmbeddingFP4(Embedding4bit):
    def __init__(self, num_embeddings, embedding_dim, dtype=None, quant_storage=torch.uint8, device=None):
        super().__init__(num_embeddings, embedding_dim, dtype=dtype, quant_type="fp4", quant_storage=quant_storage,
                         device=device)


class EmbeddingNF4(Embedding4bit):
    def __init__(self, num_embeddings, embedding_dim, dtype=None, quant_storage=torch.uint8, device=None):
        super().__init__(num_embeddings, embedding_dim, dtype=dtype, quant_type="nf4", quant_storage=quant_storage,
                         device=device)
