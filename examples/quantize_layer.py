"""Quantize one Llama-7B-sized linear layer to NF4 (with double quantization) and to blockwise 8-bit,
show the memory saved and the error, and run the 4-bit matmul against the dense layer."""

import time

import torch

import bnb_core
import bnb_core.functional as F

torch.manual_seed(0)
layer = torch.nn.Linear(4096, 11008, bias=False, dtype=torch.bfloat16)
W = layer.weight.data
dense_bytes = W.numel() * W.element_size()

t0 = time.perf_counter()
packed, state = F.quantize_4bit(W, blocksize=64, quant_type="nf4", compress_statistics=True)
t_quant = time.perf_counter() - t0
nested = state.state2
q_bytes = (packed.numel() * packed.element_size() + state.absmax.numel() * state.absmax.element_size()
           + nested.absmax.numel() * 4 + nested.code.numel() * 4 + state.code.numel() * 4 + 4)
W_hat = F.dequantize_4bit(packed, state)
err = (W.float() - W_hat.float()).abs().mean().item()
print(f"weight {tuple(W.shape)} bf16: {dense_bytes / 2**20:.1f} MiB -> NF4 + double-quantized absmax: "
      f"{q_bytes / 2**20:.1f} MiB ({dense_bytes / q_bytes:.2f}x smaller), "
      f"{8 * q_bytes / W.numel():.3f} bits per weight")
print(f"quantize_4bit took {t_quant * 1e3:.1f} ms; mean |W - dequant(W)| = {err:.5f} "
      f"(mean |W| = {W.float().abs().mean().item():.5f})")

x = torch.randn(1, 4096, dtype=torch.bfloat16)
y_dense = layer(x)
y_4bit = F.gemv_4bit(x, packed, state=state)
rel = ((y_4bit.float() - y_dense.float()).norm() / y_dense.float().norm()).item()
print(f"batch-1 matmul: relative error of the NF4 layer vs the bf16 layer: {rel:.4f}")

q8, s8 = F.quantize_blockwise(W.float(), blocksize=256)
err8 = (W.float() - F.dequantize_blockwise(q8, s8)).abs().mean().item()
print(f"blockwise 8-bit (dynamic map, blocksize 256): {(q8.numel() + s8.absmax.numel() * 4) / 2**20:.1f} MiB, "
      f"mean abs error {err8:.6f}")
print("ops served by:", {op: bnb_core.registry.kernel_for(op, *args) for op, args in {
    "quantize_4bit": (W, 64, "nf4", torch.uint8),
    "gemv_4bit": (x, packed, list(W.shape), state.full_absmax(), state.code, 64),
}.items()})
