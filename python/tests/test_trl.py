"""rlvr_verifier.trl, called the way TRL's GRPOTrainer calls reward functions (TRL 1.16
`_calculate_rewards`): keywords only, every dataset column as a list, plus trainer_state,
log_extra and log_metric."""

import asyncio
import inspect
import json
import pickle

import pytest

from rlvr_verifier.trl import (
    CodeReward,
    accuracy_reward,
    accuracy_reward_async,
    code_reward,
    code_reward_async,
)


def is_async_callable(f):  # trl/trainer/utils.py
    return inspect.iscoroutinefunction(f) or inspect.iscoroutinefunction(getattr(f, "__call__", None))


def call_like_trl(reward_func, completions, **columns):
    logged = {}
    kwargs = dict(
        prompts=[[{"role": "user", "content": "?"}]] * len(completions),
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(completions),
        trainer_state=None,
        log_extra=lambda column, values: logged.__setitem__(column, values),
        log_metric=lambda name, value: None,
        **columns,
    )
    if is_async_callable(reward_func):
        async def gather():
            (out,) = await asyncio.gather(reward_func(**kwargs))
            return out
        out = asyncio.run(gather())
    else:
        out = reward_func(**kwargs)
    assert len(out) == len(completions)
    return out, logged


SOLUTIONS = [r"$\frac{1}{2}$", "$3$", r"\frac{1}{", "$7$"]
TEXTS = [r"so \boxed{0.5}", r"\boxed{4}", r"\boxed{2}", "It is $7$."]


@pytest.mark.parametrize("func", [accuracy_reward, accuracy_reward_async])
def test_accuracy_reward_conversational_and_plain(func):
    conversational = [[{"role": "assistant", "content": t}] for t in TEXTS]
    out, logged = call_like_trl(func, conversational, solution=SOLUTIONS)
    assert out == [1.0, 0.0, None, 1.0]
    assert logged["verdict"][0] == "correct"
    plain, _ = call_like_trl(func, TEXTS, solution=SOLUTIONS)
    assert plain == out


def test_content_parts_and_reasoning():
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": r"\boxed{5}"}]}]]
    assert call_like_trl(accuracy_reward, parts, solution=["5"])[0] == [1.0]
    think = [r"<think>maybe \boxed{4}</think> the answer is \boxed{5}"]
    assert call_like_trl(accuracy_reward, think, solution=["5"])[0] == [1.0]


def test_reward_functions_pickle_and_keep_their_names():
    for f in (accuracy_reward, accuracy_reward_async, code_reward, code_reward_async):
        g = pickle.loads(pickle.dumps(f))
        assert getattr(g, "__name__", None) == getattr(f, "__name__")
    assert is_async_callable(code_reward_async) and not is_async_callable(code_reward)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        accuracy_reward(completions=["a", "b"], solution=["a"])


def test_code_reward_against_the_service(server, code_ready):
    info = [
        {"language": "python", "test_cases": [{"input": "3\n", "output": "9\n"}]},
        json.dumps({"inputs": ["3\n"], "outputs": ["9\n"]}),
        None,
    ]
    completions = [
        [{"role": "assistant", "content": "```python\nprint(int(input()) ** 2)\n```"}],
        [{"role": "assistant", "content": "```python\nprint(8)\n```"}],
        [{"role": "assistant", "content": "no tests for this row"}],
    ]
    for func in (CodeReward(server.url), pickle.loads(pickle.dumps(CodeReward(server.url)))):
        out, _ = call_like_trl(func, completions, verification_info=info)
        assert out == [1.0, 0.0, None]
    from rlvr_verifier.trl import AsyncCodeReward

    out, _ = call_like_trl(AsyncCodeReward(server.url), completions, verification_info=info)
    assert out == [1.0, 0.0, None]
