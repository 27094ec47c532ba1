//! Rewards from the verifier over HTTP, and an embedded verifier for runs without one.
//!
//! [`Grader::grade`] routes every response to the endpoint its problem's kind needs (math
//! to `/v1/math/grade`, code to `/v1/code/judge`; the kind is resolved when the task loads,
//! see [`kind`]) and returns one [`Graded`] per response, in order. The two kinds of one step
//! go out concurrently, through the same client, so the same retries and `--verifier-patience`
//! apply to both. The embedded verifier is the real service (`verifier::app`, with code
//! judging) on a loopback socket, so the trainer always takes the production path: HTTP,
//! JSON, the same client and retries.

pub mod code;
pub mod kind;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use protocol::client::{ClientError, VerifierClient};
use protocol::{CodeItem, GradeMathRequest, JudgeCodeRequest, MathItem, MathOptions, MathResult};
use serde::{Deserialize, Serialize};

pub use code::CodeRewardConfig;
pub use kind::RewardKind;

use crate::task::{Gold, Problem};

/// Largest math batch sent in one request; bigger steps are split.
pub const MAX_ITEMS_PER_REQUEST: usize = 1024;

/// Largest code batch sent in one request (the verifier's default `max_code_items` is 256;
/// smaller requests also stay well inside its 60 s request deadline).
pub const MAX_CODE_ITEMS_PER_REQUEST: usize = 64;

/// `[reward]`: routing overrides and code judging options. Every key optional; unknown keys
/// refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// `data_source` → `math` or `code`, over the built-in table ([`kind::kind_of_source`]).
    /// Default empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<String, RewardKind>,
    /// How code responses are judged (`[reward.code]`).
    pub code: CodeRewardConfig,
}

impl RewardConfig {
    /// Whether every key has its default (such configs serialize without `[reward]`, as runs
    /// from before it did, so `--resume` compares them equal).
    pub fn is_default(&self) -> bool {
        *self == RewardConfig::default()
    }
}

/// A verifier serving on loopback inside this process.
#[derive(Debug)]
pub struct EmbeddedVerifier {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The serving task; aborted on drop.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedVerifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `verifier::app` with default limits and code judging (the namespace backend, and
/// the wasm one for Python where this build and host have it) on `127.0.0.1:0` (a free port).
/// A backend that cannot start makes its items `sandbox_error`, as in `verifier serve`; the
/// reasons are logged. The namespace backend's helper is `verifier-sandbox-helper` next to
/// this executable, else this executable's hidden `__sandbox-helper` subcommand.
pub async fn spawn_embedded_verifier() -> std::io::Result<EmbeddedVerifier> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let judge = embedded_judge();
    if let Some(why) = judge.unavailable_reason() {
        tracing::warn!(
            reason = why,
            "embedded verifier: namespace sandbox unavailable"
        );
    }
    if let Some(why) = judge.wasm_unavailable_reason() {
        tracing::info!(reason = why, "embedded verifier: wasm sandbox unavailable");
    }
    let app = verifier::app(verifier::AppState::default().with_judge(judge));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "embedded verifier stopped");
        }
    });
    Ok(EmbeddedVerifier {
        url: format!("http://{addr}"),
        task,
    })
}

/// The embedded verifier's judge: `ns`, plus `wasm` where built in.
fn embedded_judge() -> verifier::judge::Judge {
    let ns = verifier::sandbox::linux_ns::NsSandbox::new(Default::default());
    let judge = verifier::judge::Judge::new(ns);
    #[cfg(feature = "wasm")]
    let judge = judge.with_wasm(verifier::sandbox::wasm::WasmSandbox::new(
        &verifier::sandbox::wasm::WasmConfig::default(),
    ));
    judge
}

/// Grades `items`, in order, in requests of at most [`MAX_ITEMS_PER_REQUEST`].
pub async fn grade(
    client: &VerifierClient,
    items: Vec<MathItem>,
) -> Result<Vec<MathResult>, ClientError> {
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<MathItem> = items.by_ref().take(MAX_ITEMS_PER_REQUEST).collect();
        out.extend(
            client
                .grade_math(&GradeMathRequest { items: chunk })
                .await?
                .results,
        );
    }
    Ok(out)
}

