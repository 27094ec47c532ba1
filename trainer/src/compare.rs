//! `trainer compare`: several methods on the same task and budget, each over the same seeds,
//! summarised per method as the mean and 95 % interval of every figure over the seeds
//! (`compare.md`, `compare.json`), per-step curves with their bands (`curves.csv`,
//! `curves.png`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::algo::Method;
use crate::plot::{Panel, PlotError, Series};
use crate::stats::{MeanCi, mean_ci95};
use crate::train::RunSummary;

/// One finished run of the comparison.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The method.
    pub method: Method,
    /// The run's seed.
    pub seed: u64,
    /// What the run reported.
    pub summary: RunSummary,
    /// Wall-clock seconds, warm-up and evaluations included.
    pub seconds: f64,
}

/// The figures of one run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RunFigures {
    /// Evaluation avg@k before the first RL step (NaN without `eval.at_start`).
    pub eval_start: f64,
    /// Evaluation avg@k after the last step.
    pub eval_end: f64,
    /// Evaluation pass@k after the last step.
    pub pass_end: f64,
    /// Mean training reward over the last 10 steps.
    pub reward_last10: f64,
    /// Token entropy at the first step, nats.
    pub entropy_first: f64,
    /// Token entropy at the last step, nats.
    pub entropy_last: f64,
    /// First step (1-based) whose entropy is at most half the first step's; NaN if none.
    pub entropy_half_life: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The first step whose entropy is at most half of the first step's (0-based).
pub fn half_life(entropies: &[f64]) -> Option<usize> {
    let first = *entropies.first()?;
    entropies.iter().position(|&h| h <= first / 2.0)
}

/// The figures of one run.
pub fn figures(run: &SeedRun) -> RunFigures {
    let s = &run.summary;
    let h: Vec<f64> = s.history.iter().map(|m| m.entropy).collect();
    let tail = &s.history[s.history.len().saturating_sub(10)..];
    let at_start = s.evals.first().filter(|(n, _)| *n == 0).map(|(_, e)| e);
    let end = s
        .evals
        .last()
        .filter(|(n, _)| *n > 0 || s.history.is_empty());
    RunFigures {
        eval_start: at_start.map_or(f64::NAN, |e| e.avg_at_k),
        eval_end: end.map_or(f64::NAN, |(_, e)| e.avg_at_k),
        pass_end: end.map_or(f64::NAN, |(_, e)| e.pass_at_k),
        reward_last10: tail.iter().map(|m| m.reward_mean).sum::<f64>() / tail.len().max(1) as f64,
        entropy_first: h.first().copied().unwrap_or(f64::NAN),
        entropy_last: h.last().copied().unwrap_or(f64::NAN),
        entropy_half_life: half_life(&h).map_or(f64::NAN, |i| (i + 1) as f64),
        seconds: run.seconds,
    }
}

/// How a column reads its figure from a run.
type FigureOf = fn(&RunFigures) -> f64;

/// The columns of the summary table: name, and how to read the figure from a run.
const COLUMNS: [(&str, FigureOf); 8] = [
    ("held-out acc. before RL", |f| f.eval_start),
    ("held-out acc. after", |f| f.eval_end),
    ("pass@k after", |f| f.pass_end),
    ("reward, last 10 steps", |f| f.reward_last10),
    ("entropy, first step", |f| f.entropy_first),
    ("entropy, last step", |f| f.entropy_last),
    ("entropy half-life (steps)", |f| f.entropy_half_life),
    ("seconds", |f| f.seconds),
];

/// One method's row: every figure's mean and 95 % interval over its seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MethodRow {
    /// Method.
    pub method: &'static str,
    /// Seeds run.
    pub seeds: Vec<u64>,
    /// Column name → mean and interval (absent where no seed had a finite value).
    pub figures: BTreeMap<&'static str, MeanCi>,
    /// Each seed's figures, in seed order.
    pub per_seed: Vec<RunFigures>,
}

/// Groups runs by method (in first-seen order) and summarises each.
pub fn method_rows(runs: &[SeedRun]) -> Vec<MethodRow> {
    let mut order: Vec<Method> = Vec::new();
    for r in runs {
        if !order.contains(&r.method) {
            order.push(r.method);
        }
    }
    order
        .into_iter()
        .map(|m| {
            let mine: Vec<&SeedRun> = runs.iter().filter(|r| r.method == m).collect();
            let per_seed: Vec<RunFigures> = mine.iter().map(|r| figures(r)).collect();
            let figures = COLUMNS
                .iter()
                .filter_map(|(name, get)| {
                    let xs: Vec<f64> = per_seed.iter().map(get).collect();
                    mean_ci95(&xs).map(|ci| (*name, ci))
                })
                .collect();
            MethodRow {
                method: m.as_str(),
                seeds: mine.iter().map(|r| r.seed).collect(),
                figures,
                per_seed,
            }
        })
        .collect()
}

