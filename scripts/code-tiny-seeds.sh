#!/usr/bin/env bash
# The figure of docs/training.md "Code tasks": code-tiny.toml over seeds 0, 1 and 2 (each run's
# programs judged in the embedded verifier's sandbox), then each seed's training reward over its
# first and last 5 steps and its held-out avg@4 before the first step and after the last. Run
# from the repository root; runs go to runs/code-tiny/seed-S (SQLite stores there).
#   bash scripts/code-tiny-seeds.sh
#   TRAINER=target/debug/trainer SEEDS="0 1" bash scripts/code-tiny-seeds.sh   # a built binary
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRAINER:-}" ]; then
    cargo build --release -p trainer --bin trainer
    TRAINER="${CARGO_TARGET_DIR:-target}/release/trainer"
fi
for seed in ${SEEDS:-0 1 2}; do
    dir="runs/code-tiny/seed-$seed"
    "$TRAINER" train --config trainer/configs/code-tiny.toml --seed "$seed" --run-dir "$dir" >/dev/null
    python3 - "$dir" "$seed" <<'PY'
import json, sys
d, seed = sys.argv[1], sys.argv[2]
steps = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
evals = [json.loads(l) for l in open(f"{d}/eval.jsonl")]
mean = lambda xs: sum(xs) / len(xs)
first, last = mean([s["reward_mean"] for s in steps[:5]]), mean([s["reward_mean"] for s in steps[-5:]])
print(f"seed {seed}: reward (mean of 5 steps) {first:.3f} -> {last:.3f}; "
      f"held-out avg@4 {evals[0]['avg_at_k']:.3f} -> {evals[-1]['avg_at_k']:.3f}; {len(steps)} steps")
PY
done
