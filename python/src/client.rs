//! The verifier service's Rust client (`protocol::client::VerifierClient`) for Python: the
//! same replica rotation (round-robin per request, the next replica on each retry) and retry
//! rules (connection errors, 429 and 503, with exponential backoff; never other statuses).
//!
//! Requests and answers cross the boundary as JSON text; the request is decoded into the typed
//! protocol struct first, so a malformed one fails here (`ValueError`) without a round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::client::{ClientError, RetryPolicy, VerifierClient};
use protocol::sandbox_fusion::RunCodeRequest;
use protocol::{GradeMathRequest, JudgeCodeRequest};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::Runtime;

/// Worker threads of the shared I/O runtime: requests wait on the network, not on CPU.
const RUNTIME_THREADS: usize = 2;

/// One I/O runtime per process, made on first use. A forked child (whose copy of the parent's
/// runtime has no threads) makes its own; the parent's copy is leaked, never dropped.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

fn runtime() -> PyResult<Arc<Runtime>> {
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let pid = std::process::id();
    if let Some((owner, rt)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(rt.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .thread_name("rlvr-verifier-io")
        .enable_all()
        .build()
        .map_err(|e| PyValueError::new_err(format!("cannot start the I/O runtime: {e}")))?;
    let rt = Arc::new(rt);
    if let Some(inherited) = slot.replace((pid, rt.clone())) {
        std::mem::forget(inherited);
    }
    Ok(rt)
}

/// A client for one or more verifier replicas.
#[pyclass(frozen, module = "rlvr_verifier._native")]
#[derive(Debug)]
pub(crate) struct NativeClient {
    client: VerifierClient,
}

#[pymethods]
impl NativeClient {
    /// `urls`: one base URL or several separated by commas (`http://` only). Retries: at most
    /// `max_attempts` attempts, waiting `base_delay_s · 2ⁿ` capped at `max_delay_s` between
    /// them; `patience_s` instead sets as many attempts as those waits need to add up to it.
    #[new]
    #[pyo3(signature = (urls, token=None, timeout_s=120.0, max_attempts=8, base_delay_s=0.1, max_delay_s=5.0, patience_s=None))]
    fn new(
        urls: &str,
        token: Option<String>,
        timeout_s: f64,
        max_attempts: u32,
        base_delay_s: f64,
        max_delay_s: f64,
        patience_s: Option<f64>,
    ) -> PyResult<Self> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| PyValueError::new_err(format!("{name}: {v} is not a duration")))
        };
        if max_attempts == 0 {
            return Err(PyValueError::new_err("max_attempts must be at least 1"));
        }
        let mut retry = RetryPolicy {
            max_attempts,
            base_delay: secs("base_delay_s", base_delay_s)?,
            max_delay: secs("max_delay_s", max_delay_s)?,
        };
        if let Some(p) = patience_s {
            retry = RetryPolicy {
                base_delay: retry.base_delay,
                max_delay: retry.max_delay,
                ..RetryPolicy::patient(secs("patience_s", p)?)
            };
        }
        let timeout = secs("timeout_s", timeout_s)?;
        let mut client = VerifierClient::with_retry(urls, retry)
            .and_then(|c| c.with_request_timeout(timeout))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if let Some(t) = token {
            client = client.with_token(t);
        }
        Ok(NativeClient { client })
    }

    /// The replicas' base URLs.
    #[getter]
    fn urls(&self) -> Vec<String> {
        self.client.base_urls().to_vec()
    }

    /// `GET /healthz` on the first replica; raises `VerifierError` unless it answers 200.
    fn healthz(&self, py: Python<'_>) -> PyResult<()> {
        let rt = runtime()?;
        py.detach(|| rt.block_on(self.client.healthz()))
            .map_err(|e| verifier_error(py, &e))
    }

    /// `POST /v1/math/grade` with a `GradeMathRequest` as JSON; the response as JSON.
    fn grade_math(&self, py: Python<'_>, request_json: &str) -> PyResult<String> {
        let req: GradeMathRequest = decode(request_json)?;
        self.call(py, |c| async move { c.grade_math(&req).await })
    }

    /// `POST /v1/code/judge` with a `JudgeCodeRequest` as JSON; the response as JSON.
    fn judge_code(&self, py: Python<'_>, request_json: &str) -> PyResult<String> {
        let req: JudgeCodeRequest = decode(request_json)?;
        self.call(py, |c| async move { c.judge_code(&req).await })
    }

    /// `POST /run_code` (SandboxFusion) with a `RunCodeRequest` as JSON; the response as JSON.
    fn run_code(&self, py: Python<'_>, request_json: &str) -> PyResult<String> {
        let req: RunCodeRequest = decode(request_json)?;
        self.call(py, |c| async move { c.run_code(&req).await })
    }
}

impl NativeClient {
    /// Runs one request on the shared runtime with the GIL released; the answer as JSON.
    fn call<F, Fut, R>(&self, py: Python<'_>, f: F) -> PyResult<String>
    where
        F: FnOnce(VerifierClient) -> Fut + Send,
        Fut: Future<Output = Result<R, ClientError>> + Send,
        R: Serialize + Send,
    {
        let rt = runtime()?;
        let client = self.client.clone();
        let out = py
            .detach(|| rt.block_on(f(client)))
            .map_err(|e| verifier_error(py, &e))?;
        serde_json::to_string(&out)
            .map_err(|e| PyValueError::new_err(format!("cannot encode the answer: {e}")))
    }
}

fn decode<T: DeserializeOwned>(json: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("invalid request: {e}")))
}

/// `rlvr_verifier.errors.VerifierError(message, status)`; `status` is the HTTP status, or
/// `None` when no answer came (unreachable) or it was malformed.
fn verifier_error(py: Python<'_>, e: &ClientError) -> PyErr {
    let status = match e {
        ClientError::Status { status, .. } => Some(*status),
        _ => None,
    };
    let made = py
        .import("rlvr_verifier.errors")
        .and_then(|m| m.getattr("VerifierError"))
        .and_then(|cls| cls.call1((e.to_string(), status)));
    match made {
        Ok(err) => PyErr::from_value(err),
        Err(import_failed) => import_failed,
    }
}
