//! Phase 4: score the batch under π_old, before any update: per micro-batch, the sampled
//! tokens' log-probs and the full-vocabulary entropies, packed with the advantages into the
//! [`TokenBatch`]es the loss reads; for `steer-coupled`, also every token's coupled
//! contribution and weight over the whole batch. After the update, [`entropy_after`] rescores
//! the same batch for the realised entropy change.

use std::time::Instant;

use candle_core::{Device, Tensor};

use super::StepContext;
use crate::algo::coupled::blocks::FD_SCALE;
use crate::algo::coupled::{Cached, HeadInputs, Network, TopBlocks, head};
use crate::algo::steer_coupled::{self, MicroCells, SourceEstimate};
use crate::algo::{Method, TokenBatch, logprob};
use crate::optim::Param;
use crate::rollout::{self, Packed, Sample};
use crate::train::TrainError;

/// The batch under π_old.
#[derive(Debug)]
pub(crate) struct OldPolicy {
    /// Micro-batches of `algo.micro_batch_size` responses, in batch order.
    pub(crate) micro: Vec<(Packed, TokenBatch)>,
    /// Each response's mean entropy over its tokens, nats.
    pub(crate) row_entropy: Vec<f64>,
    /// Entropy summed over every response token, nats.
    pub(crate) entropy_sum: f64,
    /// Response tokens in the batch.
    pub(crate) entropy_tokens: usize,
    /// Seconds spent on `steer-coupled`'s contributions and weights (0 for other methods).
    pub(crate) coupled_seconds: f64,
    /// `steer-coupled`: the head inputs of every micro-batch's valid positions under π_old.
    pub(crate) heads: Vec<HeadInputs>,
    /// `steer-coupled`: a copy of the output head's weight under π_old.
    pub(crate) head_before: Option<Tensor>,
}

impl OldPolicy {
    /// Token-mean entropy of the batch, nats.
    pub(crate) fn token_mean_entropy(&self) -> f64 {
        self.entropy_sum / self.entropy_tokens.max(1) as f64
    }

    /// Hands each micro-batch its `steer-coupled` contributions and weights.
    fn set_coupled(&mut self, tokens: Vec<steer_coupled::CoupledTokens>) {
        for ((_, b), tok) in self.micro.iter_mut().zip(tokens) {
            b.coupled = Some(tok);
        }
    }

    /// `steer-coupled`'s predicted change of the batch's token-mean entropy for one SGD step of
    /// size `lr` ([`steer_coupled::predicted_change`]); `None` for other methods.
    pub(crate) fn coupled_predicted_change(&self, lr: f64) -> Option<f64> {
        let tokens: Vec<_> = self
            .micro
            .iter()
            .map(|(_, b)| b.coupled.clone())
            .collect::<Option<Vec<_>>>()?;
        let masks: Vec<&[bool]> = self.micro.iter().map(|(p, _)| p.mask.as_slice()).collect();
        Some(steer_coupled::predicted_change(&tokens, &masks, lr))
    }

    /// `steer-coupled`: the first-order change of the batch's token-mean entropy through the
    /// output head's actual update since scoring (the optimizer's step on the head, momentum,
    /// weight decay and clipping included; the final norm and lower layers not counted), from
    /// the head's weight now. `None` for other methods.
    pub(crate) fn head_step_change(
        &self,
        ctx: &StepContext<'_>,
    ) -> Result<Option<f64>, TrainError> {
        let Some(before) = &self.head_before else {
            return Ok(None);
        };
        let dw = (ctx.frozen_view.head_weight().to_dtype(before.dtype())? - before)?;
        let (mut sum, mut n) = (0f64, 0usize);
        for x in &self.heads {
            let change =
                head::entropy_change_along(x, before, &dw, ctx.cfg.rollout.sampling.temperature)?;
            sum += change.iter().sum::<f64>();
            n += change.len();
        }
        Ok(Some(sum / n.max(1) as f64))
    }
}

