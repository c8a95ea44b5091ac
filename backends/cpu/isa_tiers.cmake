# ISA tiers of the CPU backend, shared by backends/cpu/CMakeLists.txt (the module) and
# tests/native/CMakeLists.txt (the torch-free kernel-core test harness, also cross-compiled).
#
# Every source in BNB_CPU_ISA_SOURCES is compiled once per tier into namespace bnb_cpu::<tier>
# (BNB_ISA_NS=<tier>) with the tier's flags and definitions; ops.cpp dispatches at run time.
#   x86-64:  avx512vnni (avx512 + VNNI/VBMI/BF16), avx512 (F/BW/VL/DQ + FMA/F16C), avx2 (+FMA/F16C), scalar
#   AArch64: neon (ASIMD + fp16 conversions, baseline on every AArch64 CPU: Apple Silicon, Graviton,
#            Ampere...; selected in kernels*.cpp by BNB_ISA_NEON), scalar
#   others:  scalar
# Sets: BNB_CPU_FP_FLAGS, BNB_CPU_ISAS (tier names), BNB_CPU_ISA_FLAGS_<tier>, BNB_CPU_ISA_TU_DEFS_<tier>
# (definitions for that tier's translation units) and BNB_CPU_ISA_DEFS (BNB_HAVE_<TIER>_TU definitions
# for the code that dispatches: ops*.cpp, module.cpp).

# Exact fp32 arithmetic: no FMA contraction, no fast-math.
set(BNB_CPU_FP_FLAGS)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang|IntelLLVM")
  set(BNB_CPU_FP_FLAGS -ffp-contract=off -fno-fast-math)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "IntelLLVM")  # icpx (BNB_XPU builds) defaults to -fp-model=fast
  list(PREPEND BNB_CPU_FP_FLAGS -fp-model=precise)
endif()

set(BNB_CPU_ISAS scalar)
set(BNB_CPU_ISA_FLAGS_scalar)
set(BNB_CPU_ISA_TU_DEFS_scalar)
set(BNB_CPU_ISA_DEFS)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64|i[3-6]86"
   AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  list(APPEND BNB_CPU_ISAS avx2 avx512 avx512vnni)
  set(BNB_CPU_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
  set(BNB_CPU_ISA_FLAGS_avx512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c)
  # AVX-512 plus VNNI (int8 dot products), VBMI (byte permutes) and BF16 (bf16 dot products):
  # Zen 4, Sapphire Rapids and later.
  set(BNB_CPU_ISA_FLAGS_avx512vnni -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512vbmi
      -mavx512bf16 -mavx2 -mfma -mf16c)
  list(APPEND BNB_CPU_ISA_DEFS BNB_HAVE_AVX2_TU BNB_HAVE_AVX512_TU BNB_HAVE_AVX512VNNI_TU)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64|ARM64"
       AND CMAKE_SIZEOF_VOID_P EQUAL 8 AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  # No -m flags: ASIMD (NEON) and the fp16<->fp32 conversions are part of ARMv8.0-A.
  list(APPEND BNB_CPU_ISAS neon)
  set(BNB_CPU_ISA_FLAGS_neon)
  set(BNB_CPU_ISA_TU_DEFS_neon BNB_ISA_NEON=1)
  list(APPEND BNB_CPU_ISA_DEFS BNB_HAVE_NEON_TU)
endif()
