//! The entropy probe (issue: "how well does STEER's estimate predict entropy change?").
//!
//! One SGD step `Δθ = −η ∇θ L` on the token-mean policy-gradient surrogate at π_θ = π_old
//! (ratio 1, no clipping active) is taken on a fixed batch; for every response position the
//! realised change `H_after(s) − H_before(s)` of the full-vocabulary entropy is compared with:
//!
//! * `steer_released`: −(η/L)·(A/π_old)·π(1−π)(ln π + H), the form the released code weights by;
//! * `steer_theorem1`: −(η/L)·I_clip·r·A·π(1−π)(ln π + H), the single-logit first-order change;
//! * `covariance`: (A − mean A)(log π − mean log π) of Cui et al. (scale-free);
//! * `first_order`: ∇θH(s)·Δθ from autograd, the exact first-order change: it must match the
//!   realised change for small η, which checks the measurement itself.
//!
//! SGD rather than AdamW because the estimates assume `Δθ ∝ −∇θL`.

use std::fmt::Write as _;

use candle_core::{IndexOp, Result, Tensor};

use crate::algo::logprob;
use crate::model::Decoder;
use crate::optim::Param;
use crate::rollout::Packed;
use crate::stats::{mse, pearson, spearman};

/// One response position.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
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

/// Rows `r0..r0 + n` of `batch`, cut to the columns they use: `(inputs, targets, mask)`.
fn rows_of(batch: &Packed, r0: usize, n: usize) -> Result<(Tensor, Tensor, Vec<bool>)> {
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

/// Measures one step of size `lr` on `batch` with per-row advantages `adv_rows`. At most
/// `max_first_order` positions, spread evenly over the batch, get the autograd first-order
/// value (one backward pass through their row each). Forward and backward passes hold at most
/// `micro_rows` rows at a time (memory: a full-vocabulary log-softmax and the backward graph
/// per row), so the batch may be larger than memory would allow in one graph; the gradient is
/// accumulated over the micro-batches and the step is the same. The weights are left updated.
pub fn measure(
    policy: &Decoder,
    params: &[Param],
    batch: &Packed,
    adv_rows: &[f32],
    lr: f64,
    max_first_order: usize,
    micro_rows: usize,
) -> Result<Vec<ProbePoint>> {
    let (rows, cols) = (batch.rows, batch.cols);
    let micro_rows = micro_rows.max(1);
    let n_tok = batch.mask.iter().filter(|&&m| m).count().max(1) as f64;
    let dev = batch.inputs.device();
    let mut logp_h = vec![0f32; rows * cols];
    let mut ent_h = vec![0f32; rows * cols];
    // Copies a micro-batch's `(n, used)` values into their `(rows, cols)` places.
    let scatter = |dst: &mut [f32], r0: usize, t: &Tensor| -> Result<()> {
        for (i, row) in t.to_vec2::<f32>()?.into_iter().enumerate() {
            dst[(r0 + i) * cols..(r0 + i) * cols + row.len()].copy_from_slice(&row);
        }
        Ok(())
    };
    // Gradient of the surrogate −A·r at r = 1 (π_old = π_θ, so ∇r = ∇log π), token-mean over
    // the whole batch, accumulated micro-batch by micro-batch.
    let mut grad: Vec<Option<Tensor>> = vec![None; params.len()];
    for r0 in (0..rows).step_by(micro_rows) {
        let n = micro_rows.min(rows - r0);
        let (inputs, targets, mask) = rows_of(batch, r0, n)?;
        let used = mask.len() / n;
        let (logp, entropy) =
            logprob::logprobs_and_entropy(&policy.forward(&inputs)?, &targets, 1.0)?;
        scatter(&mut logp_h, r0, &logp.detach())?;
        scatter(&mut ent_h, r0, &entropy.detach())?;
        let adv = crate::rollout::per_token(&adv_rows[r0..r0 + n], &mask, used);
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
    let delta: Vec<Option<Tensor>> = grad
        .into_iter()
        .map(|g| g.map(|g| g * -lr).transpose())
        .collect::<Result<_>>()?;

    // Exact first order along Δθ at evenly spread positions, one row's graph at a time.
    let positions: Vec<usize> = (0..rows * cols).filter(|&c| batch.mask[c]).collect();
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
    // Take the step and measure.
    for (p, d) in params.iter().zip(&delta) {
        if let Some(d) = d {
            p.var.set(&(p.var.as_tensor() + d)?)?;
        }
    }
    let mut after_h = vec![0f32; rows * cols];
    for r0 in (0..rows).step_by(micro_rows) {
        let n = micro_rows.min(rows - r0);
        let (inputs, targets, _) = rows_of(batch, r0, n)?;
        let after =
            logprob::logprobs_and_entropy(&policy.forward(&inputs)?.detach(), &targets, 1.0)?.1;
        scatter(&mut after_h, r0, &after)?;
    }
    let adv_tok = crate::rollout::per_token(adv_rows, &batch.mask, cols);

    let valid = |v: &[f32]| {
        positions.iter().map(|&c| f64::from(v[c])).sum::<f64>() / positions.len().max(1) as f64
    };
    let (mean_a, mean_l) = (valid(&adv_tok), valid(&logp_h));
    Ok(positions
        .iter()
        .map(|&c| {
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
            }
        })
        .collect())
}

/// Agreement of one estimator with the realised change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Estimator name.
    pub estimator: &'static str,
    /// Positions compared.
    pub n: usize,
    /// Pearson correlation.
    pub pearson: Option<f64>,
    /// Spearman correlation.
    pub spearman: Option<f64>,
    /// Mean squared error (only for estimators on the realised scale).
    pub mse: Option<f64>,
}

