"""``parse`` and the extraction configs, with Math-Verify 0.8.0's fields and defaults.

Honoured: the targets (LaTeX, plain expressions, strings), ``boxed_match_priority`` (including
-1, no boxes), ``StringExtractionConfig.strings``/``lowercase``, ``fallback_mode`` and
``NormalizationConfig.malformed_operators=False`` (``\\frac12`` and ``\\sqrt3`` are then not
answers). Accepted and not needed: ``parsing_timeout`` (extraction is linear and capped in
Rust), ``extraction_mode`` (candidates are always tried until one parses, Math-Verify's
default ``any_match``). Accepted and not honoured: ``try_extract_without_anchor=False``
(un-anchored answers are still found) and the other normalisation switches (the grader always
normalises units, ``\\text``, ``\\left``/``\\right``; ``boxed`` always means every box).
"""

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import List, Literal, Sequence, Tuple, Union

from .. import _native

ParsedAnswer = _native.ParsedAnswer

logger = logging.getLogger(__name__)

__all__ = [
    "parse",
    "NormalizationConfig",
    "LatexNormalizationConfig",
    "LatexExtractionConfig",
    "ExprExtractionConfig",
    "StringExtractionConfig",
    "ExtractionTarget",
    "ParsedAnswer",
]


@dataclass(frozen=True)
class NormalizationConfig:
    """latex2sympy2_extended's ``NormalizationConfig`` (class defaults as there)."""

    basic_latex: bool = True
    units: bool = False
    malformed_operators: bool = False
    nits: bool = False
    boxed: Union[Literal["all", "last", "none"], bool] = "all"
    equations: bool = False


LatexNormalizationConfig = NormalizationConfig


@dataclass(frozen=True)
class LatexExtractionConfig:
    """LaTeX answers: ``\\boxed{}``, ``$…$``, ``\\[…\\]``, "final answer is $…$".

    ``boxed_match_priority``: 0 tries boxes first, 50 (the default) after "final answer is",
    -1 never.
    """

    try_extract_without_anchor: bool = True
    boxed_match_priority: int = 50
    normalization_config: NormalizationConfig = field(
        default_factory=lambda: NormalizationConfig(
            basic_latex=True,
            units=True,
            malformed_operators=True,
            nits=True,
            boxed="all",
            equations=False,
        )
    )


@dataclass(frozen=True)
class ExprExtractionConfig:
    """Plain expressions and numbers (``1,000.5``, ``3/4``, ``28%``)."""

    try_extract_without_anchor: bool = True


@dataclass(frozen=True)
class StringExtractionConfig:
    """One of ``strings`` (multiple-choice letters)."""

    strings: Tuple[str, ...] = field(default_factory=lambda: ("A", "B", "C", "D"))
    try_extract_without_anchor: bool = True
    lowercase: bool = True


ExtractionTarget = Union[LatexExtractionConfig, ExprExtractionConfig, StringExtractionConfig]

# `\frac12`, `\dfrac 1 2`, `\sqrt3`: operators without braces.
_MALFORMED = re.compile(r"\\[dt]?frac(?!\s*\{)|\\sqrt(?!\s*[\[{])")


@lru_cache(maxsize=256)
def _plan(configs: Tuple[ExtractionTarget, ...]) -> Tuple[str, bool, bool]:
    """(options JSON, strings target?, lowercase) for a tuple of configs."""
    extraction: List[str] = []
    priority = -1
    strings: List[str] = []
    lowercase = True
    is_string = False
    for c in configs:
        if isinstance(c, LatexExtractionConfig):
            extraction.append("latex")
            priority = c.boxed_match_priority if priority < 0 else min(priority, c.boxed_match_priority)
        elif isinstance(c, ExprExtractionConfig):
            extraction.append("expr")
        elif isinstance(c, StringExtractionConfig):
            extraction.append("string")
            strings.extend(c.strings)
            lowercase = c.lowercase
            is_string = True
        else:
            raise TypeError(f"not an extraction config: {c!r}")
    options = {
        "extraction": extraction,
        "latex_boxed_match_priority": priority,
        "require_boxed": False,
        "strings": strings,
        "lowercase": lowercase,
    }
    return json.dumps(options), is_string, lowercase


def _rejects_malformed(configs: Sequence[ExtractionTarget]) -> bool:
    return any(
        isinstance(c, LatexExtractionConfig) and not c.normalization_config.malformed_operators
        for c in configs
    )


def parse(
    pred: str,
    extraction_config: Sequence[ExtractionTarget] = (
        LatexExtractionConfig(),
        ExprExtractionConfig(),
    ),
    fallback_mode: Literal["no_fallback", "first_match"] = "first_match",
    extraction_mode: Literal["first_match", "any_match"] = "any_match",
    parsing_timeout: Union[int, None] = 5,
    raise_on_error: bool = False,
) -> list:
    """Extracts the answer from ``pred``: ``[answer]``, plus with ``fallback_mode=
    "first_match"`` the answer's text (``[ParsedAnswer('\\\\frac{1}{2}'), '\\\\frac{1}{2}']``);
    only the text when it did not parse; ``[]`` when nothing was found. String targets give
    ``[choice, text]`` with ``choice`` lower-cased when ``lowercase``."""
    try:
        options, is_string, lowercase = _plan(tuple(extraction_config))
        answer, text = _native.extract_answer(pred, options)
        if answer is not None and _rejects_malformed(extraction_config) and _MALFORMED.search(text):
            answer = None
        out: list = []
        if answer is not None:
            out.append((text.lower() if lowercase else text) if is_string else answer)
        if fallback_mode == "first_match" and text is not None:
            out.append(text)
        return out
    except Exception:
        if raise_on_error:
            raise
        logger.debug("Error parsing: %r", pred, exc_info=True)
        return []
