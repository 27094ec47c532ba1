//! AdamW's step on SmolLM2-135M's matrix shapes (the 49 152 × 576 embedding plus 30 layers'
//! MLP matrices, 81M parameters, random gradients): the in-place CPU kernels against the same
//! update as tensor ops (taken when a gradient is not contiguous, and on CUDA). Prints a table.
//!
//! `cargo bench -p trainer --bench adamw`

use candle_core::{Device, Tensor, Var};
use trainer::optim::{AdamW, AdamWConfig, Param};

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let mut params = Vec::new();
    let mut grads = Vec::new();
    for (k, (r, c), copies) in [
        (0, (49_152usize, 576usize), 1),
        (1, (1536, 576), 30),
        (2, (576, 1536), 30),
    ] {
        for j in 0..copies {
            let var = Var::from_tensor(&Tensor::randn(0f32, 0.02, (r, c), &dev)?)?;
            params.push(Param {
                name: format!("p{k}.{j}"),
                var,
                decay: true,
            });
            grads.push(Tensor::randn(0f32, 0.01, (r, c), &dev)?);
        }
    }
    let n: usize = params.iter().map(|p| p.var.elem_count()).sum();
    // The same values through a transposed view: not contiguous, so the tensor-op path.
    let strided = grads
        .iter()
        .map(|g| Ok(Some(g.t()?.contiguous()?.t()?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let contiguous: Vec<Option<Tensor>> = grads.into_iter().map(Some).collect();
    let mut opt = AdamW::new(params, AdamWConfig::default())?;
    let steps = 3;
    let mut time = |g: &[Option<Tensor>]| -> candle_core::Result<f64> {
        let t = std::time::Instant::now();
        for _ in 0..steps {
            opt.step(g, 1e-5)?;
        }
        Ok(t.elapsed().as_secs_f64() / steps as f64)
    };
    // Alternating rounds, so drift in machine load hits both alike.
    let (mut ops, mut inplace) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        ops.push(time(&strided)?);
        inplace.push(time(&contiguous)?);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!("AdamW step, {n} f32 parameters, best of 2 rounds of {steps} steps\n");
    println!("| path | s per step |");
    println!("|---|---|");
    println!("| tensor ops | {:.3} |", best(&ops));
    println!("| in place (CPU) | {:.3} |", best(&inplace));
    Ok(())
}