/// `mean ± half-width`, with `(k/n)` where only k of n seeds had a value.
fn cell(ci: Option<&MeanCi>, seeds: usize, decimals: usize) -> String {
    let Some(ci) = ci else {
        return "-".into();
    };
    let mut s = if ci.half_width.is_finite() {
        format!("{:.decimals$} ± {:.decimals$}", ci.mean, ci.half_width)
    } else {
        format!("{:.decimals$}", ci.mean)
    };
    if ci.n < seeds {
        let _ = write!(s, " ({}/{seeds})", ci.n);
    }
    s
}

/// The Markdown table of [`method_rows`].
pub fn markdown(rows: &[MethodRow], steps: usize, k: usize) -> String {
    let seeds = rows.first().map_or(0, |r| r.seeds.len());
    let seed_list = rows.first().map_or(String::new(), |r| {
        r.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    });
    let mut md = format!(
        "## Method comparison: {steps} RL steps, seeds {seed_list}\n\nMean ± half-width of the 95 % interval over the {seeds} seeds (Student's t); held-out accuracy is avg@{k}; `(k/n)`: only k of n seeds reached the value.\n\n| method |"
    );
    for (name, _) in COLUMNS {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(COLUMNS.len()));
    md.push('\n');
    for r in rows {
        let _ = write!(md, "| {} |", r.method);
        for (name, _) in COLUMNS {
            let decimals = match name {
                "entropy half-life (steps)" | "seconds" => 0,
                n if n.starts_with("entropy") => 4,
                _ => 3,
            };
            let _ = write!(md, " {} |", cell(r.figures.get(name), seeds, decimals));
        }
        md.push('\n');
    }
    md
}

/// A per-step curve of one method: mean and 95 % interval over the seeds at each step.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Method.
    pub method: &'static str,
    /// `(step, interval)`.
    pub points: Vec<(f64, MeanCi)>,
}

/// Mean curves with bands of one quantity, per method. `of` gives a run's `(step, value)`
/// points; a step's interval covers the seeds that have it.
pub fn bands(runs: &[SeedRun], of: impl Fn(&RunSummary) -> Vec<(f64, f64)>) -> Vec<Band> {
    let mut by_method: Vec<(Method, BTreeMap<u64, Vec<f64>>)> = Vec::new();
    for r in runs {
        let i = match by_method.iter().position(|(m, _)| *m == r.method) {
            Some(i) => i,
            None => {
                by_method.push((r.method, BTreeMap::new()));
                by_method.len() - 1
            }
        };
        for (x, y) in of(&r.summary) {
            // Steps are whole numbers: key them exactly.
            by_method[i].1.entry(x as u64).or_default().push(y);
        }
    }
    by_method
        .into_iter()
        .map(|(m, steps)| Band {
            method: m.as_str(),
            points: steps
                .into_iter()
                .filter_map(|(x, ys)| mean_ci95(&ys).map(|ci| (x as f64, ci)))
                .collect(),
        })
        .collect()
}

/// The three curves the comparison draws: name, and a run's points.
type CurveOf = fn(&RunSummary) -> Vec<(f64, f64)>;
const CURVES: [(&str, CurveOf); 3] = [
    ("reward (mean)", |s| {
        s.history
            .iter()
            .map(|m| (m.step as f64, m.reward_mean))
            .collect()
    }),
    ("held-out accuracy (avg@k)", |s| {
        s.evals
            .iter()
            .map(|(n, e)| (*n as f64, e.avg_at_k))
            .collect()
    }),
    ("entropy (nats/token)", |s| {
        s.history
            .iter()
            .map(|m| (m.step as f64, m.entropy))
            .collect()
    }),
];

