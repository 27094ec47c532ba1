//! `trainer gpu-check`: what a GPU run of this trainer has to show before it is trusted, runnable
//! on the CPU too (where the device and the reference are the same machine).
//!
//! - [`correctness`]: the same tiny model, seed and batch on `--device` and on the CPU: logits,
//!   every parameter's gradient of a STEER loss, one AdamW step, in f32 and bf16; KV-cache
//!   decoding and greedy sampling against the full forward on the device.
//! - [`speed`]: rollout and train-step tokens/s of a named [`Shape`] (random init), STEER's
//!   step against GRPO's, model FLOPs utilisation.
//! - [`export`]: a random-init model of a shape as a Hugging Face checkpoint, for the PyTorch
//!   side of the comparison (`scripts/gpu_torch_bench.py`).
//!
//! `scripts/gpu-check.sh` packs a CUDA build with the device-side script that runs all three;
//! docs/gpu.md says how.

pub mod correctness;
pub mod export;
pub mod speed;

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::Serialize;

use crate::algo::{
    self, LossAgg, LossConfig, Method, MethodParams, PolicyOutputs, SteerConfig, TokenBatch,
};
use crate::device::{ComputeDevice, Precision};
use crate::model::{Family, ModelConfig};

/// `trainer gpu-check …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum GpuCheckCommand {
    /// The same tiny models and batch on `--device` and on the CPU, in f32 and bf16: logits,
    /// every parameter's gradient of a STEER loss, one AdamW step, KV-cache decoding and greedy
    /// sampling against the full forward. Writes `OUT/correctness.{json,md}`; exits non-zero
    /// when a check fails.
    #[command(
        after_help = "Example:\n  trainer gpu-check correctness --device cpu --out runs/gpu-check"
    )]
    Correctness {
        /// The device compared with the CPU.
        #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu)]
        device: ComputeDevice,
        /// Seed of the weights, the batch and the sampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "runs/gpu-check")]
        out: PathBuf,
    },
    /// Rollout and train-step tokens/s of a random-init model shape, STEER's step against
    /// GRPO's, model FLOPs utilisation. Writes `OUT/speed-SHAPE-PRECISION.{json,md}`.
    #[command(
        after_help = "Example:\n  trainer gpu-check speed --shape tiny --device cpu --rows 4 --new 16 --out runs/gpu-check"
    )]
    Speed {
        /// The model shape.
        #[arg(long, value_enum)]
        shape: Shape,
        /// The device.
        #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu)]
        device: ComputeDevice,
        /// Compute precision (bf16: bf16 products over f32 master weights).
        #[arg(long, value_enum, default_value_t = Precision::Bf16)]
        precision: Precision,
        /// Rows generated together.
        #[arg(long, default_value_t = 16)]
        rows: usize,
        /// Rows of a train step (default: `--rows`).
        #[arg(long)]
        train_rows: Option<usize>,
        /// Prompt tokens.
        #[arg(long, default_value_t = 64)]
        prompt: usize,
        /// New tokens per row.
        #[arg(long = "new", default_value_t = 128)]
        new_tokens: usize,
        /// Timed repetitions (median reported) after one warm-up.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Seed of the weights and data (the same seed exports the same weights).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Peak TFLOP/s of the device for MFU (default: an H200's dense bf16 peak).
        #[arg(long, default_value_t = 989.0)]
        peak_tflops: f64,
        /// Output directory.
        #[arg(long, default_value = "runs/gpu-check")]
        out: PathBuf,
    },
    /// Write a random-init model of a shape as a Hugging Face checkpoint (`config.json`,
    /// `model.safetensors`, f32) that transformers loads.
    #[command(
        after_help = "Example:\n  trainer gpu-check export --shape tiny --out runs/gpu-check/tiny-hf"
    )]
    Export {
        /// The model shape.
        #[arg(long, value_enum)]
        shape: Shape,
        /// Seed of the weights (as `speed --seed`).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The checkpoint directory (created).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `cmd`, printing its table and writing its files. Returns false when a correctness
/// check failed.
pub fn run(cmd: &GpuCheckCommand) -> Result<bool, GpuCheckError> {
    match cmd {
        GpuCheckCommand::Correctness { device, seed, out } => {
            let report = correctness::run(*device, *seed)?;
            write_json(&out.join("correctness.json"), &report)?;
            write_text(&out.join("correctness.md"), &report.table())?;
            print!("{}", report.table());
            Ok(report.passed)
        }
        GpuCheckCommand::Speed {
            shape,
            device,
            precision,
            rows,
            train_rows,
            prompt,
            new_tokens,
            repeat,
            seed,
            peak_tflops,
            out,
        } => {
            let o = speed::SpeedOptions {
                device: *device,
                shape: *shape,
                precision: *precision,
                rows: *rows,
                train_rows: train_rows.unwrap_or(*rows),
                prompt: *prompt,
                new_tokens: *new_tokens,
                repeat: *repeat,
                seed: *seed,
                peak_tflops: *peak_tflops,
            };
            let report = speed::run(&o)?;
            let stem = format!(
                "speed-{}-{}",
                shape.as_str(),
                serde_json::to_value(precision)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            );
            write_json(&out.join(format!("{stem}.json")), &report)?;
            write_text(&out.join(format!("{stem}.md")), &report.table())?;
            print!("{}", report.table());
            Ok(true)
        }
        GpuCheckCommand::Export { shape, seed, out } => {
            let n = export::export(*shape, *seed, out)?;
            println!(
                "wrote {} ({}, {:.1} M parameters, seed {seed}) to {}",
                shape.config().family.architecture(),
                shape.as_str(),
                n as f64 / 1e6,
                out.display()
            );
            Ok(true)
        }
    }
}

/// What a gpu-check step can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GpuCheckError {
    /// Opening the device.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// A tensor operation.
    #[error("tensors: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Writing the checkpoint.
    #[error(transparent)]
    Hf(#[from] crate::model::hf::HfError),
    /// A tokenizer (the sampler's stop rule).
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// Writing a report.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An option out of range.
    #[error("{0}")]
    Invalid(String),
}

/// A model shape with random weights: the architectures of the models the issue measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Shape {
    /// `trainer/configs/tiny-cpu.toml`'s model (Qwen2, 2 layers of width 64, vocabulary 99),
    /// with 512 positions instead of 64.
    #[serde(rename = "tiny")]
    Tiny,
    /// SmolLM2-135M: Llama, 30 layers of width 576, 9 heads (3 KV), vocabulary 49152, tied.
    #[value(name = "smollm2-135m")]
    #[serde(rename = "smollm2-135m")]
    Smollm2_135m,
    /// Qwen2.5-0.5B: Qwen2, 24 layers of width 896, 14 heads (2 KV), vocabulary 151936, tied.
    #[value(name = "qwen2-0.5b")]
    #[serde(rename = "qwen2-0.5b")]
    Qwen2_0_5b,
}

