//! The external conformance cases (`../shared/conformance/code_cases.jsonl`: SandboxFusion,
//! verl, LiveCodeBench, CodeContests, MBPP, HumanEval and original cases) through each
//! applicable backend (`ns`: every case; `wasm`: the Python cases; `auto`: every case): at
//! least 97% per backend must get their expected verdict (or an `alt_verdicts` entry), no
//! wrong answer may be accepted, and every miss is listed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::{BackendChoice, CodeItem, CodeVerdict};
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};

fn load() -> Option<Vec<CodeItem>> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/code_cases.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIP: {} is absent (no ../shared beside the clone)",
            path.display()
        );
        return None;
    };
    let items: Vec<CodeItem> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a conformance line parses as a CodeItem"))
        .collect();
    assert!(items.len() >= 90, "only {} cases", items.len());
    Some(items)
}

fn ns() -> Option<NsSandbox> {
    match NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    }) {
        Ok(ns) => Some(ns),
        Err(e) => {
            eprintln!("SKIP: namespace backend unavailable: {e}");
            None
        }
    }
}

#[cfg(feature = "wasm")]
fn wasm() -> Option<verifier::sandbox::wasm::WasmSandbox> {
    use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
    match WasmSandbox::new(&WasmConfig::default()) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!(
                "SKIP: wasm backend unavailable ({e}); run sandbox-images/fetch-python-wasm.sh"
            );
            None
        }
    }
}

#[test]
fn conformance_cases_pass_on_the_namespace_backend() {
    let (Some(items), Some(ns)) = (load(), ns()) else {
        return;
    };
    run_cases(&Judge::new(Ok(ns)), items, BackendChoice::Ns, "ns");
}

#[cfg(feature = "wasm")]
#[test]
fn conformance_python_cases_pass_on_the_wasm_backend() {
    let (Some(items), Some(ns), Some(w)) = (load(), ns(), wasm()) else {
        return;
    };
    let items = items
        .into_iter()
        .filter(|i| i.language == protocol::Language::Python)
        .collect();
    let judge = Judge::new(Ok(ns)).with_wasm(Ok(w));
    run_cases(&judge, items, BackendChoice::Wasm, "wasm");
    let served = judge.wasm_spare_runs();
    eprintln!("wasm: {served} runs served by spare interpreters");
    assert!(served > 0, "no run used a spare interpreter");
}

#[cfg(feature = "wasm")]
#[test]
fn conformance_cases_pass_with_automatic_backend_choice() {
    let (Some(items), Some(ns), Some(w)) = (load(), ns(), wasm()) else {
        return;
    };
    run_cases(
        &Judge::new(Ok(ns)).with_wasm(Ok(w)),
        items,
        BackendChoice::Auto,
        "auto",
    );
}

/// One pass at a time: each pass already keeps both CPUs busy, and the cases' time limits
/// assume a run gets a CPU.
static ONE_PASS_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run_cases(judge: &Judge, mut items: Vec<CodeItem>, backend: BackendChoice, name: &str) {
    let _serial = ONE_PASS_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for i in &mut items {
        i.backend = backend;
    }
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
                            "{}: expected {expected:?} (or {alts:?}), got {:?} on {:?} ({}/{} passed) {:?}",
                            item.id.as_deref().unwrap_or("?"),
                            r.verdict,
                            r.backend,
                            r.passed,
                            r.total,
                            r.message
                        ));
                    }
                    assert!(
                        expected == CodeVerdict::Accepted || r.verdict != CodeVerdict::Accepted,
                        "{name}: a false accept is never tolerated: {:?}",
                        item.id
                    );
                }
            });
        }
    });
    let misses = misses.into_inner().unwrap();
    let ok = items.len() - misses.len();
    eprintln!(
        "{name} backend: {ok}/{} conformance cases matched",
        items.len()
    );
    for m in &misses {
        eprintln!("MISS ({name}) {m}");
    }
    assert!(
        ok * 100 >= items.len() * 97,
        "{name}: {ok}/{} is below 97%:\n{}",
        items.len(),
        misses.join("\n")
    );
}

