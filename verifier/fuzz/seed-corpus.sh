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

# decode_requests and compare_outputs: the code cases as requests, and their expected outputs.
/usr/bin/python3 - "$src" "$here/corpus" <<'PY'
import json, sys, hashlib, os
src, corpus = sys.argv[1], sys.argv[2]
for t in ("decode_requests", "compare_outputs"):
    os.makedirs(os.path.join(corpus, t), exist_ok=True)
def put(target, data):
    open(os.path.join(corpus, target, hashlib.sha1(data).hexdigest()), "wb").write(data)
for line in open(os.path.join(src, "code_cases.jsonl"), encoding="utf-8"):
    c = json.loads(line)
    put("decode_requests", json.dumps({"items": [c]}).encode())
    put("decode_requests", json.dumps({"code": c["source_code"], "language": c["language"]}).encode())
    for t in c["tests"]:
        if "expected_stdout" in t:
            put("compare_outputs", (t["expected_stdout"] + "\0" + t["expected_stdout"].rstrip() + "\n").encode())
PY
echo "seeded $(ls "$here/corpus/decode_requests" | wc -l) + $(ls "$here/corpus/compare_outputs" | wc -l) inputs for the request and comparison targets"
