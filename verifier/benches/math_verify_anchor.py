"""Times Math-Verify 0.8.0 on conformance cases: one JSON line per case, {"us": ..., "ok": ...}.

Usage: python math_verify_anchor.py CASES.jsonl
Each case is graded as Math-Verify's own tests do: parse(gold) and parse(pred) under the
case's extraction config, then verify(gold, pred, float_rounding, strict,
allow_set_relation_comp), with Math-Verify's default 5 s timeouts. The time covers both parses
and the verify call.
"""
import json
import sys
import time

from math_verify import parse, verify
from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig


def targets(names, cfg):
    out = []
    for n in names or ["latex", "expr"]:
        if n == "latex":
            out.append(LatexExtractionConfig(boxed_match_priority=cfg.get("latex_boxed_match_priority", 50)))
        elif n == "expr":
            out.append(ExprExtractionConfig())
        elif n == "string":
            out.append(StringExtractionConfig(strings=tuple(cfg.get("strings", ["A", "B", "C", "D"])),
                                              lowercase=cfg.get("lowercase", True)))
    return out


def main(path):
    for line in open(path, encoding="utf-8"):
        case = json.loads(line)
        cfg = case.get("config") or {}
        pred_cfg = targets(cfg.get("extraction"), cfg)
        gold_cfg = targets(cfg.get("gold_extraction"), cfg) if cfg.get("gold_extraction") else pred_cfg
        gold = case["gold"] if isinstance(case["gold"], str) else json.dumps(case["gold"])
        t = time.perf_counter()
        try:
            g = parse(gold, extraction_config=gold_cfg)
            p = parse(case["pred"], extraction_config=pred_cfg)
            ok = bool(verify(g, p, float_rounding=cfg.get("float_rounding", 6), strict=cfg.get("strict", True),
                             allow_set_relation_comp=cfg.get("allow_set_relation_comp", False)))
        except Exception:  # Math-Verify raises on some inputs; that is a "not equal"
            ok = False
        us = (time.perf_counter() - t) * 1e6
        print(json.dumps({"us": us, "ok": ok}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