/// An estimator: its name, how to read it off a point, and whether it is on the realised
/// change's scale (so that an MSE means something).
type Estimator = (&'static str, fn(&ProbePoint) -> f64, bool);

/// Agreement of every estimator over `points`.
pub fn agreements(points: &[ProbePoint]) -> Vec<Agreement> {
    let estimators: [Estimator; 4] = [
        ("first_order (autograd)", |p| p.first_order, true),
        ("steer_theorem1", |p| p.steer_theorem1, true),
        ("steer_released", |p| p.steer_released, true),
        ("covariance (Cui et al.)", |p| p.covariance, false),
    ];
    estimators
        .iter()
        .map(|(name, f, scaled)| {
            let pairs: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (f(p), p.realised))
                .filter(|(e, _)| e.is_finite())
                .collect();
            let (e, r): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            Agreement {
                estimator: name,
                n: e.len(),
                pearson: pearson(&e, &r),
                spearman: spearman(&e, &r),
                mse: if *scaled { mse(&e, &r) } else { None },
            }
        })
        .collect()
}

/// A Markdown report: overall and per-quadrant tables.
pub fn report_markdown(points: &[ProbePoint], lr: f64) -> String {
    let fmt = |v: Option<f64>, prec: usize| v.map_or("–".to_string(), |x| format!("{x:.prec$}"));
    let table = |pts: &[ProbePoint]| {
        let mut s =
            String::from("| estimator | n | Pearson | Spearman | MSE |\n|---|---|---|---|---|\n");
        for a in agreements(pts) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                a.estimator,
                a.n,
                fmt(a.pearson, 3),
                fmt(a.spearman, 3),
                a.mse.map_or("–".into(), |m| format!("{m:.3e}"))
            );
        }
        s
    };
    let mut out = format!(
        "## Entropy-change probe, one SGD step, η = {lr}\n\n{} response positions.\n\n### All positions\n\n{}",
        points.len(),
        table(points)
    );
    let moved: Vec<ProbePoint> = points
        .iter()
        .copied()
        .filter(|p| p.advantage != 0.0)
        .collect();
    let _ = write!(
        out,
        "\n### Positions with A ≠ 0\n\nThe token-local estimates are 0 where A = 0 (groups whose rewards are all equal), though shared parameters move those entropies too.\n\n{}",
        table(&moved)
    );
    for q in [
        "I (A>0, confident)",
        "II (A>0, rare)",
        "III (A<0, confident)",
        "IV (A<0, rare)",
    ] {
        let pts: Vec<ProbePoint> = points
            .iter()
            .copied()
            .filter(|p| p.quadrant() == Some(q))
            .collect();
        let _ = write!(out, "\n### Quadrant {q}\n\n{}", table(&pts));
    }
    out
}

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// SGD step size η.
    pub lr: f64,
    /// Prompts sampled (each with the config's group size).
    pub prompts: usize,
    /// Positions that get the autograd first-order value (one backward pass each).
    pub max_first_order: usize,
    /// Rows per forward/backward pass (memory bound; the step does not depend on it).
    pub micro_rows: usize,
    /// Output directory for `report.md` and `points.csv`.
    pub out_dir: std::path::PathBuf,
    /// Verifier base URL(s).
    pub verifier_url: String,
}

