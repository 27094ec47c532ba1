//! The `verifier` binary's offline grading: JSON Lines in, one result (or error) per line out,
//! in order; exit status 1 when any line was malformed.

use std::io::Write;
use std::process::{Command, Stdio};

fn grade_math(input: &str) -> (std::process::ExitStatus, Vec<serde_json::Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .args(["grade-math", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status, lines)
}

#[test]
fn grades_json_lines_in_order() {
    let input = concat!(
        r#"{"id": "a", "response": "so \\boxed{\\frac{1}{2}}", "ground_truth": "0.5"}"#,
        "\n\n",
        r#"{"id": "b", "response": "The final answer is $7$. I hope it is correct.", "ground_truth": "8", "options": {"require_boxed": false}}"#,
        "\n"
    );
    let (status, lines) = grade_math(input);
    assert!(status.success());
    assert_eq!(lines.len(), 2, "blank lines are skipped");
    assert_eq!(
        (lines[0]["id"].as_str(), lines[0]["verdict"].as_str()),
        (Some("a"), Some("correct"))
    );
    assert_eq!(
        (lines[1]["id"].as_str(), lines[1]["verdict"].as_str()),
        (Some("b"), Some("incorrect"))
    );
    assert_eq!(lines[1]["extracted"], "7");
}

#[test]
fn malformed_lines_keep_their_place_and_fail_the_run() {
    let input = concat!(
        "{not json\n",
        r#"{"response": "\\boxed{2}", "ground_truth": "2", "options": {"float_rounding": 100}}"#,
        "\n",
        r#"{"response": "\\boxed{2}", "ground_truth": "2"}"#,
        "\n"
    );
    let (status, lines) = grade_math(input);
    assert_eq!(status.code(), Some(1));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["error"]["code"], "unprocessable");
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 1:")
    );
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("float_rounding")
    );
    assert_eq!(lines[2]["verdict"], "correct");
}
