//! Code problems in the row layouts RLVR datasets use, mapped onto the verifier's own test
//! format ([`protocol::CodeTest`]): no second test format.
//!
//! Where the tests are read from, first match wins:
//!
//! * `reward_model.ground_truth` (or a top-level `ground_truth`, or APPS' `input_output`), a
//!   JSON object or a string holding one (verl, PRIME, DeepCoder, TACO/APPS/CodeContests
//!   conversions):
//!   * `inputs` + `outputs`: standard-input → standard-output tests; a list of lines is joined
//!     by newlines;
//!   * `fn_name` + `inputs` + `outputs`: function-call tests (LeetCode/TACO style, Python
//!     only): each input is the list of positional arguments (an object: keyword arguments;
//!     a string: one JSON argument per line, LiveCodeBench's layout). Where *every* output is
//!     a one-element list, the list is APPS/TACO's wrapper and its element is the expected
//!     value (verl's `prime_code` accepts either);
//!   * `tests`: the verifier's tests as they are (`{"stdin", "expected_stdout"}`,
//!     `{"assert_code"}`, `{"fn_name", "args_json", "expected_json"}`);
//!   * `test` + `entry_point`, or `test_list`: as below;
//! * a JSON list of `{"input", "output", "testtype"}` (DeepCoder's LiveCodeBench rows;
//!   `testtype` `stdin` (default) or `functional`, the function named by `fn_name` in the
//!   row's `metadata`);
//! * the row itself: HumanEval (`test` defining `check(candidate)`, and `entry_point`: one
//!   assert test `test` + `check(entry_point)`) or MBPP (`test_list`: one assert test per
//!   assert, each after `test_imports` and `test_setup_code` where given).
//!
//! `language` (default `python`) and the limits `time_limit_s` / `memory_limit_mb` may be
//! given in the row or in the ground-truth object; absent limits take `[reward.code]`'s.
//! Every error names the field it is about.

use protocol::{AssertTest, CallTest, CodeTest, IoTest, Language};
use serde_json::Value;

use super::CodeGold;

/// The code tests of row `row`: `Ok(None)` when it has no code layout at all (a math row),
/// an error naming the field when a code layout is malformed. `declared_code`: the row is
/// known to be code (by its source or the config), so a ground-truth string that is not
/// valid JSON is an error; otherwise it is a math answer (`{1, 2}`, say).
pub(super) fn code_gold(row: &Value, declared_code: bool) -> Result<Option<CodeGold>, String> {
    let sources = [
        (
            "reward_model.ground_truth",
            &row["reward_model"]["ground_truth"],
        ),
        ("ground_truth", &row["ground_truth"]),
        ("input_output", &row["input_output"]),
    ];
    for (field, gt) in sources {
        let parsed;
        let gt = match gt {
            Value::String(s) if looks_like_json(s) => match serde_json::from_str::<Value>(s) {
                Ok(v) => {
                    parsed = v;
                    &parsed
                }
                Err(e) if declared_code => return Err(format!("{field}: not valid JSON: {e}")),
                Err(_) => continue,
            },
            other => other,
        };
        if let Some(tests) = tests_of(field, gt, row)? {
            let holder = if gt.is_object() { gt } else { &Value::Null };
            return finish(tests, row, holder, field).map(Some);
        }
    }
    match tests_of_assert_layout("", row)? {
        Some(tests) => finish(tests, row, &Value::Null, "").map(Some),
        None => Ok(None),
    }
}

