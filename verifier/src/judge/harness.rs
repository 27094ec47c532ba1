//! Trusted code around the submission (reward integrity): the checker of assert and
//! function-call tests, and taking the program out of a model response.
//!
//! Assert and call tests never run the test code in the submission's process. The judge's
//! `check.py` (bound read-only at [`CHECK_INSIDE`]) runs it in a trusted checker that reaches
//! the submission only through a runner answering with plain, type-checked data (see the
//! script's header); on Linux the checker forks the runner inside the box and hides its memory
//! (non-dumpable), on wasm they are two instances the host links. The test code and expected
//! values enter only the checker, over its standard input; the verdict is the checker's last
//! `R ` line on its standard output, which the submission cannot write. So printing a secret,
//! `sys.exit(0)`, `os._exit(0)`, `atexit`, an always-true `__eq__` or a redefined builtin
//! earns nothing.
//!
//! Caveat: functions of the submission that the test code itself calls (a helper such as
//! HumanEval's `poly` or `encode_cyclic`, defined by the prompt) run as the submission defines
//! them; a submission that redefines them changes what the test checks.

/// The checker script.
pub const CHECK_PY: &str = include_str!("check.py");
/// Where the checker script is inside the box.
pub const CHECK_INSIDE: &str = "/judge/check.py";
/// Where the directory holding the checker is inside the box.
pub const JUDGE_DIR_INSIDE: &str = "/judge";

/// The checker's input for an assert test.
pub fn assert_spec(assert_code: &str) -> Vec<u8> {
    serde_json::json!({"mode": "assert", "code": assert_code})
        .to_string()
        .into_bytes()
}

/// The checker's input for a function-call test (`args_json`: a JSON array of positional
/// arguments or an object of keyword arguments).
pub fn call_spec(fn_name: &str, args_json: &str) -> Vec<u8> {
    serde_json::json!({"mode": "call", "fn": fn_name, "args": args_json})
        .to_string()
        .into_bytes()
}

/// The command of a checked test: the box's Python on the checker.
pub fn check_argv(python: &str) -> Vec<String> {
    [python, "-s", "-B", CHECK_INSIDE, "fork"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// What the checker reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Every assert held.
    Pass,
    /// An assert failed, or the test met an object where it needed plain data.
    Fail,
    /// The test raised this exception (the submission's, re-raised by type name, or its own).
    Error(String),
    /// The submission's process ended with this status before the test was done.
    Exit(i32),
    /// The submission's process was killed by this signal before the test was done.
    Signal(i32),
    /// The function-call result, as JSON.
    Result(serde_json::Value),
    /// No (readable) report: the checker did not finish.
    Missing,
}

/// The checker's report: its last `R ` line.
pub fn report(stdout: &str) -> Report {
    let Some(line) = stdout.lines().rev().find_map(|l| l.strip_prefix("R ")) else {
        return Report::Missing;
    };
    let (word, detail) = line.split_once(' ').unwrap_or((line, ""));
    let detail = detail.trim();
    match word {
        "pass" => Report::Pass,
        "fail" => Report::Fail,
        "error" => Report::Error(detail.to_owned()),
        "exit" => detail.parse().map_or(Report::Missing, Report::Exit),
        "signal" => detail.parse().map_or(Report::Missing, Report::Signal),
        "result" => serde_json::from_str(detail).map_or(Report::Missing, Report::Result),
        _ => Report::Missing,
    }
}

/// The last fenced code block of a model response (```` ```lang ```` … ```` ``` ````), or
/// `None` when it has none.
pub fn last_code_block(response: &str) -> Option<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in response.lines() {
        let t = line.trim_start();
        match current.as_mut() {
            None if t.starts_with("```") => current = Some(Vec::new()),
            None => {}
            Some(_) if t.trim_end() == "```" => {
                if let Some(b) = current.take() {
                    blocks.push(b.join("\n"));
                }
            }
            Some(b) => b.push(line),
        }
    }
    blocks.pop().map(|b| b + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_report_line_counts() {
        assert_eq!(report("R fail AssertionError\nR pass \n"), Report::Pass);
        assert_eq!(report("noise\nR exit 3\n"), Report::Exit(3));
        assert_eq!(report("R signal 9\n"), Report::Signal(9));
        assert_eq!(
            report("R result [1, 2]\n"),
            Report::Result(serde_json::json!([1, 2]))
        );
        assert_eq!(
            report("R error MemoryError\n"),
            Report::Error("MemoryError".into())
        );
        assert_eq!(report("pass\n"), Report::Missing);
        assert_eq!(report("R result [1,\n"), Report::Missing);
    }

    #[test]
    fn specs_are_one_json_line() {
        let s = assert_spec("assert f(1) == 2\nassert f(2) == 3\n");
        assert!(!s.contains(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&call_spec("f", "[1]")).unwrap();
        assert_eq!(v["args"], "[1]");
    }

    #[test]
    fn code_blocks() {
        let r = "text\n```python\nprint(1)\n```\nmore\n```py\nprint(2)\nprint(3)\n```\n";
        assert_eq!(last_code_block(r).as_deref(), Some("print(2)\nprint(3)\n"));
        assert_eq!(last_code_block("no code"), None);
        assert_eq!(last_code_block("```\nunclosed"), None);
    }
}
