#!/usr/bin/env bash
# Quick start 1: set up and run the main job: environment/backend report with self-check, then a demo
# that quantizes a Llama-sized layer and shows the memory saved.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_project ""
cd "$ROOT/examples"   # run against the installed package, not the source tree
"$PY" -m bnb_core
"$PY" quantize_layer.py
