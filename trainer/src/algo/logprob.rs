//! Token log-probabilities and full-vocabulary entropies from logits.

use candle_core::{D, DType, Result, Tensor};

use crate::model::fused;

/// For `logits` `(b, t, v)` and `targets` `(b, t)` u32: `(log π(target), H)`, both `(b, t)`,
/// under `softmax(logits / temperature)`. Differentiable in `logits`. On the CPU in f32 one
/// fused kernel ([`fused::token_logprob_entropy`]); elsewhere [`logprobs_and_entropy_unfused`].
pub fn logprobs_and_entropy(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    let scaled = scale(logits, temperature)?;
    if fused::applies(&scaled) && targets.dtype() == DType::U32 {
        return fused::token_logprob_entropy(&scaled, targets);
    }
    unfused(&scaled, targets)
}

/// `log π(target)` `(b, t)` only: the training forward's path. On the CPU in f32 the fused
/// kernel of [`logprobs_and_entropy`] (its entropy costs one multiply-add per logit and is
/// dropped); elsewhere `log_softmax` and `gather`, without the entropy.
pub fn logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Result<Tensor> {
    let scaled = scale(logits, temperature)?;
    if fused::applies(&scaled) && targets.dtype() == DType::U32 {
        return Ok(fused::token_logprob_entropy(&scaled, targets)?.0);
    }
    let logp_all = candle_nn::ops::log_softmax(&scaled, D::Minus1)?;
    logp_all
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)
}

/// [`logprobs_and_entropy`] from elementary candle ops (`log_softmax`, `gather`, `exp`,
/// multiply, sum) on every device: the path for CUDA and non-f32 logits, and the reference the
/// fused kernel is tested against.
pub fn logprobs_and_entropy_unfused(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    unfused(&scale(logits, temperature)?, targets)
}

fn scale(logits: &Tensor, temperature: f64) -> Result<Tensor> {
    if temperature == 1.0 {
        Ok(logits.clone())
    } else {
        logits / temperature
    }
}

fn unfused(scaled: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let logp_all = candle_nn::ops::log_softmax(scaled, D::Minus1)?; // (b, t, v)
    let logp = logp_all
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let entropy = (logp_all.exp()? * &logp_all)?.sum(D::Minus1)?.neg()?;
    Ok((logp, entropy))
}

/// Scores a packed batch under `model`: `(log π(target), H if asked)`, both `(b, cols)` like
/// the batch's mask, differentiable in the model's weights. The output head runs only from the
/// batch's first response column; the prompt-only columns before it are 0 (masked everywhere
/// downstream).
pub fn score(
    model: &crate::model::Decoder,
    packed: &crate::rollout::Packed,
    temperature: f64,
    with_entropy: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let logits = model.forward_tail(&packed.inputs, packed.first_response_col)?;
    score_logits_by(
        packed,
        &logits,
        temperature,
        with_entropy,
        model.fused_kernels(),
    )
}

/// [`score`] from the logits `(b, cols − first_response_col, V)` of the batch's columns from
/// its first response column on.
pub fn score_logits(
    packed: &crate::rollout::Packed,
    logits: &Tensor,
    temperature: f64,
    with_entropy: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    score_logits_by(packed, logits, temperature, with_entropy, true)
}

/// [`score_logits`], with the fused kernel where it applies (`fused`) or the unfused ops (a
/// model built [`crate::model::Decoder::with_fused_kernels`] `(false)`).
fn score_logits_by(
    packed: &crate::rollout::Packed,
    logits: &Tensor,
    temperature: f64,
    with_entropy: bool,
    fused: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let from = packed.first_response_col;
    let targets = packed.targets.narrow(1, from, packed.cols - from)?;
    let (logp, entropy) = match (with_entropy, fused) {
        (true, true) => {
            let (lp, h) = logprobs_and_entropy(logits, &targets, temperature)?;
            (lp, Some(h))
        }
        (true, false) => {
            let (lp, h) = logprobs_and_entropy_unfused(logits, &targets, temperature)?;
            (lp, Some(h))
        }
        (false, true) => (logprobs(logits, &targets, temperature)?, None),
        (false, false) => (
            logprobs_and_entropy_unfused(logits, &targets, temperature)?.0,
            None,
        ),
    };
    let widen = |x: Tensor| -> Result<Tensor> {
        if from == 0 {
            return Ok(x);
        }
        let pad = Tensor::zeros((packed.rows, from), x.dtype(), x.device())?;
        Tensor::cat(&[&pad, &x], 1)
    };
    Ok((widen(logp)?, entropy.map(widen).transpose()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn uniform_and_peaked() {
        let dev = Device::Cpu;
        let logits =
            Tensor::new(&[[[0.0f32, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]]], &dev).unwrap();
        let targets = Tensor::new(&[[2u32, 0]], &dev).unwrap();
        let (lp, h) = logprobs_and_entropy(&logits, &targets, 1.0).unwrap();
        let lp = lp.to_vec2::<f32>().unwrap();
        let h = h.to_vec2::<f32>().unwrap();
        assert!((lp[0][0] - (0.25f32).ln()).abs() < 1e-6);
        assert!((h[0][0] - 4f32.ln()).abs() < 1e-6);
        assert!(lp[0][1] > -1e-3 && h[0][1] < 1e-2);
        let (_, h2) = logprobs_and_entropy(&logits, &targets, 10.0).unwrap();
        assert!(h2.to_vec2::<f32>().unwrap()[0][1] > h[0][1]);
    }

    #[test]
    fn fused_and_unfused_paths_agree_and_other_dtypes_fall_back() {
        let dev = Device::Cpu;
        let vals: Vec<f32> = (0..2 * 3 * 7)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 1.3)
            .collect();
        let logits = Tensor::from_vec(vals, (2, 3, 7), &dev).unwrap();
        let targets = Tensor::new(&[[0u32, 6, 3], [2, 2, 5]], &dev).unwrap();
        let (lp, h) = logprobs_and_entropy(&logits, &targets, 0.7).unwrap();
        let (lp0, h0) = logprobs_and_entropy_unfused(&logits, &targets, 0.7).unwrap();
        let only = logprobs(&logits, &targets, 0.7).unwrap();
        let diff = crate::model::fused::agreement::max_abs_diff;
        assert!(diff(&lp, &lp0) < 1e-5 && diff(&h, &h0) < 1e-5 && diff(&only, &lp0) < 1e-5);
        // f64 logits take the unfused path and still agree.
        let (lp64, _) =
            logprobs_and_entropy(&logits.to_dtype(DType::F64).unwrap(), &targets, 0.7).unwrap();
        assert!(diff(&lp64.to_dtype(DType::F32).unwrap(), &lp0) < 1e-5);
    }
}
