//! `POST /v1/math/grade`.

use axum::extract::State;
use protocol::{GradeMathRequest, GradeMathResponse};

use super::AppState;
use super::error::AppError;
use super::json::AppJson;
use crate::math;

/// Grades a batch off the async threads; a panic in the grader fails this batch only (500).
pub(super) async fn grade_math(
    State(state): State<AppState>,
    AppJson(req): AppJson<GradeMathRequest>,
) -> Result<AppJson<GradeMathResponse>, AppError> {
    let limit = state.limits.max_batch_items;
    if req.items.len() > limit {
        return Err(AppError::Unprocessable(format!(
            "items: {} items exceed the batch limit of {limit} (max_batch_items)",
            req.items.len()
        )));
    }
    let results = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| req.items.iter().map(math::grade).collect::<Vec<_>>())
    })
    .await
    .map_err(|e| AppError::Internal(format!("grading task failed: {e}")))?
    .map_err(|_| AppError::Internal("grader panicked".into()))?;
    Ok(AppJson(GradeMathResponse { results }))
}
