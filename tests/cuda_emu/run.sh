#!/usr/bin/env bash
# Build (and run) the CUDA-kernels-on-CPU targets of backends/cuda/emu/CMakeLists.txt.
#   tests/cuda_emu/run.sh build            configure + build into ${BNB_CUDA_EMU_BUILD:-<repo>/build-cuda-emu}
#   tests/cuda_emu/run.sh selftest [TEST]  build, then run cuda_emu_selftest (one test by name, or all)
# $PYTHON (default python3) supplies Python.h, pybind11 (its own package, else the copy torch ships) and the
# extension suffix. $CMAKE overrides cmake. Extra configure flags: $BNB_CUDA_EMU_CMAKE_ARGS (e.g.
# -DBNB_EMU_SM=700). Exit status 77: tools missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${BNB_CUDA_EMU_BUILD:-$ROOT/build-cuda-emu}"
PYTHON="${PYTHON:-python3}"
CMAKE="${CMAKE:-cmake}"
target="${1:-build}"
[ $# -gt 0 ] && shift
command -v "$CMAKE" >/dev/null || { echo "run.sh: cmake not found" >&2; exit 77; }
command -v "${CXX:-g++}" >/dev/null || { echo "run.sh: no C++ compiler (${CXX:-g++})" >&2; exit 77; }
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

build() {
  mkdir -p "$BUILD"
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    read -r PYINC PYBIND SUFFIX < <("$PYTHON" - <<'PY'
import os, sysconfig
inc = sysconfig.get_paths()["include"]
try:
    import pybind11
    pb = pybind11.get_include()
except Exception:  # torch ships the pybind11 headers it was built with
    import torch
    pb = os.path.join(os.path.dirname(torch.__file__), "include")
print(inc, pb, sysconfig.get_config_var("EXT_SUFFIX") or ".so")
PY
    )
    # shellcheck disable=SC2086
    "$CMAKE" -S "$ROOT/backends/cuda/emu" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DBNB_EMU_PYTHON_INCLUDE="$PYINC" -DBNB_EMU_PYBIND11_INCLUDE="$PYBIND" -DBNB_EMU_EXT_SUFFIX="$SUFFIX" \
      ${BNB_CUDA_EMU_CMAKE_ARGS:-} >"$BUILD/configure.log" 2>&1 ||
      { cat "$BUILD/configure.log" >&2; rm -f "$BUILD/CMakeCache.txt"; exit 1; }
  fi
  "$CMAKE" --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" >"$BUILD/build.log" 2>&1 ||
    { grep -E "error|Error" "$BUILD/build.log" | head -40 >&2; tail -30 "$BUILD/build.log" >&2; exit 1; }
}

case "$target" in
  build) build ;;
  selftest) build; "$BUILD/cuda_emu_selftest" "$@" ;;
  *) echo "usage: $0 [build|selftest] [test name]" >&2; exit 2 ;;
esac
