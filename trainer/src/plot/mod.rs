//! PNG figures: training curves of one or more runs (`trainer plot`, `trainer compare`) and the
//! entropy probe's scatter plots. Drawn with plotters on an in-memory [`Image`] whose
//! text comes from glyphs embedded in the binary, so no system font is needed.

mod canvas;
mod charts;
mod glyphs;

use std::path::{Path, PathBuf};

pub use canvas::{Canvas, Image};
pub use charts::{Panel, Series, draw_curves, draw_scatter};

/// Plotting failures.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Png(#[from] png::EncodingError),
    /// A `metrics.jsonl` line is not a step record.
    #[error("{path}:{line}: {reason}")]
    BadMetrics {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing to draw.
    #[error("no data to plot: {0}")]
    NoData(String),
    /// plotters refused a drawing operation.
    #[error("drawing: {0}")]
    Draw(String),
}

/// One step of a run, as `metrics.jsonl` records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPoint {
    /// Step (0-based).
    pub step: f64,
    /// Mean reward.
    pub reward_mean: f64,
    /// Token-mean entropy, nats.
    pub entropy: f64,
    /// Mean response length, tokens.
    pub response_len_mean: f64,
}

/// A run's steps from `DIR/metrics.jsonl`, labelled with the directory's name.
pub fn read_run(dir: &Path) -> Result<(String, Vec<StepPoint>), PlotError> {
    let path = dir.join(crate::train::METRICS_FILE);
    let text = std::fs::read_to_string(&path)?;
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| PlotError::BadMetrics {
            path: path.clone(),
            line: i + 1,
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let field = |name: &str| {
            v.get(name)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| bad(format!("no number `{name}`")))
        };
        points.push(StepPoint {
            step: field("step")?,
            reward_mean: field("reward_mean")?,
            entropy: field("entropy")?,
            response_len_mean: field("response_len_mean")?,
        });
    }
    if points.is_empty() {
        return Err(PlotError::NoData(format!(
            "{} has no steps",
            path.display()
        )));
    }
    let label = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((label, points))
}

