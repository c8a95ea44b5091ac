"""Autograd functions over the ops: ``matmul_4bit`` (QLoRA) and ``matmul`` (LLM.int8()).

Gradients flow to the input (and to bias, and to 16-bit weights of Linear8bitLt when they are trainable),
which is what LoRA adapters on a frozen quantized base need. The quantized weights get no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from . import registry
from .functional import QuantState


def _weight_args(quant_state: QuantState):
    """(absmax, absmax_8bit, absmax_code, absmax_offset) for gemm_4bit from a QuantState."""
    if quant_state.nested:
        return quant_state.state2.absmax, quant_state.absmax, quant_state.state2.code, quant_state.offset
    return quant_state.absmax, None, None, None


def dequantize_weight(B: torch.Tensor, quant_state: QuantState, dtype: torch.dtype) -> torch.Tensor:
    """The [N, K] weight of a 4-bit QuantState in `dtype`."""
    absmax = quant_state.full_absmax()
    return torch.ops.bnb.dequantize_4bit(B, absmax, quant_state.blocksize, quant_state.quant_type,
                                         list(quant_state.shape), dtype)


def _forward_4bit(A, B, quant_state, bias):
    shapeB = list(quant_state.shape)
    if bias is not None and bias.dtype != A.dtype:
        bias = bias.to(A.dtype)
    if A.numel() == A.shape[-1] and not (A.is_cpu and registry.has_kernel("gemm_4bit", "cpu")):
        # batch 1: the gemv kernel streams the packed weight (absmax reconstructed when double-quantized)
        out = torch.ops.bnb.gemv_4bit(A, B, shapeB, quant_state.full_absmax(), quant_state.code.to(A.device),
                                      quant_state.blocksize)
        return out if bias is None else out + bias
    # (the CPU's native gemm_4bit runs its gemv for one row, with the bias fused and a double-quantized absmax
    # decoded inside the kernel: reconstructing it per call took as long as the gemv itself)
    absmax, a8, code, offset = _weight_args(quant_state)
    return torch.ops.bnb.gemm_4bit(A, B, shapeB, absmax, quant_state.blocksize, quant_state.quant_type, bias,
                                   a8, code, offset)


class MatMul4Bit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, quant_state, bias=None):
        ctx.quant_state = quant_state
        ctx.save_for_backward(B)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return _forward_4bit(A, B, quant_state, bias)

    @staticmethod
    def backward(ctx, grad_out):
        (B,) = ctx.saved_tensors
        grad_A = grad_bias = None
        if ctx.needs_input_grad[0]:
            W = dequantize_weight(B, ctx.quant_state, grad_out.dtype)
            grad_A = grad_out @ W
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_out.reshape(-1, grad_out.shape[-1]).sum(0).to(ctx.bias_dtype)
        return grad_A, None, None, grad_bias


def matmul_4bit(A: torch.Tensor, B: torch.Tensor, quant_state: QuantState, out: Optional[torch.Tensor] = None,
                bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``A @ W.T + bias`` for the 4-bit weight W packed in B (either orientation of the packed bytes).

    Batch-1 inference runs gemv_4bit, anything else gemm_4bit; with autograd, gradients reach A and bias.
    """
    if quant_state is None:
        raise ValueError("quant_state is required: matmul_4bit needs the QuantState of the 4-bit weight")
    needs_grad = torch.is_grad_enabled() and (A.requires_grad or (bias is not None and bias.requires_grad))
    result = MatMul4Bit.apply(A, B, quant_state, bias) if needs_grad else _forward_4bit(A, B, quant_state, bias)
    if out is not None:
        return out.copy_(result)
    return result


# --------------------------------------------------------------------------------------------------
# LLM.int8()
# --------------------------------------------------------------------------------------------------


