//! Throughput of a random-init [`Shape`] on a device, measured the way `trainer train` works:
//!
//! - rollout generation: `rows` responses of `new_tokens` tokens to one `prompt`-token prompt
//!   with the run's sampler ([`rollout::sample_group`]: a fresh fused copy, the prompt once,
//!   its KV cache widened to the rows, temperature 1, EOS never ends a row); tokens/s =
//!   rows · new_tokens / s;
//! - a train step on `train_rows` rows of `prompt + new_tokens` tokens in one micro-batch: π_old
//!   scoring with full-vocabulary entropies, the policy forward, the loss, backward and an
//!   AdamW step (the device synchronised at the end); tokens/s = train_rows · (prompt +
//!   new_tokens) / s, for GRPO, and STEER's step time beside it (rounds alternate, so drift in
//!   the machine's load hits both alike);
//! - model FLOPs utilisation: [`super::Flops`] over the time, against `peak_tflops` (default
//!   989: an H200's dense bf16 tensor-core peak).
//!
//! Each figure is the median of `repeat` timed runs after one untimed warm-up (kernel loading
//! and the driver's PTX compilation). Peak GPU memory is not read here: the device script
//! samples `nvidia-smi` around the process (candle exposes no allocator statistics); the peak
//! host memory (`VmHWM`) is reported.

use std::time::Instant;

use candle_core::Device;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Flops, GpuCheckError, Shape, default_loss};
use crate::algo::Method;
use crate::algo::logprob;
use crate::device::{ComputeDevice, Precision};
use crate::model::Decoder;
use crate::optim::{AdamW, AdamWConfig, GradAccumulator};
use crate::rollout::{self, Sample, SamplingConfig, StopRule};
use crate::tokenizer::TextTokenizer;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpeedOptions {
    /// The device.
    pub device: ComputeDevice,
    /// The model shape.
    pub shape: Shape,
    /// Compute precision.
    pub precision: Precision,
    /// Rows generated together (the group size).
    pub rows: usize,
    /// Rows of a train step.
    pub train_rows: usize,
    /// Prompt tokens.
    pub prompt: usize,
    /// New tokens per row (generation) and response tokens per row (train step).
    pub new_tokens: usize,
    /// Timed repetitions (the median is reported), after one warm-up.
    pub repeat: usize,
    /// Seed of the weights, the prompt, the responses and the sampling.
    pub seed: u64,
    /// The device's peak, TFLOP/s, for MFU.
    pub peak_tflops: f64,
}

/// The measured figures.
#[derive(Debug, Clone, Serialize)]
pub struct SpeedReport {
    /// What was measured.
    pub options: SpeedOptions,
    /// Parameters of the model.
    pub params: usize,
    /// The prompt's token ids (the PyTorch side uses the same).
    pub prompt_ids: Vec<u32>,
    /// Seconds to build and initialise the model on the device.
    pub init_s: f64,
    /// Median seconds of one generation.
    pub generation_s: f64,
    /// Generated tokens per second.
    pub generation_tokens_per_s: f64,
    /// Median seconds of a GRPO train step.
    pub grpo_step_s: f64,
    /// Median seconds of a STEER train step.
    pub steer_step_s: f64,
    /// Train-step tokens per second (GRPO).
    pub train_tokens_per_s: f64,
    /// STEER's step time over GRPO's, percent.
    pub steer_over_grpo_pct: f64,
    /// Median milliseconds building GRPO's loss from the log-probs.
    pub grpo_loss_ms: f64,
    /// Median milliseconds building STEER's loss from the log-probs.
    pub steer_loss_ms: f64,
    /// Model FLOPs of one generation ([`Flops::generation`]).
    pub generation_flops: f64,
    /// Model FLOPs of one train step ([`Flops::train_step`]).
    pub train_step_flops: f64,
    /// Generation's model FLOPs utilisation, fraction of `peak_tflops`.
    pub generation_mfu: f64,
    /// The GRPO train step's model FLOPs utilisation.
    pub train_mfu: f64,
    /// Peak resident memory of this process, MiB (Linux `VmHWM`; `None` elsewhere).
    pub peak_host_rss_mib: Option<f64>,
}

