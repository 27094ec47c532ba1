//! The same computation on `--device` and on the CPU, compared.
//!
//! Two tiny seeded models (Qwen2 with untied head, Llama with tied embeddings), a batch of four
//! rows of different prompt and response lengths (right padding included), in f32 and in bf16
//! (`precision = "bf16"`: bf16 products over f32 master weights, see
//! [`crate::device::Precision`]). Every error is `max |device − reference| / max |reference|`
//! over a tensor ([`super::rel_error`]). Checks, each with its bound:
//!
//! - logits of the full forward, device against CPU: ≤ 1e-4 in f32 (the target), ≤
//!   0.05 in bf16 (the CPU bf16 test's bound, 0.05 of the largest logit);
//! - every parameter's gradient of a STEER loss (π_old scored on the CPU, the same for both):
//!   the worst parameter's error ≤ 1e-4 in f32; in bf16 the worst cosine ≥ 0.98 (the CPU bf16
//!   test's gradient bound), the error reported beside it;
//! - gradient coverage on the device: parameters without a finite non-zero gradient = 0;
//! - one AdamW step (lr 1e-2, clipping active) from the same gradients on both: the update
//!   `w' − w` on the device against an f64 reference of the formula ≤ 1e-4 (the optimizer is f32
//!   in both precisions);
//! - KV-cache decoding (the sampler's fused copy, one token at a time) against the full
//!   forward, on the device: the logits bound of the precision;
//! - greedy sampling through the sampler (three rows sharing a widened prompt cache, temperature
//!   1e-3) against the full forward's argmax on the device: mismatches = 0, positions whose top
//!   two logits are closer than the rounding of the precision allows to tell apart skipped as
//!   ties;
//! - in bf16, bf16 against f32 on the device: logits ≤ 0.05, gradient cosine ≥ 0.98 (the CPU
//!   bf16 test, run on the device).
//!
//! On the CPU the device-against-CPU errors are zero by construction; the AdamW reference, the
//! KV cache, sampling, coverage and bf16-against-f32 checks still test the CPU.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{GpuCheckError, cosine, default_loss, rel_error};
use crate::algo::Method;
use crate::algo::logprob;
use crate::device::{ComputeDevice, Precision};
use crate::model::{Decoder, Family, KvCache, ModelConfig};
use crate::optim::{AdamW, AdamWConfig};
use crate::rollout::{self, Sample, SamplingConfig, StopRule};
use crate::tokenizer::TextTokenizer;

/// Bound of every f32 relative error (logits, gradients, KV cache, AdamW).
pub const F32_TOL: f64 = 1e-4;
/// Bound of bf16 logits' relative error: 0.05 of the largest logit, as the CPU bf16 test.
pub const BF16_LOGITS_TOL: f64 = 0.05;
/// Lower bound of each parameter's gradient cosine in bf16, as the CPU bf16 test.
pub const BF16_GRAD_COSINE: f64 = 0.98;
/// Standard deviation of the tiny models' weights (large enough for clear argmaxes).
const CHECK_INIT_STD: f64 = 0.2;
/// Learning rate of the checked AdamW step.
const ADAMW_LR: f64 = 1e-2;

/// A limit a measured value must respect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be at least this.
    AtLeast(f64),
}

impl Bound {
    /// Whether `value` respects the bound (NaN never does).
    pub fn holds(self, value: f64) -> bool {
        match self {
            Bound::AtMost(l) => value <= l,
            Bound::AtLeast(l) => value >= l,
        }
    }

    fn text(self) -> String {
        match self {
            Bound::AtMost(l) => format!("≤ {l:e}"),
            Bound::AtLeast(l) => format!("≥ {l}"),
        }
    }
}

/// One measured comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was compared.
    pub name: String,
    /// The tiny model's family (Qwen2 untied, Llama tied).
    pub family: Family,
    /// The compute precision.
    pub precision: Precision,
    /// The measured value (JSON `null` when not finite).
    pub value: f64,
    /// Its bound.
    pub bound: Bound,
    /// Whether the value respects the bound.
    pub pass: bool,
    /// Context: the worst parameter, counts, related figures.
    pub detail: String,
}

