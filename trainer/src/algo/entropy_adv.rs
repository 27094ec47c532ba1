//! Entropy-aware advantage (Cheng et al. 2025): `A + min(α·H_detached, |A|/κ)`.

use serde::{Deserialize, Serialize};

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntropyAdvConfig {
    /// α > 0. Default 0.4.
    pub alpha: f64,
    /// κ > 1. Default 2.
    pub kappa: f64,
}

impl Default for EntropyAdvConfig {
    fn default() -> Self {
        EntropyAdvConfig {
            alpha: 0.4,
            kappa: 2.0,
        }
    }
}

/// Shaped advantages.
pub fn shape(adv: &[f32], entropy: &[f32], cfg: &EntropyAdvConfig) -> Vec<f32> {
    adv.iter()
        .zip(entropy)
        .map(|(&a, &h)| {
            let a = f64::from(a);
            (a + (cfg.alpha * f64::from(h)).min(a.abs() / cfg.kappa)) as f32
        })
        .collect()
}
