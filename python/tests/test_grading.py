"""grade_math and grade_math_batch: result fields, options, errors, threads."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import rlvr_verifier
from rlvr_verifier import default_threads, grade_math, grade_math_batch

FIELDS = {"correct", "reward", "verdict", "extracted", "elapsed_us"}


def test_result_has_the_http_fields():
    r = grade_math(r"so the answer is \boxed{\frac{1}{2}}", "0.5")
    assert set(r) == FIELDS
    assert r["correct"] is True and r["reward"] == 1.0 and r["verdict"] == "correct"
    assert r["extracted"] == r"\frac{1}{2}"
    assert isinstance(r["elapsed_us"], int)


@pytest.mark.parametrize(
    "response,gold,verdict",
    [
        (r"\boxed{8}", "7", "incorrect"),
        ("the answer is 7", "7", "no_answer"),
        (r"\boxed{10^{10^{10}}}", "7", "limit_exceeded"),
        (r"\boxed{(3, 1)}", "(1,3)", "incorrect"),
        (r"\boxed{\{3, 1\}}", r"\{1,3\}", "correct"),
    ],
)
def test_verdicts(response, gold, verdict):
    r = grade_math(response, gold)
    assert r["verdict"] == verdict
    assert r["correct"] is (verdict == "correct")
    assert r["reward"] == (1.0 if verdict == "correct" else 0.0)


def test_options_are_the_http_options():
    assert grade_math("so we get 42", "42")["verdict"] == "no_answer"
    assert grade_math("so we get 42", "42", require_boxed=False)["correct"]
    r = grade_math(r"\boxed{0.333}", r"\frac{1}{3}", float_rounding=3)
    assert r["correct"]
    assert not grade_math(r"\boxed{0.333}", r"\frac{1}{3}", float_rounding=4)["correct"]
    choice = grade_math("The answer is B.", "B", extraction=["string"], strings=["A", "B"])
    assert choice["correct"]


def test_bad_options_raise_value_error_naming_the_field():
    with pytest.raises(ValueError, match="bogus"):
        grade_math(r"\boxed{1}", "1", bogus=True)
    with pytest.raises(ValueError, match="float_rounding"):
        grade_math(r"\boxed{1}", "1", float_rounding=1000)
    with pytest.raises(ValueError):
        grade_math(r"\boxed{1}", "1", extraction=["nonsense"])


def test_reused_options_follow_the_callers_changes():
    # The last options are kept (parsed) between calls: a list the caller mutates afterwards,
    # or a bad value after good ones, must not reuse what was kept.
    strings = ["A", "B"]
    opts = dict(extraction=["string"], strings=strings, require_boxed=False)
    assert grade_math("The answer is B.", "B", **opts)["correct"]
    strings.append("C")
    assert grade_math("The answer is C.", "C", **opts)["correct"]
    strings[:] = ["A"]
    assert not grade_math("The answer is C.", "C", **opts)["correct"]
    assert grade_math(r"\boxed{0.333}", r"\frac{1}{3}", float_rounding=3)["correct"]
    with pytest.raises(ValueError, match="float_rounding"):
        grade_math(r"\boxed{0.333}", r"\frac{1}{3}", float_rounding=1000)
    assert not grade_math(r"\boxed{0.333}", r"\frac{1}{3}", float_rounding=4)["correct"]
    with pytest.raises(TypeError):
        grade_math(r"\boxed{1}", "1", float_rounding=object())


# The held-out categories the grader now handles (docs/math-grading.md), through the binding.
@pytest.mark.parametrize(
    "answer,gold,correct",
    [
        (r"0.\overline{3}", r"\frac{1}{3}", True),
        (r"0.1\overline{6}", r"\frac{1}{6}", True),
        (r"1.\overline{142857}", r"\frac{8}{7}", True),
        (r"0.\overline{3}", "0.33", False),
        (r"\sqrt{-4}", "2i", True),
        (r"\sqrt{-3}", r"i\sqrt{3}", True),
        (r"\sqrt{-4}", "2", False),
        (r"1\,000", "1000", True),
        (r"12\,345\,678", "12345678", True),
        (r"5\text{ cm}^2", "5", True),
        (r"5\,\mathrm{cm}^{2}", "5", True),
        (r"(-\infty, 2] \cup [2, \infty)", r"\mathbb{R}", True),
        (r"(-\infty, 2) \cup (2, \infty)", r"\mathbb{R}", False),
        ("(" * 250 + "1" + ")" * 250, "1", True),
    ],
)
def test_held_out_categories(answer, gold, correct):
    r = grade_math(r"\boxed{" + answer + "}", gold)
    assert r["correct"] is correct, r


def test_batch_matches_single_items_in_order():
    golds = [str(i) for i in range(200)]
    responses = [rf"\boxed{{{i if i % 3 else i + 1}}}" for i in range(200)]
    batch = grade_math_batch(responses, golds, threads=4)
    assert [r["correct"] for r in batch] == [bool(i % 3) for i in range(200)]
    single = [grade_math(r, g) for r, g in zip(responses, golds)]
    strip = lambda rs: [{k: v for k, v in r.items() if k != "elapsed_us"} for r in rs]
    assert strip(batch) == strip(single)
    assert strip(grade_math_batch(responses, golds, threads=1)) == strip(single)


def test_batch_errors():
    with pytest.raises(ValueError, match="pair up"):
        grade_math_batch(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="threads"):
        grade_math_batch(["a"], ["a"], threads=0)
    assert grade_math_batch([], []) == []
    assert default_threads() >= 1


def test_batch_releases_the_gil():
    # While a large batch grades on native threads, this Python thread keeps running.
    n = 20000
    responses = [r"so \boxed{\frac{2}{4}}"] * n
    golds = ["0.5"] * n
    done = threading.Event()
    ticks = 0
    out = []

    def grade():
        out.extend(grade_math_batch(responses, golds))
        done.set()

    t = threading.Thread(target=grade)
    t.start()
    while not done.is_set():
        ticks += 1
        done.wait(0.0005)
    t.join()
    assert len(out) == n and all(r["correct"] for r in out)
    assert ticks > 1


def test_thread_safe_from_many_threads():
    cases = [(rf"\boxed{{\frac{{{i}}}{{2}}}}", str(i / 2)) for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: grade_math(*c)["correct"], cases))
    assert all(results)


def test_version():
    assert rlvr_verifier.__version__
