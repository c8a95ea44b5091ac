#!/usr/bin/env bash
# One full run on a lent NVIDIA GPU (the `device` tool, see DEVELOPERS notes in docs/architecture.md):
# build the CUDA backend for the local GPU, run the conformance suite on "cuda", the CUDA tests and every
# CUDA benchmark, writing logs and JSON to $OUT (default ./gpu-out). Uses the machine's own torch; a
# bitsandbytes wheel for comparison may be carried in .whl/ (see the device tool's README).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-out}"
mkdir -p "$OUT"
cd "$ROOT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
nvidia-smi -L | tee "$OUT/device.txt"
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
[ "$ARCH" = 90 ] && ARCH=90   # 90 builds sm_90a (wgmma paths) + PTX
export BNB_CUDA_ARCHS="${BNB_CUDA_ARCHS:-$ARCH}"
{ time python3 -m pip install -q --no-build-isolation --no-deps -v . ; } > "$OUT/build.log" 2>&1 \
  || { tail -60 "$OUT/build.log"; exit 1; }
cd /tmp   # import the installed package, not the source tree
python3 -m bnb_core | tee "$OUT/report.txt"
python3 -m bnb_core check --device cuda -v 2>&1 | tee "$OUT/conformance.txt"
python3 -m pytest -q -p no:cacheprovider -x "$ROOT/tests/test_backend_ops.py" "$ROOT/tests/test_cuda_build.py" \
  -k "cuda" 2>&1 | tail -30 | tee "$OUT/pytest.txt"
for b in bench_cuda bench_cuda_int8 bench_optim; do
  [ -f "$ROOT/benchmarks/$b.py" ] && python3 "$ROOT/benchmarks/$b.py" --json "$OUT/$b.json" 2>&1 | tee "$OUT/$b.txt"
done