/// A string that may hold a JSON object or list.
fn looks_like_json(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

/// The tests a ground-truth value describes, if it describes any.
fn tests_of(field: &str, gt: &Value, row: &Value) -> Result<Option<Vec<CodeTest>>, String> {
    match gt {
        Value::Object(o) => {
            if let Some(t) = o.get("tests") {
                let tests: Vec<CodeTest> =
                    serde_json::from_value(t.clone()).map_err(|e| format!("{field}.tests: {e}"))?;
                return Ok(Some(tests));
            }
            if o.contains_key("inputs") || o.contains_key("outputs") {
                return io_or_call(field, gt).map(Some);
            }
            tests_of_assert_layout(&format!("{field}."), gt)
        }
        Value::Array(items)
            if items
                .first()
                .is_some_and(|i| i.get("input").is_some() || i.get("output").is_some()) =>
        {
            listed_tests(field, items, row).map(Some)
        }
        _ => Ok(None),
    }
}

/// `inputs`/`outputs`, with `fn_name` for call tests.
fn io_or_call(field: &str, gt: &Value) -> Result<Vec<CodeTest>, String> {
    let list = |key: &str| -> Result<&Vec<Value>, String> {
        gt[key]
            .as_array()
            .ok_or_else(|| format!("{field}.{key}: missing or not a list"))
    };
    let (inputs, outputs) = (list("inputs")?, list("outputs")?);
    if inputs.len() != outputs.len() {
        return Err(format!(
            "{field}.outputs: {} outputs for {} inputs",
            outputs.len(),
            inputs.len()
        ));
    }
    if inputs.is_empty() {
        return Err(format!("{field}.inputs: no tests"));
    }
    let fn_name = match &gt["fn_name"] {
        Value::String(name) if !name.trim().is_empty() => Some(name.trim()),
        Value::String(_) | Value::Null => None,
        other => return Err(format!("{field}.fn_name: expected a string, got {other}")),
    };
    let wrapped = outputs
        .iter()
        .all(|o| o.as_array().is_some_and(|a| a.len() == 1));
    inputs
        .iter()
        .zip(outputs)
        .enumerate()
        .map(|(i, (input, output))| {
            Ok(match fn_name {
                Some(name) => CodeTest::Call(CallTest {
                    fn_name: name.to_string(),
                    args_json: call_args(&format!("{field}.inputs[{i}]"), input)?,
                    expected_json: if wrapped { &output[0] } else { output }.to_string(),
                }),
                None => CodeTest::Io(IoTest {
                    stdin: stream_text(&format!("{field}.inputs[{i}]"), input)?,
                    expected_stdout: stream_text(&format!("{field}.outputs[{i}]"), output)?,
                }),
            })
        })
        .collect()
}

/// DeepCoder/LiveCodeBench tests: `[{"input", "output", "testtype"}]`.
fn listed_tests(field: &str, items: &[Value], row: &Value) -> Result<Vec<CodeTest>, String> {
    let fn_name = metadata_fn_name(row)?;
    items
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = format!("{field}[{i}]");
            let input = t
                .get("input")
                .ok_or_else(|| format!("{at}.input: missing"))?;
            let output = t
                .get("output")
                .ok_or_else(|| format!("{at}.output: missing"))?;
            match t["testtype"].as_str().unwrap_or("stdin") {
                "stdin" => Ok(CodeTest::Io(IoTest {
                    stdin: stream_text(&format!("{at}.input"), input)?,
                    expected_stdout: stream_text(&format!("{at}.output"), output)?,
                })),
                "functional" => {
                    let name = fn_name.clone().ok_or_else(|| {
                        format!("{at}.testtype: functional tests need metadata.func_name")
                    })?;
                    let expected = match output {
                        Value::String(s) => serde_json::from_str::<Value>(s)
                            .map_err(|e| format!("{at}.output: not JSON: {e}"))?,
                        v => v.clone(),
                    };
                    Ok(CodeTest::Call(CallTest {
                        fn_name: name,
                        args_json: call_args(&format!("{at}.input"), input)?,
                        expected_json: expected.to_string(),
                    }))
                }
                other => Err(format!(
                    "{at}.testtype: {other:?} is neither stdin nor functional"
                )),
            }
        })
        .collect()
}

