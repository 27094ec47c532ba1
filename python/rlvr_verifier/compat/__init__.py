"""Math-Verify's public API (0.8.0) over the verifier's grader: switch with one import.

    from rlvr_verifier.compat import parse, verify, LatexExtractionConfig, ExprExtractionConfig

``parse`` returns :class:`ParsedAnswer` objects where Math-Verify returns SymPy objects (plus
the same string fallback), and ``verify(parse(gold), parse(pred))`` is the comparison that
agrees with Math-Verify. The modules mirror Math-Verify's (``compat.parser``,
``compat.grader``, ``compat.metric``, ``compat.errors``). What differs is listed in
docs/python.md: no SymPy objects, timeouts that work on any thread, the normalisation switches
that are honoured.
"""

from .grader import verify
from .metric import math_metric
from .parser import (
    ExprExtractionConfig,
    LatexExtractionConfig,
    LatexNormalizationConfig,
    NormalizationConfig,
    ParsedAnswer,
    StringExtractionConfig,
    parse,
)

__all__ = [
    "parse",
    "verify",
    "math_metric",
    "ExprExtractionConfig",
    "LatexExtractionConfig",
    "StringExtractionConfig",
    "LatexNormalizationConfig",
    "NormalizationConfig",
    "ParsedAnswer",
]
