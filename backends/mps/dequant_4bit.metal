// 4-bit (NF4 / FP4) dequantization (MPS backend). Semantics: docs/formats.md, bnb_core/reference.py
// (dequantize_4bit): element 2j in the HIGH nibble of byte j, out = code[q] * absmax[i / blocksize] in fp32
// (with gradual underflow: bnb::mul_gradual), one rounding to the output dtype. Every blocksize is a power of
// two >= 32, so both nibbles of a byte share their block.
#include "bnb_quant_math.h"
#include "bnb_mps.h"

// One packed byte (two elements) per thread and iteration of a grid-stride loop over 64-bit byte indices.
template <typename TR>
inline void dequantize_4bit_body(device const uchar* A, device const float* absmax, device typename TR::T* out,
                                 long n, long log2_bs, int quant_type, BnbGrid g) {
  const long nbytes = (n + 1) >> 1;
  for (long j = (long)g.tid; j < nbytes; j += (long)g.nthreads) {
    const uint b = A[j];
    const long i = j << 1;
    const float am = absmax[i >> log2_bs];
    out[i] = TR::store(bnb::mul_gradual(bnb::code_value_4bit((int)(b >> 4), quant_type), am));
    if (i + 1 < n) out[i + 1] = TR::store(bnb::mul_gradual(bnb::code_value_4bit((int)(b & 15u), quant_type), am));
  }
}

#define BNB_DEQUANTIZE_4BIT_KERNEL(NAME, TR)                                                                 \
  kernel void NAME(device const uchar* A [[buffer(0)]], device const float* absmax [[buffer(1)]],              \
                   device TR::T* out [[buffer(2)]], constant long& n [[buffer(3)]],                            \
                   constant long& log2_bs [[buffer(4)]], constant long& quant_type [[buffer(5)]], BNB_GRID_ARGS) { \
    dequantize_4bit_body<TR>(A, absmax, out, n, log2_bs, (int)quant_type, BNB_GRID);                           \
  }

BNB_DEQUANTIZE_4BIT_KERNEL(bnb_dequantize_4bit_f32, BnbF32)
BNB_DEQUANTIZE_4BIT_KERNEL(bnb_dequantize_4bit_f16, BnbF16)
BNB_DEQUANTIZE_4BIT_KERNEL(bnb_dequantize_4bit_bf16, BnbBF16)
