"""VerifierClient against a real `verifier serve` on loopback: the Rust client's replica
rotation and retry rules, the bearer token, math, code and /run_code."""

import asyncio
import pickle
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rlvr_verifier import VerifierClient, VerifierError, grade_math_batch


def dead_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_grade_math_matches_in_process(server):
    client = VerifierClient(server.url)
    client.healthz()
    responses = [r"\boxed{\frac{2}{4}}", r"\boxed{3}", "nothing", r"\boxed{1\,000}"]
    golds = ["0.5", "4", "1", "1000"]
    remote = client.grade_math(responses, golds)
    local = grade_math_batch(responses, golds)
    drop = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_us"} for r in rs]
    assert drop(remote) == drop(local)
    assert [r["verdict"] for r in remote] == ["correct", "incorrect", "no_answer", "correct"]
    items = client.grade_math_items([{"id": "a", "response": "we get 42", "ground_truth": "42",
                                      "options": {"require_boxed": False}}])
    assert items[0]["id"] == "a" and items[0]["correct"]


def test_a_dead_replica_costs_a_retry_not_a_failure(server):
    client = VerifierClient([dead_url(), server.url], max_attempts=3, base_delay_s=0.01)
    assert client.urls[1] == server.url
    # Requests rotate over both replicas; those that start on the dead one move on.
    for _ in range(6):
        assert client.grade_math([r"\boxed{1}"], ["1"])[0]["correct"]


def test_unreachable_after_the_attempts():
    client = VerifierClient(f"{dead_url()},{dead_url()}", max_attempts=3, base_delay_s=0.01)
    start = time.monotonic()
    with pytest.raises(VerifierError, match="3 attempts") as e:
        client.grade_math(["x"], ["1"])
    assert e.value.status is None
    assert time.monotonic() - start < 10


def test_bad_requests_fail_at_once(server):
    client = VerifierClient(server.url, max_attempts=5, base_delay_s=1.0)
    start = time.monotonic()
    with pytest.raises(VerifierError) as e:  # rejected by the service: 422, not retried
        client.grade_math(["x"], ["1"], float_rounding=1000)
    assert e.value.status == 422 and time.monotonic() - start < 1.0
    with pytest.raises(ValueError, match="bogus"):  # rejected before sending
        client.grade_math(["x"], ["1"], bogus=1)
    with pytest.raises(ValueError):
        VerifierClient("https://tls.example")
    with pytest.raises(ValueError):
        VerifierClient("")


def test_token(token_server):
    with pytest.raises(VerifierError) as e:
        VerifierClient(token_server.url).grade_math([r"\boxed{1}"], ["1"])
    assert e.value.status == 401
    with pytest.raises(VerifierError):
        VerifierClient(token_server.url, token="wrong").grade_math([r"\boxed{1}"], ["1"])
    ok = VerifierClient(token_server.url, token="s3cret-token")
    assert ok.grade_math([r"\boxed{1}"], ["1"])[0]["correct"]


def test_shared_across_threads_and_asyncio(server):
    client = VerifierClient(server.url)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: client.grade_math([rf"\boxed{{{i}}}"], [str(i)]), range(32)))
    assert all(r[0]["correct"] for r in results)

    async def many():
        return await asyncio.gather(*(client.agrade_math([r"\boxed{2}"], ["2"]) for _ in range(16)))

    assert all(r[0]["correct"] for r in asyncio.run(many()))


def test_pickles_without_its_connections(server):
    client = pickle.loads(pickle.dumps(VerifierClient(server.url, token="t", max_attempts=2)))
    assert client.urls == [server.url]
    assert client.grade_math([r"\boxed{1}"], ["1"])[0]["correct"]


def test_run_code_and_judge_code(server, code_ready):
    client = VerifierClient(server.url)
    out = client.run_code("import sys\nprint(sys.stdin.read().upper())", stdin="hi", run_timeout=5)
    assert out["status"] == "Success" and out["run_result"]["stdout"] == "HI\n"
    failed = client.run_code("raise SystemExit(3)")
    assert failed["status"] == "Failed" and failed["run_result"]["return_code"] == 3
    (r,) = client.judge_code([{
        "language": "python",
        "response": "```python\nprint(sum(map(int, input().split())))\n```",
        "tests": [{"stdin": "1 2\n", "expected_stdout": "3\n"},
                  {"stdin": "5 5\n", "expected_stdout": "10\n"}],
    }])
    assert r["verdict"] == "accepted" and r["passed"] == 2
    (r,) = asyncio.run(client.ajudge_code([{
        "language": "python", "source_code": "print(1)",
        "tests": [{"stdin": "", "expected_stdout": "2\n"}]}]))
    assert r["verdict"] == "wrong_answer"
