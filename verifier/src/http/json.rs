//! [`AppJson`]: `axum::Json` whose rejections come out as [`AppError`] in the API's error shape
//! (syntax errors 400, schema errors 422, oversized bodies 413) instead of axum's plain text.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::AppError;

/// JSON body extractor and response type.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T> FromRequest<AppState> for AppJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(map_rejection(&rejection, state)),
        }
    }
}

fn map_rejection(rejection: &JsonRejection, state: &AppState) -> AppError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge {
            limit_bytes: state.limits.max_body_bytes,
        },
        StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable(rejection.body_text()),
        _ => AppError::BadRequest(rejection.body_text()),
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
