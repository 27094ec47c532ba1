//! Causal language models the trainer can optimise.
//!
//! [`decoder`] is a Qwen2/Llama-family decoder built only from differentiable candle ops
//! (candle 0.11's fused `rms_norm`, `softmax_last_dim` and `rope` have no backward and would
//! silently cut the graph); on the CPU in f32 it runs the [`fused`] kernels instead, which carry
//! their own backward. Its weights live in a [`candle_nn::VarMap`] under the Hugging Face
//! tensor names; [`hf`] reads and writes Hugging Face directories, [`gguf`] reads GGUF files.

pub mod decoder;
pub mod fused;
pub mod gguf;
pub mod hf;
pub mod rope_scaling;
pub mod source;

pub use decoder::{Decoder, Family, KvCache, ModelConfig};
pub use rope_scaling::RopeScaling;

use candle_core::Tensor;
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

/// Re-initialises every variable in `varmap` from `seed` (candle's CPU RNG cannot be seeded):
/// matrices ~ N(0, `std`²) as HF's `initializer_range`, 1-D weights named `*norm*` to 1, other
/// vectors (biases) to 0. Names are visited in sorted order, so the result depends only on the
/// seed and the architecture.
pub fn init_weights(varmap: &VarMap, seed: u64, std: f64) -> candle_core::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if var.rank() >= 2 {
            (0..n).map(|_| (gaussian(&mut rng) * std) as f32).collect()
        } else if name.contains("norm") {
            vec![1.0; n]
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A standard normal draw (Box–Muller).
fn gaussian<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
