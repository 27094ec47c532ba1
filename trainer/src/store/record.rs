//! Row types written to the store.

use serde::{Deserialize, Serialize};

/// A run (`runs` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique run id.
    pub run_id: String,
    /// Method name (`grpo`, `steer`, …).
    pub method: String,
    /// Model description.
    pub model: String,
    /// The resolved config.
    pub config: serde_json::Value,
    /// Source revision, if known.
    pub git_rev: Option<String>,
}

/// One graded rollout (`rollouts` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRow {
    /// Run id.
    pub run_id: String,
    /// Optimizer step the rollout was sampled for (0-based).
    pub step: i32,
    /// Stable prompt id.
    pub prompt_id: String,
    /// The prompt's `data_source` (`''` in journals written before it was kept).
    #[serde(default)]
    pub data_source: String,
    /// Index within the prompt's group.
    pub sample_idx: i32,
    /// Prompt text.
    pub prompt: String,
    /// Decoded response text.
    pub response: String,
    /// Gold answer (math), or the tests as JSON (code; see `Gold::stored_text`).
    pub ground_truth: String,
    /// Response length, tokens.
    pub num_tokens: i32,
    /// Ended with EOS.
    pub finished: bool,
    /// Reward used for the advantage.
    pub reward: f64,
    /// Verifier verdict.
    pub verdict: String,
    /// Answer the verifier extracted.
    pub extracted: Option<String>,
    /// The verifier's full result.
    pub verifier_result: serde_json::Value,
    /// Advantage assigned to every token of the response.
    pub advantage: f64,
    /// Mean π_old entropy over the response's tokens, nats.
    pub mean_entropy: f64,
}

/// One optimizer step (`steps` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Run id.
    pub run_id: String,
    /// Step (0-based).
    pub step: i32,
    /// Mean reward.
    pub reward_mean: f64,
    /// Fraction of responses graded correct.
    pub accuracy: f64,
    /// Token-mean π_old entropy over response tokens, nats.
    pub entropy: f64,
    /// Loss (sum over micro-batches of the scaled micro-batch losses).
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Low-side clip fraction.
    pub clip_frac_low: f64,
    /// High-side clip fraction.
    pub clip_frac_high: f64,
    /// Mean response length, tokens.
    pub response_len_mean: f64,
    /// STEER weight mean (1 for other methods).
    pub steer_w_mean: f64,
    /// STEER weight min.
    pub steer_w_min: f64,
    /// STEER weight max.
    pub steer_w_max: f64,
    /// Fraction of tokens with weight < 0.99.
    pub steer_w_frac_below_099: f64,
    /// Predicted entropy change, summed over tokens (without −η/L).
    pub predicted_entropy_change: f64,
    /// `steer-coupled`: predicted change of the batch's token-mean entropy through the
    /// parameters its contributions cover (the output head, or the top blocks), for one SGD
    /// step of size lr, nats (NULL for other methods).
    pub coupled_predicted_entropy_change: Option<f64>,
    /// `steer-coupled`: first-order change of the batch's token-mean entropy through the
    /// output head along the optimizer's actual update of it, nats (NULL for other methods).
    pub head_step_entropy_change: Option<f64>,
    /// `steer-coupled`: realised change of the batch's token-mean entropy over the step, nats
    /// (NULL for other methods).
    pub realised_entropy_change: Option<f64>,
    /// Step skipped for a non-finite gradient.
    pub skipped: bool,
    /// Seconds per phase.
    pub timings: serde_json::Value,
}