/// `metadata.func_name` (an object or a JSON string, as LiveCodeBench stores it).
fn metadata_fn_name(row: &Value) -> Result<Option<String>, String> {
    let parsed;
    let meta = match &row["metadata"] {
        Value::String(s) if !s.trim().is_empty() => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("metadata: not valid JSON: {e}"))?;
            &parsed
        }
        v => v,
    };
    Ok(meta["func_name"]
        .as_str()
        .or_else(|| meta["fn_name"].as_str())
        .map(str::to_string))
}

/// HumanEval (`test` + `entry_point`) or MBPP (`test_list`) fields of `obj`, named with
/// `prefix`.
fn tests_of_assert_layout(prefix: &str, obj: &Value) -> Result<Option<Vec<CodeTest>>, String> {
    if let Some(list) = obj.get("test_list").filter(|v| !v.is_null()) {
        let asserts = list
            .as_array()
            .ok_or_else(|| format!("{prefix}test_list: not a list"))?;
        if asserts.is_empty() {
            return Err(format!("{prefix}test_list: no tests"));
        }
        let mut head = String::new();
        for key in ["test_imports", "test_setup_code"] {
            match &obj[key] {
                Value::String(s) => head.push_str(s),
                Value::Array(lines) => {
                    for l in lines {
                        head.push_str(l.as_str().ok_or_else(|| {
                            format!("{prefix}{key}: holds something other than text")
                        })?);
                        head.push('\n');
                    }
                }
                Value::Null => {}
                _ => return Err(format!("{prefix}{key}: not text")),
            }
            if !head.is_empty() && !head.ends_with('\n') {
                head.push('\n');
            }
        }
        return asserts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let a = a
                    .as_str()
                    .ok_or_else(|| format!("{prefix}test_list[{i}]: not text"))?;
                Ok(CodeTest::Assert(AssertTest {
                    assert_code: format!("{head}{a}\n"),
                }))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Some);
    }
    match (obj.get("test"), obj.get("entry_point")) {
        (Some(Value::String(test)), Some(Value::String(entry))) => {
            if entry.trim().is_empty() {
                return Err(format!("{prefix}entry_point: empty"));
            }
            Ok(Some(vec![CodeTest::Assert(AssertTest {
                assert_code: format!("{test}\ncheck({})\n", entry.trim()),
            })]))
        }
        (Some(Value::String(_)), _) => Err(format!(
            "{prefix}entry_point: missing (HumanEval's `test` needs the function it checks)"
        )),
        _ => Ok(None),
    }
}