/// Every check of one run.
#[derive(Debug, Clone, Serialize)]
pub struct CorrectnessReport {
    /// The device compared with the CPU.
    pub device: ComputeDevice,
    /// The seed of the weights, batch and sampling.
    pub seed: u64,
    /// The checks, by family, then precision.
    pub checks: Vec<Check>,
    /// True when every check passed.
    pub passed: bool,
}

impl CorrectnessReport {
    /// A Markdown table of the checks.
    pub fn table(&self) -> String {
        let mut s = format!(
            "correctness, {} against the CPU, seed {}: {}\n\n| check | model | precision | value | bound | pass | detail |\n|---|---|---|---|---|---|---|\n",
            self.device_name(),
            self.seed,
            if self.passed { "all passed" } else { "FAILED" }
        );
        for c in &self.checks {
            s += &format!(
                "| {} | {} | {:?} | {:.3e} | {} | {} | {} |\n",
                c.name,
                c.family.model_type(),
                c.precision,
                c.value,
                c.bound.text(),
                if c.pass { "yes" } else { "NO" },
                c.detail
            );
        }
        s
    }

    fn device_name(&self) -> &'static str {
        match self.device {
            ComputeDevice::Cpu => "cpu",
            ComputeDevice::Cuda => "cuda",
        }
    }
}

/// Runs every check on `device` against the CPU.
pub fn run(device: ComputeDevice, seed: u64) -> Result<CorrectnessReport, GpuCheckError> {
    let dev = device.open()?;
    let mut checks = Vec::new();
    for (family, tied) in [(Family::Qwen2, false), (Family::Llama, true)] {
        checks.extend(family_checks(&dev, &tiny(family, tied), seed)?);
    }
    let passed = checks.iter().all(|c| c.pass);
    Ok(CorrectnessReport {
        device,
        seed,
        checks,
        passed,
    })
}

/// The checked architecture: 2 layers of width 64, 4 heads over 2 KV heads, vocabulary 101.
fn tiny(family: Family, tied: bool) -> ModelConfig {
    ModelConfig {
        family,
        vocab_size: 101,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        rope_theta: 10_000.0,
        rms_norm_eps: 1e-6,
        max_position_embeddings: 128,
        tie_word_embeddings: tied,
        rope_scaling: None,
    }
}

/// A fresh `VarMap` on `dev` holding copies of `src`'s weights, and the model over it.
fn copy_model(
    src: &VarMap,
    cfg: &ModelConfig,
    dev: &Device,
) -> Result<(VarMap, Decoder), GpuCheckError> {
    let vm = VarMap::new();
    let model = Decoder::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, dev))?;
    let poisoned = || GpuCheckError::Invalid("varmap lock poisoned".into());
    let from = src.data().lock().map_err(|_| poisoned())?;
    let to = vm.data().lock().map_err(|_| poisoned())?;
    for (name, var) in to.iter() {
        let w = from
            .get(name)
            .ok_or_else(|| GpuCheckError::Invalid(format!("no weight {name} to copy")))?;
        var.set(&w.as_tensor().to_device(dev)?)?;
    }
    drop((from, to));
    Ok((vm, model))
}

/// Four rows, prompts of 4–7 tokens and responses of 3–11, drawn from `seed`.
fn batch(seed: u64, vocab: usize) -> Vec<Sample> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
    (0..4)
        .map(|_| {
            let (p, r) = (rng.random_range(4..8), rng.random_range(3..12));
            let mut draw = |n: usize| -> Vec<u32> {
                (0..n).map(|_| rng.random_range(2..vocab as u32)).collect()
            };
            Sample {
                prompt_ids: draw(p),
                response_ids: draw(r),
                finished: false,
            }
        })
        .collect()
}

