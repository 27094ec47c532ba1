//! `POST /v1/openrlhf/reward`: OpenRLHF's remote reward protocol, so `--reward.remote_url`
//! (≤ v0.10.1: `--remote_rm_url`) can point at this service for math rewards.
//!
//! OpenRLHF posts `{"query": [..], "prompts": [..], "labels": [..]}` (usually one sample per
//! request) and reads `{"rewards": [..], "scores": [..], "extra_logs": {..}}`. A `query` is the
//! prompt and the response decoded together; the response is what follows the prompt. `labels`
//! are the gold answers. Grading is `POST /v1/math/grade` with the default options (the same
//! limits, CPU permits, metrics and authentication).

use std::collections::BTreeMap;

use axum::extract::State;
use protocol::{GradeMathRequest, MathItem, MathVerdict};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::AppError;
use super::json::AppJson;

/// OpenRLHF's request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardRequest {
    /// Prompt and response, decoded together (special tokens included).
    query: Vec<String>,
    /// The prompts, one per query (may be empty: then the whole query is the response).
    #[serde(default)]
    prompts: Vec<String>,
    /// The gold answers, one per query.
    #[serde(default)]
    labels: Vec<String>,
}

/// OpenRLHF's response.
#[derive(Debug, Serialize)]
pub(super) struct RewardResponse {
    /// 1.0 for a correct answer, else 0.0.
    rewards: Vec<f64>,
    /// The same as `rewards` (OpenRLHF filters on scores).
    scores: Vec<f64>,
    /// Per-sample 0/1 indicators OpenRLHF logs: `correct`, `no_answer`, `unparseable`,
    /// `limit_exceeded`.
    extra_logs: BTreeMap<&'static str, Vec<f64>>,
}

/// The response part of a query: what follows its prompt.
fn response_of<'a>(query: &'a str, prompt: &str) -> &'a str {
    if prompt.is_empty() {
        return query;
    }
    match query.find(prompt) {
        Some(at) => &query[at + prompt.len()..],
        None => query,
    }
}

pub(super) async fn reward(
    state: State<AppState>,
    AppJson(req): AppJson<RewardRequest>,
) -> Result<AppJson<RewardResponse>, AppError> {
    let n = req.query.len();
    if req.labels.len() != n {
        return Err(AppError::Unprocessable(format!(
            "labels: {} labels for {n} queries (set --data.label_key)",
            req.labels.len()
        )));
    }
    if !req.prompts.is_empty() && req.prompts.len() != n {
        return Err(AppError::Unprocessable(format!(
            "prompts: {} prompts for {n} queries",
            req.prompts.len()
        )));
    }
    let items = (0..n)
        .map(|i| MathItem {
            id: None,
            response: response_of(&req.query[i], req.prompts.get(i).map_or("", String::as_str))
                .to_string(),
            ground_truth: req.labels[i].clone(),
            options: None,
        })
        .collect();
    let AppJson(graded) =
        super::math::grade_math(state, AppJson(GradeMathRequest { items })).await?;
    let rewards: Vec<f64> = graded.results.iter().map(|r| r.reward).collect();
    let indicator = |v: MathVerdict| -> Vec<f64> {
        graded
            .results
            .iter()
            .map(|r| f64::from(u8::from(r.verdict == v)))
            .collect()
    };
    let extra_logs = BTreeMap::from([
        ("correct", indicator(MathVerdict::Correct)),
        ("no_answer", indicator(MathVerdict::NoAnswer)),
        ("unparseable", indicator(MathVerdict::Unparseable)),
        ("limit_exceeded", indicator(MathVerdict::LimitExceeded)),
    ]);
    Ok(AppJson(RewardResponse {
        scores: rewards.clone(),
        rewards,
        extra_logs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_follows_the_prompt() {
        let prompt = "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n";
        let query = format!("{prompt}so \\boxed{{2}}<|im_end|>");
        assert_eq!(response_of(&query, prompt), "so \\boxed{2}<|im_end|>");
        assert_eq!(response_of("whole", ""), "whole");
        assert_eq!(response_of("other text", "absent"), "other text");
    }
}
