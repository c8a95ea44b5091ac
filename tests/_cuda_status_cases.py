"""Argument-validation cases of the quantization entry points that the CUDA build (bnb_core._cuda,
tests/test_cuda_build.py) and its HIP build (bnb_core._hip, tests/test_hip_build.py) share: the same sources,
so the same statuses. Each case is (call on the module, expected status)."""

P = 1 << 20  # a non-null fake pointer: validation must reject bad arguments before touching memory

QUANT_BAD_ARGS = [
    (lambda m: m.quantize_4bit(0, 0, 3, P, 100, 64, 0, P, 50, P), 2),     # dtype
    (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 48, 0, P, 50, P), 5),     # blocksize not a power of two
    (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 8192, 0, P, 50, P), 5),   # blocksize above 4096
    (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 64, 2, P, 50, P), 3),     # quant_type
    (lambda m: m.quantize_4bit(0, 0, 2, P, 100, 64, 0, P, 49, P), 6),     # packed output too small
    (lambda m: m.quantize_4bit(0, 0, 2, 0, 100, 64, 0, P, 50, P), 1),     # null input
    (lambda m: m.quantize_4bit(-1, 0, 2, P, 100, 64, 0, P, 50, P), 7),    # device
    (lambda m: m.dequantize_4bit(0, 0, 0, P, -5, P, 64, 0, P), 4),        # negative size
    (lambda m: m.quantize_blockwise(0, 0, 0, P, 100, P, 8, P, P), 5),     # 8-bit blocksize below 16
    (lambda m: m.dequantize_blockwise(0, 0, 1, P, 100, P, P, 256, 0), 1),  # null output
]
