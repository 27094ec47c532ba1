//! Agreement statistics for paired samples (Pearson and Spearman correlation, mean squared
//! error), and the mean of repeated runs with its 95 % confidence interval.

/// Pearson correlation; `None` with fewer than 3 pairs or zero variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let (mx, my) = (
        x[..n].iter().sum::<f64>() / n as f64,
        y[..n].iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx.sqrt() * syy.sqrt()))
}

/// Ranks with ties given their average rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Mean squared error.
pub fn mse(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    (n > 0).then(|| x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n as f64)
}

/// The mean of a few repeated measurements (e.g. one figure over seeds) and its two-sided
/// 95 % confidence interval from Student's t with n − 1 degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeanCi {
    /// Sample mean.
    pub mean: f64,
    /// Half the interval's width: the interval is `mean ± half_width` (NaN for one sample).
    pub half_width: f64,
    /// Samples.
    pub n: usize,
}

impl MeanCi {
    /// Lower end of the interval.
    pub fn lo(&self) -> f64 {
        self.mean - self.half_width
    }

    /// Upper end of the interval.
    pub fn hi(&self) -> f64 {
        self.mean + self.half_width
    }
}

/// Mean and 95 % interval of the finite values of `xs`; `None` without any.
pub fn mean_ci95(xs: &[f64]) -> Option<MeanCi> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let half_width = if n < 2 {
        f64::NAN
    } else {
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        t_975(n - 1) * (var / n as f64).sqrt()
    };
    Some(MeanCi {
        mean,
        half_width,
        n,
    })
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (scipy's `t.ppf(0.975,
/// df)` to 3 decimals for 1 to 30; the normal 1.960 beyond, at most 2 % narrower).
fn t_975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    T.get(df.wrapping_sub(1)).copied().unwrap_or(1.960)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Independent Python: sxy/sqrt(sxx*syy) for x=[1,2,3,4], y=[2,4,5,9] = 0.964764; ties share the average rank.
    #[test]
    fn golden_numbers() {
        assert!(
            (pearson(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 5.0, 9.0]).unwrap() - 0.964_764).abs()
                < 1e-5
        );
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 10.0, 100.0, 1000.0]).unwrap() - 1.0).abs()
                < 1e-12
        );
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
        assert_eq!(mse(&[1.0, 2.0], &[1.0, 4.0]), Some(2.0));
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    // scipy: x = [0.8, 0.9, 0.85, 0.95, 0.7]; m = 0.84; s = stdev = 0.0961769;
    // t.ppf(0.975, 4) * s / sqrt(5) = 2.776445 * 0.0430116 = 0.119420.
    #[test]
    fn mean_and_95_percent_interval_over_seeds() {
        let ci = mean_ci95(&[0.8, 0.9, 0.85, 0.95, 0.7]).unwrap();
        assert_eq!(ci.n, 5);
        assert!((ci.mean - 0.84).abs() < 1e-12);
        assert!((ci.half_width - 0.119_42).abs() < 2e-4, "{}", ci.half_width);
        assert!((ci.lo() - 0.7206).abs() < 3e-4 && (ci.hi() - 0.9594).abs() < 3e-4);
        let one = mean_ci95(&[0.5, f64::NAN]).unwrap();
        assert_eq!((one.mean, one.n), (0.5, 1));
        assert!(one.half_width.is_nan());
        assert_eq!(mean_ci95(&[]), None);
        assert_eq!(t_975(4), 2.776);
        assert_eq!(t_975(100), 1.960);
    }
}
