//! One SGD step on a fixed batch, measured: the realised entropy change at every response
//! position, each estimate of it (target side) and of each token's contribution to the summed
//! change (source side), and what each coupled estimate costs against a training step.

use std::time::Instant;

use candle_core::{IndexOp, Result, Tensor};

use crate::algo::coupled::{self, Cached, HeadInputs, Network, TopBlocks};
use crate::algo::logprob;
use crate::model::Decoder;
use crate::optim::Param;
use crate::rollout::{Packed, per_token};

pub use crate::algo::coupled::blocks::FD_SCALE;

/// The probe step and which coupled estimators to run.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureOptions {
    /// SGD step size η.
    pub lr: f64,
    /// Positions that get the autograd first-order value (one backward pass each), spread
    /// evenly over the batch.
    pub max_first_order: usize,
    /// Rows per forward/backward pass (memory bound; the step does not depend on it).
    pub micro_rows: usize,
    /// Block counts `k` of the `coupled_top{k}` estimators (output head, final norm and the
    /// last `k` blocks, rerun from the residual stream below them).
    pub blocks: Vec<usize>,
    /// Tokens of each π_t kept by `coupled_head` (the rest of the vocabulary is truncated).
    pub head_top_k: usize,
    /// Also measure the source side: each token's contribution to the entropy change summed
    /// over all positions, against the exact first-order contribution (one backward pass and
    /// two forward passes over the batch).
    pub source: bool,
}

impl Default for MeasureOptions {
    /// η = 1e-3, 2000 first-order positions, 8 rows per pass, `coupled_head` over the top 16
    /// tokens, `coupled_top1`, the source side on.
    fn default() -> Self {
        MeasureOptions {
            lr: 1e-3,
            max_first_order: 2000,
            micro_rows: 8,
            blocks: vec![1],
            head_top_k: 16,
            source: true,
        }
    }
}

/// One response position.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbePoint {
    /// Advantage of the response.
    pub advantage: f64,
    /// log π of the sampled token before the step.
    pub logp: f64,
    /// Entropy before the step, nats.
    pub entropy: f64,
    /// Measured `H_after − H_before`.
    pub realised: f64,
    /// STEER's released-code form, scaled by −η/L.
    pub steer_released: f64,
    /// STEER's Theorem-1 (single-logit) form.
    pub steer_theorem1: f64,
    /// Cui et al.'s covariance.
    pub covariance: f64,
    /// ∇θH(s)·Δθ (NaN where not computed).
    pub first_order: f64,
    /// The coupled estimates of this position's change, in the order of
    /// [`Measurement::coupled`].
    pub coupled: Vec<f64>,
    /// Source side: this token's exact first-order contribution `⟨∇θ Σ_s H_s, Δθ_t⟩` to the
    /// summed entropy change (NaN when not measured).
    pub source_exact: f64,
    /// Source side: each coupled estimator's value of that contribution (NaN when not
    /// measured), in the order of [`Measurement::coupled`].
    pub source: Vec<f64>,
}

impl ProbePoint {
    /// Quadrant by sign of A and of ln π + H: I (A>0, confident), II (A>0, rare), III (A<0,
    /// confident), IV (A<0, rare); `None` for A = 0.
    pub fn quadrant(&self) -> Option<&'static str> {
        let confident = self.logp + self.entropy > 0.0;
        match (self.advantage > 0.0, self.advantage < 0.0, confident) {
            (true, _, true) => Some("I (A>0, confident)"),
            (true, _, false) => Some("II (A>0, rare)"),
            (_, true, true) => Some("III (A<0, confident)"),
            (_, true, false) => Some("IV (A<0, rare)"),
            _ => None,
        }
    }
}

/// A coupled estimator and what it cost in this run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoupledEstimator {
    /// `coupled_head` or `coupled_top{k}`.
    pub name: String,
    /// Seconds for the target side (every position's change).
    pub seconds: f64,
    /// Seconds for the source side (every token's contribution), when measured.
    pub source_seconds: Option<f64>,
}

/// Seconds of the phases of one training step, measured in the same run as the estimators.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StepCost {
    /// Sampling the responses.
    pub generate: f64,
    /// Grading them.
    pub grade: f64,
    /// Forward and backward pass over the batch (the update's gradient).
    pub gradient: f64,
    /// One forward pass over the batch without a graph (scoring under π_old costs this).
    pub forward: f64,
}

impl StepCost {
    /// A training step: generate, grade, score under π_old, forward and backward.
    pub fn total(&self) -> f64 {
        self.generate + self.grade + self.forward + self.gradient
    }