/// Probe failures.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Tensor math.
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// The verifier.
    #[error("verifier: {0}")]
    Verifier(#[from] protocol::client::ClientError),
    /// Tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// Writing the report.
    #[error("report: {0}")]
    Io(#[from] std::io::Error),
    /// Setup through the training code.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// Drawing the scatter plots.
    #[error("scatter plot: {0}")]
    Plot(#[from] crate::plot::PlotError),
    /// Building the starting model.
    #[error(transparent)]
    Source(#[from] crate::model::source::SourceError),
}

/// Builds the config's model (seeded init and format warm-up, as `train` does), samples and
/// grades a batch, takes one SGD step and writes `report.md`, `points.csv` and `scatter.png`
/// (each estimate against the realised change). Returns the
/// points.
pub fn run_probe(
    cfg: &crate::config::TrainConfig,
    o: &ProbeOptions,
    rt: &tokio::runtime::Handle,
) -> std::result::Result<Vec<ProbePoint>, ProbeError> {
    use rand::SeedableRng;
    let device = candle_core::Device::Cpu;
    let task = cfg.task.load().map_err(crate::train::TrainError::from)?;
    let varmap = candle_nn::VarMap::new();
    let start = crate::model::source::start(
        cfg.origin().map_err(crate::train::TrainError::from)?,
        cfg.precision,
        &varmap,
        &device,
    )?;
    let (policy, tok) = (start.policy, start.tokenizer);
    let frozen = crate::train::detached_view(&varmap, &policy)?;
    let params = crate::train::params_of(&varmap)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    if cfg.warmup.steps > 0 {
        crate::train::format_warmup(cfg, &task, &policy, &params, &tok, &device, &mut rng)?;
    }
    let client = protocol::client::VerifierClient::new(&o.verifier_url)?;
    let g = cfg.rollout.group_size;
    let problems = task.sample(&mut rng, o.prompts);
    let mut samples = Vec::new();
    let stop = crate::rollout::StopRule::new(&tok, &cfg.rollout.stop);
    for p in &problems {
        let ids = tok.encode(&tok.chat_text(&p.chat())?)?;
        samples.extend(crate::rollout::sample_group(
            &frozen,
            &ids,
            g,
            &cfg.rollout.sampling,
            &stop,
            &device,
            &mut rng,
        )?);
    }
    let items = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(protocol::MathItem {
                id: None,
                response: stop.text(&s.response_ids)?,
                ground_truth: problems[i / g].answer.clone(),
                options: cfg.task.grading.clone(),
            })
        })
        .collect::<std::result::Result<Vec<_>, crate::tokenizer::TokenizerError>>()?;
    let results = rt.block_on(crate::reward::grade(&client, items))?;
    let rewards: Vec<f32> = results.iter().map(|r| r.reward as f32).collect();
    let adv = crate::algo::advantage::grpo(&rewards, g, cfg.algo.norm_adv_by_std);
    let batch = crate::rollout::pack(&samples.iter().collect::<Vec<_>>(), &device)?;
    let points = measure(
        &policy,
        &params,
        &batch,
        &adv,
        o.lr,
        o.max_first_order,
        o.micro_rows,
    )?;
    std::fs::create_dir_all(&o.out_dir)?;
    std::fs::write(o.out_dir.join("report.md"), report_markdown(&points, o.lr))?;
    let mut csv = String::from(
        "advantage,logp,entropy,realised,steer_released,steer_theorem1,covariance,first_order,quadrant\n",
    );
    for p in &points {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            p.advantage,
            p.logp,
            p.entropy,
            p.realised,
            p.steer_released,
            p.steer_theorem1,
            p.covariance,
            p.first_order,
            p.quadrant().unwrap_or("A=0")
        );
    }
    std::fs::write(o.out_dir.join("points.csv"), csv)?;
    crate::plot::draw_scatter(&scatter_panels(&points), (1800, 460))?
        .save_png(&o.out_dir.join("scatter.png"))?;
    Ok(points)
}

