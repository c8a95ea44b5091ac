"""Hugging Face Transformers integration: load models in 4-bit (NF4/FP4) or 8-bit (LLM.int8()) with bnb_core.

Importing this module registers, through transformers' public API (``register_quantization_config`` and
``register_quantizer``), the quantization method ``"bnb_core"``:

    import bnb_core.integrations.transformers  # registers "bnb_core"
    from bnb_core.integrations import BnbCoreConfig
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=BnbCoreConfig(load_in_4bit=True, ...))

``BnbCoreConfig`` takes the arguments of transformers' ``BitsAndBytesConfig``. The layers are replaced by
``bnb_core.nn.Linear4bit`` / ``Linear8bitLt`` (``lm_head``, tied and output embeddings are kept, or exactly
``llm_int8_skip_modules`` when given, as transformers does) and the weights are quantized while they load.
``save_pretrained`` writes bitsandbytes' tensor keys (safetensors) and ``quant_method: "bnb_core"`` in
config.json, so ``from_pretrained(dir)`` needs no quantization_config. ``load_bitsandbytes_checkpoint`` loads a
checkpoint that bitsandbytes wrote (``quant_method: "bitsandbytes"``) with bnb_core layers.

Serialized form: ``to_dict()`` writes ``"bits": 4`` / ``8`` instead of ``load_in_4bit`` / ``load_in_8bit``:
transformers routes every quantization_config dict holding a true ``load_in_4bit`` / ``load_in_8bit`` to its
own bitsandbytes quantizer whatever its quant_method says. ``from_dict`` accepts both forms.

Without transformers installed this module still imports: ``BnbCoreConfig`` works as a plain config object
and nothing is registered (``TRANSFORMERS_AVAILABLE`` is False).
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from typing import Any, Optional

import torch
from torch import nn

from .. import functional as F
from .. import registry
from ..nn.modules import Int8Params, Linear4bit, Linear8bitLt, Params4bit

try:  # never a hard dependency of bnb_core
    from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
    from transformers.utils.quantization_config import QuantizationConfigMixin

    TRANSFORMERS_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    HfQuantizer = object
    QuantizationConfigMixin = object
    TRANSFORMERS_AVAILABLE = False

QUANT_METHOD = "bnb_core"

__all__ = ["QUANT_METHOD", "TRANSFORMERS_AVAILABLE", "BnbCoreConfig", "BnbCoreHfQuantizer",
           "load_bitsandbytes_checkpoint"]

_STORAGE_DTYPES = ("float16", "float32", "int8", "uint8", "float64", "bfloat16")
_COMPUTE_DTYPES = ("float16", "bfloat16", "float32", "float64")
_QUANT_TYPES = ("fp4", "nf4")
# keys of a serialized config that are not constructor arguments
_NON_FIELD_KEYS = ("quant_method", "bits", "_load_in_4bit", "_load_in_8bit")


def _dtype_arg(field: str, value, default: torch.dtype, allowed: tuple[str, ...]) -> torch.dtype:
    if value is None:
        return default
    if isinstance(value, str):
        name = value[len("torch."):] if value.startswith("torch.") else value
        if name not in allowed:
            raise ValueError(f"{field} must be a torch.dtype or one of {allowed}, got {value!r}")
        return getattr(torch, name)
    if isinstance(value, torch.dtype):
        if str(value).split(".")[-1] not in allowed:
            raise ValueError(f"{field} must be one of {allowed}, got {value}")
        return value
    raise TypeError(f"{field} must be a torch.dtype or a string, got {type(value).__name__}")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).split(".")[-1]


class BnbCoreConfig(QuantizationConfigMixin):
    """Quantization config of bnb_core: the fields and defaults of transformers' ``BitsAndBytesConfig``.

    Args:
        load_in_8bit: replace linear layers by ``bnb_core.nn.Linear8bitLt`` (LLM.int8()).
        load_in_4bit: replace linear layers by ``bnb_core.nn.Linear4bit``.
        llm_int8_threshold: outlier threshold of LLM.int8() (activation columns with |x| >= it run in 16-bit).
        llm_int8_skip_modules: modules kept unquantized, in both 4- and 8-bit: a full name or its start up to
            a module boundary (also as a regex), or a dotted suffix of it ("up_proj"). When given, it
            REPLACES the default skips (lm_head, tied/output embeddings).
        llm_int8_enable_fp32_cpu_offload: keep modules that a device_map puts on "cpu" / "disk" unquantized.
        llm_int8_has_fp16_weight: 8-bit layers keep 16-bit trainable weights (quantized at each forward).
        bnb_4bit_compute_dtype: dtype of the 4-bit matmul (default float32, as transformers).
        bnb_4bit_quant_type: "fp4" (default) or "nf4".
        bnb_4bit_use_double_quant: quantize the absmax of each block again (double quantization).
        bnb_4bit_quant_storage: dtype the packed 4-bit codes are stored in (default uint8).
    """

    def __init__(self, load_in_8bit: bool = False, load_in_4bit: bool = False, llm_int8_threshold: float = 6.0,
                 llm_int8_skip_modules: Optional[list[str]] = None, llm_int8_enable_fp32_cpu_offload: bool = False,
                 llm_int8_has_fp16_weight: bool = False, bnb_4bit_compute_dtype=None,
                 bnb_4bit_quant_type: str = "fp4", bnb_4bit_use_double_quant: bool = False,
                 bnb_4bit_quant_storage=None):
        self.quant_method = QUANT_METHOD
        for field, value in (("load_in_8bit", load_in_8bit), ("load_in_4bit", load_in_4bit)):
            if not isinstance(value, bool):
                raise TypeError(f"{field} must be a bool, got {type(value).__name__}")
        if load_in_4bit and load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are both True; only one can be used")
        self._load_in_8bit = load_in_8bit
        self._load_in_4bit = load_in_4bit
        if isinstance(llm_int8_threshold, bool) or not isinstance(llm_int8_threshold, (int, float)):
            raise TypeError(f"llm_int8_threshold must be a float, got {type(llm_int8_threshold).__name__}")
        if llm_int8_threshold < 0:
            raise ValueError(f"llm_int8_threshold must be >= 0, got {llm_int8_threshold}")
        self.llm_int8_threshold = float(llm_int8_threshold)
        if llm_int8_skip_modules is not None:
            if isinstance(llm_int8_skip_modules, tuple):
                llm_int8_skip_modules = list(llm_int8_skip_modules)
            if not isinstance(llm_int8_skip_modules, list) or not all(
                    isinstance(m, str) for m in llm_int8_skip_modules):
                raise TypeError("llm_int8_skip_modules must be a list of strings or None, "
                                f"got {llm_int8_skip_modules!r}")
        self.llm_int8_skip_modules = llm_int8_skip_modules
        for field, value in (("llm_int8_enable_fp32_cpu_offload", llm_int8_enable_fp32_cpu_offload),
                             ("llm_int8_has_fp16_weight", llm_int8_has_fp16_weight),
                             ("bnb_4bit_use_double_quant", bnb_4bit_use_double_quant)):
            if not isinstance(value, bool):
                raise TypeError(f"{field} must be a bool, got {type(value).__name__}")
        self.llm_int8_enable_fp32_cpu_offload = llm_int8_enable_fp32_cpu_offload
        self.llm_int8_has_fp16_weight = llm_int8_has_fp16_weight
        self.bnb_4bit_use_double_quant = bnb_4bit_use_double_quant
        if bnb_4bit_quant_type not in _QUANT_TYPES:
            raise ValueError(f"bnb_4bit_quant_type must be one of {_QUANT_TYPES}, got {bnb_4bit_quant_type!r}")
        self.bnb_4bit_quant_type = bnb_4bit_quant_type
        self.bnb_4bit_compute_dtype = _dtype_arg("bnb_4bit_compute_dtype", bnb_4bit_compute_dtype, torch.float32,
                                                 _COMPUTE_DTYPES)
        self.bnb_4bit_quant_storage = _dtype_arg("bnb_4bit_quant_storage", bnb_4bit_quant_storage, torch.uint8,
                                                 _STORAGE_DTYPES)

    # load_in_4bit / load_in_8bit: properties so that setting one checks the other (as BitsAndBytesConfig)
    @property
    def load_in_4bit(self) -> bool:
        return self._load_in_4bit

    @load_in_4bit.setter
    def load_in_4bit(self, value: bool):
        if not isinstance(value, bool):
            raise TypeError(f"load_in_4bit must be a bool, got {type(value).__name__}")
        if value and self._load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are both True; only one can be used")
        self._load_in_4bit = value

    @property
    def load_in_8bit(self) -> bool:
        return self._load_in_8bit

    @load_in_8bit.setter
    def load_in_8bit(self, value: bool):
        if not isinstance(value, bool):
            raise TypeError(f"load_in_8bit must be a bool, got {type(value).__name__}")
        if value and self._load_in_4bit:
            raise ValueError("load_in_4bit and load_in_8bit are both True; only one can be used")
        self._load_in_8bit = value

    def is_quantizable(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    def quantization_method(self) -> Optional[str]:
        """"llm_int8", "nf4", "fp4", or None when neither load_in_4bit nor load_in_8bit is set."""
        if self.load_in_8bit:
            return "llm_int8"
        if self.load_in_4bit:
            return self.bnb_4bit_quant_type
        return None

    # ---------------------------------------------------------------------------------------- serialization

    def to_dict(self) -> dict[str, Any]:
        return {
            "quant_method": QUANT_METHOD,
            "bits": 4 if self.load_in_4bit else 8 if self.load_in_8bit else None,
            "llm_int8_threshold": self.llm_int8_threshold,
            "llm_int8_skip_modules": copy.deepcopy(self.llm_int8_skip_modules),
            "llm_int8_enable_fp32_cpu_offload": self.llm_int8_enable_fp32_cpu_offload,
            "llm_int8_has_fp16_weight": self.llm_int8_has_fp16_weight,
            "bnb_4bit_compute_dtype": _dtype_name(self.bnb_4bit_compute_dtype),
            "bnb_4bit_quant_type": self.bnb_4bit_quant_type,
            "bnb_4bit_use_double_quant": self.bnb_4bit_use_double_quant,
            "bnb_4bit_quant_storage": _dtype_name(self.bnb_4bit_quant_storage),
        }

    def to_diff_dict(self) -> dict[str, Any]:
        return self.to_dict()

    def __iter__(self):
        yield from self.to_dict().items()

    def to_json_string(self, use_diff: bool = True) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json(self) -> str:
        return self.to_json_string()

    def to_json_file(self, json_file_path) -> None:
        with open(json_file_path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())

    @classmethod
    def from_json(cls, text_or_path: str) -> "BnbCoreConfig":
        """From ``to_json()`` text or a JSON file path."""
        if os.path.isfile(text_or_path):
            with open(text_or_path, encoding="utf-8") as f:
                text_or_path = f.read()
        return cls.from_dict(json.loads(text_or_path))

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], return_unused_kwargs: bool = False, **kwargs):
        """From ``to_dict()`` output or from a ``BitsAndBytesConfig`` dict (``quant_method: "bitsandbytes"``).

        Keys that are not fields are dropped with a warning; ``kwargs`` that name fields override the dict.
        """
        d = dict(config_dict)
        method = d.get("quant_method", QUANT_METHOD)
        method = getattr(method, "value", method)
        if method not in (QUANT_METHOD, "bitsandbytes"):
            raise ValueError(f"quant_method must be {QUANT_METHOD!r} or 'bitsandbytes', got {method!r}")
        bits = d.pop("bits", None)
        if bits is not None:
            if bits not in (4, 8):
                raise ValueError(f"bits must be 4, 8 or None, got {bits!r}")
            d.setdefault("load_in_4bit", bits == 4)
            d.setdefault("load_in_8bit", bits == 8)
        for private in ("_load_in_4bit", "_load_in_8bit"):
            if private in d:
                d.setdefault(private[1:], d[private])
        fields = set(cls.__init__.__code__.co_varnames[1:cls.__init__.__code__.co_argcount])
        unknown = sorted(k for k in d if k not in fields and k not in _NON_FIELD_KEYS)
        if unknown:
            warnings.warn(f"BnbCoreConfig.from_dict: ignoring keys that are not fields: {unknown}", stacklevel=2)
        args = {k: v for k, v in d.items() if k in fields}
        unused = {}
        for k, v in kwargs.items():
            if k in fields:
                args[k] = v
            else:
                unused[k] = v
        config = cls(**args)
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_bitsandbytes(cls, config) -> "BnbCoreConfig":
        """From a transformers ``BitsAndBytesConfig`` (or its dict)."""
        d = config if isinstance(config, dict) else config.to_dict()
        return cls.from_dict({k: v for k, v in d.items() if k != "quant_method"})

    def __eq__(self, other) -> bool:
        return isinstance(other, BnbCoreConfig) and self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


# --------------------------------------------------------------------------------------------------
# module replacement (before the weights load)
# --------------------------------------------------------------------------------------------------


def _is_skipped(name: str, patterns) -> bool:
    """transformers' rule: a pattern skips a module when it matches the module's full name from the start up
    to a module boundary (literally or as a regex: "model.layers.1" skips "model.layers.1.mlp.up_proj", not
    "model.layers.11...") or is a dotted suffix of it ("up_proj", "mlp.up_proj")."""
    for p in patterns or ():
        if name == p or name.startswith(p + ".") or name.endswith("." + p):
            return True
        try:
            m = re.match(rf"(?:{p})(?:(?<=\.)|(?=\.|$))", name)
        except re.error:
            m = None
        if m:
            return True
    return False


def _conv1d_class():
    try:
        from transformers.pytorch_utils import Conv1D

        return Conv1D
    except ImportError:  # pragma: no cover
        return None


def replace_with_bnb_core_linear(model: nn.Module, config: BnbCoreConfig, modules_to_not_convert=None,
                                 pre_quantized: bool = False) -> int:
    """Swap every ``nn.Linear`` (and transformers ``Conv1D``) not skipped by `modules_to_not_convert` for an
    empty (meta) bnb_core layer configured by `config`. Returns how many were replaced."""
    conv1d = _conv1d_class()
    targets = []
    for name, module in model.named_modules():
        if not name or _is_skipped(name, modules_to_not_convert):
            continue
        if type(module) is nn.Linear or (conv1d is not None and isinstance(module, conv1d)):
            targets.append((name, module))
    for name, module in targets:
        if conv1d is not None and isinstance(module, conv1d):
            in_features, out_features = module.weight.shape
        else:
            in_features, out_features = module.in_features, module.out_features
        has_bias = module.bias is not None
        if config.load_in_8bit:
            new = Linear8bitLt(in_features, out_features, has_bias, has_fp16_weights=config.llm_int8_has_fp16_weight,
                               threshold=config.llm_int8_threshold, device="meta")
            if pre_quantized:
                new.weight.data = new.weight.data.to(torch.int8)
        else:
            new = Linear4bit(in_features, out_features, has_bias, compute_dtype=config.bnb_4bit_compute_dtype,
                             compress_statistics=config.bnb_4bit_use_double_quant,
                             quant_type=config.bnb_4bit_quant_type, quant_storage=config.bnb_4bit_quant_storage,
                             device="meta")
            if pre_quantized:
                new.weight.data = new.weight.data.to(config.bnb_4bit_quant_storage)
        new.source_cls = type(module)  # Conv1D weights are [in, out]: transposed when quantized
        new.requires_grad_(False)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return len(targets)


# --------------------------------------------------------------------------------------------------
# quantizer (registered with transformers)
# --------------------------------------------------------------------------------------------------

if TRANSFORMERS_AVAILABLE:
    from transformers.core_model_loading import ConversionOps

    def _first(v):
        return v[0] if isinstance(v, list) else v

    def _module_of(model, param_name: str) -> nn.Module:
        module_name = param_name.rpartition(".")[0]
        return model.get_submodule(module_name) if module_name else model

    def _oriented(module, value: torch.Tensor) -> torch.Tensor:
        conv1d = _conv1d_class()
        src = getattr(module, "source_cls", None)
        if conv1d is not None and isinstance(src, type) and issubclass(src, conv1d):
            return value.T
        return value

    class _Quantize4bit(ConversionOps):
        """A 16/32-bit checkpoint weight -> Params4bit quantized on the device it was loaded to."""

        def __init__(self, hf_quantizer):
            self.hf_quantizer = hf_quantizer

        def convert(self, input_dict, model=None, full_layer_name=None, **kwargs):
            out = {}
            for name, value in input_dict.items():
                module = _module_of(model, name)
                value = _oriented(module, _first(value))
                old = module.weight
                p = Params4bit(value, requires_grad=False, blocksize=old.blocksize,
                               compress_statistics=old.compress_statistics, quant_type=old.quant_type,
                               quant_storage=old.quant_storage, module=module)
                out[name] = p.to(value.device)
                module._is_hf_initialized = True
            return out

    class _Deserialize4bit(ConversionOps):
        """weight + weight.absmax/quant_map/nested_*/quant_state.* (bitsandbytes' keys) -> Params4bit."""

        def __init__(self, hf_quantizer):
            self.hf_quantizer = hf_quantizer

        def convert(self, input_dict, model=None, full_layer_name=None, **kwargs):
            if len(input_dict) == 1:  # a plain "weight" (a module that is not 4-bit)
                return input_dict
            d = {k: _first(v) for k, v in input_dict.items()}
            weight = d.pop("weight")
            stats = {k[len("weight."):] if k.startswith("weight.") else k: v for k, v in d.items()}
            module = _module_of(model, full_layer_name)
            param = Params4bit.from_prequantized(weight, stats, requires_grad=False, device=weight.device,
                                                 module=module)
            module._is_hf_initialized = True
            return {"weight": param}

    class _Quantize8bit(ConversionOps):
        """A 16/32-bit checkpoint weight -> Int8Params (row-wise int8 + SCB), or kept 16-bit with has_fp16."""

        def __init__(self, hf_quantizer):
            self.hf_quantizer = hf_quantizer

        def convert(self, input_dict, model=None, full_layer_name=None, **kwargs):
            out = {}
            for name, value in input_dict.items():
                module = _module_of(model, name)
                value = _oriented(module, _first(value))
                fp16 = module.state.has_fp16_weights
                p = Int8Params(value, requires_grad=False, has_fp16_weights=fp16)
                out[name] = p.to(value.device)
                module._is_hf_initialized = True
            return out

    class _Deserialize8bit(ConversionOps):
        """weight (int8) + SCB + weight_format -> Int8Params."""

        def __init__(self, hf_quantizer):
            self.hf_quantizer = hf_quantizer

        def convert(self, input_dict, model=None, full_layer_name=None, **kwargs):
            if len(input_dict) == 1:
                return input_dict
            d = {k: _first(v) for k, v in input_dict.items()}
            fmt = d.get("weight_format")
            if fmt is not None and int(fmt) != 0:
                raise ValueError(f"{full_layer_name}: weight_format {int(fmt)} is not supported (only 0, row-major)")
            weight, scb = d["weight"], d["SCB"]
            if weight.dtype != torch.int8:
                raise ValueError(f"{full_layer_name}: an 8-bit weight must be int8, got {weight.dtype}")
            module = _module_of(model, full_layer_name)
            p = Int8Params(registry.place_weight(weight), requires_grad=False, has_fp16_weights=False,
                           SCB=scb.to(weight.device))
            p.CB = p.data
            module.state.has_fp16_weights = False
            module._is_hf_initialized = True
            return {"weight": p}

    class BnbCoreHfQuantizer(HfQuantizer):
        """transformers quantizer for ``BnbCoreConfig``: bnb_core.nn layers, quantized while loading."""

        requires_calibration = False
        quantization_config: BnbCoreConfig

        def __init__(self, quantization_config, **kwargs):
            if isinstance(quantization_config, dict):
                quantization_config = BnbCoreConfig.from_dict(quantization_config)
            super().__init__(quantization_config, **kwargs)
            self.modules_to_not_convert: list[str] = []

        @property
        def _4bit(self) -> bool:
            return self.quantization_config.load_in_4bit

        @property
        def quantized_element_size(self) -> float:
            return 0.5 if self._4bit else 1.0

        @property
        def serialized_names(self):
            if self._4bit:
                return {"weight": ["weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax",
                                   "weight.nested_quant_map", "weight.quant_state.bitsandbytes__nf4",
                                   "weight.quant_state.bitsandbytes__fp4"]}
            return {"weight": ["weight", "SCB", "weight_format"]}

        def validate_environment(self, *args, **kwargs):
            qc = self.quantization_config
            if not qc.is_quantizable():
                raise ValueError("BnbCoreConfig: set load_in_4bit=True or load_in_8bit=True")
            device_map = kwargs.get("device_map")
            if isinstance(device_map, dict) and not qc.llm_int8_enable_fp32_cpu_offload:
                if "disk" in set(device_map.values()):
                    raise ValueError(
                        "Some modules are dispatched to the disk, which quantized layers cannot be offloaded to. "
                        "Set llm_int8_enable_fp32_cpu_offload=True to keep the modules mapped to 'cpu'/'disk' "
                        "unquantized, or change the device_map.")

        def update_device_map(self, device_map):
            if device_map is None:
                device_map = {"": torch.cuda.current_device() if torch.cuda.is_available() else "cpu"}
            return device_map

        def adjust_max_memory(self, max_memory):
            return {k: v * 0.90 for k, v in max_memory.items()}  # room for quantization buffers

        def param_needs_quantization(self, model, param_name: str, **kwargs) -> bool:
            module_name, _, name = param_name.rpartition(".")
            try:
                module = model.get_submodule(module_name) if module_name else model
            except AttributeError:
                return False
            cls = Linear4bit if self._4bit else Linear8bitLt
            return isinstance(module, cls) and name == "weight"

        def _process_model_before_weight_loading(self, model, device_map=None, **kwargs):
            qc = self.quantization_config
            self.modules_to_not_convert = self.get_modules_to_not_convert(
                model, qc.llm_int8_skip_modules, getattr(model, "_keep_in_fp32_modules", None))
            if qc.llm_int8_enable_fp32_cpu_offload and isinstance(device_map, dict):
                self.modules_to_not_convert.extend(k for k, v in device_map.items() if v in ("cpu", "disk"))
            n = replace_with_bnb_core_linear(model, qc, self.modules_to_not_convert, pre_quantized=self.pre_quantized)
            if n == 0:
                warnings.warn("BnbCoreConfig: no linear layer of the model was replaced", stacklevel=2)
            return model

        def _process_model_after_weight_loading(self, model, **kwargs):
            # deliberately not model.is_loaded_in_4bit/8bit: transformers then imports bitsandbytes
            # (num_parameters) and treats the layers as bitsandbytes'
            model.bnb_core_quantization = "4bit" if self._4bit else "8bit"
            return model

        def is_serializable(self) -> bool:
            return True

        @property
        def is_trainable(self) -> bool:
            return True

        def get_quantize_ops(self):
            return _Quantize4bit(self) if self._4bit else _Quantize8bit(self)

        def get_load_operations(self):
            return {"deserialize": _Deserialize4bit if self._4bit else _Deserialize8bit}

        def _dequantize(self, model, dtype=None):
            for name, module in list(model.named_modules()):
                if isinstance(module, Linear4bit):
                    w = F.dequantize_4bit(module.weight.data, module.weight.quant_state)
                elif isinstance(module, Linear8bitLt):
                    if module.weight.SCB is None:
                        w = module.weight.data
                    else:
                        w = torch.ops.bnb.int8_vectorwise_dequant(module.weight.data, module.weight.SCB)
                else:
                    continue
                if dtype is not None:
                    w = w.to(dtype)
                lin = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                                device=w.device, dtype=w.dtype)
                lin.weight = nn.Parameter(w, requires_grad=False)
                if module.bias is not None:
                    lin.bias = nn.Parameter(module.bias.data.to(w.dtype), requires_grad=False)
                parent_name, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent_name) if parent_name else model, child, lin)
            return model

    def _register():
        try:
            register_quantization_config(QUANT_METHOD)(BnbCoreConfig)
            register_quantizer(QUANT_METHOD)(BnbCoreHfQuantizer)
        except ValueError:
            # already registered: this module was re-imported (importlib.reload, a second copy of bnb_core);
            # the newest classes win so that isinstance checks match the config objects users build
            from transformers.quantizers import auto

            auto.AUTO_QUANTIZATION_CONFIG_MAPPING[QUANT_METHOD] = BnbCoreConfig
            auto.AUTO_QUANTIZER_MAPPING[QUANT_METHOD] = BnbCoreHfQuantizer

    _register()

