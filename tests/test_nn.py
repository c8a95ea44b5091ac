"""nn layers and autograd: outputs vs the dense layer on the dequantized weight, gradients, state_dict
round trips (including into freshly constructed modules and from bitsandbytes), embeddings, replace_linear."""

import copy
import io
import os
import pickle

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import bnb_core
import bnb_core.functional as F
from bnb_core import nn as bnn
from bnb_core import registry
from bnb_core.autograd import dequantize_weight

EPS = {torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def _bound(x, W, dtype):
    """|y - x @ W.T| bound for a 16-bit matmul: output rounding + fp32 accumulation, relative to |x| @ |W|.T."""
    S = x.double().abs() @ W.double().abs().T
    return (2 * EPS[dtype] + x.shape[-1] * 2.0**-23) * S + 1e-6


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("batch", [1, 5])
def test_linear4bit_matches_dense_on_dequantized_weight(quant_type, compress, dtype, batch):
    torch.manual_seed(0)
    lin = torch.nn.Linear(192, 96, dtype=dtype)
    q = bnn.Linear4bit(192, 96, compute_dtype=dtype, compress_statistics=compress, quant_type=quant_type)
    q.load_state_dict(lin.state_dict())
    q = q.to("cpu")
    assert q.weight.bnb_quantized and q.weight.dtype == torch.uint8 and q.weight.quant_state.nested == compress
    x = torch.randn(batch, 192, dtype=dtype)
    with OpLog() as log:
        y = q(x)
    # the CPU's native gemm_4bit serves batch 1 too (its gemv, with the bias fused and a double-quantized absmax
    # decoded in the kernel); without it batch 1 takes gemv_4bit
    native = registry.has_kernel("gemm_4bit", "cpu")
    assert ("bnb.gemv_4bit.default" if batch == 1 and not native else "bnb.gemm_4bit.default") in log.ops
    if native:  # one op: no absmax reconstruction (dequantize_blockwise) in Python
        assert not any("dequantize_blockwise" in op for op in log.ops), log.ops
    W = dequantize_weight(q.weight, q.weight.quant_state, torch.float32)
    exact = x.double() @ W.double().T + lin.bias.double()
    assert y.dtype == dtype
    assert bool(((y.double() - exact).abs() <= _bound(x, W, dtype) + EPS[dtype] * lin.bias.double().abs()).all())
    # and the quantization error itself is what NF4/FP4 gives: close to the original layer
    rel = (y.double() - lin(x).double()).norm() / lin(x).double().norm()
    assert rel < 0.2, rel


def test_matmul_4bit_gradients_match_dense():
    torch.manual_seed(1)
    W = torch.randn(64, 128)
    packed, state = F.quantize_4bit(W, quant_type="nf4", compress_statistics=True)
    Wd = F.dequantize_4bit(packed, state)
    x = torch.randn(3, 7, 128, requires_grad=True)
    bias = torch.randn(64, requires_grad=True)
    y = bnb_core.matmul_4bit(x, packed.t(), state, bias=bias)
    g = torch.randn_like(y)
    y.backward(g)
    x2 = x.detach().clone().requires_grad_()
    b2 = bias.detach().clone().requires_grad_()
    torch.nn.functional.linear(x2, Wd, b2).backward(g)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bias.grad, b2.grad, rtol=1e-5, atol=1e-5)


