#!/usr/bin/env bash
# Installs the reference graders the benchmarks compare against, in a venv outside the repo:
# Math-Verify 0.8.0 (with its pinned latex2sympy2_extended 1.10.2 and SymPy) from PyPI.
set -euo pipefail
venv="${MATH_VERIFY_VENV:-$HOME/.cache/mv-venv}"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q "math-verify==0.8.0" "latex2sympy2_extended==1.10.2" "antlr4-python3-runtime==4.13.2"
echo "Math-Verify ready: $venv/bin/python"
