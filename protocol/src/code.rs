//! `POST /v1/code/judge`: run model-written programs against tests in a sandbox and turn the
//! outcome into a reward.
//!
//! A failing program is data (HTTP 200 with a [`CodeVerdict`]), never an HTTP error. Only a
//! malformed request is a 4xx, and only the verifier failing itself is a 5xx.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A batch of submissions to judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeCodeRequest {
    /// Submissions, judged independently; results keep this order.
    pub items: Vec<CodeItem>,
}

/// Results of a [`JudgeCodeRequest`], one per item, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeCodeResponse {
    /// One result per item.
    pub results: Vec<CodeResult>,
}

/// A source language: a SandboxFusion `language` value (`python`, `cpp`, `nodejs`, `go`,
/// `java`, `junit`, `R`, `D_ut`, …) or `c`, or one of its aliases.
///
/// The protocol checks only the spelling (1 to 32 ASCII letters, digits, `_`, `+`, `#` or
/// `-`): which languages exist, their aliases and how they run is data, the verifier's
/// language table (`sandbox-images/languages.toml`), which answers an unknown name with 422
/// (`/v1/code/judge`) or a `SandboxError` (`/run_code`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(Cow<'static, str>);

#[allow(
    non_upper_case_globals,
    reason = "the names read like the former enum variants at their uses"
)]
impl Language {
    /// `python`: CPython 3 (`/usr/bin/python3` in the `ns` backend, CPython 3.12 for WASI in
    /// `wasm`).
    pub const Python: Language = Language(Cow::Borrowed("python"));
    /// `c`: C (not a SandboxFusion language).
    pub const C: Language = Language(Cow::Borrowed("c"));
    /// `cpp`: C++.
    pub const Cpp: Language = Language(Cow::Borrowed("cpp"));
    /// `rust`: Rust.
    pub const Rust: Language = Language(Cow::Borrowed("rust"));

    /// The name as given (aliases are resolved by the verifier's language table).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the spelling of a language name; `None` when it cannot be one.
    pub fn parse(name: &str) -> Option<Language> {
        let name = name.trim();
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'#' | b'-'));
        ok.then(|| Language(Cow::Owned(name.to_owned())))
    }

    /// Whether this is Python (`python`, `python3` or `py`): the language of the
    /// function-call harness and of the wasm backend.
    pub fn is_python(&self) -> bool {
        matches!(self.as_str(), "python" | "python3" | "py")
    }
}

impl TryFrom<String> for Language {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Language::parse(&s).ok_or_else(|| {
            format!("language: {s:?} is not a language name (1 to 32 letters, digits, _ + # -)")
        })
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0.into_owned()
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which sandbox runs an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// `wasm` for Python when that backend is loaded, `ns` otherwise. The default.
    #[default]
    Auto,
    /// wasmtime running CPython compiled to WASI (Python only).
    Wasm,
    /// Linux namespaces, cgroups, rlimits and seccomp (every language).
    Ns,
}

/// The sandbox that actually ran an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// wasmtime + WASI.
    Wasm,
    /// Linux namespaces.
    Ns,
}

impl Backend {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Wasm => "wasm",
            Backend::Ns => "ns",
        }
    }
}

/// One test of a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CodeTest {
    /// Run with `stdin`; pass when the program exits 0 and its stdout equals
    /// `expected_stdout` (trailing whitespace per line and trailing blank lines ignored).
    Io(IoTest),
    /// HumanEval/MBPP/MultiPL-E style: run the source followed by `assert_code`. Python adds
    /// a sentinel; other languages pass on exit 0, and the test-framework languages (`pytest`,
    /// `junit`, `jest`, `go_test`) run the joined file as their test suite.
    Assert(AssertTest),
    /// Call `fn_name` (a global function, or a method of `Solution()`) with the JSON
    /// arguments; its JSON-serialised result is compared outside the sandbox (Python only).
    Call(CallTest),
}

/// A standard-input / standard-output test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoTest {
    /// Bytes fed to the program's standard input. Default empty.
    #[serde(default)]
    pub stdin: String,
    /// The expected standard output. It never enters the sandbox.
    pub expected_stdout: String,
}

/// An assert test: test code appended to the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertTest {
    /// Code appended to the source: Python `assert f(x) == y` lines, a MultiPL-E test
    /// function, or a test-framework suite.
    pub assert_code: String,
}

/// A function-call test (Python only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallTest {
    /// Function to call: a global, or a method of `Solution()` (LeetCode style).
    pub fn_name: String,
    /// JSON text: an array of positional arguments, or an object of keyword arguments.
    pub args_json: String,
    /// JSON text of the expected return value, compared outside the sandbox.
    pub expected_json: String,
}

