//! The HTTP front: one [`app`] that builds the router, typed errors ([`error`]), a JSON
//! extractor that answers in the API's error shape ([`json`]), and the handlers.

pub mod error;
pub mod json;
mod math;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use protocol::route;

pub use error::AppError;

/// Request limits. Requests over a limit get a typed 4xx naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, bytes; larger bodies get 413. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Most items in one math batch; more get 422. Default 10 000.
    pub max_batch_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
        }
    }
}

/// Shared, immutable server state.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// Request limits.
    pub limits: Limits,
}

/// Builds the verifier's router. Serve it with `axum::serve`, or call it in-process with
/// `tower::ServiceExt::oneshot` in tests.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route(route::HEALTHZ, get(healthz))
        .route(route::MATH_GRADE, post(math::grade_math))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