/// Standard input or output text: a string, a list of lines, or a number.
fn stream_text(field: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Array(lines) => lines
            .iter()
            .map(|l| match l {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(format!("{field}: a line is neither text nor a number")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|l| l.join("\n")),
        other => Err(format!("{field}: expected text, got {other}")),
    }
}

/// Call arguments as JSON text: a list (positional), an object (keywords), or a string of
/// one JSON value per line.
fn call_args(field: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Array(_) | Value::Object(_) => Ok(v.to_string()),
        Value::String(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).map_err(|e| format!("{field}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(|args| Value::Array(args).to_string()),
        other => Err(format!(
            "{field}: expected a list of arguments, got {other}"
        )),
    }
}

/// Adds the language and limits (row, then the ground-truth object) to the tests.
fn finish(
    tests: Vec<CodeTest>,
    row: &Value,
    holder: &Value,
    field: &str,
) -> Result<CodeGold, String> {
    if tests.is_empty() {
        return Err(format!("{}: no tests", non_empty(field)));
    }
    let pick = |key: &str| -> (String, &Value) {
        if !row[key].is_null() {
            (key.to_string(), &row[key])
        } else {
            (format!("{field}.{key}"), &holder[key])
        }
    };
    let language = match pick("language") {
        (_, Value::Null) => Language::Python,
        (name, Value::String(s)) => {
            Language::parse(s).ok_or_else(|| format!("{name}: {s:?} is not a language name"))?
        }
        (name, other) => return Err(format!("{name}: expected text, got {other}")),
    };
    if !language.is_python() && tests.iter().any(|t| matches!(t, CodeTest::Call(_))) {
        return Err(format!(
            "{}: function-call tests need language python, not {language}",
            non_empty(field)
        ));
    }
    let time_limit_s = match pick("time_limit_s") {
        (_, Value::Null) => None,
        (name, v) => Some(
            v.as_f64()
                .filter(|t| *t > 0.0 && *t <= protocol::MAX_TIME_LIMIT_S)
                .ok_or_else(|| {
                    format!(
                        "{name}: {v} is not a number of seconds in (0, {}]",
                        protocol::MAX_TIME_LIMIT_S
                    )
                })?,
        ),
    };
    let memory_limit_mb = match pick("memory_limit_mb") {
        (_, Value::Null) => None,
        (name, v) => Some(
            v.as_u64()
                .filter(|m| protocol::MEMORY_LIMIT_MB_RANGE.contains(m))
                .ok_or_else(|| format!("{name}: {v} is not a whole MiB count in 16..=8192"))?,
        ),
    };
    Ok(CodeGold {
        language,
        tests,
        time_limit_s,
        memory_limit_mb,
    })
}

fn non_empty(field: &str) -> &str {
    if field.is_empty() { "test" } else { field }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn io(stdin: &str, out: &str) -> CodeTest {
        CodeTest::Io(IoTest {
            stdin: stdin.into(),
            expected_stdout: out.into(),
        })
    }

    fn call(f: &str, args: &str, expected: &str) -> CodeTest {
        CodeTest::Call(CallTest {
            fn_name: f.into(),
            args_json: args.into(),
            expected_json: expected.into(),
        })
    }

    fn tests(row: serde_json::Value) -> Vec<CodeTest> {
        code_gold(&row, false).unwrap().expect("a code row").tests
    }

    #[test]
    fn verl_prime_ground_truth_as_string_or_object() {
        let gt = json!({"inputs": ["1 2\n", ["3", "4"]], "outputs": ["3\n", 7]});
        let want = vec![io("1 2\n", "3\n"), io("3\n4", "7")];
        assert_eq!(
            tests(json!({"reward_model": {"ground_truth": gt.to_string()}})),
            want
        );
        assert_eq!(tests(json!({"reward_model": {"ground_truth": gt}})), want);
        // APPS' own column.
        assert_eq!(tests(json!({"input_output": gt.to_string()})), want);
        let g = code_gold(&json!({"ground_truth": gt}), false)
            .unwrap()
            .unwrap();
        assert_eq!(g.language, Language::Python);
        assert_eq!((g.time_limit_s, g.memory_limit_mb), (None, None));
    }

    #[test]
    fn call_tests_unwrap_apps_one_element_outputs() {
        let gt = json!({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]]});
        assert_eq!(
            tests(json!({"reward_model": {"ground_truth": gt}})),
            vec![call("add", "[1,2]", "3"), call("add", "[3,4]", "7")]
        );
        // Not every output wrapped: taken as they are (a list result).
        let gt = json!({"fn_name": "f", "inputs": [[1], {"x": 2}], "outputs": [[1, 2], [3]]});
        assert_eq!(
            tests(json!({"ground_truth": gt})),
            vec![call("f", "[1]", "[1,2]"), call("f", "{\"x\":2}", "[3]")]
        );
    }

    #[test]
    fn deepcoder_lists_humaneval_mbpp_and_native_tests() {
        let row = json!({
            "reward_model": {"ground_truth": json!([
                {"input": "5\n", "output": "25\n", "testtype": "stdin"},
                {"input": "[1, 2]\n3", "output": "6", "testtype": "functional"}
            ]).to_string()},
            "metadata": "{\"func_name\": \"total\"}"
        });
        assert_eq!(
            tests(row),
            vec![io("5\n", "25\n"), call("total", "[[1,2],3]", "6")]
        );
        let he = json!({"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"});
        assert_eq!(
            tests(he),
            vec![CodeTest::Assert(AssertTest {
                assert_code: "def check(candidate):\n    assert candidate(1) == 2\n\ncheck(inc)\n"
                    .into()
            })]
        );
        let mbpp = json!({"test_list": ["assert f(1) == 1", "assert f(2) == 4"], "test_imports": ["import math"]});
        assert_eq!(
            tests(mbpp),
            vec![
                CodeTest::Assert(AssertTest {
                    assert_code: "import math\nassert f(1) == 1\n".into()
                }),
                CodeTest::Assert(AssertTest {
                    assert_code: "import math\nassert f(2) == 4\n".into()
                }),
            ]
        );
        let native = json!({"reward_model": {"ground_truth": {"tests": [{"stdin": "", "expected_stdout": "1"}]}},
                            "language": "cpp", "time_limit_s": 2, "memory_limit_mb": 128});
        let g = code_gold(&native, false).unwrap().unwrap();
        assert_eq!(g.tests, vec![io("", "1")]);
        assert_eq!(g.language.as_str(), "cpp");
        assert_eq!((g.time_limit_s, g.memory_limit_mb), (Some(2.0), Some(128)));
    }

    #[test]
    fn math_rows_have_no_code_layout() {
        for row in [
            json!({"reward_model": {"ground_truth": "42"}}),
            json!({"reward_model": {"ground_truth": "[0, 1)"}}),
            json!({"reward_model": {"ground_truth": "{1, 2}"}}),
            json!({"reward_model": {"ground_truth": "[1, 2]"}}),
            json!({"answer": 9}),
        ] {
            assert_eq!(code_gold(&row, false).unwrap(), None, "{row}");
        }
    }

    #[test]
    fn malformed_rows_name_the_field() {
        let cases = [
            (
                json!({"reward_model": {"ground_truth": "{\"inputs\": [\"1\"], "}}),
                "reward_model.ground_truth: not valid JSON",
            ),
            (
                json!({"reward_model": {"ground_truth": {"inputs": ["1", "2"], "outputs": ["1"]}}}),
                "reward_model.ground_truth.outputs: 1 outputs for 2 inputs",
            ),
            (
                json!({"reward_model": {"ground_truth": {"inputs": ["1"]}}}),
                "reward_model.ground_truth.outputs: missing or not a list",
            ),
            (
                json!({"ground_truth": {"fn_name": 3, "inputs": [[1]], "outputs": [1]}}),
                "ground_truth.fn_name: expected a string",
            ),
            (
                json!({"ground_truth": {"fn_name": "f", "inputs": [1], "outputs": [1]}}),
                "ground_truth.inputs[0]: expected a list of arguments",
            ),
            (
                json!({"test": "def check(c): pass"}),
                "entry_point: missing",
            ),
            (json!({"test_list": []}), "test_list: no tests"),
            (
                json!({"test_list": ["assert 1"], "language": "no such!"}),
                "language: \"no such!\" is not a language name",
            ),
            (
                json!({"test_list": ["assert 1"], "time_limit_s": 600}),
                "time_limit_s: 600 is not a number of seconds",
            ),
            (
                json!({"test_list": ["assert 1"], "memory_limit_mb": 1}),
                "memory_limit_mb: 1 is not a whole MiB count",
            ),
            (
                json!({"ground_truth": {"fn_name": "f", "inputs": [[1]], "outputs": [1]}, "language": "cpp"}),
                "function-call tests need language python",
            ),
            (
                json!({"reward_model": {"ground_truth": [{"input": "1", "output": "1", "testtype": "functional"}]}}),
                "reward_model.ground_truth[0].testtype: functional tests need metadata.func_name",
            ),
            (
                json!({"reward_model": {"ground_truth": {"tests": [{"stdin": "1"}]}}}),
                "reward_model.ground_truth.tests:",
            ),
        ];
        for (row, want) in cases {
            let err = code_gold(&row, true).unwrap_err();
            assert!(err.starts_with(want) || err.contains(want), "{row}: {err}");
        }
    }
}
