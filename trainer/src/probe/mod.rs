//! The entropy probe: how well does each estimate predict the entropy change of one update?
//!
//! One SGD step `Δθ = −η ∇θ L` on the token-mean policy-gradient surrogate at π_θ = π_old
//! (ratio 1, no clipping active) is taken on a fixed batch; for every response position the
//! realised change `H_after(s) − H_before(s)` of the full-vocabulary entropy is compared with:
//!
//! * `steer_released`: −(η/L)·(A/π_old)·π(1−π)(ln π + H), the form the released code weights by;
//! * `steer_theorem1`: −(η/L)·I_clip·r·A·π(1−π)(ln π + H), the single-logit first-order change;
//! * `covariance`: (A − mean A)(log π − mean log π) of Cui et al. (scale-free);
//! * `coupled_head`: the output head's empirical NTK between positions ([`crate::algo::coupled`]);
//! * `coupled_top{k}`: the output head, final norm and last `k` blocks, rerun along the step;
//! * `first_order`: ∇θH(s)·Δθ from autograd, the exact first-order change: it must match the
//!   realised change for small η, which checks the measurement itself.
//!
//! The source side, what a reweighting method needs, is measured too: each token's
//! contribution to the entropy change summed over all positions, against the exact
//! first-order value. Each coupled estimator's cost is timed against the phases of a training
//! step in the same run. SGD rather than AdamW because the estimates assume `Δθ ∝ −∇θL`.
//!
//! * [`measure`]: the step and every estimate;
//! * [`report`]: the tables, `points.csv` and the scatter panels.

pub mod measure;
pub mod report;

use std::time::Instant;

