//! The error body of every non-2xx response: `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};

/// Machine-readable error class. The HTTP status follows from it ([`ErrorCode::http_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not valid JSON, or not UTF-8, or the content type is wrong (400).
    BadRequest,
    /// A bearer token is required and was missing or wrong (401).
    Unauthorized,
    /// No route matches the path (404).
    NotFound,
    /// The method is not allowed on this route (405).
    MethodNotAllowed,
    /// The request body exceeds the server's body limit (413).
    PayloadTooLarge,
    /// The JSON is well formed but violates the schema or a limit, e.g. an unknown field or
    /// too many items (422). The message names the field or the limit.
    Unprocessable,
    /// The work queue is full; retry later with backoff (429).
    TooManyRequests,
    /// The server is shutting down or not ready (503).
    Unavailable,
    /// The request did not finish within the server's per-request deadline (504).
    DeadlineExceeded,
    /// The verifier itself failed; details are logged server-side only (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status code this error is sent with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::DeadlineExceeded => 504,
            ErrorCode::Internal => 500,
        }
    }
}

/// The inner object of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Error class.
    pub code: ErrorCode,
    /// Human-readable explanation; never contains server internals.
    pub message: String,
}

/// A complete error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// The error.
    pub error: ErrorBody,
}

impl ApiError {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            error: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.error.code, self.error.message)
    }
}
