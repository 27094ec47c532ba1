"""OpenRLHF: the service's remote-reward route (`--reward.remote_url http://host/v1/openrlhf/
reward`) and the reward_func file (`--reward.remote_url .../rlvr_verifier/openrlhf.py`), each
called as OpenRLHF calls it (openrlhf/utils/agent.py, one sample per request)."""

import importlib.util
import json
import urllib.error
import urllib.request

import pytest

import rlvr_verifier.openrlhf

PROMPT = "<|im_start|>user\nWhat is 1/4 + 1/4?<|im_end|>\n<|im_start|>assistant\n"


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_remote_reward_route(server):
    url = server.url + "/v1/openrlhf/reward"
    good = post(url, {"query": [PROMPT + r"It is \boxed{\frac{1}{2}}.<|im_end|>"],
                      "prompts": [PROMPT], "labels": ["0.5"]})
    assert good["rewards"] == [1.0] and good["scores"] == [1.0]
    assert good["extra_logs"]["correct"] == [1.0]
    # The prompt's own numbers are not the answer: without a box the response has none.
    none = post(url, {"query": [PROMPT + "no idea<|im_end|>"], "prompts": [PROMPT],
                      "labels": ["0.5"]})
    assert none["rewards"] == [0.0] and none["extra_logs"]["no_answer"] == [1.0]
    batch = post(url, {"query": [r"\boxed{1}", r"\boxed{2}"], "prompts": ["", ""],
                       "labels": ["1", "3"]})
    assert batch["rewards"] == [1.0, 0.0]
    with pytest.raises(urllib.error.HTTPError) as e:
        post(url, {"query": ["x"], "prompts": ["p"], "labels": []})
    assert e.value.code == 422


def test_reward_func_file_loaded_by_path():
    spec = importlib.util.spec_from_file_location("reward_func", rlvr_verifier.openrlhf.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.reward_func([PROMPT + r"\boxed{0.5}"], [PROMPT], ["1/2"])
    assert out["rewards"] == [1.0] and out["scores"] == [1.0]
    assert out["extra_logs"]["correct"] == [1.0]
