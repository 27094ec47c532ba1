//! The grader against the external conformance suites in `../shared/conformance/`
//! (Math-Verify's own tests, rllm and verl cases; latex2sympy value cases). Prints agreement
//! per category and every disagreement; skips with a message when the folder is absent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use protocol::MathItem;
use serde_json::Value;

fn conformance_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    dir.is_dir().then_some(dir)
}

/// Runs one file; returns (agreed, total) and prints the per-category table and misses.
fn run(file: &str) -> Option<(usize, usize)> {
    let Some(dir) = conformance_dir() else {
        println!("SKIP: ../shared/conformance not found beside the repository; {file} not checked");
        return None;
    };
    let text = std::fs::read_to_string(dir.join(file)).expect("read conformance file");
    let mut per_cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut slowest = (0u64, String::new());
    for (n, line) in text.lines().enumerate() {
        let case: Value = serde_json::from_str(line).expect("conformance line is JSON");
        let item = MathItem {
            id: Some(format!("{file}:{}", n + 1)),
            response: case["pred"].as_str().unwrap_or_default().to_string(),
            ground_truth: case["gold"]
                .as_str()
                .map_or_else(|| case["gold"].to_string(), String::from),
            options: Some(verifier::math::conformance::options_from_case_config(
                &case["config"],
            )),
        };
        let r = verifier::math::grade(&item);
        let expected = case["expected"].as_bool().unwrap_or(false);
        let cat = case["category"].as_str().unwrap_or("?").to_string();
        let e = per_cat.entry(cat.clone()).or_default();
        e.1 += 1;
        if r.correct == expected {
            e.0 += 1;
        } else {
            misses.push(format!(
                "  line {:>3} [{cat}] expected {expected}, got {:?} (extracted {:?}); pred {:?} gold {:?}",
                n + 1,
                r.verdict,
                r.extracted,
                tail(&item.response),
                item.ground_truth
            ));
        }
        if r.elapsed_us > slowest.0 {
            slowest = (r.elapsed_us, format!("line {}", n + 1));
        }
    }
    let (agree, total) = per_cat
        .values()
        .fold((0, 0), |(a, t), (x, y)| (a + x, t + y));
    println!(
        "{file}: {agree}/{total} agree ({:.1}%), slowest {} µs ({})",
        100.0 * agree as f64 / total as f64,
        slowest.0,
        slowest.1
    );
    for (cat, (a, t)) in &per_cat {
        println!("  {cat:<40} {a:>3}/{t:<3}");
    }
    println!("disagreements:");
    for m in &misses {
        println!("{m}");
    }
    Some((agree, total))
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() > 120 {
        format!("…{}", chars[chars.len() - 110..].iter().collect::<String>())
    } else {
        s.to_string()
    }
}

#[test]
fn math_verify_suite() {
    if let Some((agree, total)) = run("math_verify_cases.jsonl") {
        let pct = 100.0 * agree as f64 / total as f64;
        assert!(
            pct >= MATH_VERIFY_FLOOR,
            "agreement {pct:.1}% below {MATH_VERIFY_FLOOR}%"
        );
    }
}

#[test]
fn latex2sympy_suite() {
    if let Some((agree, total)) = run("latex2sympy_value_cases.jsonl") {
        let pct = 100.0 * agree as f64 / total as f64;
        assert!(
            pct >= LATEX2SYMPY_FLOOR,
            "agreement {pct:.1}% below {LATEX2SYMPY_FLOOR}%"
        );
    }
}

/// Agreement floors: the acceptance targets.
const MATH_VERIFY_FLOOR: f64 = 97.0;
const LATEX2SYMPY_FLOOR: f64 = 95.0;