pub use measure::{CoupledEstimator, MeasureOptions, Measurement, ProbePoint, StepCost, measure};
pub use report::{
    Agreement, agreements, points_csv, report_markdown, scatter_panels, source_agreements,
};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Prompts sampled (each with the config's group size).
    pub prompts: usize,
    /// Output directory for `report.md`, `points.csv` and `scatter.png`.
    pub out_dir: std::path::PathBuf,
    /// Verifier base URL(s).
    pub verifier_url: String,
    /// The step and the estimators.
    pub measure: MeasureOptions,
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
/// (each estimate against the realised change). Returns the measurement.
pub fn run_probe(
    cfg: &crate::config::TrainConfig,
    o: &ProbeOptions,
    rt: &tokio::runtime::Handle,
) -> std::result::Result<Measurement, ProbeError> {
    use rand::SeedableRng;
    let device = candle_core::Device::Cpu;
    let task = cfg
        .task
        .load(&cfg.reward)
        .map_err(crate::train::TrainError::from)?;
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
    let generate = Instant::now();
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
    let generate = generate.elapsed().as_secs_f64();
    let grade = Instant::now();
    let texts = samples
        .iter()
        .map(|s| stop.text(&s.response_ids))
        .collect::<std::result::Result<Vec<_>, crate::tokenizer::TokenizerError>>()?;
    let subs: Vec<crate::reward::Submission<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| crate::reward::Submission {
            problem: &problems[i / g],
            response: text,
            sample: i % g,
        })
        .collect();
    let results = crate::reward::Grader {
        client: &client,
        rt,
        math: cfg.task.grading.as_ref(),
        code: &cfg.reward.code,
    }
    .grade(&subs)?;
    let grade = grade.elapsed().as_secs_f64();
    let rewards: Vec<f32> = results.iter().map(|r| r.reward as f32).collect();
    let adv = crate::algo::advantage::grpo(&rewards, g, cfg.algo.norm_adv_by_std);
    let batch = crate::rollout::pack(&samples.iter().collect::<Vec<_>>(), &device)?;
    let mut m = measure(&policy, &params, &batch, &adv, &o.measure)?;
    m.step.generate = generate;
    m.step.grade = grade;
    std::fs::create_dir_all(&o.out_dir)?;
    std::fs::write(o.out_dir.join("report.md"), report_markdown(&m))?;
    std::fs::write(o.out_dir.join("points.csv"), points_csv(&m))?;
    let panels = scatter_panels(&m);
    crate::plot::draw_scatter(&panels, (330 * panels.len() as u32, 460))?
        .save_png(&o.out_dir.join("scatter.png"))?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decoder;
    use crate::model::decoder::tests::tiny_config;
    use crate::optim::Param;
    use crate::rollout::{Packed, Sample, pack};
    use crate::stats::pearson;
    use candle_core::{D, DType, Device, Tensor, Var};
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

    /// The tests' settings: step `lr`, micro-batches of `micro_rows`, the head kernel over
    /// the whole vocabulary, the last one and two blocks, source side on.
    fn settings(lr: f64, max_first_order: usize, micro_rows: usize) -> MeasureOptions {
        MeasureOptions {
            lr,
            max_first_order,
            micro_rows,
            blocks: vec![1, 2],
            head_top_k: 23,
            source: true,
        }
    }

    /// The measurement is sound: the autograd first-order change matches the realised change
    /// at a small step. Rerunning every block along the step is the same change (to second
    /// order), and the exact source side adds up to the first-order change of the summed
    /// entropy.
    #[test]
    fn first_order_matches_realised_change_on_a_tiny_model() {
        let (policy, params, batch, adv) = tiny_probe_setup();
        let m = measure(&policy, &params, &batch, &adv, &settings(1e-3, 1000, 8)).unwrap();
        let all: Vec<&ProbePoint> = m.points.iter().collect();
        let a = agreements(&m, &all);
        let get = |name: &str| a.iter().find(|x| x.estimator.starts_with(name)).unwrap();
        assert_eq!(get("first_order").n, 37);
        assert!(get("first_order").pearson.unwrap() >= 0.95, "{a:?}");
        assert!(get("coupled_top2").pearson.unwrap() >= 0.95, "{a:?}");
        let names: Vec<&str> = m.coupled.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["coupled_head", "coupled_top1", "coupled_top2"]);
        let total_first: f64 = m.points.iter().map(|p| p.first_order).sum();
        let total_source: f64 = m.points.iter().map(|p| p.source_exact).sum();
        assert!(
            (total_first - total_source).abs() < 0.02 * total_first.abs(),
            "Σ first order {total_first} vs Σ source {total_source}"
        );
        let report = report_markdown(&m);
        assert!(report.contains("| coupled_top1 |") && report.contains("### Source side"));
    }

    /// Micro-batching bounds memory and changes nothing: 3-row passes give the points of one
    /// 8-row graph (up to f32 summation order), and `max_first_order` spreads its positions.
    #[test]
    fn micro_batches_give_the_same_points() {
        let (policy, params, batch, adv) = tiny_probe_setup();
        let whole = measure(&policy, &params, &batch, &adv, &settings(1e-2, 1000, 8)).unwrap();
        let (policy, params, batch, adv) = tiny_probe_setup();
        let parts = measure(&policy, &params, &batch, &adv, &settings(1e-2, 1000, 3)).unwrap();
        assert_eq!(whole.points.len(), parts.points.len());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()));
        for (w, p) in whole.points.iter().zip(&parts.points) {
            assert!(
                close(w.logp, p.logp) && close(w.entropy, p.entropy),
                "{w:?} {p:?}"
            );
            assert!(close(w.realised, p.realised) && close(w.first_order, p.first_order));
            assert!(close(w.steer_released, p.steer_released) && w.advantage == p.advantage);
            for (a, b) in w.coupled.iter().zip(&p.coupled) {
                assert!(
                    (a - b).abs() <= 1e-3 * w.realised.abs().max(1e-3),
                    "{w:?} {p:?}"
                );
            }
        }
        let (policy, params, batch, adv) = tiny_probe_setup();
        let few = measure(&policy, &params, &batch, &adv, &settings(1e-2, 10, 3)).unwrap();
        let with: Vec<usize> = (0..few.points.len())
            .filter(|&i| few.points[i].first_order.is_finite())
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
