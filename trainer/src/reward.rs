//! Rewards from the verifier over HTTP, and an embedded verifier for runs without one.
//!
//! [`Grader::grade`] routes every response to the endpoint its problem's kind needs and
//! returns one [`Graded`] per response, in order. The embedded verifier is the real service
//! (`verifier::app`) on a loopback socket, so the trainer always takes the production path:
//! HTTP, JSON, the same client and retries.

use std::net::SocketAddr;

use protocol::client::{ClientError, VerifierClient};
use protocol::{GradeMathRequest, MathItem, MathOptions, MathResult};

use crate::task::Problem;

/// Largest batch sent in one request; bigger steps are split.
pub const MAX_ITEMS_PER_REQUEST: usize = 1024;

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

/// Starts `verifier::app` with default limits on `127.0.0.1:0` (a free port).
pub async fn spawn_embedded_verifier() -> std::io::Result<EmbeddedVerifier> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = verifier::app(verifier::AppState::default());
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
}

impl Grader<'_> {
    /// Grades every submission, blocking on the runtime; results keep the submissions' order.
    /// The client retries an unreachable or overloaded verifier for its patience, then fails.
    pub fn grade(&self, subs: &[Submission<'_>]) -> Result<Vec<Graded>, ClientError> {
        let items = subs
            .iter()
            .map(|s| MathItem {
                id: Some(format!("{}#{}", s.problem.id, s.sample)),
                response: s.response.to_string(),
                ground_truth: s.problem.answer.clone(),
                options: self.math.cloned(),
            })
            .collect();
        let results = self.rt.block_on(grade(self.client, items))?;
        Ok(results.into_iter().map(Graded::from).collect())
    }
}
