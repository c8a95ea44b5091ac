"""torch.compile(fullgraph=True) over the quantized layers (default inductor backend) matches eager.

Linear4bit: its Params4bit weight (a Parameter subclass carrying a QuantState) traces without graph breaks;
the QuantState's tensors become graph inputs and its ints/strings constants.

Linear8bitLt with threshold > 0: the number of outlier columns is data dependent. int8_vectorwise_quant's
fake kernel returns it as an unbacked size (ctx.new_dynamic_size()), and MatMul8bitLt, when compiling,
always takes the mixed (outlier) path - exact for zero outlier columns - instead of branching on the count,
so fullgraph capture needs no config flags, and one compiled graph serves inputs with and without outliers.

Tolerance: inductor may fuse the bias add / dtype casts into the matmul epilogue, which changes bf16/fp16
rounding by at most one ulp of the output (2**-8 relative for bf16): we allow 1e-2 * max|eager| (~2.5 ulp).
"""

from __future__ import annotations

import pytest
import torch

import bnb_core  # noqa: F401
from bnb_core.nn import Linear4bit, Linear8bitLt

RTOL = 1e-2


def _close(out, ref):
    assert out.shape == ref.shape and out.dtype == ref.dtype
    err = (out.float() - ref.float()).abs().max().item()
    assert err <= RTOL * ref.float().abs().max().item(), err


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("double_quant", [False, True], ids=["dq0", "dq1"])
@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_linear4bit_fullgraph(quant_type, double_quant, batch):
    torch.manual_seed(0)
    layer = Linear4bit(128, 96, compute_dtype=torch.bfloat16, quant_type=quant_type,
                       compress_statistics=double_quant).to("cpu")
    assert layer.weight.quant_state.nested == double_quant
    x = torch.randn(batch, 128, dtype=torch.bfloat16)
    with torch.no_grad():
        ref = layer(x)
        out = torch.compile(layer, fullgraph=True)(x)
    _close(out, ref)


def test_linear4bit_fullgraph_backward_to_input_and_bias():
    """QLoRA needs gradients through the frozen 4-bit weight: compile the training step too."""
    torch.manual_seed(0)
    layer = Linear4bit(128, 64, compute_dtype=torch.float32, quant_type="nf4").to("cpu")
    x = torch.randn(4, 128, requires_grad=True)
    layer(x).square().sum().backward()
    gx, gb = x.grad.clone(), layer.bias.grad.clone()
    x.grad = None
    layer.bias.grad = None
    torch.compile(layer, fullgraph=True)(x).square().sum().backward()
    torch.testing.assert_close(x.grad, gx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.bias.grad, gb, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threshold", [0.0, 6.0])
def test_linear8bitlt_fullgraph(threshold):
    torch.manual_seed(0)
    layer = Linear8bitLt(128, 96, has_fp16_weights=False, threshold=threshold).to("cpu").eval()
    compiled = torch.compile(layer, fullgraph=True)
    x = torch.randn(8, 128, dtype=torch.float16)
    x_outliers = x.clone()
    x_outliers[:, [3, 77]] = 20.0  # two outlier columns when threshold is 6.0
    for inp in (x_outliers, x):  # with and without outliers, through the same compiled graph
        with torch.no_grad():
            ref = layer(inp)
            cols = torch.ops.bnb.int8_vectorwise_quant(inp, float(threshold))[2]  # (the layer fuses it in eval)
            n_outliers = 0 if cols is None else cols.numel()
            out = compiled(inp)
        if threshold > 0:
            assert n_outliers == (2 if inp is x_outliers else 0)
        _close(out, ref)
