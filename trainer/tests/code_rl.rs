//! RL on code end to end, against real parts only:
//!
//! * a mixed batch (math and code) graded through [`trainer::reward::Grader`] by a real
//!   verifier serving HTTP on loopback, once per sandbox backend (`ns` with this crate's
//!   `trainer` binary as the namespace helper, `wasm` with the CPython WASI runtime), each
//!   skipped with a `SKIP` line where this host cannot run it;
//! * `trainer train` on `code-tiny.toml` and `mixed-tiny.toml` for 2 steps into Postgres,
//!   with the embedded verifier and with `--verifier-url` of a running `verifier serve`: exit
//!   0, every code rollout stored with a code verdict and its per-test results, every mixed
//!   step holding both kinds, and `trainer audit summary` / `audit sources` breaking the run
//!   down by data source and verdict.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use protocol::BackendChoice;
use protocol::client::VerifierClient;
use trainer::config::TrainConfig;
use trainer::reward::{CodeRewardConfig, Grader, Submission};
use trainer::store::{RolloutFilter, Store};
use trainer::task::{Gold, Problem};

const DATABASE_URL: &str = "postgres://root@127.0.0.1/test";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(name: &str) -> TrainConfig {
    let text = std::fs::read_to_string(root().join("trainer/configs").join(name)).unwrap();
    TrainConfig::from_toml(&text).unwrap()
}

/// A judge with the namespace backend (helper: the `trainer` binary's hidden subcommand) and,
/// for `wasm`, the wasm backend; `None` (after a SKIP line) where this host lacks it.
fn judge_for(backend: BackendChoice) -> Option<verifier::judge::Judge> {
    let ns = verifier::sandbox::NsSandbox::new(verifier::sandbox::NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_trainer")),
        ..Default::default()
    });
    match backend {
        BackendChoice::Wasm => {
            let wasm = verifier::sandbox::wasm::WasmSandbox::new(
                &verifier::sandbox::wasm::WasmConfig::default(),
            );
            match wasm {
                Ok(w) => Some(verifier::judge::Judge::new(ns).with_wasm(Ok(w))),
                Err(e) => {
                    eprintln!("SKIP: wasm backend unavailable here: {e}");
                    None
                }
            }
        }
        _ => match ns {
            Ok(ns) => Some(verifier::judge::Judge::new(Ok(ns))),
            Err(e) => {
                eprintln!("SKIP: namespace backend unavailable here: {e}");
                None
            }
        },
    }
}

fn find<'a>(problems: &'a [Problem], id: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("no problem {id}"))
}

#[test]
fn a_mixed_batch_is_graded_over_http_on_each_backend() {
    let cfg = config("mixed-tiny.toml");
    let task = cfg.task.load(&cfg.reward).unwrap();
    let all: Vec<Problem> = task
        .problems()
        .iter()
        .chain(task.eval_problems())
        .cloned()
        .collect();
    let (sum, max, digits) = (
        find(&all, "prog-sum-381"),
        find(&all, "prog-max-381"),
        find(&all, "max-381"),
    );
    assert!(matches!(sum.gold, Gold::Code(_)) && matches!(digits.gold, Gold::Math(_)));
    let subs = [
        (sum, "```\nprint(sum(3,8,1))\n```"),
        (sum, "```\nprint(sum([3,8,1]))\n```"),
        (max, "```\nprint(min([3,8,1]))\n```"),
        (max, "print(8)"),
        (digits, "\\boxed{8}"),
        (digits, "\\boxed{3}"),
        (max, "```python\nimport sys\nprint(8)\n```"),
    ];
    let want = [
        ("runtime_error", 0.0),
        ("accepted", 1.0),
        ("wrong_answer", 0.0),
        ("compile_error", 0.0),
        ("correct", 1.0),
        ("incorrect", 0.0),
        ("accepted", 1.0),
    ];
    let subs: Vec<Submission<'_>> = subs
        .iter()
        .enumerate()
        .map(|(i, (p, r))| Submission {
            problem: p,
            response: r,
            sample: i,
        })
        .collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    for backend in [BackendChoice::Ns, BackendChoice::Wasm] {
        let Some(judge) = judge_for(backend) else {
            continue;
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = verifier::app(verifier::AppState::default().with_judge(judge));
        let server = rt.spawn(async move { axum::serve(listener, app).await });
        let client = VerifierClient::new(&url).unwrap();
        let code = CodeRewardConfig {
            backend,
            time_limit_s: 5.0,
            ..CodeRewardConfig::default()
        };
        let grader = Grader {
            client: &client,
            rt: rt.handle(),
            math: None,
            code: &code,
        };
        let graded = grader.grade(&subs).unwrap();
        let got: Vec<(&str, f64)> = graded
            .iter()
            .map(|g| (g.verdict.as_str(), g.reward))
            .collect();
        assert_eq!(got, want, "{backend:?}: {graded:#?}");
        for (g, s) in graded.iter().zip(&subs) {
            if matches!(s.problem.gold, Gold::Code(_)) {
                assert_eq!(g.detail["total"], 1, "{g:?}");
                assert_eq!(g.detail["time_limit_s"], 5.0);
                if g.verdict != "compile_error" {
                    let ran = g.detail["backend"].as_str().unwrap();
                    assert_eq!(ran, format!("{backend:?}").to_lowercase(), "{g:?}");
                }
            } else {
                assert!(g.detail["verdict"].is_string(), "{g:?}");
            }
        }
        assert_eq!(
            graded[1].extracted.as_deref(),
            Some("print(sum([3,8,1]))\n")
        );
        assert!(graded[1].correct && !graded[0].correct);
        println!("{backend:?}: mixed batch graded over HTTP as expected");
        server.abort();
    }
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .current_dir(root())
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

/// The `verifier` binary beside `trainer` (built by the workspace build).
fn verifier_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_trainer")).with_file_name("verifier");
    assert!(
        bin.is_file(),
        "{} missing: build the workspace (cargo build --workspace)",
        bin.display()
    );
    bin
}

/// A `verifier serve` process (code judging on) on a free loopback port.
struct VerifierServe(Child, SocketAddr);

impl VerifierServe {
    fn start() -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(verifier_bin())
            .args(["serve", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "verifier serve");
            std::thread::sleep(Duration::from_millis(100));
        }
        VerifierServe(child, addr)
    }
}

