#!/usr/bin/env bash
# Quick start 2: set up and run the test suite (what CI runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_project "[test]"
cd "$ROOT"
export BNB_CORE_REQUIRE_BITSANDBYTES=1 BNB_CORE_REQUIRE_NATIVE_CPU=1
# tests/test_native_cores.py cross-compiles the kernel cores for AArch64 and runs them under qemu: install the
# tools when missing and we can (root on Debian/Ubuntu), and then require that test to run, not skip.
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null || ! command -v cmake >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user cmake; } \
      >/dev/null 2>&1 || echo "test.sh: could not install g++-aarch64-linux-gnu qemu-user cmake" >&2
  fi
fi
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  export BNB_CORE_REQUIRE_CROSS=1
fi
# nvcc present: the CUDA backend must have been built (a compile check here; kernels run only on a GPU)
if command -v nvcc >/dev/null; then
  export BNB_CORE_REQUIRE_CUDA_BUILD=1
fi
# examples/bnb_core_example_backend (an out-of-tree backend registered through the bnb_core.backends entry point),
# pip-installed into its own directory rather than .venv: on the CPU it serves float32 dequantize_blockwise ahead of
# the native kernel, which the rest of the suite must test. tests/test_example_backend.py runs bnb_core with it.
EXAMPLE_DIR="$ROOT/build/example-backend"
rm -rf "$EXAMPLE_DIR"
"$PY" -m pip install -q --no-deps --target "$EXAMPLE_DIR" "$ROOT/examples/bnb_core_example_backend"
export BNB_CORE_EXAMPLE_BACKEND_PATH="$EXAMPLE_DIR" BNB_CORE_REQUIRE_EXAMPLE_BACKEND=1
# tests/test_xpu_sycl.py runs the XPU (SYCL) kernels on Intel's OpenCL CPU device; the [test] extra installs the
# intel-sycl-rt / intel-opencl-rt wheels on x86-64 Linux, so require that test to run there, not skip.
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
  export BNB_CORE_REQUIRE_SYCL=1
fi
# The HIP build of the CUDA sources is a compile check (tests/test_hip_build.py builds it for gfx90a and gfx1030
# in build/hip-ci): install Debian's hipcc when missing and we can, and then require that test to run, not skip.
if ! command -v hipcc >/dev/null && [ ! -x "${ROCM_PATH:-/opt/rocm}/bin/hipcc" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hipcc; } \
      >/dev/null 2>&1 || echo "test.sh: could not install hipcc" >&2
  fi
fi
if command -v hipcc >/dev/null || [ -x "${ROCM_PATH:-/opt/rocm}/bin/hipcc" ]; then
  export BNB_CORE_REQUIRE_HIP=1
fi
# the tests import the INSTALLED bnb_core (with its built native module), not ./bnb_core
"$VENV/bin/pytest" -p no:cacheprovider -q -rf "$@" tests
