"""Code-task ground truths as the verifier's tests (``POST /v1/code/judge``).

Accepted shapes (a dict, or its JSON text):

* verl / PRIME / DeepCoder: ``{"inputs": [...], "outputs": [...], "fn_name"?: str}``;
  with ``fn_name`` each input is the call's arguments (a list, or JSON values one per line),
  and each output the expected return value (JSON text or a value).
* verl's asserts: ``{"assert_case": ["assert f(1) == 2", ...]}`` (HumanEval/MBPP style).
* open-r1's ``verification_info``: ``{"language"?: str, "test_cases": [{"input", "output"}]}``.
* the verifier's own test list: ``[{"stdin", "expected_stdout"} | {"assert_code"} |
  {"fn_name", "args_json", "expected_json"}, ...]``.
"""

import json
from typing import Any, Dict, List, Optional, Tuple, Union

__all__ = ["tests_from_ground_truth", "is_code_ground_truth"]

_CODE_KEYS = ("inputs", "assert_case", "test_cases")


def _load(ground_truth: Union[str, Dict[str, Any], List[Any]]) -> Any:
    if isinstance(ground_truth, (bytes, bytearray)):
        ground_truth = ground_truth.decode()
    if isinstance(ground_truth, str):
        return json.loads(ground_truth)
    return ground_truth


def is_code_ground_truth(ground_truth: Any) -> bool:
    """Does ``ground_truth`` look like tests (rather than a math answer)?"""
    if isinstance(ground_truth, str):
        s = ground_truth.lstrip()
        if not s.startswith(("{", "[")):
            return False
        try:
            ground_truth = json.loads(s)
        except ValueError:
            return False
    if isinstance(ground_truth, dict):
        return any(k in ground_truth for k in _CODE_KEYS)
    if isinstance(ground_truth, list):
        return bool(ground_truth) and all(
            isinstance(t, dict) and ("expected_stdout" in t or "assert_code" in t or "fn_name" in t)
            for t in ground_truth
        )
    return False


def _text(v: Any) -> str:
    if isinstance(v, list):
        return "\n".join(str(x) for x in v)
    return v if isinstance(v, str) else json.dumps(v)


def _call_args(inp: Any) -> List[Any]:
    if isinstance(inp, list):
        return inp
    if isinstance(inp, str):
        return [json.loads(line) for line in inp.splitlines() if line.strip()]
    return [inp]


def _expected_json(out: Any) -> str:
    if isinstance(out, str):
        try:
            json.loads(out)
            return out
        except ValueError:
            return json.dumps(out)
    return json.dumps(out)


def tests_from_ground_truth(
    ground_truth: Union[str, Dict[str, Any], List[Any]],
) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """The tests, and the language the ground truth names (or None). Raises ``ValueError``
    for a shape it does not know."""
    gt = _load(ground_truth)
    if isinstance(gt, list):
        return gt, None
    if not isinstance(gt, dict):
        raise ValueError(f"code ground truth must be a JSON object or list, not {type(gt).__name__}")
    language = gt.get("language")
    asserts = gt.get("assert_case") or []
    if asserts:
        return [{"assert_code": a} for a in asserts], language
    if "test_cases" in gt:
        cases = gt["test_cases"]
        return [
            {"stdin": _text(c.get("input", "")), "expected_stdout": _text(c.get("output", ""))}
            for c in cases
        ], language
    inputs, outputs = gt.get("inputs"), gt.get("outputs")
    if inputs is None or outputs is None:
        raise ValueError("code ground truth needs inputs and outputs, assert_case or test_cases")
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = gt.get("fn_name")
    if fn_name:
        return [
            {
                "fn_name": fn_name,
                "args_json": json.dumps(_call_args(i)),
                "expected_json": _expected_json(o),
            }
            for i, o in zip(inputs, outputs)
        ], language
    return [
        {"stdin": _text(i), "expected_stdout": _text(o)} for i, o in zip(inputs, outputs)
    ], language