else:  # pragma: no cover
    class BnbCoreHfQuantizer:  # noqa: D101
        def __init__(self, *args, **kwargs):
            raise ImportError("BnbCoreHfQuantizer needs transformers: pip install transformers")


def load_bitsandbytes_checkpoint(pretrained_model_name_or_path, model_class=None, **kwargs):
    """Load a checkpoint that bitsandbytes serialized (config.json ``quant_method: "bitsandbytes"``) with
    bnb_core layers: the same packed tensors, no bitsandbytes needed.

    `model_class` defaults to ``AutoModelForCausalLM``; `kwargs` go to its ``from_pretrained`` (a
    ``config=`` given there is used as the base config). Saving the result writes ``quant_method: "bnb_core"``
    with the same tensors.
    """
    if not TRANSFORMERS_AVAILABLE:
        raise ImportError("load_bitsandbytes_checkpoint needs transformers: pip install transformers")
    from transformers import AutoConfig, AutoModelForCausalLM

    model_class = model_class or AutoModelForCausalLM
    if kwargs.pop("quantization_config", None) is not None:
        raise ValueError("load_bitsandbytes_checkpoint takes the quantization config from the checkpoint")
    config = kwargs.pop("config", None)
    if config is None:
        hub_keys = ("revision", "cache_dir", "token", "local_files_only", "trust_remote_code", "subfolder")
        config = AutoConfig.from_pretrained(pretrained_model_name_or_path,
                                            **{k: kwargs[k] for k in hub_keys if k in kwargs})
    else:
        config = copy.deepcopy(config)
    qc = getattr(config, "quantization_config", None)
    if qc is None:
        raise ValueError(f"{pretrained_model_name_or_path} has no quantization_config: not a quantized checkpoint")
    qc = qc if isinstance(qc, dict) else qc.to_dict()
    method = getattr(qc.get("quant_method"), "value", qc.get("quant_method"))
    if method not in ("bitsandbytes", QUANT_METHOD) and not (qc.get("load_in_4bit") or qc.get("load_in_8bit")):
        raise ValueError(f"quant_method {method!r} is not a bitsandbytes checkpoint")
    config.quantization_config = BnbCoreConfig.from_bitsandbytes(qc).to_dict()
    return model_class.from_pretrained(pretrained_model_name_or_path, config=config, **kwargs)