/// What one device computes for one precision: full logits and the STEER loss's gradients.
struct Pass {
    logits: Tensor,
    grads: HashMap<String, Tensor>,
}

/// π_old of the batch (log-probs and host entropies), scored once on the CPU.
struct OldPolicy {
    logp: Tensor,
    entropy: Vec<f32>,
}

fn old_policy(model: &Decoder, samples: &[Sample]) -> Result<OldPolicy, GpuCheckError> {
    let refs: Vec<&Sample> = samples.iter().collect();
    let packed = rollout::pack(&refs, model.device())?;
    let (logp, entropy) = logprob::score(model, &packed, 1.0, true)?;
    let entropy = entropy
        .ok_or_else(|| GpuCheckError::Invalid("no entropy".into()))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok(OldPolicy {
        logp: logp.detach(),
        entropy,
    })
}

/// Advantages of the four rows.
const ADV: [f32; 4] = [1.0, -1.0, 0.5, -0.5];

fn pass(
    model: &Decoder,
    varmap: &VarMap,
    samples: &[Sample],
    old: &OldPolicy,
) -> Result<Pass, GpuCheckError> {
    let dev = model.device();
    let refs: Vec<&Sample> = samples.iter().collect();
    let packed = rollout::pack(&refs, dev)?;
    let logits = model.forward(&packed.inputs)?.detach();
    let batch = crate::train::token_batch(
        &packed,
        old.logp.to_device(dev)?,
        old.entropy.clone(),
        ADV.iter().copied(),
        dev,
    )?;
    let logp = logprob::score(model, &packed, 1.0, false)?.0;
    let loss = default_loss(Method::Steer, &logp, &batch)?;
    let store = loss.backward()?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| GpuCheckError::Invalid("varmap lock poisoned".into()))?;
    let grads = data
        .iter()
        .filter_map(|(name, var)| {
            store
                .get(var.as_tensor())
                .map(|g| (name.clone(), g.detach()))
        })
        .collect();
    Ok(Pass { logits, grads })
}

/// The logits bound of a precision.
fn logits_tol(p: Precision) -> f64 {
    match p {
        Precision::F32 => F32_TOL,
        Precision::Bf16 => BF16_LOGITS_TOL,
    }
}

/// Top-two logit gaps below this fraction of the largest logit count as ties in the greedy
/// check: several units in the last place of the precision (bf16 keeps 8 significant bits,
/// f32 24), where two correct computations may order the two tokens differently.
fn tie_tol(p: Precision) -> f64 {
    match p {
        Precision::F32 => 1e-5,
        Precision::Bf16 => 4e-2,
    }
}

/// Collects the checks of one model.
struct Checks<'a> {
    family: Family,
    precision: Precision,
    out: &'a mut Vec<Check>,
}

impl Checks<'_> {
    fn push(&mut self, name: &str, value: f64, bound: Bound, detail: String) {
        self.out.push(Check {
            name: name.into(),
            family: self.family,
            precision: self.precision,
            value,
            bound,
            pass: bound.holds(value),
            detail,
        });
    }
}

