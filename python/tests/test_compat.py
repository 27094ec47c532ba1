"""rlvr_verifier.compat: Math-Verify 0.8.0's API shape, called as Math-Verify's tests call it."""

import pickle
import threading
import time
from dataclasses import fields
from fractions import Fraction
from unittest.mock import patch

import pytest

from rlvr_verifier.compat import (
    ExprExtractionConfig,
    LatexExtractionConfig,
    LatexNormalizationConfig,
    ParsedAnswer,
    StringExtractionConfig,
    math_metric,
    parse,
    verify,
)
from rlvr_verifier.compat.errors import TimeoutException
from rlvr_verifier.compat.grader import sympy_expr_eq


def compare_strings(gold, pred, match_types=("latex", "expr"), precision=6, strict=True,
                    allow_set_relation_comp=False):
    """Math-Verify's test helper (tests/test_all.py), unchanged but for the import."""
    targets = []
    for t in match_types:
        if t == "latex":
            targets.append(LatexExtractionConfig(boxed_match_priority=0))
        elif t == "expr":
            targets.append(ExprExtractionConfig())
    return verify(parse(gold, targets), parse(pred, targets), float_rounding=precision,
                  strict=strict, allow_set_relation_comp=allow_set_relation_comp)


def test_config_fields_and_defaults_are_math_verify_s():
    latex = LatexExtractionConfig()
    assert [f.name for f in fields(latex)] == [
        "try_extract_without_anchor", "boxed_match_priority", "normalization_config"]
    assert latex.try_extract_without_anchor is True and latex.boxed_match_priority == 50
    n = latex.normalization_config
    assert (n.basic_latex, n.units, n.malformed_operators, n.nits, n.boxed, n.equations) == (
        True, True, True, True, "all", False)
    plain = LatexNormalizationConfig()
    assert (plain.units, plain.malformed_operators, plain.nits) == (False, False, False)
    assert ExprExtractionConfig().try_extract_without_anchor is True
    s = StringExtractionConfig()
    assert s.strings == ("A", "B", "C", "D") and s.lowercase and s.try_extract_without_anchor
    with pytest.raises(Exception):
        latex.boxed_match_priority = 0  # frozen, as in Math-Verify


def test_parse_returns_answer_and_string_fallback():
    out = parse(r"The answer is $\frac{1}{2}$")
    assert len(out) == 2 and isinstance(out[0], ParsedAnswer) and out[1] == r"\frac{1}{2}"
    assert out[0] == Fraction(1, 2) and out[0] == 0.5 and out[0] != 0.6
    assert parse(r"The answer is $\frac{1}{2}$", fallback_mode="no_fallback") == [out[0]]
    assert parse("no numbers here at all") == []
    assert verify(parse("$0.5$"), out)


def test_boxed_match_priority():  # Math-Verify tests/test_configs.py
    kw = dict(fallback_mode="no_fallback", extraction_mode="first_match")
    assert len(parse("\\boxed{1}", (LatexExtractionConfig(),), **kw)) == 1
    assert len(parse("\\boxed{1}", (LatexExtractionConfig(boxed_match_priority=-1),), **kw)) == 0
    x = parse("final answer is $9999$, \\boxed{1}",
              (LatexExtractionConfig(boxed_match_priority=100),), **kw)
    assert x[0] == 9999


def test_malformed_operators_switch():  # Math-Verify tests/test_configs.py
    kw = dict(fallback_mode="no_fallback", extraction_mode="first_match")
    strict = LatexNormalizationConfig(basic_latex=True, units=True, malformed_operators=False,
                                      nits=True, boxed=True, equations=True)
    lenient = LatexNormalizationConfig(basic_latex=True, units=True, malformed_operators=True,
                                       nits=True, boxed=True, equations=True)
    assert parse("$\\frac12$", (LatexExtractionConfig(normalization_config=strict),), **kw) == []
    x = parse("$\\frac12$", (LatexExtractionConfig(normalization_config=lenient),), **kw)
    assert x[0] == Fraction(1, 2)


