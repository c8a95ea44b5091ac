// Blockwise 8-bit and 4-bit (de)quantization on CUDA (torch-free). Every entry point validates its
// arguments, launches on `stream` on `device` and returns a Status (common.cuh); it never synchronizes.
// dtype: 0 = float32, 1 = float16, 2 = bfloat16. quant_type: 0 = nf4, 1 = fp4.
#pragma once

#include <stdint.h>

namespace bnb_cuda {

int quantize_blockwise(int device, void* stream, int dtype, const void* x, int64_t n, const float* code,
                       int64_t blocksize, uint8_t* out, float* absmax);
int dequantize_blockwise(int device, void* stream, int dtype_out, const uint8_t* q, int64_t n, const float* code,
                         const float* absmax, int64_t blocksize, void* out);
// Bytes past (n+1)/2 up to out_nbytes get the zero code in both nibbles (quant_storage padding).
int quantize_4bit(int device, void* stream, int dtype, const void* x, int64_t n, int64_t blocksize, int quant_type,
                  uint8_t* out, int64_t out_nbytes, float* absmax);
int dequantize_4bit(int device, void* stream, int dtype_out, const uint8_t* q, int64_t n, const float* absmax,
                    int64_t blocksize, int quant_type, void* out);

}  // namespace bnb_cuda
