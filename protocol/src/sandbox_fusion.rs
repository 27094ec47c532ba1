//! SandboxFusion-compatible `POST /run_code` (and `GET /v1/ping` → `"pong"`), so verl's
//! `sandbox_fusion` reward path works unchanged against this verifier.
//!
//! Field names, defaults and statuses follow SandboxFusion's `RunCodeRequest` /
//! `RunCodeResponse` (`sandbox/server/sandbox_api.py`). Additions (`verdict`, `backend`, the
//! truncation flags) are extra fields that pydantic clients ignore.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::code::{Backend, CodeVerdict};

/// One program to compile (where needed) and run once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    non_snake_case,
    reason = "SandboxFusion's field is named memory_limit_MB"
)]
pub struct RunCodeRequest {
    /// The program.
    pub code: String,
    /// Language name: any of the verifier's language table (SandboxFusion's values, `c`, and
    /// aliases). Others, and languages whose toolchain is missing, answer `SandboxError`.
    pub language: String,
    /// Standard input. Default empty.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Compile time limit, seconds. Default 10.
    #[serde(default = "ten")]
    pub compile_timeout: f64,
    /// Run time limit (wall clock), seconds. Default 10.
    #[serde(default = "ten")]
    pub run_timeout: f64,
    /// Memory limit, MiB; -1 (the default) means the verifier's default of 1024 MiB.
    #[serde(default = "minus_one")]
    pub memory_limit_MB: i64,
    /// Extra files placed next to the program in its working directory: relative path →
    /// base64 content (`null` entries are skipped, as SandboxFusion does).
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// Files to return after the run, relative to the working directory or absolute inside
    /// the box (e.g. `/mnt/out.txt`). At most 256 names; each file at most 16 MiB and 32 MiB
    /// in all; missing files are left out, as in SandboxFusion (`files_skipped` says why).
    #[serde(default)]
    pub fetch_files: Vec<String>,
}

fn ten() -> f64 {
    10.0
}

fn minus_one() -> i64 {
    -1
}

/// Overall status of a `/run_code` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Every step finished with exit 0.
    Success,
    /// A step timed out or exited non-zero.
    Failed,
    /// The sandbox could not run the program.
    SandboxError,
}

/// Status of one step (compile or run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandStatus {
    /// The process ended (any exit status).
    Finished,
    /// The step could not run.
    Error,
    /// The step went past its time limit.
    TimeLimitExceeded,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRunResult {
    /// Step status.
    pub status: CommandStatus,
    /// Wall-clock seconds.
    pub execution_time: Option<f64>,
    /// Exit status (a signal `n` reads as `128 + n`, as from a shell).
    pub return_code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: Option<String>,
    /// Standard error (lossy UTF-8).
    pub stderr: Option<String>,
    /// Standard output hit its cap (extra field).
    #[serde(default)]
    pub stdout_truncated: bool,
    /// Standard error hit its cap (extra field).
    #[serde(default)]
    pub stderr_truncated: bool,
}

/// The `/run_code` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCodeResponse {
    /// Overall status.
    pub status: RunStatus,
    /// Why, for `SandboxError`; empty otherwise.
    pub message: String,
    /// The compile step, for compiled languages.
    pub compile_result: Option<CommandRunResult>,
    /// The run step (absent when compilation failed).
    pub run_result: Option<CommandRunResult>,
    /// Always null here (SandboxFusion names its executor pod).
    pub executor_pod_name: Option<String>,
    /// Fetched files: requested name → base64 content.
    pub files: BTreeMap<String, String>,
    /// Requested files not returned, with the reason (extra field).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_skipped: BTreeMap<String, String>,
    /// This verifier's verdict of the run (extra field), as if stdout were not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<CodeVerdict>,
    /// The sandbox that ran it (extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
}