@pytest.mark.parametrize(  # Math-Verify tests/test_string_extraction.py
    "pred,expected,config",
    [
        ("The answer is A.", ["A", "A"], StringExtractionConfig(lowercase=False)),
        ("The answer is A.", ["a", "A"], StringExtractionConfig(lowercase=True)),
        ("Final answer is B", ["b", "B"], StringExtractionConfig()),
        ("No valid answer here", [], StringExtractionConfig()),
        ("A. Because B is not valid", ["a", "A"], StringExtractionConfig()),
        ("The answer is U.", ["u", "U"], StringExtractionConfig(strings=("U",))),
        ("Because B is valid", ["b", "B"], StringExtractionConfig()),
    ],
)
def test_string_extraction(pred, expected, config):
    assert parse(pred, [config]) == expected


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("-5", "-5", 1),
        ("7425000", "7,425,000", 1),
        ("1000.99", "1000,99", 1),
        ("0.4", ".4", 1),
        ("2", "AZYUK2A", 0),
        ("10/9", "\\frac{10}{9}", 1),
        ("$[0,1)$", "$[0,1)$", 1),
        ("$(0,9)$", "$[0,9)$", 0),
        ("$\\frac{1}{3}$", "0.3333$", 1),
    ],
)
def test_compare_strings_like_math_verify(gold, pred, expected):
    types = ["expr"] if gold in ("-5", "7425000", "1000.99", "0.4", "2") else ["latex", "expr"]
    precision = 4 if pred == "0.3333$" else 6
    assert compare_strings(gold, pred, match_types=types, precision=precision) == expected


def test_verify_is_any_over_candidates_and_asymmetric():
    assert verify([parse("$2$")[0], "x"], parse("$2$"))
    assert verify("abc", " abc ") and not verify("", "")
    assert not verify(parse("$2$")[0], "2")  # an answer never equals a string
    # Gold relation, predicted interval: accepted; the reverse needs allow_set_relation_comp.
    rel, interval = parse("$1 < x < 2$"), parse("$(1,2)$")
    assert verify(rel, interval)
    assert not verify(interval, rel)
    assert verify(interval, rel, allow_set_relation_comp=True)


def test_foreign_candidates_are_parsed_from_their_text():  # tests/test_all.py::test_precision
    class SympyLike:  # what sympy.Rational(1, 3) and sympy.Float(0.333) print as
        def __init__(self, s):
            self.s = s

        def __str__(self):
            return self.s

    third, approx = SympyLike("1/3"), SympyLike("0.333000000000000")
    assert sympy_expr_eq(third, approx, float_rounding=3, numeric_precision=15)
    assert not sympy_expr_eq(third, approx, float_rounding=4, numeric_precision=15)
    assert verify(Fraction(1, 3), 0.333333)
    assert verify(SympyLike("x**2 + 1"), parse("$1 + x^2$"))


def test_raise_on_error():  # Math-Verify tests/test_raise_on_error.py
    one = parse("$1$")[0]
    with patch("rlvr_verifier.compat.grader.sympy_expr_eq", side_effect=ValueError("boom")):
        assert not verify(one, one, raise_on_error=False)
        with pytest.raises(ValueError, match="boom"):
            verify(one, one, raise_on_error=True)


def test_timeout_works_off_the_main_thread():  # Math-Verify tests/test_timeout.py, in a thread
    def slow(*args, **kwargs):
        time.sleep(3)
        return True

    result = []
    gold = [parse("1+1")[0]]

    def run():
        with patch("rlvr_verifier.compat.grader.sympy_expr_eq", side_effect=slow):
            start = time.monotonic()
            result.append((verify(gold, gold, timeout_seconds=1), time.monotonic() - start))
            with pytest.raises(TimeoutException):
                verify(gold, gold, timeout_seconds=1, raise_on_error=True)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert result and result[0][0] is False and result[0][1] < 2.5


def test_math_metric():
    metric = math_metric(gold_extraction_target=(LatexExtractionConfig(),),
                         pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig()))
    score, strs = metric([r"$\frac{1}{2}$"], ["so it is 0.5", "maybe 3"])
    assert score == 1.0 and strs[0][0] == r"\frac{1}{2}"
    with pytest.raises(ValueError):
        metric(["no answer here"], ["1"])


def test_configs_pickle():
    for c in (LatexExtractionConfig(), ExprExtractionConfig(), StringExtractionConfig()):
        assert pickle.loads(pickle.dumps(c)) == c
