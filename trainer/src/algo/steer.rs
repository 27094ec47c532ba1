//! STEER (`STEER.md` §2): reweight each token's loss by how much it is predicted to change the
//! policy's entropy, so that no single token drives a large entropy change.
//!
//! ```text
//! x = clamp(exp(logp_θ), 1e-8, 1−1e-8);  p_old = clamp(exp(logp_old), 1e-8, 1)
//! Ω = (A/p_old)·x·(1−x)·(ln x + H_old);  Ω = 0 where not finite;  m = |Ω|
//! exponential: k = −ln λ_min / max(max m, 0.02);  w = clamp(exp(−k·m), λ_min, 1)
//! linear:      w = w_max − (m − min m)(w_max − w_min)/(max m − min m), clamped
//! ```
//! Max/min are over the valid tokens of one micro-batch (the released code's normaliser).
//! The weights are constants: nothing here carries a gradient.

use serde::{Deserialize, Serialize};

/// How |Ω| maps to a weight.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum WeightMapping {
    /// `w = clamp(exp(−k·|Ω|), λ_min, 1)`: the paper's method. λ_min 0.8 in the released
    /// script (the paper reports 0.7).
    Exponential {
        /// Smallest weight, given to the token with the largest |Ω|.
        lambda_min: f64,
    },
    /// Linear map of |Ω| from `[min, max]` onto `[w_max, w_min]`; default `[1.2, 0.8]`.
    Linear {
        /// Weight of the largest |Ω|.
        w_min: f64,
        /// Weight of the smallest |Ω|.
        w_max: f64,
    },
}

/// STEER settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SteerConfig {
    /// The |Ω| → weight mapping. Default: exponential with λ_min = 0.8.
    pub mapping: WeightMapping,
}

impl Default for SteerConfig {
    fn default() -> Self {
        SteerConfig {
            mapping: WeightMapping::Exponential { lambda_min: 0.8 },
        }
    }
}

/// Ω per token from host copies of the current log-probs, old log-probs, advantages and
/// π_old entropies. Non-finite values become 0.
pub fn omega(logp: &[f32], old_logp: &[f32], adv: &[f32], entropy_old: &[f32]) -> Vec<f32> {
    logp.iter()
        .zip(old_logp)
        .zip(adv)
        .zip(entropy_old)
        .map(|(((&lp, &lo), &a), &h)| {
            let x = f64::from(lp).exp().clamp(1e-8, 1.0 - 1e-8);
            let p_old = f64::from(lo).exp().clamp(1e-8, 1.0);
            let o = (f64::from(a) / p_old) * x * (1.0 - x) * (x.ln() + f64::from(h));
            if o.is_finite() { o as f32 } else { 0.0 }
        })
        .collect()
}

/// The range of |Ω| a mapping normalises by: its max and min over a set of valid tokens
/// (one micro-batch for STEER; `steer-coupled` may take the whole batch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Largest |Ω| (0 over no tokens).
    pub max: f64,
    /// Smallest |Ω| (+∞ over no tokens).
    pub min: f64,
}

impl Range {
    /// The range of `|omega|` over the tokens where `mask` is true.
    pub fn of(omega: &[f32], mask: &[bool]) -> Self {
        let valid = || {
            omega
                .iter()
                .zip(mask)
                .filter(|&(_, &m)| m)
                .map(|(o, _)| f64::from(o.abs()))
        };
        Range {
            max: valid().fold(0.0f64, f64::max),
            min: valid().fold(f64::INFINITY, f64::min),
        }
    }

    /// The range spanning both.
    pub fn union(self, other: Self) -> Self {
        Range {
            max: self.max.max(other.max),
            min: self.min.min(other.min),
        }
    }
}

/// Weights for one micro-batch; padding (`mask == false`) gets 0.
pub fn weights(omega: &[f32], mask: &[bool], cfg: &SteerConfig) -> Vec<f32> {
    weights_in(omega, mask, &cfg.mapping, Range::of(omega, mask))
}

/// Weights of the tokens of `omega` under `mapping`, normalised by `range` (which may span
/// more tokens than these); padding (`mask == false`) gets 0.
pub fn weights_in(omega: &[f32], mask: &[bool], mapping: &WeightMapping, range: Range) -> Vec<f32> {
    let Range { max, min } = range;
    omega
        .iter()
        .zip(mask)
        .map(|(o, &m)| {
            if !m {
                return 0.0;
            }
            let m = f64::from(o.abs());
            let w = match *mapping {
                WeightMapping::Exponential { lambda_min } => {
                    let k = -lambda_min.ln() / max.max(0.02);
                    (-k * m).exp().clamp(lambda_min, 1.0)
                }
                WeightMapping::Linear { w_min, w_max } => {
                    if max > min {
                        (w_max - (m - min) * (w_max - w_min) / (max - min)).clamp(w_min, w_max)
                    } else {
                        (w_min + w_max) / 2.0
                    }
                }
            };
            w as f32
        })
        .collect()
}