/// The curves as panels: each method's mean line with its 95 % band.
pub fn panels(runs: &[SeedRun]) -> Vec<Panel> {
    CURVES
        .iter()
        .map(|(title, of)| Panel {
            title: (*title).to_string(),
            x_label: "step".into(),
            y_label: (*title).to_string(),
            series: bands(runs, of)
                .into_iter()
                .map(|b| Series {
                    label: b.method.to_string(),
                    points: b.points.iter().map(|(x, ci)| (*x, ci.mean)).collect(),
                    band: b
                        .points
                        .iter()
                        .map(|(x, ci)| (*x, ci.lo(), ci.hi()))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Comparison output failures.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Drawing the curves failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// Writes `compare.md`, `compare.json`, `curves.csv` and `curves.png` into `out`; returns the
/// Markdown.
pub fn write_report(out: &Path, runs: &[SeedRun], steps: usize) -> Result<String, CompareError> {
    std::fs::create_dir_all(out)?;
    let rows = method_rows(runs);
    let k = runs
        .iter()
        .find_map(|r| r.summary.evals.last().map(|(_, e)| e.k))
        .unwrap_or(0);
    let md = markdown(&rows, steps, k);
    std::fs::write(out.join("compare.md"), &md)?;
    std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&rows).map_err(std::io::Error::other)?,
    )?;
    let mut csv = String::from("curve,method,step,mean,lo,hi,seeds\n");
    for (title, of) in CURVES {
        for b in bands(runs, of) {
            for (x, ci) in &b.points {
                let _ = writeln!(
                    csv,
                    "{title},{},{x},{},{},{},{}",
                    b.method,
                    ci.mean,
                    ci.lo(),
                    ci.hi(),
                    ci.n
                );
            }
        }
    }
    std::fs::write(out.join("curves.csv"), csv)?;
    crate::plot::draw_curves(&panels(runs), (1500, 480))?.save_png(&out.join("curves.png"))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalResult;
    use crate::train::StepMetrics;

    #[test]
    fn half_life_is_the_first_step_at_half_entropy() {
        assert_eq!(half_life(&[0.4, 0.3, 0.21, 0.2, 0.1]), Some(3));
        assert_eq!(half_life(&[0.4, 0.39]), None);
        assert_eq!(half_life(&[]), None);
    }

    fn eval(avg: f64) -> EvalResult {
        EvalResult {
            problems: 4,
            k: 2,
            avg_at_k: avg,
            pass_at_k: avg,
            pass_at_1: avg,
            by_source: BTreeMap::new(),
        }
    }

    fn step(step: usize, reward: f64, entropy: f64) -> StepMetrics {
        StepMetrics {
            step,
            reward_mean: reward,
            accuracy: reward,
            entropy,
            loss: 0.0,
            grad_norm: 0.0,
            clip_frac_low: 0.0,
            clip_frac_high: 0.0,
            response_len_mean: 10.0,
            weights: Default::default(),
            predicted_entropy_change: 0.0,
            entropy_change: Default::default(),
            kl: None,
            lr: 1e-3,
            optimizer_steps: 1,
            groups_dropped: 0,
            skipped: false,
            timings: Default::default(),
        }
    }

    /// A 3-step run whose rewards are `base` + 0.1 per step and whose entropy halves at step 2.
    fn run(method: Method, seed: u64, base: f64) -> SeedRun {
        SeedRun {
            method,
            seed,
            summary: RunSummary {
                evals: vec![(0, eval(base)), (3, eval(base + 0.5))],
                run_id: format!("{}-{seed}", method.as_str()),
                history: (0..3)
                    .map(|i| step(i, base + 0.1 * i as f64, [0.4, 0.3, 0.2][i]))
                    .collect(),
                rollouts_written: 0,
                database_url: String::new(),
                eval_held_out: true,
            },
            seconds: 10.0 + seed as f64,
        }
    }

    #[test]
    fn every_figure_gets_mean_and_interval_over_seeds() {
        let runs = [
            run(Method::Grpo, 1, 0.1),
            run(Method::Grpo, 2, 0.3),
            run(Method::Steer, 1, 0.2),
            run(Method::Steer, 2, 0.2),
        ];
        let rows = method_rows(&runs);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].method, rows[0].seeds.clone()),
            ("grpo", vec![1, 2])
        );
        let after = rows[0].figures["held-out acc. before RL"];
        // Seeds 0.1 and 0.3: mean 0.2, s = 0.141421, t(1) = 12.706: ±12.706·0.1 = 1.2706.
        assert!((after.mean - 0.2).abs() < 1e-12);
        assert!((after.half_width - 1.2706).abs() < 1e-4, "{after:?}");
        // Identical seeds: a zero-width interval.
        assert_eq!(rows[1].figures["held-out acc. after"].half_width, 0.0);
        assert_eq!(rows[0].figures["entropy half-life (steps)"].mean, 3.0);
        let md = markdown(&rows, 3, 2);
        assert!(
            md.contains("| grpo | 0.200 ± 1.271 | 0.700 ± 1.271 |"),
            "{md}"
        );
        assert!(md.contains("seeds 1, 2"), "{md}");

        let b = bands(&runs, CURVES[1].1);
        assert_eq!(b[1].method, "steer");
        assert_eq!(
            b[1].points
                .iter()
                .map(|(x, ci)| (*x, ci.mean))
                .collect::<Vec<_>>(),
            [(0.0, 0.2), (3.0, 0.7)]
        );
        let p = panels(&runs);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].series[0].band.len(), 3);
    }

    #[test]
    fn report_files_are_written() {
        let out = std::env::temp_dir().join(format!("compare-report-{}", std::process::id()));
        let runs = [run(Method::Grpo, 1, 0.1), run(Method::Grpo, 2, 0.3)];
        let md = write_report(&out, &runs, 3).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("compare.md")).unwrap(), md);
        let csv = std::fs::read_to_string(out.join("curves.csv")).unwrap();
        assert!(
            csv.starts_with("curve,method,step,mean,lo,hi,seeds\n"),
            "{csv}"
        );
        assert!(
            csv.contains("held-out accuracy (avg@k),grpo,3,0.7"),
            "{csv}"
        );
        let png = std::fs::read(out.join("curves.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
        assert_eq!(json[0]["per_seed"].as_array().unwrap().len(), 2);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