    /// The update alone: scoring under π_old, forward and backward.
    pub fn update(&self) -> f64 {
        self.forward + self.gradient
    }
}

/// Everything one probe step measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// SGD step size η.
    pub lr: f64,
    /// Every response position.
    pub points: Vec<ProbePoint>,
    /// The coupled estimators, in the order of [`ProbePoint::coupled`].
    pub coupled: Vec<CoupledEstimator>,
    /// The training step they are measured against.
    pub step: StepCost,
}

/// Rows `r0..r0 + n` of `batch`, cut to the columns they use: `(inputs, targets, mask)`.
pub(super) fn rows_of(batch: &Packed, r0: usize, n: usize) -> Result<(Tensor, Tensor, Vec<bool>)> {
    let cols = batch.cols;
    let used = (r0..r0 + n)
        .filter_map(|r| (0..cols).rev().find(|&c| batch.mask[r * cols + c]))
        .max()
        .map_or(1, |c| c + 1);
    let mask = (r0..r0 + n)
        .flat_map(|r| batch.mask[r * cols..r * cols + used].iter().copied())
        .collect();
    Ok((
        batch.inputs.narrow(0, r0, n)?.narrow(1, 0, used)?,
        batch.targets.narrow(0, r0, n)?.narrow(1, 0, used)?,
        mask,
    ))
}

/// Rows of the batch that go through one pass together.
struct Micro {
    /// First row.
    r0: usize,
    /// `(n, used)` input ids.
    inputs: Tensor,
    /// `(n, used)` target ids.
    targets: Tensor,
    /// Row-major `(n, used)` response mask.
    mask: Vec<bool>,
}

/// The micro-batches of `batch`.
fn micro_batches(batch: &Packed, micro_rows: usize) -> Result<Vec<Micro>> {
    (0..batch.rows)
        .step_by(micro_rows.max(1))
        .map(|r0| {
            let (inputs, targets, mask) =
                rows_of(batch, r0, micro_rows.max(1).min(batch.rows - r0))?;
            Ok(Micro {
                r0,
                inputs,
                targets,
                mask,
            })
        })
        .collect()
}

/// The log-probabilities of the targets at every valid position of `micros`, in order, under
/// the model's current weights (full forward passes, no graph).
fn valid_logps(policy: &Decoder, micros: &[Micro]) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for Micro {
        inputs,
        targets,
        mask,
        ..
    } in micros
    {
        let logp = logprob::logprobs(&policy.forward(inputs)?.detach(), targets, 1.0)?;
        out.extend(
            logp.flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .zip(mask)
                .filter(|&(_, &m)| m)
                .map(|(v, _)| v),
        );
    }
    Ok(out)
}

