//! KL divergence to a frozen reference policy, per token (Schulman's estimators, verl names):
//! with `d = logp_θ − logp_ref`: k1 = d, k2 = d²/2, k3 = e^{−d} − 1 + d (low-variance,
//! non-negative). With β = 0 no reference forward pass is made.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// KL estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// `logp − logp_ref` (unbiased, can be negative).
    K1,
    /// `(logp − logp_ref)² / 2`.
    K2,
    /// `exp(logp_ref − logp) − (logp_ref − logp) − 1` (verl `low_var_kl`).
    #[default]
    K3,
}

/// KL penalty settings.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlConfig {
    /// Coefficient β of the KL term added to the loss. Default 0 (no reference model).
    pub beta: f64,
    /// Estimator. Default k3.
    pub estimator: KlEstimator,
}

/// Per-token KL estimate `(b, t)`, differentiable in `logp`.
pub fn token_kl(logp: &Tensor, ref_logp: &Tensor, est: KlEstimator) -> Result<Tensor> {
    let d = (logp - ref_logp)?.clamp(-20.0, 20.0)?;
    match est {
        KlEstimator::K1 => Ok(d),
        KlEstimator::K2 => d.sqr()? * 0.5,
        KlEstimator::K3 => (d.neg()?.exp()? - 1.0)? + &d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::LossAgg;
    use candle_core::Device;

    // Independent Python: d = logp - ref; k1 = d; k2 = d*d/2; k3 = exp(-d) - 1 + d; token mean
    // over the 5 valid tokens -> k1 -0.31, k2 0.20825, k3 0.295051.
    #[test]
    fn estimators_golden_numbers() {
        let dev = Device::Cpu;
        let logp = Tensor::new(&[[-0.1f32, -3.0, -0.05], [-4.0, -1.0, -20.0]], &dev).unwrap();
        let refp = Tensor::new(&[[-0.3f32, -2.0, -0.1], [-3.0, -1.2, -20.0]], &dev).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev).unwrap();
        for (est, want) in [
            (KlEstimator::K1, -0.31f32),
            (KlEstimator::K2, 0.20825),
            (KlEstimator::K3, 0.295_051),
        ] {
            let kl = token_kl(&logp, &refp, est).unwrap();
            let got = LossAgg::TokenMean
                .aggregate(&kl, &mask)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!((got - want).abs() < 1e-5, "{est:?}: {got}");
        }
    }
}
