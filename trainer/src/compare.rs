//! `trainer compare`: the same task, seed and budget for several methods, one after the other,
//! summarised as a table (`compare.md`) and per-step curves (`curves.csv`).

use std::fmt::Write as _;
use std::path::Path;

use crate::algo::Method;
use crate::train::RunSummary;

/// One method's line of the comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CompareRow {
    /// Method.
    pub method: &'static str,
    /// Mean training reward over the last 10 steps.
    pub reward_last10: f64,
    /// Final evaluation avg@k.
    pub eval_avg_at_k: f64,
    /// Final evaluation pass@k.
    pub eval_pass_at_k: f64,
    /// k of the evaluation.
    pub k: usize,
    /// Token entropy at the first step.
    pub entropy_first: f64,
    /// Token entropy at the last step.
    pub entropy_last: f64,
    /// First step at which the entropy is at most half its first value.
    pub entropy_half_life: Option<usize>,
}

/// The first step whose entropy is at most half of the first step's.
pub fn half_life(entropies: &[f64]) -> Option<usize> {
    let first = *entropies.first()?;
    entropies.iter().position(|&h| h <= first / 2.0)
}

/// Summarises one run.
pub fn row(method: Method, s: &RunSummary) -> CompareRow {
    let h: Vec<f64> = s.history.iter().map(|m| m.entropy).collect();
    let tail = &s.history[s.history.len().saturating_sub(10)..];
    let last_eval = s.evals.last().map(|(_, e)| e);
    CompareRow {
        method: method.as_str(),
        reward_last10: tail.iter().map(|m| m.reward_mean).sum::<f64>() / tail.len().max(1) as f64,
        eval_avg_at_k: last_eval.map_or(f64::NAN, |e| e.avg_at_k),
        eval_pass_at_k: last_eval.map_or(f64::NAN, |e| e.pass_at_k),
        k: last_eval.map_or(0, |e| e.k),
        entropy_first: h.first().copied().unwrap_or(f64::NAN),
        entropy_last: h.last().copied().unwrap_or(f64::NAN),
        entropy_half_life: half_life(&h),
    }
}

/// Writes `compare.md` and `curves.csv` into `out`.
pub fn write_report(
    out: &Path,
    runs: &[(Method, RunSummary)],
    steps: usize,
    seed: u64,
) -> std::io::Result<String> {
    std::fs::create_dir_all(out)?;
    let mut md = format!(
        "## Method comparison: {steps} steps each, seed {seed}\n\n| method | reward (last 10 steps) | eval avg@k | eval pass@k | entropy first → last | entropy half-life (steps) |\n|---|---|---|---|---|---|\n"
    );
    let mut csv =
        String::from("method,step,reward_mean,accuracy,entropy,response_len_mean,steer_w_mean\n");
    for (m, s) in runs {
        let r = row(*m, s);
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} (k={}) | {:.3} | {:.4} → {:.4} | {} |",
            r.method,
            r.reward_last10,
            r.eval_avg_at_k,
            r.k,
            r.eval_pass_at_k,
            r.entropy_first,
            r.entropy_last,
            r.entropy_half_life
                .map_or("not reached".to_string(), |h| h.to_string())
        );
        for x in &s.history {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                m.as_str(),
                x.step,
                x.reward_mean,
                x.accuracy,
                x.entropy,
                x.response_len_mean,
                x.weights.mean
            );
        }
    }
    std::fs::write(out.join("compare.md"), &md)?;
    std::fs::write(out.join("curves.csv"), csv)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_life_is_the_first_step_at_half_entropy() {
        assert_eq!(half_life(&[0.4, 0.3, 0.21, 0.2, 0.1]), Some(3));
        assert_eq!(half_life(&[0.4, 0.39]), None);
        assert_eq!(half_life(&[]), None);
    }
}
