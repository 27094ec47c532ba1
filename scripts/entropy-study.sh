#!/usr/bin/env bash
# The entropy study of docs/entropy-study.md, end to end: the probe at three step sizes, then
# GRPO, STEER, steer-coupled, Clip-Cov and the entropy bonus on the same task, seed and budget.
# About an hour and a half on 2 CPU cores. Run from the repository root; results go to runs/study/.
#   bash scripts/entropy-study.sh            # everything
#   STUDY_PARTS=probe bash scripts/entropy-study.sh    # only the probes (or: compare, initial)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rlvr-target}"
parts="${STUDY_PARTS:-initial probe compare}"
cfg=trainer/configs/smollm2-study.toml
bash scripts/fetch-smollm2.sh
cargo build --release -p trainer
trainer="$CARGO_TARGET_DIR/release/trainer"
mkdir -p runs/study
for part in $parts; do
    case "$part" in
    initial) # the starting model on the held-out problems
        "$trainer" train --config "$cfg" --steps 0 --run-dir runs/study/initial ;;
    probe)
        for lr in 1e-3 1e-2 3e-2; do
            "$trainer" entropy-probe --config "$cfg" --lr "$lr" --samples 4 --max-first-order 100 \
                --out "runs/study/probe-lr$lr"
        done ;;
    compare)
        "$trainer" compare --config "$cfg" --methods grpo,steer,steer-coupled,clip-cov,entropy-bonus \
            --out runs/study/compare ;;
    *) echo "unknown part $part (initial, probe, compare)" >&2; exit 2 ;;
    esac
done
