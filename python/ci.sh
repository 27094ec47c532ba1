#!/usr/bin/env bash
# CI for the Python package: `pip install ./python` (maturin builds the wheel, incrementally
# through CARGO_TARGET_DIR) into a fresh venv, then its pytest suite against that wheel, the
# conformance cases in ../shared, and a real `verifier serve` on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rlvr-target}"
# `verifier serve` for the client tests: the binary `cargo test --workspace` built for the
# verifier's integration tests (.ci/run runs it first); a separate `cargo build` would resolve
# features without the dev-dependencies and rebuild much of the tree.
bin="$CARGO_TARGET_DIR/debug/verifier"
[ -x "$bin" ] || cargo test --workspace --no-run
venv="${RLVR_PYTHON_CI_VENV:-$HOME/.cache/rlvr-python-ci}"
python3 -m venv --clear "$venv" || {
    apt-get update -qq && apt-get install -y -qq python3-venv
    python3 -m venv --clear "$venv"
}
"$venv/bin/pip" install -q ./python pytest
# Run from the repository root so `rlvr_verifier` is the installed wheel, not python/'s sources.
VERIFIER_BIN="$bin" "$venv/bin/pytest" -q -rs python/tests
