"""``verify`` and ``sympy_expr_eq`` with Math-Verify 0.8.0's signatures and semantics.

``verify(gold, target)`` is true when any gold candidate equals any target candidate (gold
first: the comparison is asymmetric, as in Math-Verify). Strings compare with strings (exact,
after stripping); answers compare with answers through the verifier's grader; a string never
equals an answer, except that a gold whose text alone is left (it did not parse) matches an
answer written the same way or as its value after the last ``=``. Besides :class:`ParsedAnswer`, a candidate may be a number, a SymPy object or
anything whose ``str()`` is math: it is parsed from that text.

Timeouts: the grader bounds every comparison itself (fuel and a 50 ms deadline), with no
signals, so ``verify`` works on any thread. When ``sympy_expr_eq`` has been replaced (patched
or wrapped), ``timeout_seconds`` is enforced by waiting on a worker thread instead.
"""

import concurrent.futures
import logging
from itertools import product
from typing import Any, Optional

from .. import _native
from .errors import TimeoutException
from .parser import ParsedAnswer

logger = logging.getLogger(__name__)

__all__ = ["verify", "sympy_expr_eq"]

# Parses a foreign candidate (a number, SymPy's str()) whole, as LaTeX or a plain expression.
_WHOLE = '{"extraction": ["latex", "expr"], "require_boxed": false}'


def _as_answer(x: Any) -> Optional[ParsedAnswer]:
    if isinstance(x, ParsedAnswer):
        return x
    answer, _ = _native.extract_answer(str(x).replace("**", "^"), _WHOLE, True)
    return answer


def sympy_expr_eq(
    gold: Any,
    pred: Any,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    allow_set_relation_comp: bool = False,
    strict: bool = True,
) -> bool:
    """Is ``pred`` equal to ``gold``? ``numeric_precision`` is accepted and unused: values are
    exact rationals, and other numbers are compared to a relative precision."""
    g, p = _as_answer(gold), _as_answer(pred)
    if g is None or p is None:
        return False
    return _native.answers_equal(g, p, float_rounding, strict, allow_set_relation_comp)


_BUILTIN_EQ = sympy_expr_eq
_pool: Optional[concurrent.futures.ThreadPoolExecutor] = None


def _timeout_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="rlvr-verify-timeout"
        )
    return _pool


def verify(
    gold: Any,
    target: Any,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
    timeout_seconds: Optional[int] = 5,
    raise_on_error: bool = False,
) -> bool:
    """Does ``target`` match ``gold``? Both are ``parse`` results (lists) or single
    candidates. Errors are ``False`` unless ``raise_on_error``; so is a comparison that runs
    past ``timeout_seconds`` (or :class:`TimeoutException` with ``raise_on_error``)."""

    def compare(g: Any, t: Any) -> bool:
        if isinstance(g, str) and isinstance(t, str):
            g, t = g.strip(), t.strip()
            return len(g) > 0 and len(t) > 0 and g == t
        if isinstance(g, str) and isinstance(t, ParsedAnswer):
            # A gold that did not parse (only its text is left) still matches an answer written
            # the same way or as its value after the last `=` (the grader's rule).
            return not gold_parsed and _native.matches_unparsed_gold(g, t)
        if isinstance(g, str) or isinstance(t, str):
            return False
        # Looked up at call time, so a patched `sympy_expr_eq` is the one called.
        return sympy_expr_eq(
            g, t, float_rounding, numeric_precision, allow_set_relation_comp, strict
        )

    def bounded(g: Any, t: Any) -> bool:
        if sympy_expr_eq is _BUILTIN_EQ or not timeout_seconds or timeout_seconds <= 0:
            return compare(g, t)
        future = _timeout_pool().submit(compare, g, t)
        try:
            return future.result(timeout=timeout_seconds)
        except concurrent.futures.TimeoutError:
            raise TimeoutException("Timeout during comparison") from None

    def safe(g: Any, t: Any) -> bool:
        try:
            return bounded(g, t)
        except TimeoutException:
            if raise_on_error:
                raise
            logger.warning("Timeout during comparison")
            return False
        except Exception:
            if raise_on_error:
                raise
            logger.debug("Error during comparison", exc_info=True)
            return False

    golds = gold if isinstance(gold, list) else [gold]
    targets = target if isinstance(target, list) else [target]
    gold_parsed = any(not isinstance(g, str) for g in golds)
    return any(safe(g, t) for g, t in product(golds, targets))
