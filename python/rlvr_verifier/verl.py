"""verl's custom reward function: ``reward.custom_reward_function`` (verl ≥ 0.7.1; up to
0.7.0 the top-level ``custom_reward_function``), with ``path`` this file's location (or any
file that imports from it) and ``name`` one of:

* ``compute_score``: sync; verl runs it on worker threads. Math is graded in-process (the GIL
  is released), code on the verifier service.
* ``compute_score_async``: ``async def``; verl awaits it directly.

Both take verl's arguments ``(data_source, solution_str, ground_truth, extra_info=None,
**kwargs)`` and return ``{"score", "acc", "pred", "verdict"}``: ``score`` is the reward, the
other keys are logged by verl (the same keys for math and code, as verl's logging needs).

Routing: code when ``data_source`` is a code dataset verl knows (``codecontests``, ``apps``,
``codeforces``, ``taco``, ...), when ``extra_info["kind"] == "code"``, or when the ground
truth is tests (see :mod:`rlvr_verifier.code_tests`); math otherwise.

Keyword options (``reward.custom_reward_function.reward_kwargs``): ``verifier_url`` and
``verifier_token`` (default ``$RLVR_VERIFIER_URL``, ``$RLVR_VERIFIER_TOKEN``) for code;
``code_language`` (default ``"python"``); ``code_reward`` (``"pass_rate"``, verl's continuous
score and the default, or ``"binary"``); ``time_limit_s``/``memory_limit_mb`` per test run; and
any math grading option of :func:`rlvr_verifier.grade_math` (``require_boxed``,
``float_rounding``, ...). Other keyword arguments verl passes are ignored.

The file imports the package absolutely, so verl and OpenRLHF can also load it by path.
"""

import asyncio
from typing import Any, Dict, Optional

from rlvr_verifier import _native
from rlvr_verifier._service import service
from rlvr_verifier.code_tests import is_code_ground_truth, tests_from_ground_truth
from rlvr_verifier.grading import _options_json

__all__ = ["compute_score", "compute_score_async", "CODE_DATA_SOURCES"]

#: ``data_source`` values routed to the code judge (verl's own code sources and common ones).
CODE_DATA_SOURCES = frozenset(
    {
        "codecontests",
        "apps",
        "codeforces",
        "taco",
        "code",
        "livecodebench",
        "primeintellect",
        "humaneval",
        "mbpp",
        "deepcoder",
    }
)

_MATH_OPTIONS = frozenset(
    {
        "extraction",
        "gold_extraction",
        "latex_boxed_match_priority",
        "float_rounding",
        "strict",
        "allow_set_relation_comp",
        "require_boxed",
        "strings",
        "lowercase",
    }
)


def _is_code(data_source: Any, ground_truth: Any, extra_info: Optional[Dict[str, Any]]) -> bool:
    if isinstance(extra_info, dict) and extra_info.get("kind") in ("code", "math"):
        return extra_info["kind"] == "code"
    source = str(data_source or "").lower()
    if source in CODE_DATA_SOURCES or source.split("/")[-1] in CODE_DATA_SOURCES:
        return True
    return is_code_ground_truth(ground_truth)


def _math(solution_str: str, ground_truth: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    options = {k: v for k, v in kwargs.items() if k in _MATH_OPTIONS}
    r = _native.grade_math(solution_str, str(ground_truth), _options_json(options))
    return {
        "score": r["reward"],
        "acc": r["correct"],
        "pred": r["extracted"] or "",
        "verdict": r["verdict"],
    }


def _code_item(solution_str: str, ground_truth: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    tests, language = tests_from_ground_truth(ground_truth)
    item: Dict[str, Any] = {
        "language": kwargs.get("code_language") or language or "python",
        "response": solution_str,
        "tests": tests,
        "options": {"reward": kwargs.get("code_reward", "pass_rate")},
    }
    for k in ("time_limit_s", "memory_limit_mb"):
        if k in kwargs:
            item[k] = kwargs[k]
    return item


def _code_result(r: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "score": float(r["reward"]),
        "acc": r["verdict"] == "accepted",
        "pred": f"{r.get('passed', 0)}/{r.get('total', 0)}",
        "verdict": r["verdict"],
    }


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[Dict[str, Any]] = None,
    **kwargs: Any,
) -> Dict[str, Any]:
    """verl's ``compute_score``: ``{"score", "acc", "pred", "verdict"}`` for one response."""
    if not _is_code(data_source, ground_truth, extra_info):
        return _math(solution_str, ground_truth, kwargs)
    client = service(kwargs.get("verifier_url"), kwargs.get("verifier_token"))
    (r,) = client.judge_code([_code_item(solution_str, ground_truth, kwargs)])
    return _code_result(r)


async def compute_score_async(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[Dict[str, Any]] = None,
    **kwargs: Any,
) -> Dict[str, Any]:
    """``compute_score`` as a coroutine function (verl awaits it on its event loop): math is
    graded in the default executor, code requests wait without blocking the loop."""
    if not _is_code(data_source, ground_truth, extra_info):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _math, solution_str, ground_truth, kwargs)
    client = service(kwargs.get("verifier_url"), kwargs.get("verifier_token"))
    (r,) = await client.ajudge_code([_code_item(solution_str, ground_truth, kwargs)])
    return _code_result(r)
