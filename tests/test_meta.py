"""Meta-test: every op has a schema, a fake kernel, a check, a reference and conformance cases."""

import torch

from bnb_core import conformance, reference
from bnb_core._ops import OPS

EXPECTED = {
    "quantize_blockwise", "dequantize_blockwise", "dequantize_blockwise.out", "quantize_4bit", "dequantize_4bit",
    "dequantize_4bit.out", "gemv_4bit", "gemv_4bit.out", "gemm_4bit", "int8_vectorwise_quant",
    "int8_vectorwise_dequant", "int8_double_quant", "int8_linear_matmul", "int8_linear_matmul.out",
    "int8_mm_dequant", "int8_scaled_mm", "int8_mixed_scaled_mm", "optimizer_update_32bit",
    "optimizer_update_8bit_blockwise",
    "int8_mixed_linear",  # ours: int8_vectorwise_quant + int8_mixed_scaled_mm in one op (LLM.int8() inference)
}


def test_every_bitsandbytes_op_is_defined():
    assert set(OPS) == EXPECTED


def test_every_op_has_fake_check_reference_and_cases():
    covered = {c.op for c in conformance.all_cases()}
    for name, op in OPS.items():
        assert callable(op.check) and callable(op.fake), name
        assert op.reference is reference.KERNELS[name], f"{name}: reference not registered"
        assert name in covered, f"{name} has no conformance case"
        packet = op.packet
        assert torch._C._dispatch_has_kernel_for_dispatch_key(packet._name, "Meta") or \
            torch._C._dispatch_has_kernel_for_dispatch_key(packet._name, "CompositeExplicitAutograd"), name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(packet._name, "CompositeExplicitAutograd"), name


def test_schemas_match_bitsandbytes_names():
    """Argument names of the schemas are those of bitsandbytes 0.50.2 (spot checks of each family)."""
    args = lambda n: [a.name for a in OPS[n].packet._schema.arguments]  # noqa: E731
    assert args("quantize_4bit") == ["A", "blocksize", "quant_type", "quant_storage"]
    assert args("gemm_4bit") == ["A", "B", "shapeB", "absmax", "blocksize", "quant_type", "bias", "absmax_8bit",
                                 "absmax_code", "absmax_offset"]
    assert args("int8_mixed_scaled_mm") == ["A", "CA", "CB", "SCA", "SCB", "outlier_cols", "bias"]
    assert args("optimizer_update_8bit_blockwise")[:5] == ["optimizer_name", "g", "p", "state1", "state2"]
