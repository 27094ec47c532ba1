//! From a run's outcome to a verdict, in the documented precedence: memory, time, the process
//! cap, output, runtime error (an uncaught `AssertionError` in assert mode is a wrong answer),
//! then the comparison or the checker's report.

use protocol::{CodeOptions, CodeVerdict, RunReport};

use super::compare;
use super::harness::Report;

use crate::sandbox::{Exit, RunOutcome};

/// `SIGXCPU`: the CPU-time rlimit.
const SIGXCPU: i32 = 24;
/// Bytes of stdout/stderr echoed in a report.
const HEAD_BYTES: usize = 4096;

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The verdict the run earns before its output is compared: `None` when it exited 0 within
/// every limit (the caller compares output then).
pub fn limits_verdict(out: &RunOutcome, assert_mode: bool) -> Option<CodeVerdict> {
    let last_err = last_line(&out.stderr);
    let died = out.exit != Exit::Code(0);
    let memory_error = died
        && (last_err.starts_with("MemoryError")
            || last_err.contains("std::bad_alloc")
            || last_err.contains("memory allocation of") && last_err.contains("failed"));
    if out.oom_killed || memory_error {
        return Some(CodeVerdict::MemoryLimit);
    }
    if out.timed_out || out.exit == Exit::Signal(SIGXCPU) {
        return Some(CodeVerdict::TimeLimit);
    }
    // A process or thread bomb that died of its refusals (`can't start new thread`, an
    // unhandled `fork` error) hit a resource cap, not a bug: the process cap guards memory.
    if out.pids_limited && died {
        return Some(CodeVerdict::MemoryLimit);
    }
    if out.stdout_truncated || out.stderr_truncated {
        return Some(CodeVerdict::OutputLimit);
    }
    if died {
        if assert_mode && last_err.starts_with("AssertionError") {
            return Some(CodeVerdict::WrongAnswer);
        }
        return Some(CodeVerdict::RuntimeError);
    }
    None
}

/// The verdict of a checked test (assert or call) that ended within its limits, from the
/// checker's report; `expected` is the call's expected JSON (assert tests have none).
pub fn checked(
    report: &Report,
    expected: Option<&serde_json::Value>,
    opts: &CodeOptions,
) -> CodeVerdict {
    match (report, expected) {
        (Report::Pass, None) => CodeVerdict::Accepted,
        (Report::Result(v), Some(e)) if compare::json_match(v, e, opts.float_rel_tol) => {
            CodeVerdict::Accepted
        }
        (Report::Error(e), _) if e == "MemoryError" => CodeVerdict::MemoryLimit,
        (Report::Error(_), _) => CodeVerdict::RuntimeError,
        (Report::Signal(SIGXCPU), _) => CodeVerdict::TimeLimit,
        (Report::Exit(c), _) if *c != 0 => CodeVerdict::RuntimeError,
        (Report::Signal(_), _) => CodeVerdict::RuntimeError,
        // A failed assert, a wrong or unserialisable result, a submission that ended (exit 0)
        // before its tests, a report of the wrong kind, or none.
        _ => CodeVerdict::WrongAnswer,
    }
}

fn head(bytes: &[u8]) -> String {
    let cut = bytes.len().min(HEAD_BYTES);
    String::from_utf8_lossy(&bytes[..cut]).into_owned()
}

