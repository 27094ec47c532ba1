"""OpenRLHF's custom reward function file (``--reward.remote_url /path/to/this/file.py``, up to
v0.10.1 ``--remote_rm_url``): ``reward_func(queries, prompts, labels, **kwargs)``, graded
in-process. The service offers the same over HTTP at ``POST /v1/openrlhf/reward``.

``queries`` are prompt + response as OpenRLHF decodes them; the response is what follows the
prompt. ``labels`` are the gold answers (``--data.label_key``).
"""

from typing import Any, Dict, List, Sequence

from rlvr_verifier import _native

__all__ = ["reward_func"]


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str], **kwargs: Any
) -> Dict[str, Any]:
    """``{"rewards": [...], "scores": [...], "extra_logs": {"correct": [...]}}``, one entry
    per query, graded with the grader's default options."""
    responses: List[str] = []
    for q, p in zip(queries, prompts):
        responses.append(q[len(p):] if p and q.startswith(p) else q)
    results = _native.grade_math_batch(responses, [str(x) for x in labels], None, None)
    rewards = [r["reward"] for r in results]
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {"correct": [1.0 if r["correct"] else 0.0 for r in results]},
    }
