"""The conformance cases through the binding: grade_math with the options the Rust test
(tests/math_conformance.rs) uses, for the same agreement; and Math-Verify's parse/verify shape
(rlvr_verifier.compat) on the same cases."""

import json
from dataclasses import replace

from conftest import load_cases

from rlvr_verifier import _native, grade_math_batch
from rlvr_verifier.compat import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from rlvr_verifier.compat import StringExtractionConfig

# The Rust test's floors (tests/math_conformance.rs).
MATH_VERIFY_FLOOR = 97.0
LATEX2SYMPY_FLOOR = 95.0


def gold_text(case):
    g = case["gold"]
    return g if isinstance(g, str) else json.dumps(g)


def agreement(cases):
    """Grades every case through the binding; (agreement %, misses)."""
    misses = []
    for case in cases:
        options = json.loads(_native.conformance_options(json.dumps(case["config"])))
        (r,) = grade_math_batch([case["pred"]], [gold_text(case)], **options)
        if r["correct"] != bool(case.get("expected")):
            misses.append((case["source"], r["verdict"], r["extracted"]))
    return 100.0 * (len(cases) - len(misses)) / len(cases), misses


def test_math_verify_cases_agree_as_in_rust():
    pct, misses = agreement(load_cases("math_verify_cases.jsonl"))
    print(f"math_verify_cases: {pct:.1f}% agree; misses: {misses}")
    assert pct >= MATH_VERIFY_FLOOR


def test_latex2sympy_cases_agree_as_in_rust():
    pct, misses = agreement(load_cases("latex2sympy_value_cases.jsonl"))
    print(f"latex2sympy_value_cases: {pct:.1f}% agree; misses: {misses}")
    assert pct >= LATEX2SYMPY_FLOOR


def compat_configs(config, key="extraction"):
    targets = []
    normalization = config.get("normalization", {})
    for t in config.get(key) or config.get("extraction", ["latex", "expr"]):
        if t == "latex":
            latex = LatexExtractionConfig(boxed_match_priority=config.get("latex_boxed_match_priority", 0))
            if "malformed_operators" in normalization:
                n = replace(latex.normalization_config,
                            malformed_operators=normalization["malformed_operators"])
                latex = replace(latex, normalization_config=n)
            targets.append(latex)
        elif t == "expr":
            targets.append(ExprExtractionConfig())
        elif t == "string":
            targets.append(
                StringExtractionConfig(
                    strings=tuple(config.get("strings", ("A", "B", "C", "D"))),
                    lowercase=config.get("lowercase", True),
                )
            )
    return targets


def test_math_verify_cases_through_compat_parse_and_verify():
    """Math-Verify's own cases, called the way its tests call it (compare_strings)."""
    cases = [
        c
        for c in load_cases("math_verify_cases.jsonl")
        if c["source"].startswith("huggingface/Math-Verify")
    ]
    misses = []
    for c in cases:
        cfg = c["config"]
        targets = compat_configs(cfg)
        got = verify(
            parse(gold_text(c), compat_configs(cfg, "gold_extraction")),
            parse(c["pred"], targets),
            float_rounding=cfg.get("float_rounding", 6),
            strict=cfg.get("strict", True),
            allow_set_relation_comp=cfg.get("allow_set_relation_comp", False),
        )
        if got != bool(c["expected"]):
            misses.append(c["source"])
    pct = 100.0 * (len(cases) - len(misses)) / len(cases)
    print(f"compat on Math-Verify's cases: {pct:.1f}% agree; misses: {misses}")
    assert pct >= COMPAT_FLOOR


# parse/verify on Math-Verify's 288 cases agreed 97.2% when measured; see docs/python.md.
COMPAT_FLOOR = 97.0
