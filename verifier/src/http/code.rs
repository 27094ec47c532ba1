//! `POST /v1/code/judge` (batch judging), SandboxFusion-compatible `POST /run_code` and
//! `GET /v1/ping`.
//!
//! `/run_code` follows SandboxFusion's runners: every language of the verifier's language
//! table; the program runs in its working directory next to `files` (relative paths);
//! `fetch_files` come back base64-encoded after the run; a language SandboxFusion compiles
//! inside its run step (`csharp`) reports a failed compile as the run. Differences: the box
//! has no network but its own loopback, and files are size-capped.
//!
//! Every item runs off the async threads while holding a CPU permit, so the batch's items run
//! in parallel within the concurrency budget and a slow program never stalls the acceptor.
//! A panic while judging fails that request only (500); the judge holds no state a panic
//! could leave half-updated beyond counters, hence `AssertUnwindSafe`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use protocol::sandbox_fusion::{
    CommandRunResult, CommandStatus, RunCodeRequest, RunCodeResponse, RunStatus,
};
use protocol::{
    CodeItem, CodeResult, CodeTest, CodeVerdict, JudgeCodeRequest, JudgeCodeResponse, Language,
    MAX_TIME_LIMIT_S, MEMORY_LIMIT_MB_RANGE,
};

use super::error::AppError;
use super::json::AppJson;
use super::{AppState, join_all_ordered};
use crate::judge::{Judge, RunOnce, verdict};
use crate::sandbox::{Exit, RunOutcome};

fn judge_of(state: &AppState) -> Result<Arc<Judge>, AppError> {
    state
        .judge
        .clone()
        .ok_or_else(|| AppError::Unavailable("code judging is not enabled on this verifier".into()))
}

/// Checks the request-level limits of a batch (422 naming the limit), and the languages
/// against the judge's table when judging is enabled.
fn check_limits(state: &AppState, items: &[CodeItem]) -> Result<(), AppError> {
    let l = &state.limits;
    if items.len() > l.max_code_items {
        return Err(AppError::Unprocessable(format!(
            "items: {} items exceed the batch limit of {} (max_code_items)",
            items.len(),
            l.max_code_items
        )));
    }
    let mut stdin_total = 0usize;
    for (i, item) in items.iter().enumerate() {
        item.validate()
            .map_err(|m| AppError::Unprocessable(format!("items[{i}].{m}")))?;
        if let Some(judge) = &state.judge
            && judge.languages().get(item.language.as_str()).is_none()
        {
            return Err(AppError::Unprocessable(format!(
                "items[{i}].language: {}",
                judge.languages().unknown(item.language.as_str())
            )));
        }
        let code = item
            .source_code
            .as_ref()
            .or(item.response.as_ref())
            .map_or(0, String::len);
        if code > l.max_code_bytes {
            return Err(AppError::Unprocessable(format!(
                "items[{i}].source_code: {code} bytes exceed {} (max_code_bytes)",
                l.max_code_bytes
            )));
        }
        if item.tests.len() > l.max_tests_per_item {
            return Err(AppError::Unprocessable(format!(
                "items[{i}].tests: {} tests exceed {} (max_tests_per_item)",
                item.tests.len(),
                l.max_tests_per_item
            )));
        }
        for t in &item.tests {
            stdin_total += match t {
                CodeTest::Io(io) => io.stdin.len(),
                CodeTest::Call(c) => c.args_json.len(),
                CodeTest::Assert(a) => a.assert_code.len(),
            };
        }
    }
    if stdin_total > l.max_stdin_bytes {
        return Err(AppError::Unprocessable(format!(
            "items: {stdin_total} bytes of test input exceed {} (max_stdin_bytes)",
            l.max_stdin_bytes
        )));
    }
    Ok(())
}

/// `POST /v1/code/judge`.
pub(super) async fn judge_code(
    State(state): State<AppState>,
    AppJson(req): AppJson<JudgeCodeRequest>,
) -> Result<AppJson<JudgeCodeResponse>, AppError> {
    check_limits(&state, &req.items)?;
    let judge = judge_of(&state)?;
    let tasks = req.items.into_iter().map(|item| {
        let state = state.clone();
        let judge = Arc::clone(&judge);
        async move {
            let _permit = state.cpu.acquire().await?;
            tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| judge.judge(&item)))
            })
            .await
            .map_err(|e| AppError::Internal(format!("judging task failed: {e}")))?
            .map_err(|_| AppError::Internal("judge panicked".into()))
        }
    });
    let mut results: Vec<CodeResult> = Vec::new();
    for r in join_all_ordered(tasks).await {
        results.push(r?);
    }
    for r in &results {
        state.metrics.observe_code_verdict(r.verdict);
    }
    Ok(AppJson(JudgeCodeResponse { results }))
}

/// `GET /v1/ping`: SandboxFusion's liveness answer.
pub(super) async fn ping() -> Json<&'static str> {
    Json("pong")
}

fn seconds(name: &str, v: f64) -> Result<Duration, AppError> {
    if v.is_finite() && v > 0.0 && v <= MAX_TIME_LIMIT_S {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(AppError::Unprocessable(format!(
            "{name}: {v} is outside (0, {MAX_TIME_LIMIT_S}]"
        )))
    }
}