fn family_checks(dev: &Device, cfg: &ModelConfig, seed: u64) -> Result<Vec<Check>, GpuCheckError> {
    let cpu = Device::Cpu;
    let vm_cpu = VarMap::new();
    let base_cpu = Decoder::new(cfg, VarBuilder::from_varmap(&vm_cpu, DType::F32, &cpu))?;
    crate::model::init_weights(&vm_cpu, seed, CHECK_INIT_STD)?;
    let (vm_dev, base_dev) = copy_model(&vm_cpu, cfg, dev)?;
    let samples = batch(seed, cfg.vocab_size);

    let mut out = Vec::new();
    let mut f32_on_device: Option<Pass> = None;
    for precision in [Precision::F32, Precision::Bf16] {
        let m_cpu = base_cpu.clone().with_compute_dtype(precision.dtype());
        let m_dev = base_dev.clone().with_compute_dtype(precision.dtype());
        let old = old_policy(&m_cpu, &samples)?;
        let on_cpu = pass(&m_cpu, &vm_cpu, &samples, &old)?;
        let on_dev = pass(&m_dev, &vm_dev, &samples, &old)?;
        let mut c = Checks {
            family: cfg.family,
            precision,
            out: &mut out,
        };
        let tol = logits_tol(precision);

        c.push(
            "logits, device vs CPU",
            rel_error(&on_dev.logits, &on_cpu.logits)?,
            Bound::AtMost(tol),
            format!("{} logits", on_cpu.logits.elem_count()),
        );

        let (worst_rel, worst_cos) = grad_agreement(&on_dev.grads, &on_cpu.grads)?;
        match precision {
            Precision::F32 => c.push(
                "gradients, device vs CPU (worst parameter)",
                worst_rel.0,
                Bound::AtMost(F32_TOL),
                format!(
                    "{} (lowest cosine {:.6}, {})",
                    worst_rel.1, worst_cos.0, worst_cos.1
                ),
            ),
            Precision::Bf16 => c.push(
                "gradient cosine, device vs CPU (worst parameter)",
                worst_cos.0,
                Bound::AtLeast(BF16_GRAD_COSINE),
                format!(
                    "{} (largest error {:.3e}, {})",
                    worst_cos.1, worst_rel.0, worst_rel.1
                ),
            ),
        }

        let missing = coverage(&vm_dev, &on_dev.grads)?;
        c.push(
            "parameters without a finite non-zero gradient (device)",
            missing.len() as f64,
            Bound::AtMost(0.0),
            if missing.is_empty() {
                format!("all {} have one", on_dev.grads.len())
            } else {
                missing.join(", ")
            },
        );

        let (dev_vs_ref, cpu_vs_ref, dev_vs_cpu) = adamw(&vm_cpu, cfg, dev, &on_cpu.grads)?;
        c.push(
            "AdamW update (same gradients), device vs f64 reference",
            dev_vs_ref,
            Bound::AtMost(F32_TOL),
            format!("CPU vs reference {cpu_vs_ref:.3e}, device vs CPU {dev_vs_cpu:.3e}"),
        );

        let fused = crate::weights::detached_view(&vm_dev, &m_dev)?.fused()?;
        let (kv, positions) = kv_cache(&m_dev, &fused, &samples[0])?;
        c.push(
            "KV-cache decoding vs full forward (device)",
            kv,
            Bound::AtMost(tol),
            format!("{positions} positions, one token at a time after the prompt"),
        );

        let (mismatches, compared, ties) =
            greedy(&m_dev, &fused, &samples[1], seed, tie_tol(precision))?;
        c.push(
            "greedy sampler tokens ≠ full-forward argmax (device)",
            if compared == 0 {
                f64::NAN
            } else {
                mismatches as f64
            },
            Bound::AtMost(0.0),
            format!("{compared} positions compared, {ties} near-ties skipped"),
        );

        match precision {
            Precision::F32 => f32_on_device = Some(on_dev),
            Precision::Bf16 => {
                if let Some(f) = &f32_on_device {
                    c.push(
                        "logits, bf16 vs f32 (device)",
                        rel_error(&on_dev.logits, &f.logits)?,
                        Bound::AtMost(BF16_LOGITS_TOL),
                        "the CPU bf16 test's bound".into(),
                    );
                    let (_, cos) = grad_agreement(&on_dev.grads, &f.grads)?;
                    c.push(
                        "gradient cosine, bf16 vs f32 (device, worst parameter)",
                        cos.0,
                        Bound::AtLeast(BF16_GRAD_COSINE),
                        cos.1,
                    );
                }
            }
        }
    }
    Ok(out)
}

/// A worst value over the parameters and the parameter's name.
type Worst = (f64, String);