/// Scores `samples` with the frozen view (no graph), `adv` holding one advantage per sample.
pub(crate) fn under_old_policy(
    ctx: &StepContext<'_>,
    samples: &[Sample],
    adv: &[f32],
) -> Result<OldPolicy, TrainError> {
    let order: Vec<usize> = (0..samples.len()).collect();
    let mut old = OldPolicy {
        micro: Vec::new(),
        row_entropy: vec![0f64; samples.len()],
        entropy_sum: 0.0,
        entropy_tokens: 0,
        coupled_seconds: 0.0,
        heads: Vec::new(),
        head_before: None,
    };
    let temperature = ctx.cfg.rollout.sampling.temperature;
    let coupled = ctx.cfg.algo.method == Method::SteerCoupled;
    for chunk in order.chunks(ctx.cfg.algo.micro_batch_size) {
        let refs: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
        let packed = rollout::pack(&refs, ctx.device)?;
        let (old_logp, entropy) = if coupled {
            let (from, cols) = (packed.first_response_col, packed.cols);
            let head_input = ctx.frozen_view.head_input_tail(&packed.inputs, from)?;
            let logits = ctx.frozen_view.logits_of(&head_input)?;
            let t = Instant::now();
            let tail_mask: Vec<bool> = (0..packed.rows)
                .flat_map(|r| packed.mask[r * cols + from..(r + 1) * cols].iter().copied())
                .collect();
            old.heads.push(HeadInputs::at_valid(
                &head_input,
                &logits,
                &packed.targets.narrow(1, from, cols - from)?,
                &tail_mask,
                temperature,
                ctx.cfg.algo.steer_coupled.top_k,
            )?);
            old.coupled_seconds += t.elapsed().as_secs_f64();
            logprob::score_logits(&packed, &logits, temperature, true)?
        } else {
            logprob::score(ctx.frozen_view, &packed, temperature, true)?
        };
        let entropy = entropy.expect("asked for");
        let entropy_host = entropy.flatten_all()?.to_vec1::<f32>()?;
        for (r, &i) in chunk.iter().enumerate() {
            let cells = r * packed.cols..(r + 1) * packed.cols;
            let (s, n) = cells
                .filter(|&c| packed.mask[c])
                .fold((0f64, 0usize), |(s, n), c| {
                    (s + f64::from(entropy_host[c]), n + 1)
                });
            old.row_entropy[i] = if n > 0 { s / n as f64 } else { 0.0 };
            old.entropy_sum += s;
            old.entropy_tokens += n;
        }
        let batch = token_batch(
            &packed,
            old_logp,
            entropy_host,
            chunk.iter().map(|&i| adv[i]),
            ctx.device,
        )?;
        old.micro.push((packed, batch));
    }
    if coupled {
        let t = Instant::now();
        // The head's estimate needs only π_old; the top blocks' needs the trainable parameters
        // ([`top_block_weights`], before the update).
        if ctx.cfg.algo.steer_coupled.source == SourceEstimate::Head {
            let tokens = steer_coupled::batch_weights(
                &old.heads,
                &cells(&old),
                ctx.frozen_view.head_weight(),
                temperature,
                &ctx.cfg.algo.steer_coupled,
            )?;
            old.set_coupled(tokens);
        }
        old.head_before = Some(ctx.frozen_view.head_weight().copy()?);
        old.coupled_seconds += t.elapsed().as_secs_f64();
    }
    Ok(old)
}

/// Every micro-batch's mask and advantages.
fn cells(old: &OldPolicy) -> Vec<MicroCells<'_>> {
    old.micro
        .iter()
        .map(|(_, b)| MicroCells {
            mask: &b.mask_host,
            adv: &b.adv_host,
        })
        .collect()
}

/// `steer-coupled` with [`SourceEstimate::TopBlocks`]: every token's contribution through the
/// output head, the final norm and the last `blocks` blocks of the trainable `policy` (whose
/// parameters are `params`, at π_old: before any update), and the weights from them.
pub(crate) fn top_block_weights(
    ctx: &StepContext<'_>,
    params: &[Param],
    old: &mut OldPolicy,
    blocks: usize,
) -> Result<(), TrainError> {
    let top = TopBlocks::new(ctx.policy, params, blocks);
    let cached = old
        .micro
        .iter()
        .map(|(p, _)| Cached::new(ctx.policy, top.first_layer, &p.inputs, &p.targets, &p.mask))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let net = Network {
        model: ctx.policy,
        params,
        temperature: ctx.cfg.rollout.sampling.temperature,
    };
    let a = steer_coupled::valid_advantages(&cells(old))?;
    let c = top.source(&net, &cached, &a, &[], FD_SCALE)?;
    let tokens = steer_coupled::weights_from(&c, &cells(old), &ctx.cfg.algo.steer_coupled)?;
    old.set_coupled(tokens);
    Ok(())
}

/// Token-mean entropy of the batch's responses under the policy as it is now (after the
/// update; the frozen view sees every update), nats, at the rollout temperature.
pub(crate) fn entropy_after(ctx: &StepContext<'_>, old: &OldPolicy) -> Result<f64, TrainError> {
    let (mut sum, mut n) = (0f64, 0usize);
    for (packed, _) in &old.micro {
        let (_, entropy) = logprob::score(
            ctx.frozen_view,
            packed,
            ctx.cfg.rollout.sampling.temperature,
            true,
        )?;
        let host = entropy
            .expect("asked for")
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (h, _) in host.iter().zip(&packed.mask).filter(|&(_, &m)| m) {
            sum += f64::from(*h);
            n += 1;
        }
    }
    Ok(sum / n.max(1) as f64)
}

/// The response mask of `packed` as a `(rows, cols)` f32 tensor of 0.0 and 1.0.
pub(crate) fn mask_tensor(packed: &Packed, device: &Device) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = packed
        .mask
        .iter()
        .map(|&b| f32::from(u8::from(b)))
        .collect();
    Tensor::from_vec(m, (packed.rows, packed.cols), device)
}

/// Builds the per-token inputs of one micro-batch; `adv` gives one advantage per row.
pub fn token_batch(
    packed: &Packed,
    old_logp: Tensor,
    entropy_old_host: Vec<f32>,
    adv: impl Iterator<Item = f32>,
    device: &Device,
) -> candle_core::Result<TokenBatch> {
    let row_adv: Vec<f32> = adv.collect();
    let adv_host = rollout::per_token(&row_adv, &packed.mask, packed.cols);
    Ok(TokenBatch {
        old_logp_host: old_logp.flatten_all()?.to_vec1::<f32>()?,
        old_logp,
        adv: Tensor::from_vec(adv_host.clone(), (packed.rows, packed.cols), device)?,
        mask: mask_tensor(packed, device)?,
        adv_host,
        entropy_old_host,
        mask_host: packed.mask.clone(),
        coupled: None,
    })
}