def test_linear4bit_qlora_style_grad_flows_to_input_only():
    q = bnn.Linear4bit(32, 16, compute_dtype=torch.float32, quant_type="nf4").to("cpu")
    x = torch.randn(4, 32, requires_grad=True)
    q(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert q.weight.grad is None and not q.weight.requires_grad
    assert q.bias.grad is not None


@pytest.mark.parametrize("quant_storage", [torch.uint8, torch.bfloat16, torch.float32])
def test_fresh_linear4bit_loads_quantized_state_dict(quant_storage):
    torch.manual_seed(2)
    q = bnn.Linear4bit(100, 33, compute_dtype=torch.bfloat16, quant_type="nf4", quant_storage=quant_storage)
    q = q.to("cpu")
    sd = q.state_dict()
    assert sd["weight"].dtype == quant_storage
    assert "weight.quant_state.bitsandbytes__nf4" in sd and "weight.nested_absmax" in sd
    fresh = bnn.Linear4bit(100, 33, compute_dtype=torch.bfloat16, quant_type="nf4", quant_storage=quant_storage)
    result = fresh.load_state_dict(sd)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(6, 100, dtype=torch.bfloat16)
    assert torch.equal(fresh(x), q(x)) and torch.equal(fresh(x[:1]), q(x[:1]))
    # a state dict survives torch.save / torch.load
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    again = bnn.Linear4bit(100, 33, compute_dtype=torch.bfloat16, quant_type="nf4", quant_storage=quant_storage)
    again.load_state_dict(torch.load(buf))
    assert torch.equal(again(x), q(x))


def _bitsandbytes():
    try:
        import bitsandbytes

        return bitsandbytes
    except ImportError:
        if os.environ.get("BNB_CORE_REQUIRE_BITSANDBYTES") == "1":
            raise
        pytest.skip("bitsandbytes not installed")


def test_linear4bit_loads_bitsandbytes_state_dict_and_matches_it():
    bnb = _bitsandbytes()
    torch.manual_seed(3)
    theirs = bnb.nn.Linear4bit(128, 64, compute_dtype=torch.float32, quant_type="nf4", compress_statistics=True)
    theirs = theirs.to("cpu")  # train mode: bitsandbytes' exact path (its CPU eval path repacks, lower precision)
    x = torch.randn(4, 128)
    y_theirs = theirs(x)
    sd = theirs.state_dict()
    ours = bnn.Linear4bit(128, 64, compute_dtype=torch.float32, quant_type="nf4")
    ours.load_state_dict(sd)
    assert torch.equal(ours.weight.data.view(torch.uint8), theirs.weight.data.view(torch.uint8))
    W = dequantize_weight(ours.weight, ours.weight.quant_state, torch.float32)
    torch.testing.assert_close(ours(x), y_theirs, rtol=0, atol=float(_bound(x, W, torch.float32).max()) * 4)
    # and back: bitsandbytes loads ours the way Transformers does (its Linear4bit.load_state_dict rejects
    # quantized keys), through Params4bit.from_prequantized
    sd = ours.state_dict()
    stats = {k[len("weight."):]: v for k, v in sd.items() if k.startswith("weight.")}
    back = bnb.nn.Linear4bit(128, 64, compute_dtype=torch.float32, quant_type="nf4")
    back.weight = bnb.nn.Params4bit.from_prequantized(sd["weight"], stats, device="cpu", module=back)
    back.bias = torch.nn.Parameter(sd["bias"])
    torch.testing.assert_close(back(x), y_theirs, rtol=0, atol=0)


def test_params4bit_pickle_and_deepcopy():
    q = bnn.Linear4bit(64, 32, quant_type="fp4").to("cpu")
    for clone in (copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        assert clone.weight.bnb_quantized and clone.weight.quant_type == "fp4"
        x = torch.randn(2, 64)
        assert torch.equal(clone(x), q(x))


def test_linear4bit_quantizes_lazily_on_first_forward():
    q = bnn.LinearNF4(64, 16)
    assert not q.weight.bnb_quantized
    q(torch.randn(2, 64))
    assert q.weight.bnb_quantized and q.weight.quant_type == "nf4"
    assert bnn.LinearFP4(64, 16).weight.quant_type == "fp4"


# ----------------------------------------------------------------------------------------- 8-bit


@pytest.mark.parametrize("threshold", [0.0, 6.0])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_linear8bitlt_matches_dense(threshold, dtype):
    torch.manual_seed(4)
    lin = torch.nn.Linear(256, 64, dtype=dtype)
    q = bnn.Linear8bitLt(256, 64, has_fp16_weights=False, threshold=threshold)
    q.load_state_dict(lin.state_dict())
    q = q.to("cpu")
    assert q.weight.dtype == torch.int8 and q.weight.SCB is not None
    x = torch.randn(8, 256, dtype=dtype)
    x[:, 5] *= 20  # an outlier column
    y = q(x)
    ref = lin(x).double()
    # int8 error: each activation within rowabsmax(x)/254 and each weight within rowabsmax(W)/254 of its
    # true value (outlier columns: exact activations), plus 16-bit rounding of the output
    xa = x.double().abs()
    wa = lin.weight.double().abs()
    bound = (xa.sum(1, keepdim=True) * (wa.amax(1) / 254)[None, :] + (xa.amax(1, keepdim=True) / 254) * wa.sum(1)[None, :]
             + 4 * EPS[dtype] * (xa @ wa.T + lin.bias.double().abs()) + 1e-6)
    assert bool(((y.double() - ref).abs() <= bound).all())
    if threshold > 0:
        assert q.state.idx is not None and 5 in q.state.idx.tolist()


def test_fresh_linear8bitlt_loads_quantized_state_dict():
    q = bnn.Linear8bitLt(64, 32, has_fp16_weights=False, threshold=6.0).to("cpu")
    sd = q.state_dict()
    assert sd["weight"].dtype == torch.int8 and "SCB" in sd and int(sd["weight_format"]) == 0
    fresh = bnn.Linear8bitLt(64, 32, has_fp16_weights=False, threshold=6.0)
    r = fresh.load_state_dict(sd)
    assert not r.missing_keys and not r.unexpected_keys
    x = torch.randn(3, 64)
    assert torch.equal(fresh(x), q(x))


def test_linear8bitlt_gradients():
    torch.manual_seed(5)
    # frozen int8 weight: gradient to the input through the dequantized weight
    q = bnn.Linear8bitLt(64, 32, has_fp16_weights=False).to("cpu")
    x = torch.randn(4, 64, requires_grad=True)
    g = torch.randn(4, 32)
    q(x).backward(g)
    W = torch.ops.bnb.int8_vectorwise_dequant(q.weight.data, q.weight.SCB)
    torch.testing.assert_close(x.grad, g @ W, rtol=1e-5, atol=1e-5)
    # trainable 16-bit weight: weight gradient is the dense one
    t = bnn.Linear8bitLt(64, 32, has_fp16_weights=True)
    x2 = torch.randn(4, 64)
    t(x2).backward(g)
    torch.testing.assert_close(t.weight.grad, g.T @ x2, rtol=1e-5, atol=1e-5)


def test_matmul_int8_function():
    A = torch.randn(5, 64)
    B = torch.randn(16, 64)
    out = bnb_core.matmul(A, B, threshold=6.0)
    assert (out - A @ B.T).abs().max() < 0.05 * (A @ B.T).abs().max()


# ----------------------------------------------------------------------------------------- embeddings


def test_embedding4bit_rows_match_dequantized_table():
    torch.manual_seed(6)
    for dim in (128, 100):  # multiple of the blocksize: row-wise path; otherwise whole table
        emb = bnn.EmbeddingNF4(50, dim, dtype=torch.float32)
        ref_table = emb.weight.data.clone()
        idx = torch.tensor([[0, 3, 49], [7, 7, 1]])
        out = emb(idx)
        table = F.dequantize_4bit(emb.weight.data, emb.weight.quant_state)
        assert out.shape == (2, 3, dim)
        torch.testing.assert_close(out, table[idx], rtol=0, atol=0)
        assert (out - ref_table[idx]).abs().max() <= ref_table.abs().max() * 0.2


def test_embedding8bit_and_stable_embedding():
    emb = bnn.Embedding8bit(40, 32)
    ref = emb.weight.data.clone()
    idx = torch.tensor([1, 5, 39])
    out = emb(idx)
    assert out.dtype == torch.float32
    assert bool(((out - ref[idx]).abs() <= ref[idx].abs().amax(1, keepdim=True) / 254 + 1e-6).all())
    st = bnn.StableEmbedding(40, 32)
    y = st(idx)
    torch.testing.assert_close(y.mean(-1), torch.zeros(3), atol=1e-5, rtol=0)  # layer-normed
    assert isinstance(bnn.Embedding(10, 4), torch.nn.Embedding)


# ----------------------------------------------------------------------------------------- replace_linear


@pytest.mark.parametrize("quantization", ["nf4", "fp4", "int8"])
def test_replace_linear_with_skip_list(quantization, capsys):
    torch.manual_seed(7)
    model = torch.nn.ModuleDict({
        "encoder": torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 64)),
        "lm_head": torch.nn.Linear(64, 10),
        "keep": torch.nn.Linear(64, 64),
    })
    x = torch.randn(2, 64)
    ref = model["lm_head"](model["encoder"](x))
    bnb_core.replace_linear(model, quantization, skip_modules=("lm_head", "keep"), progress=True)
    kinds = {name: type(m).__name__ for name, m in model.named_modules() if "Linear" in type(m).__name__}
    expected = "Linear8bitLt" if quantization == "int8" else "Linear4bit"
    assert kinds == {"encoder.0": expected, "encoder.2": expected, "lm_head": "Linear", "keep": "Linear"}
    out = model["lm_head"](model["encoder"](x))
    assert (out - ref).norm() / ref.norm() < 0.2
    with pytest.raises(ValueError, match="quantization"):
        bnb_core.replace_linear(model, "int4")
