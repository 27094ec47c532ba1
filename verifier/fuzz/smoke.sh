#!/usr/bin/env bash
# Fuzz smoke run: every target for SECONDS each (default 20) from the seeded corpus; any crash,
# panic or broken invariant fails the run and leaves its input in verifier/fuzz/artifacts/.
# Needs a nightly toolchain (libFuzzer's instrumentation) and cargo-fuzz; without nightly it
# prints a skip line and exits 0. The long runs are `cargo +nightly fuzz run TARGET`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
secs="${1:-20}"
if ! rustup run nightly rustc -V >/dev/null 2>&1; then
    echo "SKIP fuzz smoke: no nightly toolchain here"
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
bash "$here/seed-corpus.sh"
cd "$here/.."
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}-fuzz}"
for t in grade_math decode_requests compare_outputs; do
    mkdir -p "fuzz/corpus/$t"
    out=$(cargo +nightly fuzz run --target-dir "$target_dir" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1) || {
        echo "$out" | tail -40
        echo "fuzz smoke: $t failed" >&2
        exit 1
    }
    runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
    echo "fuzz smoke: $t ran ${runs:-?} inputs in ${secs} s, no crash"
done
