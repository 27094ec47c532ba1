"""TRL reward functions (``GRPOTrainer(reward_funcs=[...])``), called as TRL calls them:
``reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns)`` with one
float (or ``None``) per completion.

* :func:`accuracy_reward`: a drop-in for ``trl.rewards.accuracy_reward`` (same name,
  arguments and ``None`` semantics), graded in-process. Completions may be plain strings or
  conversational (``[[{"role": "assistant", "content": ...}], ...]``); the gold answers come
  from the ``solution`` column. ``None`` where a gold answer cannot be parsed (TRL then ignores
  this reward for that sample).
* :func:`accuracy_reward_async`: the same as a coroutine function (TRL gathers async rewards
  concurrently).
* :data:`code_reward` / :data:`code_reward_async`: tests run by the verifier service
  (``$RLVR_VERIFIER_URL``), read from the ``verification_info`` column (open-r1's), or another
  column via :class:`CodeReward`.

Everything here is a module-level function or a plain class instance: picklable, as TRL's
spawned async-GRPO workers need.
"""

import asyncio
import json
from typing import Any, Dict, List, Optional, Sequence

from rlvr_verifier import _native
from rlvr_verifier._service import service
from rlvr_verifier.code_tests import tests_from_ground_truth

__all__ = [
    "accuracy_reward",
    "accuracy_reward_async",
    "CodeReward",
    "code_reward",
    "code_reward_async",
    "completion_text",
]

# TRL's accuracy_reward: the prediction is LaTeX with boxes tried first; the gold is parsed
# with Math-Verify's default targets (LaTeX and plain expressions).
_ACCURACY_OPTIONS = json.dumps(
    {
        "extraction": ["latex"],
        "gold_extraction": ["latex", "expr"],
        "latex_boxed_match_priority": 0,
        "require_boxed": False,
    }
)


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or the last message of a conversational one
    (whose ``content`` may be a string or a list of ``{"type": "text", "text"}`` parts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        message = completion
    elif isinstance(completion, (list, tuple)) and completion:
        message = completion[-1]
    else:
        return ""
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(
            p.get("text", "") if isinstance(p, dict) else str(p) for p in content
        )
    return "" if content is None else str(content)


def _log(kwargs: Dict[str, Any], column: str, values: List[Any]) -> None:
    log_extra = kwargs.get("log_extra")
    if callable(log_extra):
        log_extra(column, values)


def accuracy_reward(
    completions: Sequence[Any], solution: Sequence[str], **kwargs: Any
) -> List[Optional[float]]:
    """1.0 where the completion's answer equals the solution, 0.0 where not, ``None`` where
    the solution has no parseable answer. Grades the batch on every core."""
    if len(completions) != len(solution):
        raise ValueError(f"{len(completions)} completions but {len(solution)} solutions")
    texts = [completion_text(c) for c in completions]
    golds = [str(s) for s in solution]
    results = _native.grade_math_batch(texts, golds, _ACCURACY_OPTIONS, None)
    rewards: List[Optional[float]] = []
    for r, gold in zip(results, golds):
        if r["correct"]:
            rewards.append(1.0)
        elif _native.extract_answer(gold, _ACCURACY_OPTIONS, True)[0] is None:
            rewards.append(None)
        else:
            rewards.append(0.0)
    _log(kwargs, "answer_parsed", [r["extracted"] or "" for r in results])
    _log(kwargs, "verdict", [r["verdict"] for r in results])
    return rewards


async def accuracy_reward_async(
    completions: Sequence[Any], solution: Sequence[str], **kwargs: Any
) -> List[Optional[float]]:
    """:func:`accuracy_reward` as a coroutine function: grades in the default executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, lambda: accuracy_reward(completions, solution, **kwargs)
    )


class CodeReward:
    """Code reward over the verifier service: each completion's last fenced code block runs
    against the tests in its row's ``column`` (see :mod:`rlvr_verifier.code_tests` for the
    shapes). Reward 1.0 when every test passes (``reward="binary"``, the default) or the
    passed fraction (``"pass_rate"``); ``None`` for a row without tests.

    Args:
        url, token: the service (default ``$RLVR_VERIFIER_URL``, ``$RLVR_VERIFIER_TOKEN``, read
            at the first call).
        column: the dataset column with the tests. Default ``"verification_info"``.
        language: used when the tests do not name one. Default ``"python"``.
        reward: ``"binary"`` or ``"pass_rate"``.
        time_limit_s, memory_limit_mb: per test run; default the service's (10 s, 1024 MiB).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        column: str = "verification_info",
        language: str = "python",
        reward: str = "binary",
        time_limit_s: Optional[float] = None,
        memory_limit_mb: Optional[int] = None,
        name: str = "code_reward",
    ):
        self.url, self.token = url, token
        self.column, self.language, self.reward = column, language, reward
        self.time_limit_s, self.memory_limit_mb = time_limit_s, memory_limit_mb
        # TRL names the reward's logged metrics after `__name__`.
        self.__name__ = name

    def _items(self, completions: Sequence[Any], kwargs: Dict[str, Any]):
        rows = kwargs.get(self.column)
        if rows is None:
            raise ValueError(f"the dataset has no {self.column!r} column with tests")
        if len(rows) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(rows)} test rows")
        items, where = [], []
        for i, (completion, row) in enumerate(zip(completions, rows)):
            if row is None or row == "":
                continue
            tests, language = tests_from_ground_truth(row)
            item: Dict[str, Any] = {
                "language": language or self.language,
                "response": completion_text(completion),
                "tests": tests,
                "options": {"reward": self.reward},
            }
            if self.time_limit_s is not None:
                item["time_limit_s"] = self.time_limit_s
            if self.memory_limit_mb is not None:
                item["memory_limit_mb"] = self.memory_limit_mb
            items.append(item)
            where.append(i)
        return items, where

    @staticmethod
    def _rewards(n: int, where: List[int], results: List[Dict[str, Any]]):
        out: List[Optional[float]] = [None] * n
        for i, r in zip(where, results):
            out[i] = float(r["reward"])
        return out

    def __call__(self, completions: Sequence[Any], **kwargs: Any) -> List[Optional[float]]:
        items, where = self._items(completions, kwargs)
        results = service(self.url, self.token).judge_code(items) if items else []
        return self._rewards(len(completions), where, results)


class AsyncCodeReward(CodeReward):
    """:class:`CodeReward` with an ``async`` ``__call__`` (TRL awaits it concurrently)."""

    async def __call__(self, completions: Sequence[Any], **kwargs: Any) -> List[Optional[float]]:
        items, where = self._items(completions, kwargs)
        results = await service(self.url, self.token).ajudge_code(items) if items else []
        return self._rewards(len(completions), where, results)


#: ``CodeReward()`` with the defaults.
code_reward = CodeReward()
#: ``AsyncCodeReward()`` with the defaults.
code_reward_async = AsyncCodeReward(name="code_reward_async")
