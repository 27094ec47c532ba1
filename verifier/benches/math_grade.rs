//! Math grading speed, side by side with Math-Verify 0.8.0 in one run, printed as a table.
//!
//! Times every case of `../shared/conformance/{math_verify_cases,latex2sympy_value_cases}.jsonl`
//! (median of 5 runs per case) and a set of adversarial inputs, then runs Math-Verify on the
//! same files through `benches/math_verify_anchor.py` with the Python at `MATH_VERIFY_PYTHON`
//! (default `~/.cache/mv-venv/bin/python`, made by `scripts/anchor-venv.sh`).
//!
//! `cargo bench -p verifier --bench math_grade`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use protocol::{MathItem, MathVerdict};
use serde_json::Value;

fn items(path: &Path) -> Vec<MathItem> {
    std::fs::read_to_string(path)
        .expect("read cases")
        .lines()
        .map(|l| {
            let c: Value = serde_json::from_str(l).expect("json");
            MathItem {
                id: None,
                response: c["pred"].as_str().unwrap_or_default().to_string(),
                ground_truth: c["gold"]
                    .as_str()
                    .map_or_else(|| c["gold"].to_string(), String::from),
                options: Some(verifier::math::conformance::options_from_case_config(
                    &c["config"],
                )),
            }
        })
        .collect()
}

/// Per-item microseconds (median of 5 runs) and how many items hit their budget.
fn time_ours(items: &[MathItem]) -> (Vec<f64>, usize) {
    let mut over = 0;
    let times = items
        .iter()
        .map(|it| {
            let mut runs: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let r = verifier::math::grade(it);
                    if r.verdict == MathVerdict::LimitExceeded {
                        over += 1;
                    }
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            runs.sort_by(f64::total_cmp);
            runs[2]
        })
        .collect();
    (times, over / 5)
}

fn time_anchor(python: &Path, file: &Path) -> Option<Vec<f64>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/math_verify_anchor.py");
    let out = Command::new(python).arg(script).arg(file).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "Math-Verify run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["us"].as_f64())
            .collect(),
    )
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    (q(0.5), q(0.99), s[s.len() - 1])
}

fn row(name: &str, cases: usize, v: &[f64], over: Option<usize>) -> f64 {
    let (med, p99, max) = stats(v);
    let over = over.map_or("-".to_string(), |o| o.to_string());
    println!("| {name} | {cases} | {med:.1} | {p99:.1} | {max:.1} | {over} |");
    med
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    if !dir.is_dir() {
        println!("SKIP: ../shared/conformance not found beside the repository");
        return;
    }
    let python = std::env::var_os("MATH_VERIFY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/mv-venv/bin/python")
        });
    println!(
        "per-case grading time (ours: median of 5 runs per case; Math-Verify: one run per case)"
    );
    println!();
    println!("| grader / file | cases | median µs | p99 µs | max µs | limit_exceeded |");
    println!("|---|---|---|---|---|---|");
    for file in ["math_verify_cases.jsonl", "latex2sympy_value_cases.jsonl"] {
        let path = dir.join(file);
        let its = items(&path);
        let (ours, over) = time_ours(&its);
        let om = row(&format!("ours / {file}"), its.len(), &ours, Some(over));
        if python.exists() {
            if let Some(mv) = time_anchor(&python, &path) {
                let mm = row(&format!("Math-Verify 0.8.0 / {file}"), mv.len(), &mv, None);
                println!(
                    "| speedup of the median / {file} | | {:.0}× | | | |",
                    mm / om
                );
            }
        } else {
            println!(
                "| Math-Verify / {file} | skipped: no {} (run scripts/anchor-venv.sh) | | | | |",
                python.display()
            );
        }
    }
    // Adversarial inputs: power towers, deep nesting, long sums, huge factorials, huge responses.
    let hostile: Vec<MathItem> = [
        r"\boxed{10^{10^{10^{10}}}}".to_string(),
        r"\boxed{\dfrac{5^{(5^{(5^{(5^5)})} - 4)} - 5}{16}}".to_string(),
        format!(r"\boxed{{{}1{}}}", "(".repeat(150), ")".repeat(150)),
        format!(
            r"\boxed{{{}}}",
            (0..5000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join("+")
        ),
        r"\boxed{99999!}".to_string(),
        format!(r"\boxed{{{}2{}}}", "\\sqrt{".repeat(190), "}".repeat(190)),
        format!("{}\\boxed{{3}}", "x ".repeat(100_000)),
    ]
    .into_iter()
    .map(|r| MathItem {
        id: None,
        response: r,
        ground_truth: "12345".into(),
        options: None,
    })
    .collect();
    let (ours, over) = time_ours(&hostile);
    row(
        "ours / 7 adversarial inputs (towers, deep nesting, 5000-term sum, 99999!, 200 KB)",
        hostile.len(),
        &ours,
        Some(over),
    );
}
