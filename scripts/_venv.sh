# Shared by scripts/demo.sh and scripts/test.sh: create .venv (or use $BNB_VENV) with torch==2.13.0
# installed FIRST (never a bare `torch`: that would pull a multi-GB CUDA build), then the project.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BNB_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
# nvcc present but no GPU (CI, the dev VM): the CUDA backend is only a compile check, one architecture is enough.
if command -v nvcc >/dev/null && ! nvidia-smi -L >/dev/null 2>&1; then
  export BNB_CUDA_ARCHS="${BNB_CUDA_ARCHS:-90a-real}"
fi
install_project() {  # $1: extras, e.g. "[test]" or ""
  "$PY" -m pip install -q "$ROOT$1"
}
