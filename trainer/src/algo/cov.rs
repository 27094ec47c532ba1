//! The covariance score of Cui et al. (Clip-Cov, KL-Cov): per valid token
//! `cov_t = (A_t − mean A)(logp_t − mean logp)`, means over the valid tokens.

/// Covariance per token; padding gets `f64::NEG_INFINITY` so it is never selected.
pub fn token_cov(adv: &[f32], logp: &[f32], mask: &[bool]) -> Vec<f64> {
    let n = mask.iter().filter(|&&m| m).count().max(1) as f64;
    let mean = |v: &[f32]| {
        v.iter()
            .zip(mask)
            .filter(|&(_, &m)| m)
            .map(|(&x, _)| f64::from(x))
            .sum::<f64>()
            / n
    };
    let (ma, ml) = (mean(adv), mean(logp));
    adv.iter()
        .zip(logp)
        .zip(mask)
        .map(|((&a, &l), &m)| {
            if m {
                (f64::from(a) - ma) * (f64::from(l) - ml)
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Independent Python: mA, mL over valid tokens; cov = (a-mA)*(lp-mL)
    //   -> [1.683, -1.507, -1.422, 2.133, -0.252]
    #[test]
    fn golden_numbers() {
        let c = token_cov(
            &[1.5, 1.5, -0.5, -0.5, 0.0, 2.0],
            &[-0.1, -3.0, -0.05, -4.0, -1.0, -20.0],
            &[true, true, true, true, true, false],
        );
        for (x, y) in c.iter().zip([1.683, -1.507, -1.422, 2.133, -0.252]) {
            assert!((x - y).abs() < 1e-3, "{c:?}");
        }
        assert_eq!(c[5], f64::NEG_INFINITY);
    }
}
