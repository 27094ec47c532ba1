//! Start-up overhead per language: the same hello-world program (SandboxFusion's own
//! `test_<lang>_print` cases, from `tests/fixtures/sandbox_fusion_runners.json`) compiled and
//! run by the bare toolchain on the host (as root, in a temporary directory, the language
//! table's commands with `/box` and `/out` pointed there) and through `Judge::run_once` (the
//! namespace sandbox: cgroup, namespaces, tmpfs box, seccomp), one after the other, one run at
//! a time on both sides. Prints a Markdown table of medians.
//!
//! `cargo bench -p verifier --bench languages` (needs root and the toolchains of
//! `sandbox-images/install-toolchains.sh`; languages not installed are listed as skipped).
//! `LANG_BENCH_RUNS` sets the runs per side (default 5); `LANG_BENCH_ONLY=go,java` limits the
//! languages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::Language;
use serde_json::Value;
use verifier::judge::{Judge, RunOnce};
use verifier::sandbox::{NsConfig, NsSandbox};

/// A hello-world per language: SandboxFusion's print cases, plus C (which it lacks).
fn programs() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/sandbox_fusion_runners.json"
    ))
    .expect("fixture");
    let mut out = vec![(
        "c".to_owned(),
        "#include <stdio.h>\nint main(void){puts(\"123\");return 0;}\n".to_owned(),
    )];
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().unwrap_or("");
        let lang = case["request"]["language"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let first = ["_print", "_pass", "_basic"]
            .iter()
            .any(|s| name.ends_with(s));
        if first && !out.iter().any(|(l, _)| *l == lang) {
            out.push((
                lang,
                case["request"]["code"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// The table's command with `/box` and `/out` moved under `dir`.
fn bare_argv(argv: &[String], dir: &Path) -> Vec<String> {
    argv.iter()
        .map(|a| {
            a.replace("/out", &dir.join("out").display().to_string())
                .replace("/box", &dir.display().to_string())
        })
        .collect()
}

/// One bare compile + run; the walls of both steps.
fn bare(
    judge: &Judge,
    lang: &str,
    code: &str,
    dir: &Path,
) -> Result<(Option<Duration>, Duration), String> {
    let spec = judge.languages().get(lang).ok_or("unknown")?;
    let program = spec.program(code, &[])?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("out")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(&program.source_name), &program.source_text)
        .map_err(|e| e.to_string())?;
    let mut env = verifier::judge::language::base_env();
    env.extend(spec.env().iter().cloned());
    let step = |argv: &[String]| -> Result<Duration, String> {
        let argv = bare_argv(argv, dir);
        let start = Instant::now();
        // A framework suite or a program that fails is still timed.
        Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        Ok(start.elapsed())
    };
    let compile = match &program.compile {
        Some(c) => Some(step(c)?),
        None => None,
    };
    Ok((compile, step(&program.run)?))
}

fn sandboxed(
    judge: &Judge,
    lang: &str,
    code: &str,
) -> Result<(Option<Duration>, Duration), String> {
    let r = judge.run_once(&RunOnce {
        language: Language::parse(lang).ok_or("name")?,
        code: code.to_owned(),
        stdin: Vec::new(),
        files: Vec::new(),
        fetch_files: Vec::new(),
        compile_timeout: Duration::from_secs(120),
        run_timeout: Duration::from_secs(120),
        memory_bytes: 2 << 30,
    })?;
    let run = r.run.ok_or("the compile failed")?;
    Ok((r.compile.map(|c| c.wall), run.wall))
}

fn main() {
    let ns = match NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    }) {
        Ok(ns) => ns,
        Err(e) => {
            println!("SKIP: namespace backend unavailable: {e}");
            return;
        }
    };
    let judge = Judge::new(Ok(ns));
    let runs: usize = std::env::var("LANG_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only: Option<Vec<String>> = std::env::var("LANG_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let dir: PathBuf = std::env::temp_dir().join(format!("lang-bench-{}", std::process::id()));
    println!(
        "| language | bare compile ms | sandboxed compile ms | bare run ms | sandboxed run ms | overhead ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut skipped = Vec::new();
    for (lang, code) in programs() {
        if only.as_ref().is_some_and(|o| !o.contains(&lang)) {
            continue;
        }
        if judge.languages().ready(&lang).is_err() {
            skipped.push(lang);
            continue;
        }
        // One warm-up per side (page cache, the JIT's class data).
        let warm = bare(&judge, &lang, &code, &dir).and_then(|_| sandboxed(&judge, &lang, &code));
        if let Err(e) = warm {
            println!("| {lang} | error: {e} | | | | |");
            continue;
        }
        let (mut bc, mut br, mut sc, mut sr) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            if let Ok((c, r)) = bare(&judge, &lang, &code, &dir) {
                bc.extend(c);
                br.push(r);
            }
            if let Ok((c, r)) = sandboxed(&judge, &lang, &code) {
                sc.extend(c);
                sr.push(r);
            }
        }
        let fmt = |v: &[Duration]| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.0}", median(v.to_vec()))
            }
        };
        let total = |c: &[Duration], r: &[Duration]| {
            (if c.is_empty() {
                0.0
            } else {
                median(c.to_vec())
            }) + median(r.to_vec())
        };
        println!(
            "| {lang} | {} | {} | {} | {} | {:.0} |",
            fmt(&bc),
            fmt(&sc),
            fmt(&br),
            fmt(&sr),
            total(&sc, &sr) - total(&bc, &br)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !skipped.is_empty() {
        println!("\nnot installed here: {}", skipped.join(", "));
    }
}
