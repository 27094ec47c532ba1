//! `POST /v1/math/grade`.

use axum::extract::State;
use protocol::{GradeMathRequest, GradeMathResponse, MathItem, MathResult};

use super::error::AppError;
use super::json::AppJson;
use super::{AppState, join_all_ordered};
use crate::math;

/// Items graded per CPU permit: large batches are split into chunks of this size that run in
/// parallel within the concurrency budget.
pub(super) const ITEMS_PER_CHUNK: usize = 64;

/// Grades a batch off the async threads, in parallel chunks, each holding a CPU permit; a
/// panic in the grader fails this batch only (500).
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
    for (i, item) in req.items.iter().enumerate() {
        if let Some(Err(msg)) = item.options.as_ref().map(protocol::MathOptions::validate) {
            return Err(AppError::Unprocessable(format!("items[{i}].{msg}")));
        }
    }
    let chunks: Vec<Vec<MathItem>> = req
        .items
        .chunks(ITEMS_PER_CHUNK)
        .map(<[MathItem]>::to_vec)
        .collect();
    let tasks = chunks.into_iter().map(|chunk| {
        let state = state.clone();
        async move {
            let _permit = state.cpu.acquire().await?;
            tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(|| {
                    chunk.iter().map(math::grade).collect::<Vec<MathResult>>()
                })
            })
            .await
            .map_err(|e| AppError::Internal(format!("grading task failed: {e}")))?
            .map_err(|_| AppError::Internal("grader panicked".into()))
        }
    });
    let mut results = Vec::with_capacity(req.items.len());
    for part in join_all_ordered(tasks).await {
        results.extend(part?);
    }
    for r in &results {
        state.metrics.observe_verdict(r.verdict);
    }
    Ok(AppJson(GradeMathResponse { results }))
}
