// Blockwise 8-bit quantization with any 256-entry fp32 code, and its dequantization (MPS backend).
// Semantics: docs/formats.md and bnb_core/reference.py (quantize_blockwise / dequantize_blockwise); the
// per-element math is bnb_quant_math.h's (block_scale, scale_value, midpoint, code_8bit_search/count).
#include "bnb_quant_math.h"
#include "bnb_mps.h"

// ---------------------------------------------------------------- quantize_blockwise
// One threadgroup per block (a threadgroup-stride loop over 64-bit block indices when there are more blocks
// than threadgroups). The threadgroup first builds the 255 decision boundaries (fp32 midpoints of the code)
// and a +Inf sentinel in threadgroup memory and checks that they ascend (binary search) or not (counting form,
// exact for any table: what the CPU kernel does). Per block: absmax = max |x| taken on the bits (an integer max:
// NaN, above +Inf, wins; subnormals count even where the GPU flushes them to zero), reduced across SIMD-groups
// through threadgroup memory (double-buffered by block parity: one barrier per block), then every element's code.
template <typename TR, typename TGF, typename TGU>
inline void quantize_blockwise_body(device const typename TR::T* A, device const float* code, device uchar* out,
                                    device float* absmax, long n, long log2_bs, TGF bounds, TGU partial, TGU flags,
                                    BnbGrid g) {
  const uint nsimd = (g.group_size + g.simd_width - 1) / g.simd_width;
  for (uint i = g.lid; i < 256u; i += g.group_size) bounds[i] = i < 255u ? bnb::midpoint(code[i], code[i + 1]) : bnb_inf();
  threadgroup_barrier(mem_flags::mem_threadgroup);
  bool unsorted = false;
  for (uint i = g.lid; i < 254u; i += g.group_size) unsorted = unsorted || !(bounds[i] <= bounds[i + 1]);
  unsorted = simd_any(unsorted);
  if (g.simd_lane == 0) flags[g.simd_id] = unsorted ? 1u : 0u;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  bool sorted = true;
  for (uint s = 0; s < nsimd; ++s) sorted = sorted && flags[s] == 0u;

  const long bs = 1L << log2_bs;
  const long nblocks = (n + bs - 1) >> log2_bs;
  uint parity = 0;
  for (long b = (long)g.group; b < nblocks; b += (long)g.ngroups) {
    const long s = b << log2_bs;
    const long e = (n - s < bs) ? n : s + bs;
    uint m = 0;
    for (long i = s + (long)g.lid; i < e; i += (long)g.group_size) {
      const uint v = bnb::abs_bits(TR::load(A[i]));
      m = v > m ? v : m;
    }
    m = simd_max(m);
    if (g.simd_lane == 0) partial[parity * BNB_MAX_SIMDGROUPS + g.simd_id] = m;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < nsimd; ++k) {
      const uint v = partial[parity * BNB_MAX_SIMDGROUPS + k];
      m = v > m ? v : m;
    }
    const float am = bnb::absmax_from_bits(m);
    if (g.lid == 0) absmax[b] = am;
    const bnb::BlockScale sc = bnb::block_scale_ftz(am);
    for (long i = s + (long)g.lid; i < e; i += (long)g.group_size) {
      const float y = bnb::scale_value_ftz(TR::load(A[i]), sc);
      out[i] = (uchar)(sorted ? bnb::code_8bit_search(y, bounds) : bnb::code_8bit_count(y, bounds));
    }
    parity ^= 1u;
  }
}

#define BNB_QUANTIZE_BLOCKWISE_KERNEL(NAME, TR)                                                              \
  kernel void NAME(device const TR::T* A [[buffer(0)]], device const float* code [[buffer(1)]],                \
                   device uchar* out [[buffer(2)]], device float* absmax [[buffer(3)]],                        \
                   constant long& n [[buffer(4)]], constant long& log2_bs [[buffer(5)]], BNB_GRID_ARGS) {       \
    threadgroup float bounds[256];                                                                             \
    threadgroup uint partial[2 * BNB_MAX_SIMDGROUPS];                                                         \
    threadgroup uint flags[BNB_MAX_SIMDGROUPS];                                                                \
    quantize_blockwise_body<TR>(A, code, out, absmax, n, log2_bs, bounds, partial, flags, BNB_GRID);           \
  }

BNB_QUANTIZE_BLOCKWISE_KERNEL(bnb_quantize_blockwise_f32, BnbF32)
BNB_QUANTIZE_BLOCKWISE_KERNEL(bnb_quantize_blockwise_f16, BnbF16)
BNB_QUANTIZE_BLOCKWISE_KERNEL(bnb_quantize_blockwise_bf16, BnbBF16)

// ---------------------------------------------------------------- dequantize_blockwise (+ .out)
// out[i] = code[A[i]] * absmax[i / blocksize] in fp32 (with gradual underflow: bnb::mul_gradual), one rounding to
// the output dtype. Grid-stride loop.
template <typename TR>
inline void dequantize_blockwise_body(device const uchar* A, device const float* absmax, device const float* code,
                                      device typename TR::T* out, long n, long log2_bs, BnbGrid g) {
  for (long i = (long)g.tid; i < n; i += (long)g.nthreads)
    out[i] = TR::store(bnb::mul_gradual(code[A[i]], absmax[i >> log2_bs]));
}

#define BNB_DEQUANTIZE_BLOCKWISE_KERNEL(NAME, TR)                                                            \
  kernel void NAME(device const uchar* A [[buffer(0)]], device const float* absmax [[buffer(1)]],              \
                   device const float* code [[buffer(2)]], device TR::T* out [[buffer(3)]],                    \
                   constant long& n [[buffer(4)]], constant long& log2_bs [[buffer(5)]], BNB_GRID_ARGS) {       \
    dequantize_blockwise_body<TR>(A, absmax, code, out, n, log2_bs, BNB_GRID);                                 \
  }

BNB_DEQUANTIZE_BLOCKWISE_KERNEL(bnb_dequantize_blockwise_f32, BnbF32)
BNB_DEQUANTIZE_BLOCKWISE_KERNEL(bnb_dequantize_blockwise_f16, BnbF16)
BNB_DEQUANTIZE_BLOCKWISE_KERNEL(bnb_dequantize_blockwise_bf16, BnbBF16)
