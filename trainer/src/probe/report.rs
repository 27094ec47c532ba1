//! The probe's outputs: agreement tables (all positions, A ≠ 0, per quadrant, source side),
//! the cost of each coupled estimator, `points.csv` and the scatter panels.

use std::fmt::Write as _;

use super::measure::{Measurement, ProbePoint};
use crate::stats::{mse, pearson, spearman};

/// Agreement of one estimator with the realised change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Estimator name.
    pub estimator: String,
    /// Positions compared.
    pub n: usize,
    /// Pearson correlation.
    pub pearson: Option<f64>,
    /// Spearman correlation.
    pub spearman: Option<f64>,
    /// Mean squared error (only for estimators on the realised scale).
    pub mse: Option<f64>,
}

/// An estimate of each position's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Estimate {
    FirstOrder,
    Coupled(usize),
    Theorem1,
    Released,
    Covariance,
}

impl Estimate {
    /// Every estimate of `m`, in report order.
    fn all(m: &Measurement) -> Vec<Estimate> {
        let mut v = vec![Estimate::FirstOrder];
        v.extend((0..m.coupled.len()).map(Estimate::Coupled));
        v.extend([Estimate::Theorem1, Estimate::Released, Estimate::Covariance]);
        v
    }

    fn name(self, m: &Measurement) -> String {
        match self {
            Estimate::FirstOrder => "first_order (autograd)".into(),
            Estimate::Coupled(i) => m.coupled[i].name.clone(),
            Estimate::Theorem1 => "steer_theorem1".into(),
            Estimate::Released => "steer_released".into(),
            Estimate::Covariance => "covariance (Cui et al.)".into(),
        }
    }

    /// Target side: the estimate of this position's change.
    fn target(self, p: &ProbePoint) -> f64 {
        match self {
            Estimate::FirstOrder => p.first_order,
            Estimate::Coupled(i) => p.coupled[i],
            Estimate::Theorem1 => p.steer_theorem1,
            Estimate::Released => p.steer_released,
            Estimate::Covariance => p.covariance,
        }
    }

    /// Source side: the estimate of this token's contribution (STEER's per-token values are
    /// what its weights read, so they are compared too; first order has none).
    fn source(self, p: &ProbePoint) -> f64 {
        match self {
            Estimate::FirstOrder => f64::NAN,
            Estimate::Coupled(i) => p.source[i],
            Estimate::Theorem1 => p.steer_theorem1,
            Estimate::Released => p.steer_released,
            Estimate::Covariance => p.covariance,
        }
    }

    /// Whether the estimate is on the realised change's scale (so that an MSE means something).
    fn scaled(self) -> bool {
        self != Estimate::Covariance
    }
}

fn agreement(name: String, pairs: impl Iterator<Item = (f64, f64)>, scaled: bool) -> Agreement {
    let (e, r): (Vec<f64>, Vec<f64>) = pairs
        .filter(|(e, r)| e.is_finite() && r.is_finite())
        .unzip();
    Agreement {
        estimator: name,
        n: e.len(),
        pearson: pearson(&e, &r),
        spearman: spearman(&e, &r),
        mse: if scaled { mse(&e, &r) } else { None },
    }
}

/// Agreement of every estimate with the realised change over `points`.
pub fn agreements(m: &Measurement, points: &[&ProbePoint]) -> Vec<Agreement> {
    Estimate::all(m)
        .into_iter()
        .map(|e| {
            agreement(
                e.name(m),
                points.iter().map(|p| (e.target(p), p.realised)),
                e.scaled(),
            )
        })
        .collect()
}

/// Source side: agreement of every per-token estimate with the exact first-order
/// contribution of the token to the summed entropy change, over the tokens with A ≠ 0 (the
/// others contribute nothing, exactly, under every estimate).
pub fn source_agreements(m: &Measurement) -> Vec<Agreement> {
    Estimate::all(m)
        .into_iter()
        .filter(|&e| e != Estimate::FirstOrder)
        .map(|e| {
            let pairs = m
                .points
                .iter()
                .filter(|p| p.advantage != 0.0)
                .map(|p| (e.source(p), p.source_exact));
            agreement(e.name(m), pairs, false)
        })
        .collect()
}

fn fmt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".to_string(), |x| format!("{x:.prec$}"))
}

fn table(rows: &[Agreement], with_mse: bool) -> String {
    let mut s = if with_mse {
        String::from("| estimator | n | Pearson | Spearman | MSE |\n|---|---|---|---|---|\n")
    } else {
        String::from("| estimator | n | Pearson | Spearman |\n|---|---|---|---|\n")
    };
    for a in rows {
        let _ = write!(
            s,
            "| {} | {} | {} | {} |",
            a.estimator,
            a.n,
            fmt(a.pearson, 3),
            fmt(a.spearman, 3)
        );
        if with_mse {
            let _ = write!(s, " {} |", a.mse.map_or("–".into(), |x| format!("{x:.3e}")));
        }
        s.push('\n');
    }
    s
}

/// The quadrants, in report order.
pub const QUADRANTS: [&str; 4] = [
    "I (A>0, confident)",
    "II (A>0, rare)",
    "III (A<0, confident)",
    "IV (A<0, rare)",
];