impl SpeedReport {
    /// A Markdown table of the figures.
    pub fn table(&self) -> String {
        let o = &self.options;
        format!(
            "speed, {} ({:.1} M parameters, random init), {:?} on {:?}: generation {} rows × {} new tokens after a {}-token prompt; train step {} rows × {} tokens; median of {}\n\n\
             | measure | value |\n|---|---|\n\
             | rollout generation, tokens/s | {:.1} |\n\
             | train step (GRPO), tokens/s | {:.1} |\n\
             | GRPO step, s | {:.4} |\n\
             | STEER step, s | {:.4} ({:+.2} % over GRPO) |\n\
             | loss construction GRPO / STEER, ms | {:.2} / {:.2} |\n\
             | MFU generation / train step (peak {} TFLOP/s) | {:.2} % / {:.2} % |\n\
             | peak host memory, MiB | {} |\n",
            o.shape.as_str(),
            self.params as f64 / 1e6,
            o.precision,
            o.device,
            o.rows,
            o.new_tokens,
            o.prompt,
            o.train_rows,
            o.prompt + o.new_tokens,
            o.repeat,
            self.generation_tokens_per_s,
            self.train_tokens_per_s,
            self.grpo_step_s,
            self.steer_step_s,
            self.steer_over_grpo_pct,
            self.grpo_loss_ms,
            self.steer_loss_ms,
            o.peak_tflops,
            100.0 * self.generation_mfu,
            100.0 * self.train_mfu,
            self.peak_host_rss_mib
                .map_or("–".into(), |m| format!("{m:.0}")),
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures `o`.
pub fn run(o: &SpeedOptions) -> Result<SpeedReport, GpuCheckError> {
    if o.rows == 0 || o.train_rows == 0 || o.prompt == 0 || o.new_tokens == 0 || o.repeat == 0 {
        return Err(GpuCheckError::Invalid(
            "rows, train rows, prompt, new tokens and repeat must be positive".into(),
        ));
    }
    let cfg = o.shape.config();
    if o.prompt + o.new_tokens > cfg.max_position_embeddings {
        return Err(GpuCheckError::Invalid(format!(
            "prompt + new tokens = {} exceeds the shape's {} positions",
            o.prompt + o.new_tokens,
            cfg.max_position_embeddings
        )));
    }
    let dev = o.device.open()?;
    let t = Instant::now();
    let (varmap, model) = super::export::random_model(o.shape, o.seed, &dev)?;
    let policy = model.with_compute_dtype(o.precision.dtype());
    let frozen = crate::weights::detached_view(&varmap, &policy)?;
    dev.synchronize()?;
    let init_s = t.elapsed().as_secs_f64();
    let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();

    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let vocab = cfg.vocab_size as u32;
    let prompt_ids: Vec<u32> = (0..o.prompt).map(|_| rng.random_range(0..vocab)).collect();

    // Generation; an EOS id outside the vocabulary so every row runs to the limit.
    let chars = TextTokenizer::char_level()?;
    let no_eos = TextTokenizer::new(chars.inner().clone(), u32::MAX, None);
    let stop = StopRule::new(&no_eos, &[]);
    let sampling = SamplingConfig {
        temperature: 1.0,
        max_new_tokens: o.new_tokens,
        top_p: 1.0,
        top_k: 0,
    };
    let mut generate = || -> Result<f64, GpuCheckError> {
        let t = Instant::now();
        let fused = frozen.fused()?;
        let rows = rollout::sample_group(
            &fused,
            &prompt_ids,
            o.rows,
            &sampling,
            &stop,
            &dev,
            &mut rng,
        )?;
        let s = t.elapsed().as_secs_f64();
        if rows.iter().any(|r| r.response_ids.len() != o.new_tokens) {
            return Err(GpuCheckError::Invalid("a row ended early".into()));
        }
        Ok(s)
    };
    generate()?;
    let generation_s = median(
        (0..o.repeat)
            .map(|_| generate())
            .collect::<Result<_, _>>()?,
    );

    // Train steps on the prompt and random responses.
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed ^ 1);
    let rows: Vec<Sample> = (0..o.train_rows)
        .map(|_| Sample {
            prompt_ids: prompt_ids.clone(),
            response_ids: (0..o.new_tokens)
                .map(|_| rng.random_range(0..vocab))
                .collect(),
            finished: false,
        })
        .collect();
    let adv: Vec<f32> = (0..o.train_rows)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut opt = AdamW::new(crate::weights::params_of(&varmap)?, AdamWConfig::default())?;
    let mut step = |m: Method| train_step(m, &policy, &frozen, &mut opt, &rows, &adv, &dev);
    step(Method::Grpo)?;
    let (mut grpo, mut steer) = (Vec::new(), Vec::new());
    for _ in 0..o.repeat {
        grpo.push(step(Method::Grpo)?);
        steer.push(step(Method::Steer)?);
    }
    let part = |v: &[(f64, f64)], i: usize| {
        median(v.iter().map(|x| if i == 0 { x.0 } else { x.1 }).collect())
    };
    let (grpo_step_s, steer_step_s) = (part(&grpo, 0), part(&steer, 0));
    let (grpo_loss_s, steer_loss_s) = (part(&grpo, 1), part(&steer, 1));

    let flops = Flops(&cfg);
    let generation_flops = flops.generation(o.rows, o.prompt, o.new_tokens);
    let train_step_flops = flops.train_step(o.train_rows, o.prompt, o.new_tokens);
    let peak = o.peak_tflops * 1e12;
    Ok(SpeedReport {
        options: *o,
        params,
        prompt_ids,
        init_s,
        generation_s,
        generation_tokens_per_s: (o.rows * o.new_tokens) as f64 / generation_s,
        grpo_step_s,
        steer_step_s,
        train_tokens_per_s: (o.train_rows * (o.prompt + o.new_tokens)) as f64 / grpo_step_s,
        steer_over_grpo_pct: 100.0 * (steer_step_s / grpo_step_s - 1.0),
        grpo_loss_ms: 1e3 * grpo_loss_s,
        steer_loss_ms: 1e3 * steer_loss_s,
        generation_flops,
        train_step_flops,
        generation_mfu: generation_flops / generation_s / peak,
        train_mfu: train_step_flops / grpo_step_s / peak,
        peak_host_rss_mib: peak_rss_mib(),
    })
}

/// One train step as `trainer train` takes it on one micro-batch; returns the seconds of the
/// whole step (device synchronised) and of building the loss from the log-probs.
fn train_step(
    method: Method,
    policy: &Decoder,
    frozen: &Decoder,
    opt: &mut AdamW,
    rows: &[Sample],
    adv: &[f32],
    dev: &Device,
) -> Result<(f64, f64), GpuCheckError> {
    let t = Instant::now();
    let packed = rollout::pack(&rows.iter().collect::<Vec<_>>(), dev)?;
    let (old_logp, entropy) = logprob::score(frozen, &packed, 1.0, true)?;
    let entropy = entropy.ok_or_else(|| GpuCheckError::Invalid("no entropy".into()))?;
    let batch = crate::train::token_batch(
        &packed,
        old_logp,
        entropy.flatten_all()?.to_vec1::<f32>()?,
        adv.iter().copied(),
        dev,
    )?;
    let logp = logprob::score(policy, &packed, 1.0, false)?.0;
    let t_loss = Instant::now();
    let loss = default_loss(method, &logp, &batch)?;
    dev.synchronize()?;
    let loss_s = t_loss.elapsed().as_secs_f64();
    let mut acc = GradAccumulator::new(opt.params().len());
    acc.add(opt.params(), &loss.backward()?)?;
    opt.step(&acc.into_grads(), 1e-6)?;
    dev.synchronize()?;
    Ok((t.elapsed().as_secs_f64(), loss_s))
}

/// The process's peak resident memory, MiB, from `/proc/self/status` (Linux only).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_shape_is_measured_on_the_cpu() {
        let o = SpeedOptions {
            device: ComputeDevice::Cpu,
            shape: Shape::Tiny,
            precision: Precision::F32,
            rows: 4,
            train_rows: 4,
            prompt: 8,
            new_tokens: 6,
            repeat: 2,
            seed: 0,
            peak_tflops: 1.0,
        };
        let r = run(&o).unwrap();
        assert_eq!(r.params, 86_976);
        assert_eq!(r.prompt_ids.len(), 8);
        for (name, x) in [
            ("generation", r.generation_tokens_per_s),
            ("train", r.train_tokens_per_s),
            ("grpo", r.grpo_step_s),
            ("steer", r.steer_step_s),
            ("mfu", r.train_mfu),
        ] {
            assert!(x.is_finite() && x > 0.0, "{name}: {x}");
        }
        assert_eq!(
            r.train_step_flops,
            Flops(&Shape::Tiny.config()).train_step(4, 8, 6)
        );
        assert!(r.peak_host_rss_mib.is_some_and(|m| m > 1.0));
        assert!(r.table().contains("| rollout generation, tokens/s |"));
        let too_long = SpeedOptions {
            prompt: 500,
            new_tokens: 100,
            ..o
        };
        assert!(run(&too_long).is_err());
    }
}
