//! Trusted code around the submission (reward integrity): the per-run sentinel of assert
//! tests, the function-call wrapper, and taking the program out of a model response.
//!
//! Assert tests run `source + "\n\n" + assert_code` and then print a random sentinel; the
//! test passes only with exit 0 and the sentinel as the last stdout line, which defeats
//! `sys.exit(0)`, `os._exit(0)` and `atexit` hacks placed before the asserts. Caveat: the
//! sentinel is in the program text, so a targeted attack can read and print it; prefer I/O
//! and function-call tests, whose expected values never enter the box. Function-call tests
//! print the JSON of the result after the sentinel and are compared outside, so an object
//! whose `__eq__` is always true fails to serialise instead of passing.

use std::fs::File;
use std::io::Read;

/// A fresh 128-bit random sentinel line.
pub fn sentinel() -> String {
    let mut b = [0u8; 16];
    let ok = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        // No /dev/urandom: fall back to the clock and address-space randomness.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let addr = &b as *const _ as usize as u128;
        b = (t ^ (addr << 64)).to_le_bytes();
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("__rlvr_sentinel_{hex}__")
}

/// The program of an assert test.
pub fn assert_program(source: &str, assert_code: &str, sentinel: &str) -> String {
    format!(
        "{source}\n\n{assert_code}\n\nimport sys as _rlvr_sys\n_rlvr_sys.stdout.flush()\nprint({sentinel:?}, flush=True)\n"
    )
}

/// The program of a function-call test: arguments arrive as JSON on stdin; the result's
/// JSON follows the sentinel on the last line.
pub fn call_program(source: &str, fn_name: &str, sentinel: &str) -> String {
    format!(
        r#"{source}


def _rlvr_call():
    import json as _json, sys as _sys
    _args = _json.loads(_sys.stdin.read())
    _fn = globals().get({fn_name:?})
    if _fn is None and "Solution" in globals():
        _fn = getattr(globals()["Solution"](), {fn_name:?})
    if _fn is None:
        raise NameError("function {fn_name} is not defined")
    _res = _fn(**_args) if isinstance(_args, dict) else _fn(*_args)
    _text = _json.dumps(_res)
    _sys.stdout.flush()
    _sys.stdout.write("\n" + {sentinel:?} + _text + "\n")
    _sys.stdout.flush()


_rlvr_call()
"#
    )
}

/// The result JSON of a function-call run: the text after the sentinel on the last
/// non-empty stdout line.
pub fn call_result(stdout: &str, sentinel: &str) -> Option<serde_json::Value> {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let json = last.strip_prefix(sentinel)?;
    serde_json::from_str(json).ok()
}

/// Whether an assert run's stdout ends with the sentinel line.
pub fn ends_with_sentinel(stdout: &str, sentinel: &str) -> bool {
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_end() == sentinel)
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
    fn sentinels_differ() {
        let (a, b) = (sentinel(), sentinel());
        assert_ne!(a, b);
        assert!(a.len() > 40);
    }

    #[test]
    fn sentinel_must_be_last() {
        let s = "__rlvr_sentinel_ab__";
        assert!(ends_with_sentinel(&format!("x\n{s}\n"), s));
        assert!(!ends_with_sentinel(&format!("{s}\nextra\n"), s));
        assert!(!ends_with_sentinel("", s));
    }

    #[test]
    fn call_result_reads_the_last_line() {
        let s = "__S__";
        assert_eq!(
            call_result("noise\n__S__[1, 2]\n", s),
            Some(serde_json::json!([1, 2]))
        );
        assert_eq!(call_result("__S__[1]\nlater\n", s), None);
    }

    #[test]
    fn code_blocks() {
        let r = "text\n```python\nprint(1)\n```\nmore\n```py\nprint(2)\nprint(3)\n```\n";
        assert_eq!(last_code_block(r).as_deref(), Some("print(2)\nprint(3)\n"));
        assert_eq!(last_code_block("no code"), None);
        assert_eq!(last_code_block("```\nunclosed"), None);
    }
}