/// The wire report of a run.
pub fn report(out: &RunOutcome) -> RunReport {
    let (exit_code, signal) = match out.exit {
        Exit::Code(c) => (Some(c), None),
        Exit::Signal(s) => (None, Some(s)),
        Exit::Killed => (None, Some(9)),
    };
    RunReport {
        exit_code,
        signal,
        time_ms: out.wall.as_secs_f64() * 1e3,
        cpu_ms: out.cpu.map(|d| d.as_secs_f64() * 1e3),
        memory_kb: out.memory_peak.map(|b| b / 1024),
        stdout_head: head(&out.stdout),
        stderr_head: head(&out.stderr),
        stdout_truncated: out.stdout_truncated,
        stderr_truncated: out.stderr_truncated,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outcome(exit: Exit, stderr: &str) -> RunOutcome {
        RunOutcome {
            exit,
            timed_out: false,
            oom_killed: false,
            pids_limited: false,
            stdout: vec![],
            stdout_truncated: false,
            stderr: stderr.as_bytes().to_vec(),
            stderr_truncated: false,
            wall: Duration::from_millis(5),
            cpu: None,
            memory_peak: None,
        }
    }

    #[test]
    fn precedence() {
        let mut o = outcome(Exit::Code(0), "");
        assert_eq!(limits_verdict(&o, false), None);
        o.stdout_truncated = true;
        assert_eq!(limits_verdict(&o, false), Some(CodeVerdict::OutputLimit));
        o.timed_out = true;
        assert_eq!(limits_verdict(&o, false), Some(CodeVerdict::TimeLimit));
        o.oom_killed = true;
        assert_eq!(
            limits_verdict(&o, false),
            Some(CodeVerdict::MemoryLimit),
            "an OOM kill wins even over a timeout and a clean exit"
        );
    }

    #[test]
    fn a_bomb_that_died_at_the_process_cap_is_a_limit() {
        let mut o = outcome(Exit::Code(1), "RuntimeError: can't start new thread\n");
        o.pids_limited = true;
        assert_eq!(limits_verdict(&o, false), Some(CodeVerdict::MemoryLimit));
        o.exit = Exit::Code(0);
        assert_eq!(
            limits_verdict(&o, false),
            None,
            "a bomb that handled it and exited 0"
        );
    }

    #[test]
    fn checker_reports() {
        let opts = CodeOptions::default();
        let three = serde_json::json!(3);
        assert_eq!(checked(&Report::Pass, None, &opts), CodeVerdict::Accepted);
        assert_eq!(
            checked(&Report::Pass, Some(&three), &opts),
            CodeVerdict::WrongAnswer
        );
        assert_eq!(
            checked(&Report::Result(serde_json::json!(3.0)), Some(&three), &opts),
            CodeVerdict::Accepted
        );
        assert_eq!(
            checked(&Report::Fail, None, &opts),
            CodeVerdict::WrongAnswer
        );
        assert_eq!(
            checked(&Report::Exit(0), None, &opts),
            CodeVerdict::WrongAnswer
        );
        assert_eq!(
            checked(&Report::Exit(2), None, &opts),
            CodeVerdict::RuntimeError
        );
        assert_eq!(
            checked(&Report::Missing, None, &opts),
            CodeVerdict::WrongAnswer
        );
        assert_eq!(
            checked(&Report::Error("MemoryError".into()), None, &opts),
            CodeVerdict::MemoryLimit
        );
        assert_eq!(
            checked(&Report::Error("ValueError".into()), None, &opts),
            CodeVerdict::RuntimeError
        );
    }

    #[test]
    fn errors() {
        let tb = "Traceback (most recent call last):\n  File \"x\"\nAssertionError\n";
        assert_eq!(
            limits_verdict(&outcome(Exit::Code(1), tb), true),
            Some(CodeVerdict::WrongAnswer)
        );
        assert_eq!(
            limits_verdict(&outcome(Exit::Code(1), tb), false),
            Some(CodeVerdict::RuntimeError)
        );
        assert_eq!(
            limits_verdict(&outcome(Exit::Code(1), "x\nMemoryError\n"), false),
            Some(CodeVerdict::MemoryLimit)
        );
        assert_eq!(
            limits_verdict(
                &outcome(
                    Exit::Signal(6),
                    "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n"
                ),
                false
            ),
            Some(CodeVerdict::MemoryLimit)
        );
        assert_eq!(
            limits_verdict(&outcome(Exit::Signal(SIGXCPU), ""), false),
            Some(CodeVerdict::TimeLimit)
        );
        assert_eq!(
            limits_verdict(&outcome(Exit::Code(0), "MemoryError"), false),
            None,
            "a handled MemoryError with exit 0 is not a limit"
        );
    }
}