/// Per parameter name: the update `w' − w` one side made, and the reference's.
type Updates = HashMap<String, (Vec<f64>, Vec<f64>)>;

/// The worst relative error and the lowest cosine over the parameters of `reference`, each
/// with the parameter's name (a parameter missing from `got` counts as infinitely wrong).
fn grad_agreement(
    got: &HashMap<String, Tensor>,
    reference: &HashMap<String, Tensor>,
) -> Result<(Worst, Worst), GpuCheckError> {
    let mut worst_rel = (0f64, String::from("none"));
    let mut worst_cos = (1f64, String::from("none"));
    let mut names: Vec<&String> = reference.keys().collect();
    names.sort();
    for name in names {
        let (rel, cos) = match got.get(name) {
            Some(g) => (
                rel_error(g, &reference[name])?,
                cosine(g, &reference[name])?,
            ),
            None => (f64::INFINITY, f64::NAN),
        };
        if rel.is_nan() || rel > worst_rel.0 {
            worst_rel = (rel, name.clone());
        }
        if cos.is_nan() || cos < worst_cos.0 {
            worst_cos = (cos, name.clone());
        }
    }
    Ok((worst_rel, worst_cos))
}

/// Names of the parameters whose gradient is missing, zero or not finite.
fn coverage(
    varmap: &VarMap,
    grads: &HashMap<String, Tensor>,
) -> Result<Vec<String>, GpuCheckError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| GpuCheckError::Invalid("varmap lock poisoned".into()))?;
    let mut bad = Vec::new();
    for name in data.keys() {
        let ok = match grads.get(name) {
            Some(g) => {
                let sq = f64::from(
                    g.to_dtype(DType::F32)?
                        .sqr()?
                        .sum_all()?
                        .to_scalar::<f32>()?,
                );
                sq.is_finite() && sq > 0.0
            }
            None => false,
        };
        if !ok {
            bad.push(name.clone());
        }
    }
    bad.sort();
    Ok(bad)
}

/// One AdamW step from `grads` (the CPU's) on copies of the weights on `dev` and on the CPU,
/// with clipping active (the limit half the gradients' norm). Returns the update's relative
/// error device vs an f64 reference, CPU vs the reference, and device vs CPU (worst parameter).
fn adamw(
    weights: &VarMap,
    cfg: &ModelConfig,
    dev: &Device,
    grads: &HashMap<String, Tensor>,
) -> Result<(f64, f64, f64), GpuCheckError> {
    let host = |t: &Tensor| -> candle_core::Result<Vec<f64>> {
        t.to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()
    };
    let mut norm = 0f64;
    for g in grads.values() {
        norm += host(g)?.iter().map(|x| x * x).sum::<f64>();
    }
    let norm = norm.sqrt();
    let opt_cfg = AdamWConfig {
        lr: ADAMW_LR,
        max_grad_norm: Some(norm / 2.0),
        ..AdamWConfig::default()
    };
    // The reference, per parameter: the update w' − w of one step at t = 1.
    let scale = (norm / 2.0) / (norm + 1e-6);
    let reference = |name: &str, w: &[f64], decay: bool| -> candle_core::Result<Vec<f64>> {
        let g = host(&grads[name])?;
        let (b1, b2, eps, wd) = (
            opt_cfg.beta1,
            opt_cfg.beta2,
            opt_cfg.eps,
            opt_cfg.weight_decay,
        );
        Ok(g.iter()
            .zip(w)
            .map(|(&g, &w)| {
                let g = g * scale;
                let (m, v) = ((1.0 - b1) * g, (1.0 - b2) * g * g);
                let update = (m / (1.0 - b1)) / ((v / (1.0 - b2)).sqrt() + eps);
                let decayed = if decay { w * (1.0 - ADAMW_LR * wd) } else { w };
                decayed - ADAMW_LR * update - w
            })
            .collect())
    };
    // Updates of each side, by name.
    let step = |on: &Device| -> Result<Updates, GpuCheckError> {
        let (vm, _) = copy_model(weights, cfg, on)?;
        let params = crate::weights::params_of(&vm)?;
        let before: HashMap<String, Vec<f64>> = params
            .iter()
            .map(|p| Ok((p.name.clone(), host(p.var.as_tensor())?)))
            .collect::<candle_core::Result<_>>()?;
        let mut opt = AdamW::new(params, opt_cfg)?;
        let g: Vec<Option<Tensor>> = opt
            .params()
            .iter()
            .map(|p| grads.get(&p.name).map(|g| g.to_device(on)).transpose())
            .collect::<candle_core::Result<_>>()?;
        let outcome = opt.step(&g, ADAMW_LR)?;
        if outcome.skipped {
            return Err(GpuCheckError::Invalid("the AdamW step was skipped".into()));
        }
        opt.params()
            .iter()
            .map(|p| {
                let w0 = &before[&p.name];
                let w1 = host(p.var.as_tensor())?;
                let delta = w1.iter().zip(w0).map(|(a, b)| a - b).collect();
                let want = reference(&p.name, w0, p.decay)?;
                Ok((p.name.clone(), (delta, want)))
            })
            .collect()
    };
    let on_dev = step(dev)?;
    let on_cpu = step(&Device::Cpu)?;
    let rel = |a: &[f64], b: &[f64]| {
        let scale = b.iter().fold(0f64, |m, x| m.max(x.abs()));
        let diff = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        if diff == 0.0 { 0.0 } else { diff / scale }
    };
    let (mut dev_ref, mut cpu_ref, mut dev_cpu) = (0f64, 0f64, 0f64);
    for (name, (d, want)) in &on_dev {
        let (c, _) = &on_cpu[name];
        dev_ref = dev_ref.max(rel(d, want));
        cpu_ref = cpu_ref.max(rel(c, want));
        dev_cpu = dev_cpu.max(rel(d, c));
    }
    Ok((dev_ref, cpu_ref, dev_cpu))
}