/// Weight statistics over valid tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightStats {
    /// Mean weight.
    pub mean: f64,
    /// Smallest weight.
    pub min: f64,
    /// Largest weight.
    pub max: f64,
    /// Fraction of tokens with w < 0.99.
    pub frac_below_099: f64,
    /// Valid tokens counted.
    pub count: usize,
}

impl WeightStats {
    /// Statistics of `w` over `mask`.
    pub fn of(w: &[f32], mask: &[bool]) -> Self {
        let vals: Vec<f64> = w
            .iter()
            .zip(mask)
            .filter(|&(_, &m)| m)
            .map(|(&x, _)| f64::from(x))
            .collect();
        if vals.is_empty() {
            return WeightStats::default();
        }
        let n = vals.len() as f64;
        WeightStats {
            mean: vals.iter().sum::<f64>() / n,
            min: vals.iter().copied().fold(f64::INFINITY, f64::min),
            max: vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            frac_below_099: vals.iter().filter(|&&x| x < 0.99).count() as f64 / n,
            count: vals.len(),
        }
    }

    /// Statistics of all-ones weights (methods without reweighting).
    pub fn ones(mask: &[bool]) -> Self {
        let count = mask.iter().filter(|&&m| m).count();
        if count == 0 {
            return WeightStats::default();
        }
        WeightStats {
            mean: 1.0,
            min: 1.0,
            max: 1.0,
            frac_below_099: 0.0,
            count,
        }
    }

    /// Combines statistics of disjoint token sets.
    pub fn merge(self, other: Self) -> Self {
        if self.count == 0 {
            return other;
        }
        if other.count == 0 {
            return self;
        }
        let (a, b) = (self.count as f64, other.count as f64);
        WeightStats {
            mean: (self.mean * a + other.mean * b) / (a + b),
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            frac_below_099: (self.frac_below_099 * a + other.frac_below_099 * b) / (a + b),
            count: self.count + other.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-computed with an independent Python reimplementation of STEER.md §2:
    //   def omega(a, lp, lo, h):
    //       x = min(max(math.exp(lp), 1e-8), 1 - 1e-8)
    //       p = min(max(math.exp(lo), 1e-8), 1.0)
    //       o = (a / p) * x * (1 - x) * (math.log(x) + h)
    //       return o if math.isfinite(o) else 0.0
    //   m = [abs(o) for o in om]; M = max over valid m; k = -math.log(0.8) / max(M, 0.02)
    //   w_exp = [min(max(math.exp(-k * mi), 0.8), 1.0) if valid else 0.0 ...]
    //   w_lin = [min(max(1.2 - (mi - lo) * 0.4 / (M - lo), 0.8), 1.2) if valid else 0.0 ...]
    const A: [f32; 6] = [1.5, 1.5, -0.5, -0.5, 0.0, 2.0];
    const LOGP: [f32; 6] = [-0.1, -3.0, -0.05, -4.0, -1.0, -20.0];
    const OLD: [f32; 6] = [-0.2, -2.5, -0.05, -3.5, -1.0, -20.0];
    const H: [f32; 6] = [0.8, 2.0, 0.3, 2.5, 1.0, 3.0];
    const MASK: [bool; 6] = [true, true, true, true, true, false];

    fn close(got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 2e-5 * w.abs().max(1.0),
                "got {got:?} want {want:?}"
            );
        }
    }

    #[test]
    fn omega_matches_hand_computed() {
        let om = omega(&LOGP, &OLD, &A, &H);
        close(
            &om,
            &[0.110429, -0.8645, -0.006096, 0.446566, 0.0, -30.841_36],
        );
    }

    #[test]
    fn exponential_weights_match_hand_computed() {
        let w = weights(&omega(&LOGP, &OLD, &A, &H), &MASK, &SteerConfig::default());
        // The padding token's |Ω| = 30.8 is excluded from the max.
        close(&w, &[0.971898, 0.8, 0.998428, 0.891128, 1.0, 0.0]);
    }

    #[test]
    fn linear_weights_match_hand_computed() {
        let cfg = SteerConfig {
            mapping: WeightMapping::Linear {
                w_min: 0.8,
                w_max: 1.2,
            },
        };
        let w = weights(&omega(&LOGP, &OLD, &A, &H), &MASK, &cfg);
        close(&w, &[1.148905, 0.8, 1.197179, 0.993376, 1.2, 0.0]);
        let flat = weights(&[0.5, 0.5], &[true, true], &cfg);
        close(&flat, &[1.0, 1.0]);
    }

    #[test]
    fn small_omegas_use_the_floor_and_non_finite_is_zero() {
        // max |Ω| = 0.01 < 0.02, so k = −ln 0.8 / 0.02 and the largest token gets exp(−k·0.01).
        let w = weights(&[0.01, 0.0], &[true, true], &SteerConfig::default());
        close(&w, &[0.8f32.sqrt(), 1.0]);
        assert_eq!(omega(&[f32::NAN], &[0.0], &[1.0], &[1.0]), vec![0.0]);
    }
}
