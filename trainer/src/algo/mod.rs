//! RL objectives. One file per piece; this module only defines the method enum and dispatches.
//!
//! * [`advantage`]: group-relative (GRPO) advantages.
//! * [`logprob`]: per-token log-probabilities and full-vocabulary entropies from logits.
//! * [`ppo_clip`]: the dual-clip PPO surrogate per token.
//! * [`steer`]: STEER's per-token entropy-change estimate Ω and its weights.
//! * [`agg`]: loss aggregation over tokens.
//!
//! `../shared/STEER.md` is the specification.

pub mod advantage;
pub mod agg;
pub mod logprob;
pub mod ppo_clip;
pub mod steer;

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

pub use agg::LossAgg;
pub use ppo_clip::ClipConfig;
pub use steer::{SteerConfig, WeightStats};

/// The policy-loss method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Dual-clip PPO surrogate on group-normalised advantages.
    Grpo,
    /// GRPO with each token's loss reweighted by STEER (`STEER.md` §2).
    Steer,
}

impl Method {
    /// The method's config/CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Grpo => "grpo",
            Method::Steer => "steer",
        }
    }
}

/// Per-token inputs of one micro-batch, all `(b, t)` f32 on the model's device; `mask` is 1.0 on
/// response tokens and 0.0 elsewhere. Host copies are kept for the weight computation.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// log π_old of the sampled tokens.
    pub old_logp: Tensor,
    /// Advantage broadcast over each response.
    pub adv: Tensor,
    /// Response mask.
    pub mask: Tensor,
    /// Host copy of `old_logp`, row-major.
    pub old_logp_host: Vec<f32>,
    /// Host copy of `adv`.
    pub adv_host: Vec<f32>,
    /// Full-vocabulary entropy under π_old, host.
    pub entropy_old_host: Vec<f32>,
    /// Host copy of `mask`.
    pub mask_host: Vec<bool>,
}

/// What a micro-batch's loss reports besides the loss tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossStats {
    /// Fraction of valid tokens clipped on the low side (A<0, r<1−ε_low).
    pub clip_frac_low: f64,
    /// Fraction clipped on the high side (A>0, r>1+ε_high).
    pub clip_frac_high: f64,
    /// STEER weight statistics over valid tokens (all 1.0 for GRPO).
    pub weights: WeightStats,
    /// Σ over valid tokens of STEER's Theorem-1 predicted entropy change, without the −η/L
    /// constant: `−Σ I_clip·A/π_old·π(1−π)(log π + H)`.
    pub predicted_entropy_change: f64,
}

/// The scalar loss of one micro-batch and its statistics. `logp` `(b, t)` carries the gradient.
pub fn micro_batch_loss(
    method: Method,
    clip: &ClipConfig,
    steer_cfg: &SteerConfig,
    agg: LossAgg,
    logp: &Tensor,
    batch: &TokenBatch,
) -> Result<(Tensor, LossStats)> {
    let token_loss = ppo_clip::token_loss(logp, &batch.old_logp, &batch.adv, clip)?;
    let logp_host = logp.detach().flatten_all()?.to_vec1::<f32>()?;
    let clip_stats = ppo_clip::clip_stats(
        &logp_host,
        &batch.old_logp_host,
        &batch.adv_host,
        &batch.mask_host,
        clip,
    );
    let omega = steer::omega(
        &logp_host,
        &batch.old_logp_host,
        &batch.adv_host,
        &batch.entropy_old_host,
    );
    let predicted = -omega
        .iter()
        .zip(&clip_stats.gradient_flows)
        .zip(&batch.mask_host)
        .filter(|&(_, &m)| m)
        .map(|((o, &flows), _)| if flows { f64::from(*o) } else { 0.0 })
        .sum::<f64>();
    let (weighted, weights) = match method {
        Method::Grpo => (token_loss, WeightStats::ones(&batch.mask_host)),
        Method::Steer => {
            let w = steer::weights(&omega, &batch.mask_host, steer_cfg);
            let stats = WeightStats::of(&w, &batch.mask_host);
            let w = Tensor::from_vec(w, token_loss.shape(), token_loss.device())?;
            ((token_loss * w)?, stats)
        }
    };
    let loss = agg.aggregate(&weighted, &batch.mask)?;
    Ok((
        loss,
        LossStats {
            clip_frac_low: clip_stats.frac_low,
            clip_frac_high: clip_stats.frac_high,
            weights,
            predicted_entropy_change: predicted,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    // Inputs and expected numbers from the independent Python reimplementation in
    // `steer::tests` (same six tokens, last one padding).
    #[test]
    fn steer_and_grpo_losses_match_golden_numbers() {
        let dev = Device::Cpu;
        let adv = vec![1.5f32, 1.5, -0.5, -0.5, 0.0, 2.0];
        let logp = vec![-0.1f32, -3.0, -0.05, -4.0, -1.0, -20.0];
        let old = vec![-0.2f32, -2.5, -0.05, -3.5, -1.0, -20.0];
        let ent = vec![0.8f32, 2.0, 0.3, 2.5, 1.0, 3.0];
        let mask = vec![true, true, true, true, true, false];
        let t = |v: &Vec<f32>| Tensor::from_vec(v.clone(), (2, 3), &dev).unwrap();
        let maskf: Vec<f32> = mask.iter().map(|&m| f32::from(u8::from(m))).collect();
        let batch = TokenBatch {
            old_logp: t(&old),
            adv: t(&adv),
            mask: t(&maskf),
            old_logp_host: old.clone(),
            adv_host: adv.clone(),
            entropy_old_host: ent,
            mask_host: mask,
        };
        let clip = ClipConfig {
            eps_low: 0.2,
            eps_high: 0.28,
            dual_clip_c: Some(10.0),
        };
        let steer_cfg = SteerConfig::default();
        let run = |m: Method| {
            let (loss, stats) =
                micro_batch_loss(m, &clip, &steer_cfg, LossAgg::TokenMean, &t(&logp), &batch)
                    .unwrap();
            (loss.to_scalar::<f32>().unwrap(), stats)
        };
        let (grpo, gs) = run(Method::Grpo);
        let (steer, ss) = run(Method::Steer);
        assert!((grpo - -0.33351).abs() < 1e-5, "{grpo}");
        assert!((steer - -0.296669).abs() < 1e-5, "{steer}");
        assert_eq!(gs.weights.mean, 1.0);
        assert!((ss.weights.min - 0.8).abs() < 1e-6);
        assert!((ss.weights.frac_below_099 - 0.6).abs() < 1e-9); // 0.972, 0.8 and 0.891 of 5
        // Token 1 (A>0, r = e^-0.5 < 1) and the rest are unclipped at the high side; token 3
        // (A<0, r = e^-0.5 < 0.8) is clipped low.
        assert!((gs.clip_frac_low - 0.2).abs() < 1e-9);
        assert_eq!(gs.clip_frac_high, 0.0);
    }
}
