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
    /// The verifier itself failed (500); the string is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn code(&self) -> ErrorCode {
        match self {
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            AppError::Unprocessable(_) => ErrorCode::Unprocessable,
            AppError::NotFound => ErrorCode::NotFound,
            AppError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
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
        (status, Json(ApiError::new(code, message))).into_response()
    }
}