@dataclass
class MatmulLtState:
    """What Linear8bitLt keeps between calls (field names of bitsandbytes' MatmulLtState)."""

    CB: Optional[torch.Tensor] = None
    SCB: Optional[torch.Tensor] = None
    threshold: float = 0.0
    has_fp16_weights: bool = True
    is_training: bool = True
    idx: Optional[torch.Tensor] = None  # outlier columns of the last forward with autograd (inference through
    # the fused int8_mixed_linear op leaves it as it was)

    def reset_grads(self):
        self.idx = None


def _forward_8bit(A, B, bias, state: MatmulLtState, fused: bool = False):
    if state.has_fp16_weights or state.CB is None:
        state.CB, state.SCB, _ = torch.ops.bnb.int8_vectorwise_quant(B.detach(), 0.0)
    CB, SCB = state.CB, state.SCB
    b = bias.to(A.dtype) if bias is not None and bias.dtype != A.dtype else bias
    if fused and registry.has_kernel("int8_mixed_linear", "cpu" if A.is_cpu else A.device.type):
        # a device with the fused op: one op call per layer instead of two (on the CPU the Python around each
        # op call costs more than the batch-1 difference to fbgemm's one-call int8 Linear); the outlier
        # columns stay inside it, so state.idx is not set on this path
        return torch.ops.bnb.int8_mixed_linear(A, CB, SCB, b, float(state.threshold))
    A2 = A if A.dim() == 2 else A.reshape(-1, A.shape[-1])  # (each torch call here costs ~1.5 us at batch 1)
    CA, SCA, outlier_cols = torch.ops.bnb.int8_vectorwise_quant(A2, float(state.threshold))
    # under torch.compile the outlier count is an unbacked size: take the mixed path unconditionally
    # (it is exact for zero outlier columns) instead of branching on it, so fullgraph capture works
    if outlier_cols is not None and (torch.compiler.is_compiling() or outlier_cols.numel()):
        out, _ = torch.ops.bnb.int8_mixed_scaled_mm(A2, CA, CB, SCA, SCB, outlier_cols, b)
    else:
        out = torch.ops.bnb.int8_scaled_mm(CA, CB, SCA, SCB, b, A.dtype)
    state.idx = outlier_cols
    return out if A.dim() == 2 else out.reshape(*A.shape[:-1], CB.shape[0])


class MatMul8bitLt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, bias, state: MatmulLtState):
        out = _forward_8bit(A, B, bias, state)
        ctx.state = state
        ctx.save_for_backward(A, B)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        A, B = ctx.saved_tensors
        state = ctx.state
        grad_A = grad_B = grad_bias = None
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[0]:
            if state.has_fp16_weights:
                W = B.to(grad_out.dtype)
            else:
                W = torch.ops.bnb.int8_vectorwise_dequant(state.CB, state.SCB).to(grad_out.dtype)
            grad_A = (g2 @ W).reshape(*grad_out.shape[:-1], W.shape[1])
        if ctx.needs_input_grad[1]:
            grad_B = (g2.T @ A.reshape(-1, A.shape[-1]).to(grad_out.dtype)).to(B.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = g2.sum(0).to(ctx.bias_dtype)
        return grad_A, grad_B, grad_bias, None


def matmul(A: torch.Tensor, B: torch.Tensor, out: Optional[torch.Tensor] = None,
           state: Optional[MatmulLtState] = None, threshold: float = 0.0,
           bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """LLM.int8() ``A @ B.T + bias``: int8 matmul with outlier columns (|a| >= threshold) in 16-bit."""
    state = state or MatmulLtState(threshold=threshold)
    if threshold > 0.0:
        state.threshold = threshold
    # no autograd graph needed (inference): skip autograd.Function's bookkeeping
    needs_grad = torch.is_grad_enabled() and (A.requires_grad or B.requires_grad
                                              or (bias is not None and bias.requires_grad))
    result = MatMul8bitLt.apply(A, B, bias, state) if needs_grad else _forward_8bit(A, B, bias, state, fused=True)
    return out.copy_(result) if out is not None else result


__all__ = ["MatMul4Bit", "MatMul8bitLt", "MatmulLtState", "matmul", "matmul_4bit", "dequantize_weight"]