impl Shape {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Tiny => "tiny",
            Shape::Smollm2_135m => "smollm2-135m",
            Shape::Qwen2_0_5b => "qwen2-0.5b",
        }
    }

    /// The architecture (the published `config.json` values of each model).
    pub fn config(self) -> ModelConfig {
        match self {
            Shape::Tiny => ModelConfig {
                family: Family::Qwen2,
                vocab_size: 99,
                hidden_size: 64,
                intermediate_size: 128,
                num_hidden_layers: 2,
                num_attention_heads: 4,
                num_key_value_heads: 2,
                rope_theta: 10_000.0,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 512,
                tie_word_embeddings: false,
                rope_scaling: None,
            },
            Shape::Smollm2_135m => ModelConfig {
                family: Family::Llama,
                vocab_size: 49_152,
                hidden_size: 576,
                intermediate_size: 1536,
                num_hidden_layers: 30,
                num_attention_heads: 9,
                num_key_value_heads: 3,
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                rope_scaling: None,
            },
            Shape::Qwen2_0_5b => ModelConfig {
                family: Family::Qwen2,
                vocab_size: 151_936,
                hidden_size: 896,
                intermediate_size: 4864,
                num_hidden_layers: 24,
                num_attention_heads: 14,
                num_key_value_heads: 2,
                rope_theta: 1_000_000.0,
                rms_norm_eps: 1e-6,
                max_position_embeddings: 32_768,
                tie_word_embeddings: true,
                rope_scaling: None,
            },
        }
    }
}

