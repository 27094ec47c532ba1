"""The math grader in-process: the verifier crate's own grader, compiled into this package.

Every function takes the grading options of ``POST /v1/math/grade`` as keyword arguments
(``extraction``, ``gold_extraction``, ``latex_boxed_match_priority``, ``float_rounding``,
``strict``, ``allow_set_relation_comp``, ``require_boxed``, ``strings``, ``lowercase``; see
docs/math-grading.md) and returns the same result fields as that endpoint, as dicts:
``{"correct", "reward", "verdict", "extracted", "elapsed_us"}``. An unknown option or a value
out of range raises ``ValueError``.

The grader is pure Rust with its own fuel and a 50 ms deadline per item, needs no signals and
releases the GIL, so it is safe to call from any thread.
"""

import asyncio
import json
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _native

__all__ = ["grade_math", "grade_math_batch", "agrade_math_batch", "default_threads"]


# The last options seen and their JSON: callers pass the same options call after call.
_last_options: Tuple[Optional[Dict[str, Any]], Optional[str]] = (None, None)


def _options_json(options: Dict[str, Any]) -> Optional[str]:
    global _last_options
    if not options:
        return None
    last, text = _last_options
    if options == last:
        return text
    text = json.dumps(options)
    # A copy (lists too), so a caller mutating its options later cannot match stale JSON.
    _last_options = ({k: list(v) if isinstance(v, list) else v for k, v in options.items()}, text)
    return text


# One native call, no Python frame in between: the options come as keyword arguments and the
# last ones seen are kept (parsed) on the native side. Its docstring is the native function's.
grade_math = _native.grade_math_kw


def grade_math_batch(
    responses: Sequence[str],
    ground_truths: Sequence[str],
    *,
    threads: Optional[int] = None,
    **options: Any,
) -> List[Dict[str, Any]]:
    """Grades ``responses[i]`` against ``ground_truths[i]`` for every ``i`` with the GIL
    released, on ``threads`` threads (default: every core this process may use); results in
    input order. Batches under 32 items run on the calling thread."""
    return _native.grade_math_batch(
        list(responses), list(ground_truths), _options_json(options), threads
    )


async def agrade_math_batch(
    responses: Sequence[str],
    ground_truths: Sequence[str],
    *,
    threads: Optional[int] = None,
    **options: Any,
) -> List[Dict[str, Any]]:
    """:func:`grade_math_batch` for asyncio code: grades in the default executor, so the event
    loop keeps running."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, partial(grade_math_batch, responses, ground_truths, threads=threads, **options)
    )


def default_threads() -> int:
    """The batch parallelism used when ``threads`` is not given."""
    return _native.default_threads()
