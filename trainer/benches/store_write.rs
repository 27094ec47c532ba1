//! Rollout-store benchmark, printed as a table:
//!
//! 1. Rows/s written into the local Postgres (and SQLite) with realistic rows (2 KiB response,
//!    JSON verifier result): direct multi-row upserts, and through the journaled `StoreWriter`
//!    the trainer uses.
//! 2. Training step time of the demo with the store off, on SQLite and on Postgres.
//!
//! `cargo bench -p trainer --bench store_write` (Postgres at `BENCH_PG_URL`, default
//! `postgres://root@127.0.0.1/postgres`; a scratch database is created and dropped).

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use trainer::config::TrainConfig;
use trainer::reward::spawn_embedded_verifier;
use trainer::store::{JournalRecord, RolloutRow, RunRecord, Store, StoreWriter, WriterConfig};
use trainer::train::{self, RunOptions, StoreTarget};

const ROWS: usize = 40_000;

fn row(i: usize) -> RolloutRow {
    RolloutRow {
        run_id: "bench".into(),
        step: (i / 512) as i32,
        prompt_id: format!("prompt-{}", (i % 512) / 8),
        data_source: "bench".into(),
        sample_idx: (i % 8) as i32,
        prompt: "Solve the following problem step by step and put the answer in \\boxed{}.".into(),
        response: format!(
            "{} so the answer is \\boxed{{{}}}",
            "Let us reason carefully. ".repeat(82),
            i % 97
        ),
        ground_truth: (i % 89).to_string(),
        num_tokens: 512,
        finished: true,
        reward: if i.is_multiple_of(3) { 1.0 } else { 0.0 },
        verdict: if i.is_multiple_of(3) {
            "correct"
        } else {
            "incorrect"
        }
        .into(),
        extracted: Some((i % 97).to_string()),
        verifier_result: json!({"id": format!("p#{i}"), "correct": i.is_multiple_of(3), "reward": 0.0,
                                "verdict": "incorrect", "extracted": "12", "elapsed_us": 41}),
        advantage: 0.25,
        mean_entropy: 0.8,
    }
}

async fn fresh_store(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    let run = RunRecord {
        run_id: "bench".into(),
        method: "grpo".into(),
        model: "m".into(),
        config: json!({}),
        git_rev: None,
    };
    store.create_run(&run).await.expect("run");
    store
}

async fn direct(url: &str, rows: &[RolloutRow]) -> f64 {
    let store = fresh_store(url).await;
    let t = Instant::now();
    for chunk in rows.chunks(2000) {
        store.insert_rollouts(chunk).await.expect("insert");
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        store.count_rollouts("bench").await.expect("count") as usize,
        rows.len()
    );
    store.close().await;
    secs
}

async fn through_writer(url: &str, rows: &[RolloutRow], journal: &std::path::Path) -> (f64, f64) {
    let store = fresh_store(url).await;
    let _ = std::fs::remove_file(journal);
    let writer =
        StoreWriter::start(store.clone(), journal, WriterConfig::default()).expect("writer");
    let t = Instant::now();
    let mut send_secs = 0.0;
    for chunk in rows.chunks(512) {
        let records: Vec<JournalRecord> =
            chunk.iter().cloned().map(JournalRecord::Rollout).collect();
        let s = Instant::now();
        writer.send(&records).expect("send");
        send_secs += s.elapsed().as_secs_f64();
    }
    writer.close(Duration::from_secs(600)).await.expect("close");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        store.count_rollouts("bench").await.expect("count") as usize,
        rows.len()
    );
    store.close().await;
    (secs, send_secs / (rows.len() / 512) as f64)
}

fn step_times(
    target: StoreTarget,
    steps: usize,
    verifier_url: &str,
    rt: &tokio::runtime::Handle,
) -> Vec<f64> {
    let mut cfg = TrainConfig::demo();
    cfg.steps = steps;
    cfg.warmup.steps = 10;
    let dir = std::env::temp_dir().join(format!("store-bench-run-{}", rand_suffix()));
    let opts = RunOptions {
        run_dir: dir.clone(),
        store: target,
        verifier_url: verifier_url.into(),
        verifier_patience: train::DEFAULT_VERIFIER_PATIENCE,
        resume: false,
        progress: false,
        device: trainer::device::ComputeDevice::Cpu,
    };
    let summary = train::run(&cfg, &opts, rt).expect("train");
    std::fs::remove_dir_all(&dir).ok();
    summary
        .history
        .iter()
        .map(|m| m.timings.values().sum::<f64>())
        .collect()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn mean_ms(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (m * 1e3, sd * 1e3)
}

fn main() {
    let admin = std::env::var("BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1/postgres".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = format!("bench_{}", rand_suffix());
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_string();
    let pg_url = format!("{base}/{db}");
    let exec = |sql: String| {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin)
                .await
                .expect("admin connection");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .expect("ddl");
        })
    };
    let rows: Vec<RolloutRow> = (0..ROWS).map(row).collect();
    let bytes: usize = rows
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len()))
        .sum();
    println!(
        "store write: {ROWS} rollouts, {:.0} bytes each on average as JSON",
        bytes as f64 / ROWS as f64
    );
    println!();
    println!("| backend | path | rows | seconds | rows/s | send() per 512-row step |");
    println!("|---|---|---|---|---|---|");
    let tmp = std::env::temp_dir();
    for (name, mk) in [("postgres", true), ("sqlite", false)] {
        for path in ["direct upsert", "StoreWriter (journal)"] {
            let url = if mk {
                exec(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
                exec(format!("CREATE DATABASE {db}"));
                pg_url.clone()
            } else {
                let f = tmp.join(format!("store-bench-{}.sqlite", rand_suffix()));
                format!("sqlite://{}", f.display())
            };
            let (secs, send) = if path == "direct upsert" {
                (rt.block_on(direct(&url, &rows)), None)
            } else {
                let (s, per) = rt.block_on(through_writer(
                    &url,
                    &rows,
                    &tmp.join("store-bench-journal.jsonl"),
                ));
                (s, Some(per))
            };
            let per = send.map_or("-".to_string(), |s| format!("{:.2} ms", s * 1e3));
            println!(
                "| {name} | {path} | {ROWS} | {secs:.2} | {:.0} | {per} |",
                ROWS as f64 / secs
            );
        }
    }

    exec(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    exec(format!("CREATE DATABASE {db}"));
    let verifier = rt.block_on(spawn_embedded_verifier()).expect("verifier");
    let handle = rt.handle().clone();
    println!();
    println!(
        "training step time, demo model (64 rollouts per step), 30 steps after 2 warm-up steps:"
    );
    println!();
    println!("| store | mean step (ms) | std (ms) |");
    println!("|---|---|---|");
    for (name, target) in [
        ("off", StoreTarget::Disabled),
        ("sqlite", StoreTarget::RunDirSqlite),
        ("postgres", StoreTarget::Url(pg_url.clone())),
        ("off (again)", StoreTarget::Disabled),
    ] {
        let url = verifier.url.clone();
        let times =
            std::thread::scope(|s| s.spawn(|| step_times(target, 32, &url, &handle)).join())
                .expect("thread");
        let (m, sd) = mean_ms(&times[2..]);
        println!("| {name} | {m:.1} | {sd:.1} |");
    }
    drop(verifier);
    exec(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