/// Judges `items`, in order, in requests of at most [`MAX_CODE_ITEMS_PER_REQUEST`].
pub async fn judge(
    client: &VerifierClient,
    items: Vec<CodeItem>,
) -> Result<Vec<protocol::CodeResult>, ClientError> {
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let chunk: Vec<CodeItem> = items.by_ref().take(MAX_CODE_ITEMS_PER_REQUEST).collect();
        out.extend(
            client
                .judge_code(&JudgeCodeRequest { items: chunk })
                .await?
                .results,
        );
    }
    Ok(out)
}

/// One response to grade against its problem.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The problem answered.
    pub problem: &'a Problem,
    /// The response text as graded (cut at a stop string).
    pub response: &'a str,
    /// Which sample of the problem's group it is (sent as the item id `PROMPT_ID#SAMPLE`).
    pub sample: usize,
}

/// The verifier's judgement of one response, whatever its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    /// The reward before shaping.
    pub reward: f64,
    /// Fully correct (math `correct`, code `accepted`).
    pub correct: bool,
    /// The verdict's name (`correct`, `no_answer`, …).
    pub verdict: String,
    /// The answer the verifier extracted, where it extracts one.
    pub extracted: Option<String>,
    /// The verifier's whole result, as stored in the rollout's `verifier_result`.
    pub detail: serde_json::Value,
}

impl From<MathResult> for Graded {
    fn from(r: MathResult) -> Self {
        Graded {
            reward: r.reward,
            correct: r.correct,
            verdict: r.verdict.as_str().to_string(),
            detail: serde_json::to_value(&r).unwrap_or(serde_json::Value::Null),
            extracted: r.extracted,
        }
    }
}

/// Where responses are graded, and with which options.
#[derive(Debug, Clone, Copy)]
pub struct Grader<'a> {
    /// The verifier.
    pub client: &'a VerifierClient,
    /// The runtime the client runs on.
    pub rt: &'a tokio::runtime::Handle,
    /// Options for every math item (`[task.grading]`); `None`: the verifier's defaults.
    pub math: Option<&'a MathOptions>,
    /// How code items are judged (`[reward.code]`).
    pub code: &'a CodeRewardConfig,
}

impl Grader<'_> {
    /// Grades every submission, blocking on the runtime; results keep the submissions' order.
    /// Math and code submissions go to their endpoints concurrently. The client retries an
    /// unreachable or overloaded verifier for its patience, then fails.
    pub fn grade(&self, subs: &[Submission<'_>]) -> Result<Vec<Graded>, ClientError> {
        let mut math = (Vec::new(), Vec::new());
        let mut code = (Vec::new(), Vec::new());
        for (i, s) in subs.iter().enumerate() {
            let id = format!("{}#{}", s.problem.id, s.sample);
            match &s.problem.gold {
                Gold::Math(answer) => {
                    math.0.push(i);
                    math.1.push(MathItem {
                        id: Some(id),
                        response: s.response.to_string(),
                        ground_truth: answer.clone(),
                        options: self.math.cloned(),
                    });
                }
                Gold::Code(gold) => {
                    code.0.push((i, self.code.time_limit_s(gold)));
                    code.1.push(self.code.item(id, gold, s.response));
                }
            }
        }
        let (math_results, code_results) = self.rt.block_on(async {
            tokio::join!(
                async {
                    if math.1.is_empty() {
                        Ok(Vec::new())
                    } else {
                        grade(self.client, math.1).await
                    }
                },
                async {
                    if code.1.is_empty() {
                        Ok(Vec::new())
                    } else {
                        judge(self.client, code.1).await
                    }
                }
            )
        });
        let mut out: Vec<Option<Graded>> = vec![None; subs.len()];
        for (i, r) in math.0.into_iter().zip(math_results?) {
            out[i] = Some(Graded::from(r));
        }
        for ((i, limit), r) in code.0.into_iter().zip(code_results?) {
            out[i] = Some(self.code.graded(r, subs[i].response, limit));
        }
        Ok(out
            .into_iter()
            .map(|g| g.expect("the client checks one result per item"))
            .collect())
    }
}
