//! Phase 6: what a step leaves behind: one [`RolloutRow`] per graded response for the store,
//! and the step's [`StepMetrics`] for the store, `metrics.jsonl` and the progress line.

use std::collections::HashMap;

use serde::Serialize;

use super::sample::Batch;
use super::score::OldPolicy;
use super::update::Update;
use crate::algo::WeightStats;
use crate::store::{RolloutRow, StepRecord};

/// One step's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Step (0-based).
    pub step: usize,
    /// Mean reward.
    pub reward_mean: f64,
    /// Fraction correct.
    pub accuracy: f64,
    /// Token-mean π_old entropy of the responses, nats.
    pub entropy: f64,
    /// Loss.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Low/high clip fractions.
    pub clip_frac_low: f64,
    /// High-side clip fraction.
    pub clip_frac_high: f64,
    /// Mean response length, tokens.
    pub response_len_mean: f64,
    /// STEER weights over the step's tokens.
    #[serde(skip)]
    pub weights: WeightStats,
    /// Predicted entropy change (sum, without −η/L).
    pub predicted_entropy_change: f64,
    /// `steer-coupled`'s predicted and realised change of the batch's token-mean entropy.
    #[serde(flatten)]
    pub entropy_change: EntropyChange,
    /// Token-mean KL to the reference policy, when `kl.beta > 0`.
    pub kl: Option<f64>,
    /// Learning rate used for the step.
    pub lr: f64,
    /// Optimizer steps taken on this batch (`ppo_epochs` × mini-batches).
    pub optimizer_steps: usize,
    /// Groups dropped by dynamic sampling for having all-equal rewards.
    pub groups_dropped: usize,
    /// Non-finite gradient: step skipped.
    pub skipped: bool,
    /// Seconds per phase.
    pub timings: HashMap<&'static str, f64>,
}

/// One step's change of the token-mean entropy of its own batch, nats (`steer-coupled` only;
/// `None` for other methods).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EntropyChange {
    /// Through the parameters the weights' contributions cover (the output head, or the top
    /// blocks), for one SGD step of size `lr` on the weighted token-mean surrogate
    /// ([`crate::algo::steer_coupled::predicted_change`]).
    #[serde(rename = "coupled_predicted_entropy_change")]
    pub predicted: Option<f64>,
    /// Through the output head along the optimizer's actual update of it (momentum, weight
    /// decay and clipping included), first order
    /// ([`crate::algo::coupled::head::entropy_change_along`]).
    #[serde(rename = "head_step_entropy_change")]
    pub head_step: Option<f64>,
    /// The batch rescored after the step's updates minus before.
    #[serde(rename = "realised_entropy_change")]
    pub realised: Option<f64>,
}

/// The store rows of the batch's rollouts.
pub(crate) fn rollout_rows(
    run_id: &str,
    step: usize,
    batch: &Batch,
    adv: &[f32],
    row_entropy: &[f64],
) -> Vec<RolloutRow> {
    let g = batch.samples.len() / batch.problems.len().max(1);
    batch
        .samples
        .iter()
        .zip(&batch.results)
        .enumerate()
        .map(|(i, (s, r))| {
            let p = &batch.problems[i / g];
            RolloutRow {
                run_id: run_id.to_string(),
                step: step as i32,
                prompt_id: p.id.clone(),
                data_source: p.data_source.clone(),
                sample_idx: (i % g) as i32,
                prompt: p.prompt.clone(),
                response: batch.texts[i].clone(),
                ground_truth: p.gold.stored_text(),
                num_tokens: s.response_ids.len() as i32,
                finished: s.finished,
                reward: f64::from(batch.rewards[i]),
                verdict: r.verdict.clone(),
                extracted: r.extracted.clone(),
                verifier_result: r.detail.clone(),
                advantage: f64::from(adv[i]),
                mean_entropy: row_entropy[i],
            }
        })
        .collect()
}

/// The step's metrics from its phases' results.
pub(crate) fn step_metrics(
    step: usize,
    batch: &Batch,
    old: &OldPolicy,
    update: Update,
    lr: f64,
    entropy_change: EntropyChange,
    timings: HashMap<&'static str, f64>,
) -> StepMetrics {
    let n = batch.samples.len() as f64;
    StepMetrics {
        step,
        reward_mean: batch.rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n,
        accuracy: batch.results.iter().filter(|r| r.correct).count() as f64 / n,
        entropy: old.token_mean_entropy(),
        loss: update.loss,
        grad_norm: update.grad_norm,
        clip_frac_low: update.clip_frac_low,
        clip_frac_high: update.clip_frac_high,
        response_len_mean: batch
            .samples
            .iter()
            .map(|s| s.response_ids.len() as f64)
            .sum::<f64>()
            / n,
        weights: update.weights,
        predicted_entropy_change: update.predicted_entropy_change,
        entropy_change,
        kl: update.kl,
        lr,
        optimizer_steps: update.optimizer_steps,
        groups_dropped: batch.groups_dropped,
        skipped: update.skipped,
        timings,
    }
}

/// The step's row in the `steps` table.
pub(crate) fn step_record(run_id: &str, m: &StepMetrics) -> StepRecord {
    StepRecord {
        run_id: run_id.to_string(),
        step: m.step as i32,
        reward_mean: m.reward_mean,
        accuracy: m.accuracy,
        entropy: m.entropy,
        loss: m.loss,
        grad_norm: m.grad_norm,
        clip_frac_low: m.clip_frac_low,
        clip_frac_high: m.clip_frac_high,
        response_len_mean: m.response_len_mean,
        steer_w_mean: m.weights.mean,
        steer_w_min: m.weights.min,
        steer_w_max: m.weights.max,
        steer_w_frac_below_099: m.weights.frac_below_099,
        predicted_entropy_change: m.predicted_entropy_change,
        coupled_predicted_entropy_change: m.entropy_change.predicted,
        head_step_entropy_change: m.entropy_change.head_step,
        realised_entropy_change: m.entropy_change.realised,
        skipped: m.skipped,
        timings: serde_json::to_value(&m.timings).unwrap_or(serde_json::Value::Null),
    }
}

/// The step's line in `metrics.jsonl`: its `steps` row plus the settings and counts the
/// table has no column for.
pub(crate) fn metrics_line(run_id: &str, m: &StepMetrics, method: &str) -> serde_json::Value {
    let mut line = serde_json::to_value(step_record(run_id, m)).unwrap_or_default();
    if let Some(o) = line.as_object_mut() {
        o.insert("kl".into(), m.kl.into());
        o.insert("lr".into(), m.lr.into());
        o.insert("optimizer_steps".into(), m.optimizer_steps.into());
        o.insert("groups_dropped".into(), m.groups_dropped.into());
        o.insert("method".into(), method.into());
    }
    line
}

/// The step's progress line.
pub(crate) fn step_line(m: &StepMetrics, total: usize) -> String {
    format!(
        "step {:>3}/{total}  reward {:.3}  acc {:.3}  entropy {:.4}  loss {:+.4}  |g| {:.3}  w {:.3} [{:.3}, {:.3}]  clip {:.3}/{:.3}  len {:.1}{}",
        m.step + 1,
        m.reward_mean,
        m.accuracy,
        m.entropy,
        m.loss,
        m.grad_norm,
        m.weights.mean,
        m.weights.min,
        m.weights.max,
        m.clip_frac_low,
        m.clip_frac_high,
        m.response_len_mean,
        if m.skipped {
            "  (skipped: non-finite gradient)"
        } else {
            ""
        }
    )
}