fn sandbox_error(message: String) -> RunCodeResponse {
    RunCodeResponse {
        status: RunStatus::SandboxError,
        message,
        compile_result: None,
        run_result: None,
        executor_pod_name: None,
        files: Default::default(),
        files_skipped: Default::default(),
        verdict: Some(CodeVerdict::SandboxError),
        backend: None,
    }
}

/// A step in SandboxFusion's shape. A signal reads as a negative return code, as Python's
/// `subprocess` reports it; a run the verifier stopped at its time limit has none.
fn step(out: &RunOutcome) -> CommandRunResult {
    let return_code = match out.exit {
        Exit::Code(c) => Some(c),
        Exit::Signal(s) => Some(-s),
        Exit::Killed if out.timed_out => None,
        Exit::Killed => Some(-9),
    };
    CommandRunResult {
        status: if out.timed_out {
            CommandStatus::TimeLimitExceeded
        } else {
            CommandStatus::Finished
        },
        execution_time: Some(out.wall.as_secs_f64()),
        return_code,
        stdout: Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        stderr: Some(String::from_utf8_lossy(&out.stderr).into_owned()),
        stdout_truncated: out.stdout_truncated,
        stderr_truncated: out.stderr_truncated,
    }
}

/// Most names `fetch_files` may list.
const MAX_FETCH_FILES: usize = 256;

fn failed(r: &CommandRunResult) -> bool {
    r.status != CommandStatus::Finished || r.return_code != Some(0)
}

/// `POST /run_code`: one program, compiled where needed, run once with `stdin`.
pub(super) async fn run_code(
    State(state): State<AppState>,
    AppJson(req): AppJson<RunCodeRequest>,
) -> Result<Json<RunCodeResponse>, AppError> {
    let l = &state.limits;
    if req.fetch_files.len() > MAX_FETCH_FILES {
        return Err(AppError::Unprocessable(format!(
            "fetch_files: {} names exceed {MAX_FETCH_FILES}",
            req.fetch_files.len()
        )));
    }
    if req.code.len() > l.max_code_bytes {
        return Err(AppError::Unprocessable(format!(
            "code: {} bytes exceed {} (max_code_bytes)",
            req.code.len(),
            l.max_code_bytes
        )));
    }
    let stdin = req.stdin.unwrap_or_default().into_bytes();
    let mut files = Vec::with_capacity(req.files.len());
    let mut input_total = stdin.len();
    for (name, b64) in &req.files {
        // SandboxFusion skips files whose content is null.
        let Some(b64) = b64 else { continue };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| AppError::Unprocessable(format!("files[{name:?}]: not base64: {e}")))?;
        input_total += bytes.len();
        files.push((name.clone(), bytes));
    }
    if input_total > l.max_stdin_bytes {
        return Err(AppError::Unprocessable(format!(
            "stdin, files: {input_total} bytes exceed {} (max_stdin_bytes)",
            l.max_stdin_bytes
        )));
    }
    let compile_timeout = seconds("compile_timeout", req.compile_timeout)?;
    let run_timeout = seconds("run_timeout", req.run_timeout)?;
    let memory_mb = match req.memory_limit_MB {
        -1 => protocol::code::default_memory_limit_mb(),
        m if m > 0 && MEMORY_LIMIT_MB_RANGE.contains(&(m as u64)) => m as u64,
        m => {
            return Err(AppError::Unprocessable(format!(
                "memory_limit_MB: {m} is neither -1 nor within {}..={}",
                MEMORY_LIMIT_MB_RANGE.start(),
                MEMORY_LIMIT_MB_RANGE.end()
            )));
        }
    };
    let judge = judge_of(&state)?;
    let Some(language) = Language::parse(&req.language) else {
        return Ok(Json(sandbox_error(
            judge.languages().unknown(&req.language),
        )));
    };
    let once = RunOnce {
        language,
        code: req.code,
        stdin,
        files,
        fetch_files: req.fetch_files,
        compile_timeout,
        run_timeout,
        memory_bytes: memory_mb << 20,
    };
    let _permit = state.cpu.acquire().await?;
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| judge.run_once(&once)))
    })
    .await
    .map_err(|e| AppError::Internal(format!("run task failed: {e}")))?
    .map_err(|_| AppError::Internal("run panicked".into()))?;
    let response = match result {
        Err(msg) => sandbox_error(msg),
        Ok(r) => {
            let compile_result = r.compile.as_ref().map(step);
            let run_result = r.run.as_ref().map(step);
            let verdict = match (&r.compile, &r.run) {
                // A failed compile reported as the run (SandboxFusion's csharp).
                (None, Some(_)) if r.run_is_failed_compile => CodeVerdict::CompileError,
                (_, Some(run)) => {
                    verdict::limits_verdict(run, false).unwrap_or(CodeVerdict::Accepted)
                }
                (Some(_), None) => CodeVerdict::CompileError,
                (None, None) => CodeVerdict::SandboxError,
            };
            let any_failed = compile_result.as_ref().is_some_and(failed)
                || run_result.as_ref().is_none_or(failed);
            RunCodeResponse {
                status: if any_failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Success
                },
                message: String::new(),
                compile_result,
                run_result,
                executor_pod_name: None,
                files: r.fetched.files,
                files_skipped: r.fetched.skipped,
                verdict: Some(verdict),
                backend: Some(protocol::Backend::Ns),
            }
        }
    };
    state
        .metrics
        .observe_code_verdict(response.verdict.unwrap_or(CodeVerdict::SandboxError));
    Ok(Json(response))
}
