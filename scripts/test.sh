#!/usr/bin/env bash
# Quick start 2: set up and run the test suite (what CI runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_project "[test]"
cd "$ROOT"
export BNB_CORE_REQUIRE_BITSANDBYTES=1 BNB_CORE_REQUIRE_NATIVE_CPU=1
# the tests import the INSTALLED bnb_core (with its built native module), not ./bnb_core
"$VENV/bin/pytest" -p no:cacheprovider -q -rf "$@" tests