/// Measures one step of size `lr` on `batch` with per-row advantages `adv_rows`. At most
/// `max_first_order` positions, spread evenly over the batch, get the autograd first-order
/// value (one backward pass through their row each). Forward and backward passes hold at most
/// `micro_rows` rows at a time (memory: a full-vocabulary log-softmax and the backward graph
/// per row), so the batch may be larger than memory would allow in one graph; the gradient is
/// accumulated over the micro-batches and the step is the same. The weights are left updated.
/// [`StepCost::generate`] and [`StepCost::grade`] are left 0 for the caller to fill.
pub fn measure(
    policy: &Decoder,
    params: &[Param],
    batch: &Packed,
    adv_rows: &[f32],
    est: &MeasureOptions,
) -> Result<Measurement> {
    let (lr, max_first_order) = (est.lr, est.max_first_order);
    let net = Network {
        model: policy,
        params,
        temperature: 1.0,
    };
    let (rows, cols) = (batch.rows, batch.cols);
    let n_tok = batch.mask.iter().filter(|&&m| m).count().max(1) as f64;
    let dev = batch.inputs.device();
    let micros = micro_batches(batch, est.micro_rows)?;
    let positions: Vec<usize> = (0..rows * cols).filter(|&c| batch.mask[c]).collect();
    let adv_tok = per_token(adv_rows, &batch.mask, cols);
    // −∂L/∂r_t at every valid position: L = −Σ_t A_t r_t / N.
    let a: Vec<f32> = positions
        .iter()
        .map(|&c| adv_tok[c] / n_tok as f32)
        .collect();
    let mut logp_h = vec![0f32; rows * cols];
    let mut ent_h = vec![0f32; rows * cols];
    // Copies a micro-batch's `(n, used)` values into their `(rows, cols)` places.
    let scatter = |dst: &mut [f32], r0: usize, t: &Tensor| -> Result<()> {
        for (i, row) in t.to_vec2::<f32>()?.into_iter().enumerate() {
            dst[(r0 + i) * cols..(r0 + i) * cols + row.len()].copy_from_slice(&row);
        }
        Ok(())
    };
    let mut step = StepCost::default();

    // 1. The gradient of the surrogate −A·r at r = 1 (π_old = π_θ, so ∇r = ∇log π),
    //    token-mean over the whole batch, accumulated micro-batch by micro-batch; the head
    //    kernel's inputs are read off the same forward pass (timed apart).
    let mut grad: Vec<Option<Tensor>> = vec![None; params.len()];
    let (mut head_parts, mut head_s) = (Vec::new(), 0f64);
    let t = Instant::now();
    for Micro {
        r0,
        inputs,
        targets,
        mask,
    } in &micros
    {
        let n = inputs.dim(0)?;
        let used = mask.len() / n;
        let head_input = policy.head_input_tail(inputs, 0)?;
        let logits = policy.logits_of(&head_input)?;
        let (logp, entropy) = logprob::logprobs_and_entropy(&logits, targets, 1.0)?;
        let th = Instant::now();
        head_parts.push(HeadInputs::at_valid(
            &head_input.detach(),
            &logits.detach(),
            targets,
            mask,
            1.0,
            est.head_top_k,
        )?);
        head_s += th.elapsed().as_secs_f64();
        scatter(&mut logp_h, *r0, &logp.detach())?;
        scatter(&mut ent_h, *r0, &entropy.detach())?;
        let adv = per_token(&adv_rows[*r0..r0 + n], mask, used);
        let adv = Tensor::from_vec(adv, (n, used), dev)?;
        let ratio = (&logp - logp.detach())?.exp()?;
        let grads = ((adv.neg()? * ratio)?.sum_all()? / n_tok)?.backward()?;
        for (acc, p) in grad.iter_mut().zip(params) {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                *acc = Some(match acc.take() {
                    Some(a) => (a + g)?,
                    None => g.clone(),
                });
            }
        }
    }
    step.gradient = t.elapsed().as_secs_f64() - head_s;
    let delta: Vec<Option<Tensor>> = grad
        .into_iter()
        .map(|g| g.map(|g| g * -lr).transpose())
        .collect::<Result<_>>()?;

    // 2. The coupled estimates, target side (and source side when asked), each timed.
    let mut coupled = Vec::new();
    let mut target_vals: Vec<Vec<f64>> = Vec::new();
    let mut source_vals: Vec<Vec<f64>> = Vec::new();
    let t = Instant::now();
    let pm = coupled::pair_matrix(
        &HeadInputs::cat(&head_parts)?,
        policy.head_weight(),
        &a,
        1.0,
    )?;
    target_vals.push(pm.target().into_iter().map(|x| x * lr).collect());
    source_vals.push(pm.source().into_iter().map(|x| x * lr).collect());
    coupled.push(CoupledEstimator {
        name: "coupled_head".into(),
        seconds: head_s + t.elapsed().as_secs_f64(),
        source_seconds: est.source.then_some(0.0),
    });
    for &k in &est.blocks {
        let top = TopBlocks::new(policy, params, k);
        // The residual below the rerun blocks is a by-product of the scoring forward pass in
        // training; here it is computed apart and not counted.
        let cached = micros
            .iter()
            .map(|m| Cached::new(policy, top.first_layer, &m.inputs, &m.targets, &m.mask))
            .collect::<Result<Vec<_>>>()?;
        let before = top.entropies(&net, &cached)?;
        let moves: Vec<Option<Tensor>> = top.params.iter().map(|&i| delta[i].clone()).collect();
        let t = Instant::now();
        let change = top.entropy_change(&net, &cached, &moves, &before)?;
        let seconds = t.elapsed().as_secs_f64();
        target_vals.push(change.into_iter().map(f64::from).collect());
        let source_seconds = if est.source {
            let t = Instant::now();
            let c = top.source(&net, &cached, &a, &[], FD_SCALE)?;
            source_vals.push(c.into_iter().map(|x| x * lr).collect());
            Some(t.elapsed().as_secs_f64())
        } else {
            None
        };
        coupled.push(CoupledEstimator {
            name: format!("coupled_top{k}"),
            seconds,
            source_seconds,
        });
    }

    // 3. Source side, exactly to first order: v = ∇θ Σ_s H_s by autograd, then every token's
    //    D_v log π(y_t) by a central difference over the whole network.
    let mut source_exact = vec![f64::NAN; positions.len()];
    if est.source {
        let mut v: Vec<Option<Tensor>> = vec![None; params.len()];
        for Micro {
            inputs,
            targets,
            mask,
            ..
        } in &micros
        {
            let entropy = logprob::logprobs_and_entropy(&policy.forward(inputs)?, targets, 1.0)?.1;
            let m = Tensor::from_vec(
                mask.iter().map(|&b| f32::from(u8::from(b))).collect(),
                entropy.shape(),
                dev,
            )?;
            let grads = (entropy * m)?.sum_all()?.backward()?;
            for (acc, p) in v.iter_mut().zip(params) {
                if let Some(g) = grads.get(p.var.as_tensor()) {
                    *acc = Some(match acc.take() {
                        Some(a) => (a + g)?,
                        None => g.clone(),
                    });
                }
            }
        }
        let all: Vec<usize> = (0..params.len()).collect();
        if let Some(eps) = coupled::blocks::fd_step(params, &all, &v, FD_SCALE)? {
            let up = coupled::blocks::with_moved(params, &all, &v, eps, || {
                valid_logps(policy, &micros)
            })?;
            let down = coupled::blocks::with_moved(params, &all, &v, -eps, || {
                valid_logps(policy, &micros)
            })?;
            for (k, slot) in source_exact.iter_mut().enumerate() {
                let d = (f64::from(up[k]) - f64::from(down[k])) / (2.0 * eps);
                *slot = lr * f64::from(a[k]) * d;
            }
        }
    }

    // 4. Exact first order along Δθ at evenly spread positions, one row's graph at a time.
    let stride = positions.len().div_ceil(max_first_order.max(1)).max(1);
    let mut first = vec![f64::NAN; rows * cols];
    if max_first_order > 0 {
        let chosen: Vec<usize> = positions.iter().copied().step_by(stride).collect();
        for r in 0..rows {
            let mine: Vec<usize> = chosen.iter().copied().filter(|&c| c / cols == r).collect();
            if mine.is_empty() {
                continue;
            }
            let (inputs, targets, _) = rows_of(batch, r, 1)?;
            let entropy =
                logprob::logprobs_and_entropy(&policy.forward(&inputs)?, &targets, 1.0)?.1;
            for c in mine {
                let g = entropy.i((0, c % cols))?.backward()?;
                let mut dot = 0f64;
                for (p, d) in params.iter().zip(&delta) {
                    if let (Some(gh), Some(d)) = (g.get(p.var.as_tensor()), d) {
                        dot += f64::from((gh * d)?.sum_all()?.to_scalar::<f32>()?);
                    }
                }
                first[c] = dot;
            }
        }
    }

    // 5. Take the step and measure (the no-graph forward pass is timed: scoring under π_old
    //    costs the same).
    for (p, d) in params.iter().zip(&delta) {
        if let Some(d) = d {
            p.var.set(&(p.var.as_tensor() + d)?)?;
        }
    }
    let mut after_h = vec![0f32; rows * cols];
    let t = Instant::now();
    for Micro {
        r0,
        inputs,
        targets,
        ..
    } in &micros
    {
        let after =
            logprob::logprobs_and_entropy(&policy.forward(inputs)?.detach(), targets, 1.0)?.1;
        scatter(&mut after_h, *r0, &after)?;
    }
    step.forward = t.elapsed().as_secs_f64();

    let valid = |v: &[f32]| {
        positions.iter().map(|&c| f64::from(v[c])).sum::<f64>() / positions.len().max(1) as f64
    };
    let (mean_a, mean_l) = (valid(&adv_tok), valid(&logp_h));
    let points = positions
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let (a, lp, h) = (
                f64::from(adv_tok[c]),
                f64::from(logp_h[c]),
                f64::from(ent_h[c]),
            );
            let x = lp.exp().clamp(1e-8, 1.0 - 1e-8);
            let shape = x * (1.0 - x) * (x.ln() + h);
            ProbePoint {
                advantage: a,
                logp: lp,
                entropy: h,
                realised: f64::from(after_h[c]) - h,
                steer_released: -(lr / n_tok) * (a / x) * shape,
                steer_theorem1: -(lr / n_tok) * a * shape,
                covariance: (a - mean_a) * (lp - mean_l),
                first_order: first[c],
                coupled: target_vals.iter().map(|v| v[k]).collect(),
                source_exact: source_exact[k],
                source: if est.source {
                    source_vals.iter().map(|v| v[k]).collect()
                } else {
                    vec![f64::NAN; coupled.len()]
                },
            }
        })
        .collect();
    Ok(Measurement {
        lr,
        points,
        coupled,
        step,
    })
}