impl Drop for VerifierServe {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `trainer train --config configs/NAME --steps 2` into Postgres; returns the run id and
/// what it printed.
fn train_two_steps(name: &str, verifier_url: Option<&str>) -> (String, String) {
    let run_dir = std::env::temp_dir().join(format!(
        "code-rl-{}-{}-{}",
        name.trim_end_matches(".toml"),
        verifier_url.map_or("embedded", |_| "serve"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&run_dir);
    let config = format!("trainer/configs/{name}");
    let run_dir_arg = run_dir.display().to_string();
    let mut args = vec![
        "train",
        "--config",
        &config,
        "--steps",
        "2",
        "--database-url",
        DATABASE_URL,
        "--run-dir",
        &run_dir_arg,
    ];
    if let Some(url) = verifier_url {
        args.extend(["--verifier-url", url]);
    }
    let out = ok(&trainer(&args), &format!("trainer train {name}"));
    let _ = std::fs::remove_dir_all(&run_dir);
    let run = out
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .unwrap_or_else(|| panic!("no run id in:\n{out}"))
        .to_string();
    (run, out)
}

const CODE_VERDICTS: [&str; 8] = [
    "accepted",
    "wrong_answer",
    "time_limit",
    "memory_limit",
    "output_limit",
    "runtime_error",
    "compile_error",
    "sandbox_error",
];

/// Every code rollout of `run` has a code verdict and per-test results; returns the data
/// sources seen per step.
fn check_rollouts(store: &Store, rt: &tokio::runtime::Runtime, run: &str) -> Vec<Vec<String>> {
    let rows = rt
        .block_on(store.rollouts(run, &RolloutFilter::default()))
        .unwrap();
    assert!(!rows.is_empty(), "no rollouts for {run}");
    let mut per_step: Vec<Vec<String>> = Vec::new();
    for r in &rows {
        let step = r.step as usize;
        if per_step.len() <= step {
            per_step.resize(step + 1, Vec::new());
        }
        if !per_step[step].contains(&r.data_source) {
            per_step[step].push(r.data_source.clone());
        }
        if r.data_source == "programs" {
            assert!(
                CODE_VERDICTS.contains(&r.verdict.as_str()),
                "{}: {}",
                r.prompt_id,
                r.verdict
            );
            assert_ne!(r.verdict, "sandbox_error", "{}", r.verifier_result);
            let v: serde_json::Value = serde_json::from_str(&r.verifier_result).unwrap();
            assert_eq!(v["total"], 1, "{v}");
            assert!(v["passed"].is_u64() && v["tests"].is_array(), "{v}");
        } else {
            assert_eq!(r.data_source, "largest-digit");
            assert!(
                !CODE_VERDICTS.contains(&r.verdict.as_str()),
                "{}",
                r.verdict
            );
        }
    }
    assert_eq!(per_step.len(), 2, "two steps");
    per_step
}

#[test]
fn code_tiny_and_mixed_tiny_train_with_embedded_and_served_verifiers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::connect(DATABASE_URL)).unwrap();
    let serve = VerifierServe::start();
    let served = format!("http://{}", serve.1);
    for verifier in [None, Some(served.as_str())] {
        let (run, _) = train_two_steps("code-tiny.toml", verifier);
        for sources in check_rollouts(&store, &rt, &run) {
            assert_eq!(sources, ["programs"]);
        }
        let (run, out) = train_two_steps("mixed-tiny.toml", verifier);
        for mut sources in check_rollouts(&store, &rt, &run) {
            sources.sort();
            assert_eq!(
                sources,
                ["largest-digit", "programs"],
                "every step both kinds"
            );
        }
        // Evaluation scores each data source (24 held-out problems of each task).
        for src in ["largest-digit", "programs"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("  {src}: avg@4 "))
                        && l.ends_with("(24 problems)")),
                "{out}"
            );
        }
        // The audit breaks the mixed run down by data source and verdict.
        let summary = ok(
            &trainer(&[
                "audit",
                "summary",
                "--run",
                &run,
                "--database-url",
                DATABASE_URL,
            ]),
            "audit summary",
        );
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with("source ") && l.contains("verdict")),
            "{summary}"
        );
        let json = ok(
            &trainer(&[
                "audit",
                "sources",
                "--run",
                &run,
                "--json",
                "--database-url",
                DATABASE_URL,
            ]),
            "audit sources",
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        let total = |src: &str| -> i64 {
            rows.iter()
                .filter(|r| r["data_source"] == src)
                .map(|r| r["rollouts"].as_i64().unwrap())
                .sum()
        };
        assert_eq!(total("largest-digit") + total("programs"), 2 * 8 * 8);
        assert!(
            total("programs") > 0 && total("largest-digit") > 0,
            "{json}"
        );
        for r in &rows {
            let code = CODE_VERDICTS.contains(&r["verdict"].as_str().unwrap());
            assert_eq!(code, r["data_source"] == "programs", "{r}");
        }
    }
    rt.block_on(store.close());
}
