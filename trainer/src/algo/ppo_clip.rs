//! The dual-clip PPO surrogate per token (verl's `compute_policy_loss`, `STEER.md` §2):
//!
//! ```text
//! r = exp(clamp(logp − logp_old, −20, 20))
//! ℓ = max(−A·r, −A·clamp(r, 1−ε_low, 1+ε_high));  ℓ = min(ℓ, −A·c) where A < 0
//! ```

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Clipping parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    /// Lower clip ε_low: the ratio is held above 1−ε_low for A<0. STEER default 0.2.
    pub eps_low: f64,
    /// Upper clip ε_high: the ratio is held below 1+ε_high for A>0. STEER default 0.28
    /// (clip-higher); plain GRPO uses 0.2.
    pub eps_high: f64,
    /// Dual-clip constant c > 1 bounding the loss of A<0 tokens at −A·c; `None` disables it.
    /// STEER default 10.
    pub dual_clip_c: Option<f64>,
}

impl Default for ClipConfig {
    fn default() -> Self {
        ClipConfig {
            eps_low: 0.2,
            eps_high: 0.28,
            dual_clip_c: Some(10.0),
        }
    }
}

/// Per-token loss `(b, t)`; differentiable in `logp`.
pub fn token_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    adv: &Tensor,
    cfg: &ClipConfig,
) -> Result<Tensor> {
    let ratio = (logp - old_logp)?.clamp(-20.0, 20.0)?.exp()?;
    let neg_adv = adv.neg()?;
    let l1 = (&neg_adv * &ratio)?;
    let l2 = (&neg_adv * ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high)?)?;
    let clipped = l1.maximum(&l2)?;
    match cfg.dual_clip_c {
        Some(c) => {
            let cap = (&neg_adv * c)?;
            let dual = clipped.minimum(&cap)?;
            adv.lt(0.0)?.where_cond(&dual, &clipped)
        }
        None => Ok(clipped),
    }
}

/// Host-side clip bookkeeping for one micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipStats {
    /// Fraction of valid tokens with A<0 and r<1−ε_low.
    pub frac_low: f64,
    /// Fraction of valid tokens with A>0 and r>1+ε_high.
    pub frac_high: f64,
    /// Per token: does the policy gradient reach it? (`I_clip` of `STEER.md` §1, including the
    /// dual-clip branch A<0, r>c.)
    pub gradient_flows: Vec<bool>,
}

/// Computes [`ClipStats`] from host copies of the per-token inputs.
pub fn clip_stats(
    logp: &[f32],
    old_logp: &[f32],
    adv: &[f32],
    mask: &[bool],
    cfg: &ClipConfig,
) -> ClipStats {
    let (mut low, mut high, mut valid) = (0usize, 0usize, 0usize);
    let gradient_flows = logp
        .iter()
        .zip(old_logp)
        .zip(adv)
        .zip(mask)
        .map(|(((&lp, &lo), &a), &m)| {
            let r = f64::from(lp - lo).clamp(-20.0, 20.0).exp();
            let a = f64::from(a);
            let is_low = a < 0.0 && r < 1.0 - cfg.eps_low;
            let is_high = a > 0.0 && r > 1.0 + cfg.eps_high;
            let is_dual = a < 0.0 && cfg.dual_clip_c.is_some_and(|c| r > c);
            if m {
                valid += 1;
                low += usize::from(is_low);
                high += usize::from(is_high);
            }
            m && !(is_low || is_high || is_dual)
        })
        .collect();
    let denom = valid.max(1) as f64;
    ClipStats {
        frac_low: low as f64 / denom,
        frac_high: high as f64 / denom,
        gradient_flows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    // Golden numbers (independent Python):
    //   def ppo(a, lp, lo):
    //       r = math.exp(min(max(lp - lo, -20), 20))
    //       l = max(-a * r, -a * min(max(r, 0.8), 1.28))
    //       if a < 0: l = min(l, -a * 10)
    //       return l
    //   -> [-1.657756, -0.909796, 0.5, 0.4, -0.0, -2.0]
    #[test]
    fn golden_token_losses() {
        let dev = Device::Cpu;
        let adv = Tensor::new(&[1.5f32, 1.5, -0.5, -0.5, 0.0, 2.0], &dev).unwrap();
        let logp = Tensor::new(&[-0.1f32, -3.0, -0.05, -4.0, -1.0, -20.0], &dev).unwrap();
        let old = Tensor::new(&[-0.2f32, -2.5, -0.05, -3.5, -1.0, -20.0], &dev).unwrap();
        let l = token_loss(&logp, &old, &adv, &ClipConfig::default())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (x, y) in l.iter().zip([-1.657756f32, -0.909796, 0.5, 0.4, 0.0, -2.0]) {
            assert!((x - y).abs() < 1e-5, "{l:?}");
        }
    }

    #[test]
    fn dual_clip_caps_negative_advantage_loss() {
        let dev = Device::Cpu;
        // A<0 with a huge ratio: plain clip gives −A·r = 50, dual clip caps it at −A·c = 10.
        let l = token_loss(
            &Tensor::new(&[(50f32).ln()], &dev).unwrap(),
            &Tensor::new(&[0f32], &dev).unwrap(),
            &Tensor::new(&[-1f32], &dev).unwrap(),
            &ClipConfig::default(),
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        assert!((l[0] - 10.0).abs() < 1e-4);
        let s = clip_stats(
            &[(50f32).ln()],
            &[0.0],
            &[-1.0],
            &[true],
            &ClipConfig::default(),
        );
        assert_eq!(s.gradient_flows, vec![false]);
    }
}
