//! The HTTP front: one [`app`] that builds the router, typed errors ([`error`]), a JSON
//! extractor that answers in the API's error shape ([`json`]), and the handlers.

pub mod admission;
pub mod auth;
mod code;
pub mod error;
pub mod json;
pub mod lifecycle;
mod math;
pub mod metrics;
pub mod openapi;
mod openrlhf;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protocol::route;

use crate::judge::Judge;

pub use admission::CpuPool;
pub use auth::Tokens;
pub use error::AppError;
pub use lifecycle::Lifecycle;
pub use metrics::Metrics;

/// Request limits. Requests over a limit get a typed 4xx naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, bytes; larger bodies get 413. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Most items in one math batch; more get 422. Default 10 000.
    pub max_batch_items: usize,
    /// CPU permits: batches (or chunks of them) graded at once. Default: the number of CPUs.
    pub max_concurrency: usize,
    /// Requests that may wait for a permit before new ones get 429. Default 256.
    pub max_queue: usize,
    /// Per-request deadline; past it the client gets 504. Default 60 s.
    pub request_timeout: Duration,
    /// Most items in one code batch; more get 422. Default 256.
    pub max_code_items: usize,
    /// Largest program (`source_code`, `response`, `/run_code` `code`), bytes; 422 above.
    /// Default 1 MiB.
    pub max_code_bytes: usize,
    /// Most tests per code item; more get 422. Default 1000.
    pub max_tests_per_item: usize,
    /// Total standard input of one request (all tests of all items), bytes; 422 above.
    /// Default 64 MiB.
    pub max_stdin_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
            max_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            max_queue: 256,
            request_timeout: Duration::from_secs(60),
            max_code_items: 256,
            max_code_bytes: 1 << 20,
            max_tests_per_item: 1000,
            max_stdin_bytes: 64 << 20,
        }
    }
}

/// Shared server state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Request limits.
    pub limits: Limits,
    /// Bearer tokens for `/v1/*`; `None` (or empty): no authentication.
    pub tokens: Option<Arc<Tokens>>,
    /// The CPU pool and its queue.
    pub cpu: Arc<CpuPool>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Readiness and draining.
    pub lifecycle: Arc<Lifecycle>,
    /// Code judging; `None`: the code routes answer 503.
    pub judge: Option<Arc<Judge>>,
}

impl AppState {
    /// State with `limits` and optional tokens.
    pub fn new(limits: Limits, tokens: Option<Tokens>) -> Self {
        AppState {
            limits,
            tokens: tokens.map(Arc::new),
            cpu: Arc::new(CpuPool::new(limits.max_concurrency, limits.max_queue)),
            metrics: Arc::new(Metrics::default()),
            lifecycle: Arc::new(Lifecycle::default()),
            judge: None,
        }
    }

    /// The same state with code judging by `judge`.
    #[must_use]
    pub fn with_judge(mut self, judge: Judge) -> Self {
        self.judge = Some(Arc::new(judge));
        self
    }
}

impl Default for AppState {
    fn default() -> Self {
        AppState::new(Limits::default(), None)
    }
}

/// Builds the verifier's router. Serve it with `axum::serve`, or call it in-process with
/// `tower::ServiceExt::oneshot` in tests.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let api = Router::new()
        .route(route::MATH_GRADE, post(math::grade_math))
        .route(route::CODE_JUDGE, post(code::judge_code))
        .route(route::RUN_CODE, post(code::run_code))
        .route(route::OPENRLHF_REWARD, post(openrlhf::reward))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route(route::HEALTHZ, get(healthz))
        .route(route::READYZ, get(readyz))
        .route(route::METRICS, get(metrics_text))
        .route(route::OPENAPI, get(openapi_json))
        .route(route::PING, get(code::ping))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(state.clone(), lifecycle::track))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.lifecycle.is_ready() {
        "ready".into_response()
    } else {
        AppError::Unavailable("not ready".into()).into_response()
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let body = state
        .metrics
        .render(state.cpu.queued(), state.cpu.in_flight());
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

async fn openapi_json(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(openapi::document(&state.limits))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Runs futures concurrently, keeping their order.
async fn join_all_ordered<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<tokio::task::JoinHandle<T>> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}