/// A Markdown report: costs, the overall, A ≠ 0 and per-quadrant tables, the source side.
pub fn report_markdown(m: &Measurement) -> String {
    let all: Vec<&ProbePoint> = m.points.iter().collect();
    let s = &m.step;
    let mut out = format!(
        "## Entropy-change probe, one SGD step, η = {}\n\n{} response positions. A training step in \
         this run: generate {:.2} s + grade {:.2} s + score under π_old (one forward pass) {:.2} s + \
         forward and backward {:.2} s = {:.2} s.\n\n### Cost of the coupled estimators\n\n\
         | estimator | target side (s) | of a step | of the update | source side (s) | of a step |\n\
         |---|---|---|---|---|---|\n",
        m.lr,
        m.points.len(),
        s.generate,
        s.grade,
        s.forward,
        s.gradient,
        s.total()
    );
    let pct = |x: f64, of: f64| format!("{:.1} %", 100.0 * x / of.max(1e-12));
    for c in &m.coupled {
        let _ = writeln!(
            out,
            "| {} | {:.3} | {} | {} | {} | {} |",
            c.name,
            c.seconds,
            pct(c.seconds, s.total()),
            pct(c.seconds, s.update()),
            c.source_seconds.map_or("–".into(), |x| format!("{x:.3}")),
            c.source_seconds.map_or("–".into(), |x| pct(x, s.total())),
        );
    }
    let _ = write!(
        out,
        "\n### All positions\n\n{}",
        table(&agreements(m, &all), true)
    );
    let moved: Vec<&ProbePoint> = m.points.iter().filter(|p| p.advantage != 0.0).collect();
    let _ = write!(
        out,
        "\n### Positions with A ≠ 0\n\nThe token-local estimates are 0 where A = 0 (groups whose \
         rewards are all equal), though shared parameters move those entropies too.\n\n{}",
        table(&agreements(m, &moved), true)
    );
    for q in QUADRANTS {
        let pts: Vec<&ProbePoint> = m
            .points
            .iter()
            .filter(|p| p.quadrant() == Some(q))
            .collect();
        let _ = write!(
            out,
            "\n### Quadrant {q}\n\n{}",
            table(&agreements(m, &pts), true)
        );
    }
    if m.points.iter().any(|p| p.source_exact.is_finite()) {
        let _ = write!(
            out,
            "\n### Source side: each token's contribution to the summed entropy change\n\n\
             What `steer-coupled` weights by: the change of Σ_s H_s that token t's own gradient \
             causes, against the exact first-order value ⟨∇θ Σ_s H_s, Δθ_t⟩ (autograd and a \
             central difference over the whole network), over the tokens with A ≠ 0. STEER's \
             per-token values are what its weights read.\n\n{}",
            table(&source_agreements(m), false)
        );
    }
    out
}

/// `points.csv`: one line per position, the coupled estimates and their source sides last.
pub fn points_csv(m: &Measurement) -> String {
    let mut csv = String::from(
        "advantage,logp,entropy,realised,steer_released,steer_theorem1,covariance,first_order,quadrant,source_exact",
    );
    for c in &m.coupled {
        let _ = write!(csv, ",{}", c.name);
    }
    for c in &m.coupled {
        let _ = write!(csv, ",{}_source", c.name);
    }
    csv.push('\n');
    for p in &m.points {
        let _ = write!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            p.advantage,
            p.logp,
            p.entropy,
            p.realised,
            p.steer_released,
            p.steer_theorem1,
            p.covariance,
            p.first_order,
            p.quadrant().unwrap_or("A=0"),
            p.source_exact
        );
        for v in p.coupled.iter().chain(&p.source) {
            let _ = write!(csv, ",{v}");
        }
        csv.push('\n');
    }
    csv
}

/// One scatter panel per estimate: the estimate (x) against the realised entropy change (y).
pub fn scatter_panels(m: &Measurement) -> Vec<crate::plot::Panel> {
    let mut order = vec![Estimate::Released, Estimate::Theorem1, Estimate::Covariance];
    order.extend((0..m.coupled.len()).map(Estimate::Coupled));
    order.push(Estimate::FirstOrder);
    order
        .into_iter()
        .map(|e| {
            let title = match e {
                Estimate::Released => "STEER Omega (released form)".to_string(),
                Estimate::Theorem1 => "STEER Theorem 1".to_string(),
                Estimate::Covariance => "covariance (Cui et al.)".to_string(),
                Estimate::FirstOrder => "exact first order".to_string(),
                Estimate::Coupled(i) => m.coupled[i].name.clone(),
            };
            crate::plot::Panel {
                title: title.clone(),
                x_label: "estimate".into(),
                y_label: "realised entropy change".into(),
                series: vec![crate::plot::Series {
                    label: title,
                    points: m
                        .points
                        .iter()
                        .map(|p| (e.target(p), p.realised))
                        .filter(|(x, _)| x.is_finite())
                        .collect(),
                    band: vec![],
                }],
            }
        })
        .collect()
}