/// Draws reward, entropy and response length against the step for every run directory into
/// one PNG (three panels side by side, one colour per run).
pub fn plot_runs(dirs: &[PathBuf], out: &Path) -> Result<(), PlotError> {
    let runs = dirs
        .iter()
        .map(|d| read_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    let panel = |title: &str, y: fn(&StepPoint) -> f64| Panel {
        title: title.to_string(),
        x_label: "step".into(),
        y_label: title.to_string(),
        series: runs
            .iter()
            .map(|(label, pts)| Series {
                label: label.clone(),
                points: pts.iter().map(|p| (p.step, y(p))).collect(),
                band: vec![],
            })
            .collect(),
    };
    let panels = [
        panel("reward (mean)", |p| p.reward_mean),
        panel("entropy (nats/token)", |p| p.entropy),
        panel("response length (tokens)", |p| p.response_len_mean),
    ];
    draw_curves(&panels, (1500, 480))?.save_png(out)
}

/// A run's evaluations from `DIR/eval.jsonl`: (steps taken, avg@k); empty where there is no
/// file.
pub fn read_evals(dir: &Path) -> Result<Vec<(f64, f64)>, PlotError> {
    let path = dir.join(crate::train::EVAL_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| PlotError::BadMetrics {
            path: path.clone(),
            line: i + 1,
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let field = |name: &str| {
            v.get(name)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| bad(format!("no number `{name}`")))
        };
        out.push((field("step")?, field("avg_at_k")?));
    }
    Ok(out)
}

/// One run's curves: training reward, held-out accuracy (its evaluations, `eval.jsonl`) and
/// token entropy against the step, three panels side by side.
pub fn plot_run(dir: &Path, out: &Path) -> Result<(), PlotError> {
    let (label, steps) = read_run(dir)?;
    let evals = read_evals(dir)?;
    let one = |title: &str, points: Vec<(f64, f64)>| Panel {
        title: title.to_string(),
        x_label: "step".into(),
        y_label: title.to_string(),
        series: vec![Series {
            label: label.clone(),
            points,
            band: vec![],
        }],
    };
    // A step's metrics describe the policy before its update; an evaluation after `n` steps
    // describes it before step `n`: both are drawn at the step whose policy they measure.
    let panels = [
        one(
            "reward (mean)",
            steps.iter().map(|p| (p.step, p.reward_mean)).collect(),
        ),
        one("held-out accuracy (avg@k)", evals),
        one(
            "entropy (nats/token)",
            steps.iter().map(|p| (p.step, p.entropy)).collect(),
        ),
    ];
    draw_curves(&panels, (1500, 480))?.save_png(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_run(dir: &Path, entropy0: f64) {
        std::fs::create_dir_all(dir).unwrap();
        let lines: String = (0..20)
            .map(|s| {
                format!(
                    "{{\"step\":{s},\"reward_mean\":{},\"entropy\":{},\"response_len_mean\":{},\"timings\":{{}}}}\n",
                    0.1 + 0.03 * f64::from(s),
                    entropy0 * 0.9f64.powi(s),
                    10.0 + f64::from(s % 3)
                )
            })
            .collect();
        std::fs::write(dir.join(crate::train::METRICS_FILE), lines).unwrap();
    }

    #[test]
    fn plots_several_runs_into_a_png_with_ink_in_every_panel() {
        let base = std::env::temp_dir().join(format!("plot-runs-{}", std::process::id()));
        write_run(&base.join("grpo"), 0.5);
        write_run(&base.join("steer"), 0.4);
        let out = base.join("curves.png");
        plot_runs(&[base.join("grpo"), base.join("steer")], &out).unwrap();
        assert_eq!(&std::fs::read(&out).unwrap()[1..4], b"PNG");
        // Each third of the image has coloured (non-grey) pixels: the series lines.
        for (panel, coloured) in ink_per_panel(&out).into_iter().enumerate() {
            assert!(coloured > 200, "panel {panel}: {coloured} coloured pixels");
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Coloured (non-grey) pixels in each third of a 1500 × 480 PNG.
    fn ink_per_panel(png: &Path) -> [usize; 3] {
        let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(png).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (1500, 480));
        [0u32, 1, 2].map(|panel| {
            (0..480u32)
                .flat_map(|y| (panel * 500..(panel + 1) * 500).map(move |x| (x, y)))
                .filter(|&(x, y)| {
                    let i = ((y * 1500 + x) * 3) as usize;
                    let (r, g, b) = (buf[i], buf[i + 1], buf[i + 2]);
                    r.max(g).max(b) - r.min(g).min(b) > 60
                })
                .count()
        })
    }

    #[test]
    fn one_run_draws_reward_held_out_accuracy_and_entropy() {
        let dir = std::env::temp_dir().join(format!("plot-run-{}", std::process::id()));
        write_run(&dir, 0.5);
        std::fs::write(
            dir.join(crate::train::EVAL_FILE),
            "{\"step\":0,\"avg_at_k\":0.2}\n{\"step\":10,\"avg_at_k\":0.6}\n{\"step\":20,\"avg_at_k\":0.9}\n",
        )
        .unwrap();
        assert_eq!(
            read_evals(&dir).unwrap(),
            [(0.0, 0.2), (10.0, 0.6), (20.0, 0.9)]
        );
        let out = dir.join("curves.png");
        plot_run(&dir, &out).unwrap();
        for (panel, ink) in ink_per_panel(&out).into_iter().enumerate() {
            assert!(ink > 200, "panel {panel}: {ink} coloured pixels");
        }
        // Without evaluations the accuracy panel has nothing to draw: a clear error.
        std::fs::remove_file(dir.join(crate::train::EVAL_FILE)).unwrap();
        assert!(matches!(plot_run(&dir, &out), Err(PlotError::NoData(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_metrics_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("plot-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(crate::train::METRICS_FILE),
            "{\"step\":0,\"reward_mean\":0.1,\"entropy\":0.2,\"response_len_mean\":3}\n{\"step\":1}\n",
        )
        .unwrap();
        let e = read_run(&dir).unwrap_err().to_string();
        assert!(e.ends_with(":2: no number `reward_mean`"), "{e}");
        std::fs::write(dir.join(crate::train::METRICS_FILE), "").unwrap();
        assert!(matches!(read_run(&dir), Err(PlotError::NoData(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
