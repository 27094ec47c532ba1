//! KL-Cov (Cui et al. 2025): no ratio clipping (`ℓ = −A·r`); the top `max(1, ⌊κN⌋)` tokens
//! by covariance get `β·|logp − logp_old|` added.

use serde::{Deserialize, Serialize};

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlCovConfig {
    /// Fraction κ of valid tokens penalised. Default 2e-4.
    pub ratio: f64,
    /// Penalty coefficient β. Default 1.
    pub coef: f64,
}

impl Default for KlCovConfig {
    fn default() -> Self {
        KlCovConfig {
            ratio: 2e-4,
            coef: 1.0,
        }
    }
}

/// Tokens that get the penalty: the top `max(1, ⌊κN⌋)` valid tokens by covariance.
pub fn select(cov: &[f64], mask: &[bool], cfg: &KlCovConfig) -> Vec<bool> {
    let n = mask.iter().filter(|&&m| m).count();
    let k = ((cfg.ratio * n as f64).floor() as usize).max(1).min(n);
    let mut idx: Vec<usize> = (0..cov.len()).filter(|&i| mask[i]).collect();
    idx.sort_by(|&a, &b| cov[b].total_cmp(&cov[a]));
    let mut out = vec![false; cov.len()];
    for &i in idx.iter().take(k) {
        out[i] = true;
    }
    out
}
