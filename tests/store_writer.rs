use std::time::Duration;

use serde_json::json;
use trainer::store::{
    JournalRecord, PG_MIGRATOR, RolloutRow, RunRecord, SQLITE_MIGRATOR, Store, StoreWriter,
    WriterConfig,
};

use crate::support::{FreshDb, TcpProxy, via};

fn row(step: i32, prompt: usize, sample: i32) -> RolloutRow {
    RolloutRow {
        run_id: "w1".into(),
        step,
        prompt_id: format!("p{prompt}"),
        data_source: "writer-test".into(),
        sample_idx: sample,
        prompt: "2+2=".into(),
        response: "x".repeat(2048),
        ground_truth: "4".into(),
        num_tokens: 512,
        finished: true,
        reward: 0.0,
        verdict: "incorrect".into(),
        extracted: Some("5".into()),
        verifier_result: json!({"verdict": "incorrect", "elapsed_us": 12}),
        advantage: -0.5,
        mean_entropy: 0.3,
    }
}

fn rows(step: i32, n: usize) -> Vec<JournalRecord> {
    (0..n)
        .map(|i| JournalRecord::Rollout(row(step, i / 8, (i % 8) as i32)))
        .collect()
}

async fn new_run(store: &Store) {
    let run = RunRecord {
        run_id: "w1".into(),
        method: "grpo".into(),
        model: "m".into(),
        config: json!({}),
        git_rev: None,
    };
    store.create_run(&run).await.unwrap();
}

fn journal_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("e2e-journal-{tag}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test]
async fn writer_batches_upserts_and_drains_on_close() {
    let db = FreshDb::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    new_run(&store).await;
    let path = journal_path("batch");
    let cfg = WriterConfig {
        batch_rows: 100,
        ..WriterConfig::default()
    };
    let writer = StoreWriter::start(store.clone(), &path, cfg).unwrap();
    for step in 0..10 {
        writer.send(&rows(step, 100)).unwrap();
    }
    // The same records again (a replayed step): upserts, no duplicates.
    writer.send(&rows(3, 100)).unwrap();
    let report = writer.close(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.rollouts_written, 1100);
    assert_eq!(report.journal_bytes_left, 0);
    assert_eq!(store.count_rollouts("w1").await.unwrap(), 1000);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    store.close().await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test]
async fn outage_loses_nothing_and_catches_up() {
    let db = FreshDb::create().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = Store::connect(&via(&db.url, proxy.addr)).await.unwrap();
    let direct = Store::connect(&db.url).await.unwrap();
    new_run(&direct).await;
    let path = journal_path("outage");
    let cfg = WriterConfig {
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        ..WriterConfig::default()
    };
    let writer = StoreWriter::start(proxied.clone(), &path, cfg).unwrap();
    writer.send(&rows(0, 200)).unwrap();
    for _ in 0..100 {
        if direct.count_rollouts("w1").await.unwrap() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(direct.count_rollouts("w1").await.unwrap(), 200);

    proxy.cut();
    for step in 1..6 {
        writer.send(&rows(step, 200)).unwrap(); // never blocks on the dead database
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        direct.count_rollouts("w1").await.unwrap(),
        200,
        "nothing got through the cut link"
    );
    assert!(
        writer
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert!(
        std::fs::metadata(&path).unwrap().len() > 0,
        "the backlog waits in the journal"
    );

    proxy.restore();
    let report = writer.close(Duration::from_secs(60)).await.unwrap();
    assert_eq!(report.journal_bytes_left, 0);
    assert_eq!(direct.count_rollouts("w1").await.unwrap(), 1200);
    proxied.close().await;
    direct.close().await;
    std::fs::remove_file(&path).ok();
}

#[tokio::test]
async fn close_deadline_leaves_the_backlog_in_the_journal_for_the_next_start() {
    let db = FreshDb::create().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = Store::connect(&via(&db.url, proxy.addr)).await.unwrap();
    let direct = Store::connect(&db.url).await.unwrap();
    new_run(&direct).await;
    let path = journal_path("deadline");
    proxy.cut();
    let writer = StoreWriter::start(proxied.clone(), &path, WriterConfig::default()).unwrap();
    writer.send(&rows(0, 64)).unwrap();
    let err = writer.close(Duration::from_millis(500)).await.unwrap_err();
    assert!(err.to_string().contains("next start"), "{err}");
    assert_eq!(direct.count_rollouts("w1").await.unwrap(), 0);
    // The next start (database back) replays the journal.
    let writer = StoreWriter::start(direct.clone(), &path, WriterConfig::default()).unwrap();
    writer.close(Duration::from_secs(30)).await.unwrap();
    assert_eq!(direct.count_rollouts("w1").await.unwrap(), 64);
    proxied.close().await;
    direct.close().await;
    std::fs::remove_file(&path).ok();
}

/// Tables and views with their columns, sorted, excluding sqlx's bookkeeping.
#[tokio::test]
async fn sqlite_schema_mirrors_postgres() {
    let db = FreshDb::create().await;
    let pg = sqlx::PgPool::connect(&db.url).await.unwrap();
    PG_MIGRATOR.run(&pg).await.unwrap();
    let mut pg_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    let lite = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
    SQLITE_MIGRATOR.run(&lite).await.unwrap();
    SQLITE_MIGRATOR.run(&lite).await.unwrap(); // idempotent
    let mut lite_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND m.name <> 'sqlite_sequence'",
    )
    .fetch_all(&lite)
    .await
    .unwrap();
    pg_cols.sort();
    lite_cols.sort();
    assert!(pg_cols.len() > 40, "{pg_cols:?}");
    assert_eq!(pg_cols, lite_cols);
    pg.close().await;
}

/// A database a newer trainer has migrated further (one more applied migration than this
/// binary knows) still opens: jobs of several trainer versions share one store.
#[tokio::test]
async fn a_store_migrated_by_a_newer_trainer_still_opens() {
    let db = FreshDb::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.close().await;
    let pg = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (29991231000000, 'from a newer trainer', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(&pg)
    .await
    .unwrap();
    pg.close().await;
    let again = Store::connect(&db.url).await;
    assert!(again.is_ok(), "{again:?}");
    again.unwrap().close().await;

    let path = std::env::temp_dir().join(format!("newer-{}.sqlite", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    Store::connect(&url).await.unwrap().close().await;
    let lite = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (29991231000000, 'from a newer trainer', 1, x'00', 0)",
    )
    .execute(&lite)
    .await
    .unwrap();
    lite.close().await;
    let again = Store::connect(&url).await;
    assert!(again.is_ok(), "{again:?}");
    again.unwrap().close().await;
    std::fs::remove_file(&path).ok();
}
