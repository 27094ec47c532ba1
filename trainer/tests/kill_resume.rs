//! A real `trainer demo` process is killed (SIGKILL) mid-run and resumed with `--resume`: the
//! store must end with exactly one row per rollout (none lost, none duplicated) in the local
//! Postgres (`TRAINER_TEST_PG_URL`, default `postgres://root@127.0.0.1/test`), and
//! `metrics.jsonl` must hold one line per step, equal to an uninterrupted run's.

mod support;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::comparable_metrics;

use sqlx::Connection;

const STEPS: usize = 8;
const ROLLOUTS_PER_STEP: usize = 8 * 8;

fn pg_url() -> String {
    std::env::var("TRAINER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1/test".to_string())
}

fn demo(run_dir: &std::path::Path, resume: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args([
        "demo",
        "--steps",
        &STEPS.to_string(),
        "--database-url",
        &pg_url(),
        "--run-dir",
    ])
    .arg(run_dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

#[test]
fn killed_and_resumed_run_stores_each_rollout_exactly_once() {
    let run_dir = std::env::temp_dir().join(format!("kill-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);

    // 1. Start, wait for step 3 to finish, kill -9.
    let mut child = demo(&run_dir, false).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let run_id = first
        .strip_prefix("run ")
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_string();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with(&format!("step   3/{STEPS}")) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.starts_with("step   3/")),
        "never reached step 3: {seen:?}"
    );

    // 2. Resume to the end.
    let out = demo(&run_dir, true).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "resume failed: {stdout}");
    assert!(
        stdout.contains(&format!("run {run_id}: resuming at step")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("step   {STEPS}/{STEPS}")),
        "{stdout}"
    );

    // 3. Exactly one row per (step, prompt, sample), for every step.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
        let (rows, keys, steps, step_rows, finished): (i64, i64, i64, i64, bool) = sqlx::query_as(
            "SELECT COUNT(*), \
                    COUNT(DISTINCT (step, prompt_id, sample_idx)), \
                    COUNT(DISTINCT step), \
                    (SELECT COUNT(*) FROM steps WHERE run_id = $1), \
                    (SELECT finished_at IS NOT NULL FROM runs WHERE run_id = $1) \
             FROM rollouts WHERE run_id = $1",
        )
        .bind(&run_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::query("DELETE FROM runs WHERE run_id = $1")
            .bind(&run_id)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            (rows, keys),
            (
                (STEPS * ROLLOUTS_PER_STEP) as i64,
                (STEPS * ROLLOUTS_PER_STEP) as i64
            )
        );
        assert_eq!(
            (steps, step_rows, finished),
            (STEPS as i64, STEPS as i64, true)
        );
    });

    // 4. The metrics continue as if uninterrupted: the same lines as a run never killed.
    let reference = run_dir.join("reference");
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["demo", "--steps", &STEPS.to_string(), "--run-dir"])
        .arg(&reference)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference run: {out:?}");
    let resumed = comparable_metrics(&run_dir);
    assert_eq!(resumed.len(), STEPS, "one metrics line per step");
    assert_eq!(resumed, comparable_metrics(&reference));
    std::fs::remove_dir_all(&run_dir).ok();
}