/// One scatter panel per estimate: the estimate (x) against the realised entropy change (y).
pub fn scatter_panels(points: &[ProbePoint]) -> Vec<crate::plot::Panel> {
    type Estimate = (&'static str, fn(&ProbePoint) -> f64);
    let estimates: [Estimate; 4] = [
        ("STEER Omega (released form)", |p| p.steer_released),
        ("STEER Theorem 1", |p| p.steer_theorem1),
        ("covariance (Cui et al.)", |p| p.covariance),
        ("exact first order", |p| p.first_order),
    ];
    estimates
        .iter()
        .map(|(name, f)| crate::plot::Panel {
            title: (*name).to_string(),
            x_label: "estimate".into(),
            y_label: "realised entropy change".into(),
            series: vec![crate::plot::Series {
                label: (*name).to_string(),
                points: points.iter().map(|p| (f(p), p.realised)).collect(),
                band: vec![],
            }],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::tests::tiny_config;
    use crate::rollout::{Sample, pack};
    use candle_core::{D, DType, Device, Var};
    use candle_nn::{VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};

    /// A tiny seeded policy, its parameters, a batch of 8 responses of 3 to 7 tokens and
    /// alternating ±1 advantages.
    fn tiny_probe_setup() -> (Decoder, Vec<Param>, Packed, Vec<f32>) {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let policy = Decoder::new(
            &tiny_config(23),
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )
        .unwrap();
        crate::model::init_weights(&vm, 3, 0.3).unwrap();
        let params: Vec<Param> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| Param {
                name: n.clone(),
                var: v.clone(),
                decay: false,
            })
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let samples: Vec<Sample> = (0..8)
            .map(|i| Sample {
                prompt_ids: (0..4).map(|_| rng.random_range(1..23)).collect(),
                response_ids: (0..3 + i % 5).map(|_| rng.random_range(1..23)).collect(),
                finished: false,
            })
            .collect();
        let batch = pack(&samples.iter().collect::<Vec<_>>(), &dev).unwrap();
        let adv: Vec<f32> = (0..8)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        (policy, params, batch, adv)
    }

    /// The measurement is sound: the autograd first-order change matches the realised change
    /// at a small step.
    #[test]
    fn first_order_matches_realised_change_on_a_tiny_model() {
        let (policy, params, batch, adv) = tiny_probe_setup();
        let points = measure(&policy, &params, &batch, &adv, 1e-3, 1000, 8).unwrap();
        let a = agreements(&points);
        let fo = a
            .iter()
            .find(|x| x.estimator.starts_with("first_order"))
            .unwrap();
        assert_eq!(fo.n, 37);
        assert!(fo.pearson.unwrap() >= 0.95, "{a:?}");
    }

    /// Micro-batching bounds memory and changes nothing: 3-row passes give the points of one
    /// 8-row graph (up to f32 summation order), and `max_first_order` spreads its positions.
    #[test]
    fn micro_batches_give_the_same_points() {
        let (policy, params, batch, adv) = tiny_probe_setup();
        let whole = measure(&policy, &params, &batch, &adv, 1e-2, 1000, 8).unwrap();
        let (policy, params, batch, adv) = tiny_probe_setup();
        let parts = measure(&policy, &params, &batch, &adv, 1e-2, 1000, 3).unwrap();
        assert_eq!(whole.len(), parts.len());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()));
        for (w, p) in whole.iter().zip(&parts) {
            assert!(
                close(w.logp, p.logp) && close(w.entropy, p.entropy),
                "{w:?} {p:?}"
            );
            assert!(close(w.realised, p.realised) && close(w.first_order, p.first_order));
            assert!(close(w.steer_released, p.steer_released) && w.advantage == p.advantage);
        }
        let (policy, params, batch, adv) = tiny_probe_setup();
        let few = measure(&policy, &params, &batch, &adv, 1e-2, 10, 3).unwrap();
        let with: Vec<usize> = (0..few.len())
            .filter(|&i| few[i].first_order.is_finite())
            .collect();
        assert_eq!(with, (0..37).step_by(4).collect::<Vec<_>>());
    }

    /// One SGD step on a tabular softmax policy (independent logits per state, one action per
    /// state sampled from the policy, `states × actions` logits drawn uniformly in ±`spread`). Returns the
    /// realised entropy change, STEER's Theorem-1 (single-logit) prediction and the exact
    /// tabular first-order change, which also counts the `−π_b` move of every other logit:
    /// `ΔH = −(η/L)·A·[π_a(ln π_a + H) − Σ_b π_b²(ln π_b + H)]`.
    fn tabular(
        states: usize,
        actions: usize,
        spread: f32,
        seed: u64,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let z0: Vec<f64> = (0..states * actions)
            .map(|_| f64::from(rng.random_range(-spread..spread)))
            .collect();
        let z = Var::from_tensor(&Tensor::from_vec(z0, (states, actions), &dev).unwrap()).unwrap();
        // Actions are sampled from the policy, as rollouts are.
        let p_init = candle_nn::ops::softmax(z.as_tensor(), D::Minus1)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let chosen: Vec<u32> = p_init
            .iter()
            .map(|row| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                row.iter()
                    .position(|&p| {
                        acc += p;
                        u < acc
                    })
                    .unwrap_or(row.len() - 1) as u32
            })
            .collect();
        let adv: Vec<f64> = (0..states)
            .map(|_| rng.random_range(-1.5f64..1.5))
            .collect();
        let eta = 1e-2;
        let probs = |t: &Tensor| {
            candle_nn::ops::softmax(t, D::Minus1)
                .unwrap()
                .to_vec2::<f64>()
                .unwrap()
        };
        let entropy = |p: &[Vec<f64>]| -> Vec<f64> {
            p.iter()
                .map(|row| -row.iter().map(|&x| x * x.max(1e-300).ln()).sum::<f64>())
                .collect()
        };
        let lp = candle_nn::ops::log_softmax(z.as_tensor(), D::Minus1).unwrap();
        let idx = Tensor::from_vec(chosen.clone(), (states, 1), &dev).unwrap();
        let logp = lp
            .gather(&idx, D::Minus1)
            .unwrap()
            .squeeze(D::Minus1)
            .unwrap();
        let a = Tensor::from_vec(adv.clone(), states, &dev).unwrap();
        let ratio = (&logp - logp.detach()).unwrap().exp().unwrap();
        let loss =
            ((a.neg().unwrap() * ratio).unwrap().sum_all().unwrap() / states as f64).unwrap();
        let g = loss.backward().unwrap().get(z.as_tensor()).unwrap().clone();
        let p0 = probs(z.as_tensor());
        let h0 = entropy(&p0);
        z.set(&(z.as_tensor() - (g * eta).unwrap()).unwrap())
            .unwrap();
        let h1 = entropy(&probs(z.as_tensor()));
        let realised: Vec<f64> = h1.iter().zip(&h0).map(|(a, b)| a - b).collect();
        let scale = |s: usize| -(eta / states as f64) * adv[s];
        let theorem1 = (0..states)
            .map(|s| {
                let x = p0[s][chosen[s] as usize];
                scale(s) * x * (1.0 - x) * (x.ln() + h0[s])
            })
            .collect();
        let exact = (0..states)
            .map(|s| {
                let x = p0[s][chosen[s] as usize];
                let others: f64 = p0[s]
                    .iter()
                    .map(|&b| b.powi(2) * (b.max(1e-300).ln() + h0[s]))
                    .sum();
                scale(s) * (x * (x.ln() + h0[s]) - others)
            })
            .collect();
        (realised, theorem1, exact)
    }

    /// On a tabular softmax policy the probe's arithmetic is exact: the tabular first-order
    /// closed form matches the realised change.
    #[test]
    fn tabular_first_order_closed_form_matches() {
        let (realised, _, exact) = tabular(400, 6, 2.0, 11);
        let r = pearson(&exact, &realised).unwrap();
        assert!(r >= 0.999, "Pearson {r}");
    }

    /// Where the paper's assumption holds exactly (the update moves only the sampled logit,
    /// by STEER.md's `Δz = (η/L)·A·π(1−π)/π_old`), the Theorem-1 closed form is the realised
    /// change to first order.
    #[test]
    fn theorem1_is_exact_when_only_the_sampled_logit_moves() {
        let dev = Device::Cpu;
        let (states, actions) = (400usize, 50usize);
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let mut z: Vec<f32> = (0..states * actions)
            .map(|_| rng.random_range(-3.0f32..3.0))
            .collect();
        let entropy = |z: &[f32]| -> (Vec<Vec<f64>>, Vec<f64>) {
            let t = Tensor::from_vec(z.to_vec(), (states, actions), &dev).unwrap();
            let p = candle_nn::ops::softmax(&t, D::Minus1)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let p: Vec<Vec<f64>> = p
                .into_iter()
                .map(|r| r.into_iter().map(f64::from).collect())
                .collect();
            let h = p
                .iter()
                .map(|r| -r.iter().map(|&x| x * x.max(1e-300).ln()).sum::<f64>())
                .collect();
            (p, h)
        };
        let (p0, h0) = entropy(&z);
        let eta = 1e-2;
        let mut predicted = Vec::new();
        for s in 0..states {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let a = p0[s]
                .iter()
                .position(|&x| {
                    acc += x;
                    u < acc
                })
                .unwrap_or(actions - 1);
            let adv: f64 = rng.random_range(-1.5..1.5);
            let x = p0[s][a];
            // π_old = π_θ at the first step, so Δz = (η/L)·A·(1−π).
            z[s * actions + a] += ((eta / states as f64) * adv * (1.0 - x)) as f32;
            predicted.push(-(eta / states as f64) * adv * x * (1.0 - x) * (x.ln() + h0[s]));
        }
        let (_, h1) = entropy(&z);
        let realised: Vec<f64> = h1.iter().zip(&h0).map(|(a, b)| a - b).collect();
        let r = pearson(&predicted, &realised).unwrap();
        assert!(r >= 0.99, "Pearson {r}");
    }

    /// With the real softmax policy gradient every logit of the state moves (by −π_b), which
    /// the single-logit form leaves out: it tracks the realised change far less well than the
    /// exact tabular form (the test prints both; the exact form reaches ≥ 0.999).
    #[test]
    fn theorem1_misses_the_other_logits_under_a_real_policy_gradient() {
        for (states, actions, spread, seed) in [(400, 6, 2.0, 11), (300, 2000, 6.0, 13)] {
            let (realised, theorem1, exact) = tabular(states, actions, spread, seed);
            let (t, e) = (
                pearson(&theorem1, &realised).unwrap(),
                pearson(&exact, &realised).unwrap(),
            );
            println!(
                "tabular softmax, {actions} actions: Pearson theorem1 {t:.3}, exact first order {e:.4}"
            );
            assert!(
                e >= 0.999 && t < 0.95,
                "{actions} actions: theorem1 {t}, exact {e}"
            );
        }
    }
}
