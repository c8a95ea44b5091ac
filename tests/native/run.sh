#!/usr/bin/env bash
# Build and run the torch-free kernel-core tests (tests/native/README.md).
#   tests/native/run.sh host      native build: every ISA path the CPU supports (x86-64: scalar, avx2, avx512,
#                                 avx512vnni)
#   tests/native/run.sh aarch64   cross-compiled with aarch64-linux-gnu-g++, run under qemu-aarch64 (scalar, neon)
#   tests/native/run.sh all       both (default)
# Extra arguments go to the test program (--isa NAME, --test NAME, --expect-isa NAME).
# Build trees: ${BNB_NATIVE_BUILD:-<repo>/build-native}/{host,aarch64}. Exit status 77: tools missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${BNB_NATIVE_BUILD:-$ROOT/build-native}"
target="${1:-all}"
[ $# -gt 0 ] && shift
CMAKE="${CMAKE:-cmake}"
command -v "$CMAKE" >/dev/null || { echo "run.sh: cmake not found" >&2; exit 77; }
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

build() {  # $1: name, then cmake args
  local dir="$BUILD/$1"
  shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    "$CMAKE" -S "$HERE" -B "$dir" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 ||
      { mkdir -p "$dir"; cat "$dir.configure.log" >&2; exit 1; }
  fi
  "$CMAKE" --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >"$dir.build.log" 2>&1 ||
    { tail -60 "$dir.build.log" >&2; exit 1; }
}

run_host() {
  mkdir -p "$BUILD"
  build host
  echo "== host ($(uname -m))"
  "$BUILD/host/bnb_core_tests" "$@"
}

run_aarch64() {
  for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
    command -v "$tool" >/dev/null || {
      echo "run.sh: $tool not found (Debian: apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
      exit 77
    }
  done
  mkdir -p "$BUILD"
  build aarch64 -DCMAKE_TOOLCHAIN_FILE="$HERE/aarch64-linux-gnu.cmake"
  echo "== aarch64 (qemu-aarch64)"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$BUILD/aarch64/bnb_core_tests" --expect-isa neon --expect-isa scalar "$@"
}

case "$target" in
  host) run_host "$@" ;;
  aarch64) run_aarch64 "$@" ;;
  all) run_host "$@"; run_aarch64 "$@" ;;
  *) echo "usage: $0 [host|aarch64|all] [test-program args]" >&2; exit 2 ;;
esac