/// How the per-test outcomes become the item's reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardMode {
    /// 1.0 only when every test passes, else 0.0. The default.
    #[default]
    Binary,
    /// Passed tests / total tests (verl's "continuous" score).
    PassRate,
}

/// Per-item judging options. Unknown keys are rejected (422).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeOptions {
    /// Reward mode. Default [`RewardMode::Binary`].
    pub reward: RewardMode,
    /// Stop after the first test that is not accepted (later tests count as failed and are
    /// not run). Default false: every test runs, so `passed` is exact.
    pub stop_on_first_failure: bool,
    /// Relative tolerance for comparing tokens that both parse as numbers in I/O tests, and
    /// numbers in function-call results. Default none: exact text comparison.
    pub float_rel_tol: Option<f64>,
}

/// One submission to judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeItem {
    /// Caller's identifier, echoed back in the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Source language.
    pub language: Language,
    /// The program. Exactly one of `source_code` and `response` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_code: Option<String>,
    /// A model response; the program is its last fenced code block (```` ```lang … ``` ````).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Tests, run in this order.
    pub tests: Vec<CodeTest>,
    /// Wall-clock limit per test run, seconds. Default 10; at most 60.
    #[serde(default = "default_time_limit_s")]
    pub time_limit_s: f64,
    /// Memory limit per run, MiB (the whole process tree). Default 1024; 16..=8192.
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: u64,
    /// Which sandbox runs the item. Default `auto`.
    #[serde(default)]
    pub backend: BackendChoice,
    /// Judging options; absent means the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<CodeOptions>,
    /// Labelled datasets (such as the conformance cases) carry their expected verdict; it is
    /// accepted so such files can be judged as they are, and never influences judging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_verdict: Option<CodeVerdict>,
    /// Other defensible verdicts of a labelled case; ignored like `expected_verdict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_verdicts: Option<Vec<CodeVerdict>>,
    /// Provenance of a labelled case; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Free-text notes of a labelled case; ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Default per-run wall-clock limit, seconds.
pub fn default_time_limit_s() -> f64 {
    10.0
}

/// Default per-run memory limit, MiB.
pub fn default_memory_limit_mb() -> u64 {
    1024
}

/// Largest accepted `time_limit_s`.
pub const MAX_TIME_LIMIT_S: f64 = 60.0;
/// Accepted `memory_limit_mb` range.
pub const MEMORY_LIMIT_MB_RANGE: std::ops::RangeInclusive<u64> = 16..=8192;