/// Standard deviation of the random init of [`Shape`] models (HF's `initializer_range`).
pub const INIT_STD: f64 = 0.02;

/// Model FLOPs of one forward pass, counted as 2 per multiply-add of the matrix products
/// (projections, attention scores and values, output head); norms, softmax and element-wise
/// ops are not counted. The same formula serves this trainer and PyTorch, so their MFU compare.
#[derive(Debug, Clone, Copy)]
pub struct Flops<'a>(pub &'a ModelConfig);

impl Flops<'_> {
    /// Weights of the layers' projections (q, k, v, o, gate, up, down), all layers.
    pub fn layer_matmul_params(&self) -> f64 {
        let c = self.0;
        let (h, q, kv) = (
            c.hidden_size as f64,
            (c.num_attention_heads * c.head_dim()) as f64,
            (c.num_key_value_heads * c.head_dim()) as f64,
        );
        let per_layer = h * q + 2.0 * h * kv + q * h + 3.0 * h * c.intermediate_size as f64;
        per_layer * c.num_hidden_layers as f64
    }

    /// Forward FLOPs of `tokens` positions of one row that start at position `offset` (so
    /// position `offset + j` attends to `offset + j + 1` keys), with the output head over the
    /// last `head_positions` of them.
    pub fn forward(&self, offset: usize, tokens: usize, head_positions: usize) -> f64 {
        let c = self.0;
        let q = (c.num_attention_heads * c.head_dim()) as f64;
        // Σ over the new positions of the keys each sees.
        let keys: f64 = (0..tokens).map(|j| (offset + j + 1) as f64).sum();
        2.0 * self.layer_matmul_params() * tokens as f64
            + 4.0 * q * keys * c.num_hidden_layers as f64
            + 2.0 * (c.vocab_size * c.hidden_size) as f64 * head_positions as f64
    }

    /// Model FLOPs of generating `new` tokens on each of `rows` rows after a `prompt`-token
    /// prompt: every new token's forward with its head (the prompt's own pass is not counted,
    /// so that implementations which run it once or once per row count alike).
    pub fn generation(&self, rows: usize, prompt: usize, new: usize) -> f64 {
        rows as f64 * self.forward(prompt, new, new)
    }

    /// Model FLOPs of one train step on `rows` rows of `prompt + new` tokens: the π_old scoring
    /// forward and the policy's forward and backward (twice the forward), over the packed
    /// `prompt + new − 1` inputs, the head over the `new` response positions.
    pub fn train_step(&self, rows: usize, prompt: usize, new: usize) -> f64 {
        4.0 * rows as f64 * self.forward(0, prompt + new - 1, new)
    }
}

