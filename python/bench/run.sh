#!/usr/bin/env bash
# The Python benchmark: Math-Verify 0.8.0 (scripts/anchor-venv.sh) and this package installed
# in one venv, then python/bench/vs_math_verify.py, which prints the table in docs/python.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rlvr-target}"
bash scripts/anchor-venv.sh
venv="${MATH_VERIFY_VENV:-$HOME/.cache/mv-venv}"
"$venv/bin/pip" install -q --force-reinstall --no-deps ./python
"$venv/bin/python" python/bench/vs_math_verify.py "$@"
