#!/usr/bin/env bash
# Installs bubblewrap (Debian package) as the side-by-side anchor of the sandbox benchmark
# (`cargo bench -p verifier --bench sandbox`). Idempotent.
set -euo pipefail
if command -v bwrap >/dev/null; then
    bwrap --version
    exit 0
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap >/dev/null
bwrap --version
