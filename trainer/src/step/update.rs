//! Phase 5: the optimizer steps. `ppo_epochs` passes over the batch in mini-batches; each
//! mini-batch is one optimizer step, the mean over its micro-batches of their losses. π_old
//! stays the policy that sampled the batch, so later mini-batches see ratios away from 1.

use crate::algo::{self, LossConfig, Method, PolicyOutputs, TokenBatch, WeightStats, logprob};
use crate::optim::{AdamW, GradAccumulator};
use crate::rollout::Packed;
use crate::train::TrainError;

use super::{StepContext, step_seed};

/// What the optimizer steps of one RL step did.
#[derive(Debug, Default)]
pub(crate) struct Update {
    /// Mean over optimizer steps of the mini-batch loss.
    pub(crate) loss: f64,
    /// Mean gradient norm before clipping.
    pub(crate) grad_norm: f64,
    /// Any optimizer step skipped for a non-finite gradient.
    pub(crate) skipped: bool,
    /// Optimizer steps taken.
    pub(crate) optimizer_steps: usize,
    /// Mean low-side clip fraction over the micro-batch losses evaluated.
    pub(crate) clip_frac_low: f64,
    /// Mean high-side clip fraction.
    pub(crate) clip_frac_high: f64,
    /// STEER's predicted entropy change, summed over micro-batch losses.
    pub(crate) predicted_entropy_change: f64,
    /// STEER weights over every token evaluated.
    pub(crate) weights: WeightStats,
    /// Token-mean KL to the reference, when computed.
    pub(crate) kl: Option<f64>,
}

/// Takes the optimizer steps over `micro` at learning rate `lr`.
pub(crate) fn optimize(
    ctx: &StepContext<'_>,
    opt: &mut AdamW,
    micro: &[(Packed, TokenBatch)],
    lr: f64,
    step: usize,
) -> Result<Update, TrainError> {
    let cfg = ctx.cfg;
    let temperature = cfg.rollout.sampling.temperature;
    let micro_per_mini = cfg
        .algo
        .mini_batch_size
        .map_or(micro.len(), |m| m.div_ceil(cfg.algo.micro_batch_size))
        .max(1);
    let mut u = Update::default();
    let (mut kl_sum, mut kl_n, mut grad_norm_sum, mut evaluated) = (0f64, 0usize, 0f64, 0usize);
    for _epoch in 0..cfg.algo.ppo_epochs {
        for (mini_idx, mini) in micro.chunks(micro_per_mini).enumerate() {
            let mut acc = GradAccumulator::new(opt.params().len());
            let n_micro = mini.len() as f64;
            let mut mini_loss = 0f64;
            for (k, (packed, batch)) in mini.iter().enumerate() {
                // The entropy (with its gradient) only where the loss uses it.
                let (logp, entropy) = logprob::score(
                    ctx.policy,
                    packed,
                    temperature,
                    cfg.algo.method == Method::EntropyBonus,
                )?;
                let ref_logp = match ctx.reference {
                    Some(r) if cfg.algo.params.kl.beta > 0.0 => {
                        Some(logprob::score(r, packed, temperature, false)?.0)
                    }
                    _ => None,
                };
                let loss_cfg = LossConfig {
                    method: cfg.algo.method,
                    clip: &cfg.algo.clip,
                    steer: &cfg.algo.steer,
                    params: &cfg.algo.params,
                    agg: cfg.algo.loss_agg,
                    seed: step_seed(cfg.seed, step) ^ ((mini_idx * micro_per_mini + k) as u64),
                };
                let outputs = PolicyOutputs {
                    logp: &logp,
                    entropy: entropy.as_ref(),
                    ref_logp: ref_logp.as_ref(),
                };
                let (loss, stats) = algo::micro_batch_loss(&loss_cfg, &outputs, batch)?;
                if let Some(kl) = stats.kl {
                    kl_sum += kl;
                    kl_n += 1;
                }
                let scaled = (loss / n_micro)?;
                mini_loss += f64::from(scaled.to_scalar::<f32>()?);
                acc.add(opt.params(), &scaled.backward()?)?;
                u.clip_frac_low += stats.clip_frac_low;
                u.clip_frac_high += stats.clip_frac_high;
                u.predicted_entropy_change += stats.predicted_entropy_change;
                u.weights = u.weights.merge(stats.weights);
                evaluated += 1;
            }
            let outcome = opt.step(&acc.into_grads(), lr)?;
            u.loss += mini_loss;
            grad_norm_sum += outcome.grad_norm;
            u.skipped |= outcome.skipped;
            u.optimizer_steps += 1;
        }
    }
    let steps = u.optimizer_steps.max(1) as f64;
    u.clip_frac_low /= evaluated.max(1) as f64;
    u.clip_frac_high /= evaluated.max(1) as f64;
    u.loss /= steps;
    u.grad_norm = grad_norm_sum / steps;
    u.kl = (kl_n > 0).then(|| kl_sum / kl_n as f64);
    Ok(u)
}