impl CodeItem {
    /// Checks the fields serde cannot: limits in range, exactly one program source, test kinds
    /// the language supports, JSON texts that parse. The message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.time_limit_s.is_finite()
            && self.time_limit_s > 0.0
            && self.time_limit_s <= MAX_TIME_LIMIT_S)
        {
            return Err(format!(
                "time_limit_s: {} is outside (0, {MAX_TIME_LIMIT_S}]",
                self.time_limit_s
            ));
        }
        if !MEMORY_LIMIT_MB_RANGE.contains(&self.memory_limit_mb) {
            return Err(format!(
                "memory_limit_mb: {} is outside {}..={}",
                self.memory_limit_mb,
                MEMORY_LIMIT_MB_RANGE.start(),
                MEMORY_LIMIT_MB_RANGE.end()
            ));
        }
        match (&self.source_code, &self.response) {
            (Some(_), Some(_)) => {
                return Err("source_code, response: give exactly one, not both".into());
            }
            (None, None) => return Err("source_code: missing (or give response)".into()),
            _ => {}
        }
        if self.tests.is_empty() {
            return Err("tests: at least one test is required".into());
        }
        if let Some(tol) = self.options.as_ref().and_then(|o| o.float_rel_tol)
            && !(tol.is_finite() && (0.0..1.0).contains(&tol))
        {
            return Err(format!("options.float_rel_tol: {tol} is outside [0, 1)"));
        }
        for (i, t) in self.tests.iter().enumerate() {
            match t {
                CodeTest::Io(_) => {}
                CodeTest::Call(_) if !self.language.is_python() => {
                    return Err(format!(
                        "tests[{i}]: function-call tests need language python, not {}",
                        self.language.as_str()
                    ));
                }
                CodeTest::Assert(_) => {}
                CodeTest::Call(c) => {
                    if !is_python_identifier(&c.fn_name) {
                        return Err(format!(
                            "tests[{i}].fn_name: {:?} is not a Python identifier",
                            c.fn_name
                        ));
                    }
                    match serde_json::from_str::<serde_json::Value>(&c.args_json) {
                        Ok(serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {}
                        Ok(_) => {
                            return Err(format!(
                                "tests[{i}].args_json: must be a JSON array or object"
                            ));
                        }
                        Err(e) => return Err(format!("tests[{i}].args_json: {e}")),
                    }
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&c.expected_json) {
                        return Err(format!("tests[{i}].expected_json: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_python_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
}

/// Outcome of a test, and of a submission (the verdict of its first test that is not
/// accepted). Listed from best to worst; precedence when several apply to one run is
/// `sandbox_error`, `compile_error`, `memory_limit`, `time_limit`, `output_limit`,
/// `runtime_error`, `wrong_answer`, `accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeVerdict {
    /// Exit 0 and the expected output.
    Accepted,
    /// Exit 0 with other output; a failed assert; a missing sentinel.
    WrongAnswer,
    /// Past the wall-clock (or CPU) limit.
    TimeLimit,
    /// The run's memory cgroup OOM-killed a process, the wasm limiter refused memory, or the
    /// program died of `MemoryError` / `std::bad_alloc`.
    MemoryLimit,
    /// Standard output or error went past its cap.
    OutputLimit,
    /// A non-zero exit or a fatal signal.
    RuntimeError,
    /// The compiler failed, timed out or ran out of memory.
    CompileError,
    /// The verifier could not run the program (retryable; not the program's fault).
    SandboxError,
}

impl CodeVerdict {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeVerdict::Accepted => "accepted",
            CodeVerdict::WrongAnswer => "wrong_answer",
            CodeVerdict::TimeLimit => "time_limit",
            CodeVerdict::MemoryLimit => "memory_limit",
            CodeVerdict::OutputLimit => "output_limit",
            CodeVerdict::RuntimeError => "runtime_error",
            CodeVerdict::CompileError => "compile_error",
            CodeVerdict::SandboxError => "sandbox_error",
        }
    }

    /// Every verdict, best first.
    pub const ALL: [CodeVerdict; 8] = [
        CodeVerdict::Accepted,
        CodeVerdict::WrongAnswer,
        CodeVerdict::TimeLimit,
        CodeVerdict::MemoryLimit,
        CodeVerdict::OutputLimit,
        CodeVerdict::RuntimeError,
        CodeVerdict::CompileError,
        CodeVerdict::SandboxError,
    ];
}

/// What one process run (a compile or a test) did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// Exit status, when the process exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The fatal signal, when it was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock time, milliseconds.
    pub time_ms: f64,
    /// CPU time of the whole process tree, milliseconds, where the backend measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Peak memory of the whole process tree, KiB, where the backend measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_kb: Option<u64>,
    /// The first bytes of standard output (lossy UTF-8, at most 4 KiB).
    pub stdout_head: String,
    /// The first bytes of standard error (lossy UTF-8, at most 4 KiB).
    pub stderr_head: String,
    /// Standard output reached its cap and the run was stopped.
    pub stdout_truncated: bool,
    /// Standard error reached its cap and the run was stopped.
    pub stderr_truncated: bool,
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestResult {
    /// This test's verdict.
    pub verdict: CodeVerdict,
    /// The run behind it.
    #[serde(flatten)]
    pub run: RunReport,
}

/// The result of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeResult {
    /// The item's `id`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The verdict of the first test that was not accepted (or `accepted`).
    pub verdict: CodeVerdict,
    /// The reward per the item's [`RewardMode`].
    pub reward: f64,
    /// Tests accepted.
    pub passed: usize,
    /// Tests in the item.
    pub total: usize,
    /// The compile step, for compiled languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<RunReport>,
    /// Per-test results in order (fewer than `total` after `stop_on_first_failure` or a
    /// compile error).
    pub tests: Vec<TestResult>,
    /// The sandbox that ran the item.
    pub backend: Backend,
    /// Why, for `sandbox_error` and `compile_error` (e.g. "no Rust toolchain is readable").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Under `backend: auto`: why this Python item was judged on `ns` rather than `wasm`,
    /// either a feature WASI lacks that the source uses (decided before any run, e.g.
    /// "imports subprocess") or a wasm run that ended in a way WASI can cause (decided after
    /// it, e.g. "wasm: runtime_error (OSError)"); `backend` is then `ns` and its verdict stands.
    /// Absent when the first choice judged the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Wall-clock time for the whole item, microseconds.
    pub elapsed_us: u64,
}
