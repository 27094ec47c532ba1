//! The external conformance cases (`../shared/conformance/code_cases.jsonl`: SandboxFusion,
//! verl, LiveCodeBench, CodeContests, MBPP, HumanEval and original cases) through the
//! namespace backend: at least 97% must get their expected verdict (or an `alt_verdicts`
//! entry), and every miss is listed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::{CodeItem, CodeVerdict};
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};

fn cases_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/code_cases.jsonl")
}

#[test]
fn conformance_cases_pass_on_the_namespace_backend() {
    let path = cases_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIP: {} is absent (no ../shared beside the clone)",
            path.display()
        );
        return;
    };
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier")),
        ..NsConfig::default()
    });
    if let Err(e) = &ns {
        eprintln!("SKIP: namespace backend unavailable: {e}");
        return;
    }
    let judge = Judge::new(ns);
    let items: Vec<CodeItem> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a conformance line parses as a CodeItem"))
        .collect();
    assert!(items.len() >= 90, "only {} cases", items.len());
    let next = AtomicUsize::new(0);
    let misses = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    item.validate().expect("conformance items are valid");
                    let r = judge.judge(item);
                    let expected = item.expected_verdict.expect("labelled");
                    let alts = item.alt_verdicts.clone().unwrap_or_default();
                    if r.verdict != expected && !alts.contains(&r.verdict) {
                        misses.lock().unwrap().push(format!(
                            "{}: expected {:?} (or {:?}), got {:?} ({}/{} passed) {:?}",
                            item.id.as_deref().unwrap_or("?"),
                            expected,
                            alts,
                            r.verdict,
                            r.passed,
                            r.total,
                            r.message
                        ));
                    }
                    assert_ne!(
                        (expected, r.verdict),
                        (CodeVerdict::WrongAnswer, CodeVerdict::Accepted),
                        "a false accept is never tolerated: {:?}",
                        item.id
                    );
                }
            });
        }
    });
    let misses = misses.into_inner().unwrap();
    let ok = items.len() - misses.len();
    eprintln!(
        "namespace backend: {ok}/{} conformance cases matched",
        items.len()
    );
    for m in &misses {
        eprintln!("MISS {m}");
    }
    assert!(
        ok * 100 >= items.len() * 97,
        "{ok}/{} is below 97%:\n{}",
        items.len(),
        misses.join("\n")
    );
}
