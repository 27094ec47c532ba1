//! Request lifecycle middleware: a request id (echoed as `x-request-id`, taken from the
//! client's header when present), a structured access log line per request, the per-request
//! deadline, metrics, and the shutdown gate (503 once draining begins; requests already inside
//! finish).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::AppError;

/// Readiness and shutdown flags.
#[derive(Debug)]
pub struct Lifecycle {
    ready: AtomicBool,
    draining: AtomicBool,
    next_id: AtomicU64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            ready: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Lifecycle {
    /// Marks the service ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Starts draining: new requests get 503, `/readyz` turns 503 so load balancers stop
    /// sending traffic, in-flight requests finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Ready and not draining.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Outermost middleware: id, log, metrics, deadline, shutdown gate.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                format!(
                    "{:x}-{}",
                    std::process::id(),
                    state.lifecycle.next_id.fetch_add(1, Ordering::Relaxed)
                )
            },
            String::from,
        );
    let method = req.method().clone();
    let probe = route == protocol::route::HEALTHZ
        || route == protocol::route::READYZ
        || route == protocol::route::METRICS;
    let mut resp = if state.lifecycle.draining() && !probe {
        AppError::Unavailable("the verifier is shutting down".into()).into_response()
    } else {
        let deadline = state.limits.request_timeout;
        match tokio::time::timeout(deadline, next.run(req)).await {
            Ok(r) => r,
            Err(_) => AppError::DeadlineExceeded {
                seconds: deadline.as_secs(),
            }
            .into_response(),
        }
    };
    let status = resp.status().as_u16();
    let secs = start.elapsed().as_secs_f64();
    state.metrics.observe_request(&route, status, secs);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    if !probe {
        tracing::info!(request_id = %id, %method, route = %route, status, ms = secs * 1e3, "request");
    }
    resp
}
