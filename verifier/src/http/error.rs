//! [`AppError`]: every way a request can fail, mapped to a status and the API's JSON body.
//!
//! 5xx bodies never carry internals: the detail is logged, the client sees a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::{ApiError, ErrorCode};

/// A request failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed body: not JSON, not UTF-8, wrong content type (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token (401).
    #[error("a valid bearer token is required (Authorization: Bearer …)")]
    Unauthorized,
    /// Body larger than the server's limit (413).
    #[error("request body exceeds the limit of {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The limit in force.
        limit_bytes: usize,
    },
    /// Well-formed JSON that violates the schema or a named limit (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No such route (404).
    #[error("no such route")]
    NotFound,
    /// Route exists, method does not (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The work queue is full (429); retry with backoff.
    #[error("the grading queue is full ({queued} requests waiting); retry later")]
    Overloaded {
        /// Requests waiting when this one was refused.
        queued: usize,
    },
    /// Shutting down or not ready (503).
    #[error("{0}")]
    Unavailable(String),
    /// The per-request deadline passed (504).
    #[error("the request did not finish within {seconds} s")]
    DeadlineExceeded {
        /// The deadline in force.
        seconds: u64,
    },
    /// The verifier itself failed (500); the string is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The error class sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::Unauthorized => ErrorCode::Unauthorized,
            AppError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            AppError::Unprocessable(_) => ErrorCode::Unprocessable,
            AppError::NotFound => ErrorCode::NotFound,
            AppError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            AppError::Overloaded { .. } => ErrorCode::TooManyRequests,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::DeadlineExceeded { .. } => ErrorCode::DeadlineExceeded,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "the verifier failed to process this request".to_string()
            }
            other => other.to_string(),
        };
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(ApiError::new(code, message))).into_response();
        if code == ErrorCode::TooManyRequests || code == ErrorCode::Unavailable {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if code == ErrorCode::Unauthorized {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
