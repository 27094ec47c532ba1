"""rlvr_verifier.verl, loaded and called the way verl's reward loop does (verl 0.9
`verl/trainer/ppo/reward.py::get_custom_reward_fn`, `reward_loop/reward_manager/naive.py`)."""

import asyncio
import importlib.util
import inspect
import json
import sys
from functools import partial

import pytest

import rlvr_verifier.verl


def load_extern_object(module_path: str, object_name: str):
    """verl's `load_extern_object`: a file path, or `pkg://module`."""
    if module_path.startswith("pkg://"):
        module = importlib.import_module(module_path[len("pkg://"):])
    else:
        spec = importlib.util.spec_from_file_location(f"custom_module_{abs(hash(module_path))}", module_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return getattr(module, object_name)


def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
    return raw_fn(*args, **{**kwargs, **extra_kwargs})


async def _call_with_kwargs_async(raw_fn, extra_kwargs, *args, **kwargs):
    return await raw_fn(*args, **{**kwargs, **extra_kwargs})


def get_custom_reward_fn(path: str, name: str, reward_kwargs: dict):
    raw_fn = load_extern_object(path, name)
    if inspect.iscoroutinefunction(raw_fn):
        return partial(_call_with_kwargs_async, raw_fn, reward_kwargs), True
    return partial(_call_with_kwargs, raw_fn, reward_kwargs), False


async def run_single(compute_score, is_async, sample):
    """naive.py `run_single`: the call and the handling of its result."""
    call = dict(
        data_source=sample["data_source"],
        solution_str=sample["response"],
        ground_truth=sample["reward_model"]["ground_truth"],
        extra_info=sample.get("extra_info", {}),
    )
    if is_async:
        result = await compute_score(**call)
    else:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, lambda: compute_score(**call))
    reward_extra_info = {}
    if isinstance(result, dict):
        score = result["score"]
        for key, value in result.items():
            reward_extra_info[key] = value
    else:
        score = result
        reward_extra_info["acc"] = score
    return score, reward_extra_info


SAMPLES = [
    {"data_source": "lighteval/MATH", "response": r"So $x = \boxed{\frac{3}{4}}$.",
     "reward_model": {"ground_truth": "0.75"}},
    {"data_source": "math_dapo", "response": r"I think \boxed{12}.",
     "reward_model": {"ground_truth": "13"}},
    {"data_source": "openai/gsm8k", "response": "no box here, 72",
     "reward_model": {"ground_truth": "72"}},
    {"data_source": "aime2024", "response": r"\boxed{(-\infty, 1] \cup [1, \infty)}",
     "reward_model": {"ground_truth": r"\mathbb{R}"}},
]
EXPECTED = [1.0, 0.0, 0.0, 1.0]


def score_all(path, name, reward_kwargs=None):
    fn, is_async = get_custom_reward_fn(path, name, reward_kwargs or {})

    async def main():
        return await asyncio.gather(*(run_single(fn, is_async, s) for s in SAMPLES * 25))

    return asyncio.run(main()), is_async


@pytest.mark.parametrize("name,is_async", [("compute_score", False), ("compute_score_async", True)])
def test_loaded_by_path_as_verl_loads_it(tmp_path, name, is_async):
    user_file = tmp_path / "reward.py"
    user_file.write_text(f"from rlvr_verifier.verl import {name}\n")
    for path in (str(user_file), rlvr_verifier.verl.__file__, "pkg://rlvr_verifier.verl"):
        results, detected_async = score_all(path, name)
        assert detected_async is is_async
        assert [s for s, _ in results] == EXPECTED * 25
        extra = results[0][1]
        assert set(extra) == {"score", "acc", "pred", "verdict"}
        assert extra["acc"] is True and extra["pred"] == r"\frac{3}{4}"
        assert results[2][1]["verdict"] == "no_answer"


def test_reward_kwargs_reach_the_grader():
    # reward.custom_reward_function.reward_kwargs: {require_boxed: false}
    results, _ = score_all(rlvr_verifier.verl.__file__, "compute_score", {"require_boxed": False})
    assert [s for s, _ in results[:4]] == [1.0, 0.0, 1.0, 1.0]


def test_extra_keyword_arguments_from_verl_are_accepted():
    r = rlvr_verifier.verl.compute_score(
        "lighteval/MATH", r"\boxed{2}", "2", None,
        reward_router_address=None, reward_model_tokenizer=None,
    )
    assert r["score"] == 1.0


def test_code_without_a_service_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("RLVR_VERIFIER_URL", raising=False)
    gt = json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]})
    with pytest.raises(ValueError, match="RLVR_VERIFIER_URL"):
        rlvr_verifier.verl.compute_score("codecontests", "```python\nprint(2)\n```", gt)


def test_code_goes_to_the_service(server, code_ready):
    gt = json.dumps({"inputs": ["2\n", "5\n"], "outputs": ["4\n", "10\n"]})
    good = "Here:\n```python\nprint(int(input()) * 2)\n```"
    half = "```python\nn = int(input())\nprint(4 if n == 2 else 0)\n```"
    r = rlvr_verifier.verl.compute_score("codecontests", good, gt, verifier_url=server.url)
    assert r == {"score": 1.0, "acc": True, "pred": "2/2", "verdict": "accepted"}
    r = rlvr_verifier.verl.compute_score("codecontests", half, gt, verifier_url=server.url)
    assert r["score"] == 0.5 and r["acc"] is False
    asserts = {"assert_case": ["assert double(3) == 6"]}
    r = asyncio.run(rlvr_verifier.verl.compute_score_async(
        "humaneval", "```python\ndef double(x):\n    return 2 * x\n```", asserts,
        verifier_url=server.url))
    assert r["score"] == 1.0
