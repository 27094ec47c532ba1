#!/usr/bin/env bash
# Installs the toolchains the code sandbox runs programs with, for every language of
# sandbox-images/languages.toml: the Debian 12 (bookworm) packages each row names in its
# `packages` list, the pinned npm set of sandbox-images/node (jest, babel, tsx, lodash; exact
# versions and integrity hashes in package-lock.json), the C# launcher (mono/launch.cs) and a
# read-only Go build cache warmed with go/warm_test.go, all under $RLVR_SANDBOX_PREFIX
# (default /usr/local/lib/rlvr-sandbox, inside /usr so every box sees it read-only; the
# language table names these paths).
#
# One script for CI (.ci/run), the container image (deploy/Containerfile) and a user's host.
# Idempotent and cheap when everything is present: `apt-get update` and `apt-get install` run
# only when a package is missing, `npm ci` only when the lock file changed since the last
# install. Needs root (apt-get) and network access to Debian's archive and the npm registry.
#
#   bash sandbox-images/install-toolchains.sh            # install what is missing
#   bash sandbox-images/install-toolchains.sh --check    # only report; exit 1 if incomplete
#   bash sandbox-images/install-toolchains.sh --print    # the Debian package list
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
table="$here/languages.toml"
node_src="$here/node"
prefix="${RLVR_SANDBOX_PREFIX:-/usr/local/lib/rlvr-sandbox}"
node_prefix="$prefix/node"
mode="${1:-install}"

# Every `packages = [...]` list of the table (one line each), deduplicated. The `npm:` entries
# are the npm set below, not Debian packages.
debian_packages() {
    sed -n 's/^packages *= *\[\(.*\)\]/\1/p' "$table" | tr ',' '\n' | tr -d ' "' |
        grep -v '^$' | grep -v '^npm:' | sort -u
}

missing_debian() {
    local p
    for p in $(debian_packages); do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            echo "$p"
        fi
    done
}

lock_hash() { sha256sum "$node_src/package-lock.json" | cut -d' ' -f1; }

node_current() {
    [ -f "$node_prefix/.lock-sha256" ] && [ "$(cat "$node_prefix/.lock-sha256")" = "$(lock_hash)" ]
}

# Stamp of a derived artefact: the hash of its inputs and the toolchain version.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

mono_stamp() { { stamp_of "$here/mono/launch.cs"; mono --version 2>/dev/null | head -1; } | sha256sum | cut -d' ' -f1; }
mono_current() { [ -f "$prefix/mono/launch.exe" ] && [ "$(cat "$prefix/mono/.stamp" 2>/dev/null)" = "$(mono_stamp)" ]; }

go_stamp() { { stamp_of "$here/go/warm_test.go"; go version 2>/dev/null; } | sha256sum | cut -d' ' -f1; }
go_current() { [ -d "$prefix/go-cache" ] && [ "$(cat "$prefix/go-cache.stamp" 2>/dev/null)" = "$(go_stamp)" ]; }

case "$mode" in
--print)
    debian_packages
    exit 0
    ;;
--check)
    status=0
    m="$(missing_debian)"
    if [ -n "$m" ]; then
        echo "missing Debian packages:" $m
        status=1
    fi
    if ! node_current; then
        echo "npm set not installed (or stale) at $node_prefix"
        status=1
    fi
    if ! mono_current; then
        echo "C# launcher not built (or stale) at $prefix/mono"
        status=1
    fi
    if ! go_current; then
        echo "Go build cache not warmed (or stale) at $prefix/go-cache"
        status=1
    fi
    [ "$status" = 0 ] && echo "toolchains complete"
    exit "$status"
    ;;
install) ;;
*)
    echo "usage: $0 [--check|--print]" >&2
    exit 2
    ;;
esac

m="$(missing_debian)"
if [ -n "$m" ]; then
    echo "installing Debian packages:" $m
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $m >/dev/null
fi

if ! node_current; then
    # Debian's nodejs comes without npm (a NodeSource nodejs has it built in).
    if ! command -v npm >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    echo "installing the pinned npm set into $node_prefix"
    mkdir -p "$node_prefix"
    cp "$node_src/package.json" "$node_src/package-lock.json" "$node_prefix/"
    (cd "$node_prefix" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
    cp "$node_src/jest.config.js" "$node_prefix/"
    lock_hash >"$node_prefix/.lock-sha256"
fi
# The jest configuration is tiny and may change without the lock: always current.
cp "$node_src/jest.config.js" "$node_prefix/"

if ! mono_current; then
    echo "building the C# launcher into $prefix/mono"
    mkdir -p "$prefix/mono"
    mcs -nologo -optimize -out:"$prefix/mono/launch.exe" "$here/mono/launch.cs"
    mono_stamp >"$prefix/mono/.stamp"
fi

if ! go_current; then
    # Trusted code built as root fills the cache; the boxes only ever read it.
    echo "warming the Go build cache in $prefix/go-cache"
    rm -rf "$prefix/go-cache" "$prefix/go-warm"
    mkdir -p "$prefix/go-warm"
    cp "$here/go/warm_test.go" "$prefix/go-warm/main_test.go"
    (cd "$prefix/go-warm" && GOCACHE="$prefix/go-cache" GOPATH=/usr/share/gocode GO111MODULE=off \
        CGO_ENABLED=0 go test main_test.go >/dev/null)
    rm -rf "$prefix/go-warm"
    chmod -R a+rX "$prefix/go-cache"
    go_stamp >"$prefix/go-cache.stamp"
fi

echo "toolchains complete"
