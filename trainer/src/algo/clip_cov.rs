//! Clip-Cov (Cui et al. 2025): among tokens not already clipped by PPO, pick
//! `max(1, ⌊ρN⌋)` at random whose covariance lies in `(lb, ub)` and detach their loss (the
//! value stays, the gradient stops).

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipCovConfig {
    /// Fraction ρ of valid tokens to detach. Default 2e-4.
    pub ratio: f64,
    /// Lower covariance bound. Default 1.
    pub lb: f64,
    /// Upper covariance bound. Default 5.
    pub ub: f64,
}

impl Default for ClipCovConfig {
    fn default() -> Self {
        ClipCovConfig {
            ratio: 2e-4,
            lb: 1.0,
            ub: 5.0,
        }
    }
}

/// Tokens whose loss is detached (`true`), drawn with `seed`.
pub fn select(
    cov: &[f64],
    gradient_flows: &[bool],
    mask: &[bool],
    cfg: &ClipCovConfig,
    seed: u64,
) -> Vec<bool> {
    let n = mask.iter().filter(|&&m| m).count();
    let k = ((cfg.ratio * n as f64).floor() as usize).max(1);
    let mut eligible: Vec<usize> = (0..cov.len())
        .filter(|&i| mask[i] && gradient_flows[i] && cov[i] > cfg.lb && cov[i] < cfg.ub)
        .collect();
    eligible.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut out = vec![false; cov.len()];
    for &i in eligible.iter().take(k) {
        out[i] = true;
    }
    out
}
