//! The `trainer` binary as a user runs it: a short `trainer demo` (in a scratch directory,
//! defaults otherwise) prints what it learned in the documented shape, leaves its curves, and
//! every audit command it prints, README.md shows and docs/audit.md lists works on its
//! rollouts; `trainer compare` over seeds writes its table and curves.

#[path = "support/docs.rs"]
mod docs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn trainer(cwd: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .current_dir(cwd)
        .env_remove("TRAINER_DATABASE_URL")
        .output()
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number after `prefix` in `line`.
fn number_after(line: &str, prefix: &str) -> f64 {
    line.split_once(prefix)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number after {prefix:?} in {line:?}"))
}

/// The `trainer` arguments of each `audit` command in a Markdown file's sh blocks.
fn audit_commands_in(file: &str) -> Vec<(String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    docs::commands_in(file, &text, &mut Vec::new())
        .into_iter()
        .filter_map(|s| {
            let w = docs::words(&s.text);
            let at = w.iter().position(|x| x == "audit")?;
            Some((s.at, w[at..].to_vec()))
        })
        .collect()
}

#[test]
fn the_demo_prints_what_it_learned_and_its_audit_commands_work() {
    let dir: PathBuf = std::env::temp_dir().join(format!("demo-output-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = ok(
        &trainer(&dir, &["demo".into(), "--steps".into(), "2".into()]),
        "trainer demo",
    );

    // What it learned, in the documented words.
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?}:\n{out}"))
    };
    let acc = line("held-out accuracy ");
    let (a, b) = (
        number_after(acc, "held-out accuracy "),
        number_after(acc, "→ "),
    );
    assert!(
        (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b),
        "{acc}"
    );
    let ent = line("token entropy ");
    assert!(number_after(ent, "token entropy ") > 0.0, "{ent}");
    assert!(number_after(ent, "→ ") > 0.0, "{ent}");
    let done = line("done: run ");
    let run_id = done["done: run ".len()..].split(' ').next().unwrap();
    assert!(
        done.ends_with("sqlite://runs/demo/rollouts.sqlite"),
        "{done}"
    );

    // The figure.
    let png = line("curves (reward, held-out accuracy, entropy): ")
        .rsplit(": ")
        .next()
        .unwrap();
    let bytes = std::fs::read(dir.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
    assert_eq!(&bytes[1..4], b"PNG");

    // The audit commands it printed, run as printed.
    let printed: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "look at them:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(printed.len(), 2, "{out}");
    for cmd in &printed {
        let w = docs::words(cmd);
        let at = w.iter().position(|x| x == "audit").unwrap();
        let shown = ok(&trainer(&dir, &w[at..]), cmd);
        assert!(
            shown.contains(run_id) || cmd.contains("summary"),
            "{cmd}:\n{shown}"
        );
        assert!(shown.lines().count() >= 3, "{cmd}:\n{shown}");
    }

    // A prompt of this run, for the docs' PROMPT.
    let rollouts = ok(
        &trainer(
            &dir,
            &[
                "audit", "rollouts", "--run", run_id, "--limit", "1", "--json",
            ]
            .map(String::from),
        ),
        "audit rollouts --json",
    );
    let rows: serde_json::Value = serde_json::from_str(&rollouts).unwrap();
    let prompt = rows[0]["prompt_id"].as_str().unwrap().to_string();

    // README.md's and docs/audit.md's audit commands, with their placeholders filled in and
    // any database URL pointed at this run's store.
    let db = "sqlite://runs/demo/rollouts.sqlite".to_string();
    let mut checked = 0;
    for file in ["README.md", "docs/audit.md"] {
        for (at, args) in audit_commands_in(file) {
            let mut filled = Vec::new();
            let mut it = args.iter().peekable();
            while let Some(w) = it.next() {
                match w.as_str() {
                    "--database-url" => {
                        it.next();
                        filled.extend(["--database-url".to_string(), db.clone()]);
                    }
                    "RUN" => filled.push(run_id.to_string()),
                    "PROMPT" => filled.push(prompt.clone()),
                    _ => filled.push(w.clone()),
                }
            }
            let shown = ok(&trainer(&dir, &filled), &format!("{at}: {filled:?}"));
            assert!(!shown.trim().is_empty(), "{at}: {filled:?} printed nothing");
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "only {checked} audit commands found in the docs"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_over_seeds_writes_intervals_and_curves() {
    let dir = std::env::temp_dir().join(format!("compare-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = ok(
        &trainer(
            &dir,
            &[
                "compare",
                "--methods",
                "grpo,steer",
                "--seeds",
                "2",
                "--seed",
                "5",
                "--steps",
                "2",
                "--out",
                "cmp",
            ]
            .map(String::from),
        ),
        "trainer compare",
    );
    for (m, s) in [("grpo", 5), ("grpo", 6), ("steer", 5), ("steer", 6)] {
        assert!(
            out.contains(&format!("{m} seed {s}: 2 steps in ")),
            "no line for {m} seed {s}:\n{out}"
        );
        assert!(
            dir.join(format!("cmp/{m}/seed-{s}/metrics.jsonl"))
                .is_file()
        );
    }
    let md = std::fs::read_to_string(dir.join("cmp/compare.md")).unwrap();
    assert!(md.contains("seeds 5, 6"), "{md}");
    let grpo = md.lines().find(|l| l.starts_with("| grpo |")).unwrap();
    // Every figure of two seeds has a mean and a 95 % interval (the entropy half-life only
    // where entropy halved within the 2 steps).
    assert!(grpo.matches(" ± ").count() >= 7, "{grpo}");
    let png = std::fs::read(dir.join("cmp/curves.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let csv = std::fs::read_to_string(dir.join("cmp/curves.csv")).unwrap();
    assert!(csv.contains("held-out accuracy (avg@k),steer,0,"), "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();
}