/// Returned by every function of the broken HumanEval submissions: equal to anything,
/// ordered before and after anything, zero under arithmetic, truthy, empty. A judge that
/// compares through the submission's own objects accepts most of HumanEval with it.
const ANYTHING: &str = "class _Anything:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n    __lt__ = __le__ = __gt__ = __ge__ = __eq__\n    def __hash__(self): return 0\n    def __bool__(self): return True\n    def __len__(self): return 0\n    def __iter__(self): return iter(())\n    def __abs__(self): return 0\n    def __sub__(self, o): return 0\n    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __mod__ = __sub__\n    def __float__(self): return 0.0\n    def __int__(self): return 0\n    __index__ = __int__\n    def __getitem__(self, k): return self\n    def __contains__(self, k): return True\n    def __round__(self, n=0): return self\n\n";

/// HumanEval (`bash sandbox-images/fetch-humaneval.sh`): every canonical solution accepted,
/// and every broken one (each function returns an object equal to anything) rejected.
fn humaneval() -> Option<Vec<(CodeItem, bool)>> {
    let path = std::env::var_os("RLVR_HUMANEVAL").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/rlvr-sandbox/HumanEval.jsonl")
        },
        PathBuf::from,
    );
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIP: {} is absent (bash sandbox-images/fetch-humaneval.sh)",
            path.display()
        );
        return None;
    };
    let mut items = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let p: serde_json::Value = serde_json::from_str(line).expect("a HumanEval row");
        let field = |k: &str| p[k].as_str().expect(k).to_owned();
        let tests = format!("{}\n\ncheck({})\n", field("test"), field("entry_point"));
        for (source, good) in [
            (field("prompt") + &field("canonical_solution"), true),
            (
                format!("{ANYTHING}{}    return _Anything()\n", field("prompt")),
                false,
            ),
        ] {
            let item: CodeItem = serde_json::from_value(serde_json::json!({
                "id": format!("{}{}", field("task_id"), if good { "" } else { " (broken)" }),
                "language": "python", "source_code": source,
                "tests": [{"assert_code": tests}],
                "time_limit_s": 20, "memory_limit_mb": 512,
            }))
            .expect("a HumanEval item");
            items.push((item, good));
        }
    }
    assert_eq!(items.len(), 2 * 164, "HumanEval has 164 problems");
    Some(items)
}

fn run_humaneval(judge: &Judge, items: &[(CodeItem, bool)], backend: BackendChoice) {
    let _serial = ONE_PASS_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let next = AtomicUsize::new(0);
    let wrong = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some((item, good)) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut item = item.clone();
                    item.backend = backend;
                    let r = judge.judge(&item);
                    if (r.verdict == CodeVerdict::Accepted) != *good {
                        wrong.lock().unwrap().push(format!(
                            "{}: {:?} on {:?}: {:?}",
                            item.id.as_deref().unwrap_or("?"),
                            r.verdict,
                            r.backend,
                            r.tests.first().map(|t| t
                                .run
                                .stderr_head
                                .chars()
                                .take(400)
                                .collect::<String>())
                        ));
                    }
                }
            });
        }
    });
    let wrong = wrong.into_inner().unwrap();
    eprintln!(
        "HumanEval on {backend:?}: {} of {} verdicts right (canonical accepted, broken rejected)",
        items.len() - wrong.len(),
        items.len()
    );
    assert!(wrong.is_empty(), "{backend:?}:\n{}", wrong.join("\n"));
}

#[test]
fn humaneval_canonical_accepted_and_broken_rejected_on_the_namespace_backend() {
    let (Some(items), Some(ns)) = (humaneval(), ns()) else {
        return;
    };
    run_humaneval(&Judge::new(Ok(ns)), &items, BackendChoice::Ns);
}

#[cfg(feature = "wasm")]
#[test]
fn humaneval_canonical_accepted_and_broken_rejected_on_the_wasm_backend() {
    let (Some(items), Some(ns), Some(w)) = (humaneval(), ns(), wasm()) else {
        return;
    };
    run_humaneval(
        &Judge::new(Ok(ns)).with_wasm(Ok(w)),
        &items,
        BackendChoice::Wasm,
    );
}