/// `max |a − b| / max |b|`: the largest deviation relative to the reference's largest magnitude
/// (0 when both are all zeros; infinite when `a` has a non-finite value). Both are cast to f32
/// and moved to the CPU.
pub fn rel_error(a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    let a = host(a)?;
    let b = host(b)?;
    if a.len() != b.len() {
        candle_core::bail!("rel_error of {} and {} elements", a.len(), b.len());
    }
    if a.iter().any(|x| !x.is_finite()) {
        return Ok(f64::INFINITY);
    }
    let scale = b.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    let diff = a.iter().zip(&b).fold(0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    Ok(if diff == 0.0 { 0.0 } else { diff / scale })
}

/// Cosine of two tensors' flattened values (1 when both are zero).
pub fn cosine(a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    let a = host(a)?;
    let b = host(b)?;
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(&b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    Ok(if na == 0.0 && nb == 0.0 {
        1.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    })
}

/// A tensor's values as f32 on the host, row-major.
fn host(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_device(&candle_core::Device::Cpu)?
        .to_vec1::<f32>()
}

/// Writes `text` to `path`, creating its directory.
fn write_text(path: &Path, text: &str) -> Result<(), GpuCheckError> {
    let io = |source| GpuCheckError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), GpuCheckError> {
    let io = |source| GpuCheckError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| GpuCheckError::Invalid(format!("serialising the report: {e}")))?;
    std::fs::write(path, text + "\n").map_err(io)
}

/// The policy loss both checks train on: `method` with its default clip, STEER and method
/// parameters, token-mean, over one micro-batch scored as `logp` (no entropy or reference
/// term).
fn default_loss(method: Method, logp: &Tensor, batch: &TokenBatch) -> candle_core::Result<Tensor> {
    let (clip, steer, params) = (
        method.default_clip(),
        SteerConfig::default(),
        MethodParams::default(),
    );
    let cfg = LossConfig {
        method,
        clip: &clip,
        steer: &steer,
        params: &params,
        agg: LossAgg::TokenMean,
        seed: 0,
    };
    let out = PolicyOutputs {
        logp,
        entropy: None,
        ref_logp: None,
    };
    Ok(algo::micro_batch_loss(&cfg, &out, batch)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shapes_are_valid_and_sized_as_published() {
        for (shape, params_m) in [
            (Shape::Tiny, 0.0864),
            (Shape::Smollm2_135m, 134.5),
            (Shape::Qwen2_0_5b, 494.0),
        ] {
            let c = shape.config();
            c.validate().unwrap();
            // Projections + embedding (tied: one matrix) + norms and biases.
            let total = Flops(&c).layer_matmul_params()
                + (c.vocab_size * c.hidden_size) as f64
                + if c.tie_word_embeddings {
                    0.0
                } else {
                    (c.vocab_size * c.hidden_size) as f64
                };
            let m = total / 1e6;
            assert!(
                (m - params_m).abs() / params_m < 0.02,
                "{}: {m:.1} M parameters",
                shape.as_str()
            );
        }
    }

    #[test]
    fn flops_count_the_products() {
        let c = Shape::Tiny.config();
        let f = Flops(&c);
        // One token at position 0: 2 × weights + 4 × q-width × 1 key × layers + head.
        let one = 2.0 * f.layer_matmul_params() + 4.0 * 64.0 * 2.0 + 2.0 * 99.0 * 64.0;
        assert_eq!(f.forward(0, 1, 1), one);
        assert_eq!(f.generation(3, 5, 2), 3.0 * f.forward(5, 2, 2));
        assert_eq!(f.train_step(2, 4, 3), 8.0 * f.forward(0, 6, 3));
    }

    #[test]
    fn relative_error_and_cosine() {
        let d = Device::Cpu;
        let b = Tensor::new(&[1f32, -4.0, 2.0], &d).unwrap();
        let a = Tensor::new(&[1f32, -4.0, 2.4], &d).unwrap();
        assert!((rel_error(&a, &b).unwrap() - 0.1).abs() < 1e-6);
        assert_eq!(rel_error(&b, &b).unwrap(), 0.0);
        let nan = Tensor::new(&[f32::NAN, 0.0, 0.0], &d).unwrap();
        assert!(rel_error(&nan, &b).unwrap().is_infinite());
        assert!((cosine(&b, &b).unwrap() - 1.0).abs() < 1e-12);
        assert!((cosine(&b, &b.neg().unwrap()).unwrap() + 1.0).abs() < 1e-12);
    }
}
