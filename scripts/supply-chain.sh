#!/usr/bin/env bash
# Supply-chain checks: the lockfile is committed and current, and `cargo deny` (deny.toml)
# passes for licenses, bans (wildcards refused, duplicate versions listed) and sources
# (crates.io only). Advisories need the RustSec database from github.com: checked where it can
# be fetched, otherwise a skip line says so. The wasm runtime's SHA-256 is checked separately,
# by sandbox-images/fetch-python-wasm.sh and at every verifier start.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files --error-unmatch Cargo.lock >/dev/null
cargo metadata --locked --format-version 1 >/dev/null
echo "Cargo.lock: committed and current"
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@0.20.2
cargo deny --log-level error check licenses bans sources
dups=$(cargo deny check bans 2>&1 | grep -c '^warning\[duplicate\]' || true)
echo "cargo deny: licenses, bans, sources ok; $dups crates present in two or more versions"
if timeout 60 cargo deny fetch db >/dev/null 2>&1 && [ -n "$(ls -A ~/.cargo/advisory-dbs 2>/dev/null)" ]; then
    cargo deny --log-level error check advisories
    echo "cargo deny: advisories ok"
else
    echo "SKIP cargo deny advisories: the RustSec database (github.com) is unreachable here"
fi