/// The fused copy's logits, the prompt at once and then one token at a time on its KV cache,
/// against `model`'s full forward of the whole sequence. Returns the error and positions.
fn kv_cache(model: &Decoder, fused: &Decoder, s: &Sample) -> Result<(f64, usize), GpuCheckError> {
    let dev = model.device();
    let seq: Vec<u32> = s
        .prompt_ids
        .iter()
        .chain(&s.response_ids)
        .copied()
        .collect();
    let (len, p) = (seq.len(), s.prompt_ids.len());
    let ids = Tensor::from_vec(seq, (1, len), dev)?;
    let full = model.forward(&ids)?;
    let mut cache = KvCache::default();
    let mut parts = vec![fused.forward_from(&ids.narrow(1, 0, p)?, &mut cache)?];
    for j in p..len {
        parts.push(fused.forward_from(&ids.narrow(1, j, 1)?, &mut cache)?);
    }
    let stepped = Tensor::cat(&parts, 1)?;
    Ok((rel_error(&stepped, &full)?, len))
}

/// Samples three rows at temperature 1e-3 from `s`'s prompt with the sampler (the prompt once,
/// its cache widened to the rows, then one token per step), and compares every drawn token
/// with the argmax of `model`'s full forward of the row. Positions whose top two logits differ
/// by less than `tol` of the largest logit are skipped as ties. Returns (mismatches, compared,
/// skipped).
fn greedy(
    model: &Decoder,
    fused: &Decoder,
    s: &Sample,
    seed: u64,
    tol: f64,
) -> Result<(usize, usize, usize), GpuCheckError> {
    let dev = model.device();
    let chars = TextTokenizer::char_level()?;
    // An EOS outside the vocabulary: every row runs to the length limit.
    let no_eos = TextTokenizer::new(chars.inner().clone(), u32::MAX, None);
    let stop = StopRule::new(&no_eos, &[]);
    let sampling = SamplingConfig {
        temperature: 1e-3,
        max_new_tokens: 16,
        top_p: 1.0,
        top_k: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rows = rollout::sample_group(fused, &s.prompt_ids, 3, &sampling, &stop, dev, &mut rng)?;
    let (mut mismatches, mut compared, mut ties) = (0, 0, 0);
    for row in rows {
        let seq: Vec<u32> = row
            .prompt_ids
            .iter()
            .chain(&row.response_ids)
            .copied()
            .collect();
        let p = row.prompt_ids.len();
        let ids = Tensor::from_vec(seq.clone(), (1, seq.len()), dev)?;
        let logits = model
            .forward(&ids)?
            .squeeze(0)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?;
        let spread = logits.iter().flatten().fold(0f32, |m, x| m.max(x.abs()));
        for (j, &token) in seq.iter().enumerate().skip(p) {
            let l = &logits[j - 1];
            let mut order: Vec<usize> = (0..l.len()).collect();
            order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
            if f64::from(l[order[0]] - l[order[1]]) < tol * f64::from(spread) {
                ties += 1;
                continue;
            }
            compared += 1;
            if order[0] as u32 != token {
                mismatches += 1;
            }
        }
    }
    Ok((mismatches, compared, ties))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the CPU every check passes, and the comparisons that can fail there are real: the
    /// AdamW reference, the KV cache, sampling against argmax, bf16 against f32.
    #[test]
    fn every_check_passes_on_the_cpu() {
        let report = run(ComputeDevice::Cpu, 0).unwrap();
        assert!(report.passed, "{}", report.table());
        // 2 families × (6 checks in f32 + 8 in bf16).
        assert_eq!(report.checks.len(), 28, "{}", report.table());
        for c in &report.checks {
            if c.name.contains("device vs CPU") {
                assert!(c.value == 0.0 || (1.0 - c.value).abs() < 1e-12, "{c:?}");
            }
        }
        // bf16 against f32 differs, within its bound.
        let bf = report
            .checks
            .iter()
            .find(|c| c.name == "logits, bf16 vs f32 (device)")
            .unwrap();
        assert!(bf.value > 0.0 && bf.pass, "{bf:?}");
        // Greedy sampling compared real positions.
        for c in report
            .checks
            .iter()
            .filter(|c| c.name.starts_with("greedy"))
        {
            let compared: usize = c.detail.split(' ').next().unwrap().parse().unwrap();
            assert!(compared >= 20, "{c:?}");
        }
        let md = report.table();
        assert!(
            md.contains("all passed") && md.lines().count() == 4 + 28,
            "{md}"
        );
    }

    #[test]
    fn bounds_reject_nan_and_out_of_range_values() {
        assert!(Bound::AtMost(1e-4).holds(1e-5));
        assert!(!Bound::AtMost(1e-4).holds(2e-4));
        assert!(!Bound::AtMost(1e-4).holds(f64::NAN));
        assert!(Bound::AtLeast(0.98).holds(0.99));
        assert!(!Bound::AtLeast(0.98).holds(0.5));
        assert!(!Bound::AtLeast(0.98).holds(f64::NAN));
    }

    /// A corrupted device-side gradient is caught by the comparison.
    #[test]
    fn a_wrong_gradient_is_reported() {
        let d = Device::Cpu;
        let g = Tensor::new(&[1f32, 2.0, 3.0], &d).unwrap();
        let reference: HashMap<String, Tensor> = [("a".to_string(), g.clone())].into();
        let mut got = reference.clone();
        let ((rel, _), (cos, _)) = grad_agreement(&got, &reference).unwrap();
        assert_eq!((rel, cos), (0.0, 1.0));
        got.insert("a".into(), (g * 1.01).unwrap());
        let ((rel, name), _) = grad_agreement(&got, &reference).unwrap();
        assert!(rel > F32_TOL && name == "a");
        got.clear();
        let ((rel, _), _) = grad_agreement(&got, &reference).unwrap();
        assert!(rel.is_infinite());
    }
}
