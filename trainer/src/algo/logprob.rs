//! Token log-probabilities and full-vocabulary entropies from logits.

use candle_core::{D, Result, Tensor};

/// For `logits` `(b, t, v)` and `targets` `(b, t)` u32: `(log π(target), H)`, both `(b, t)`,
/// under `softmax(logits / temperature)`. Differentiable in `logits`.
pub fn logprobs_and_entropy(
    logits: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    let scaled = if temperature == 1.0 {
        logits.clone()
    } else {
        (logits / temperature)?
    };
    let logp_all = candle_nn::ops::log_softmax(&scaled, D::Minus1)?; // (b, t, v)
    let logp = logp_all
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)?;
    let entropy = (logp_all.exp()? * &logp_all)?.sum(D::Minus1)?.neg()?;
    Ok((logp, entropy))
}

/// `log π(target)` `(b, t)` only: the training forward's path (no entropy computed).
pub fn logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Result<Tensor> {
    let scaled = if temperature == 1.0 {
        logits.clone()
    } else {
        (logits / temperature)?
    };
    let logp_all = candle_nn::ops::log_softmax(&scaled, D::Minus1)?;
    logp_all
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)
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
}
