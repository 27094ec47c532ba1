#!/usr/bin/env bash
# Seeds fuzz/corpus/grade_math from the conformance cases beside the repository (never committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../../../shared/conformance"
out="$here/corpus/grade_math"
mkdir -p "$out"
[ -d "$src" ] || { echo "no $src: empty corpus"; exit 0; }
/usr/bin/python3 - "$src" "$out" <<'PY'
import json, sys, hashlib, os
src, out = sys.argv[1], sys.argv[2]
for name in ("math_verify_cases.jsonl", "latex2sympy_value_cases.jsonl"):
    for line in open(os.path.join(src, name), encoding="utf-8"):
        c = json.loads(line)
        gold = c["gold"] if isinstance(c["gold"], str) else json.dumps(c["gold"])
        data = ("\x01" + c["pred"] + "\0" + gold).encode()
        open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb").write(data)
PY
echo "seeded $(ls "$out" | wc -l) inputs into $out"
