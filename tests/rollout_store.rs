use serde_json::json;
use trainer::store::{RolloutRow, RunRecord, StepRecord, Store};

use crate::support::FreshDb;

fn row(run: &str, step: i32, prompt: &str, sample: i32, reward: f64) -> RolloutRow {
    RolloutRow {
        run_id: run.into(),
        step,
        prompt_id: prompt.into(),
        data_source: "store-test".into(),
        sample_idx: sample,
        prompt: "1+2=".into(),
        response: format!("\\boxed{{{sample}}}"),
        ground_truth: "3".into(),
        num_tokens: 9,
        finished: true,
        reward,
        verdict: if reward > 0.0 { "correct" } else { "incorrect" }.into(),
        extracted: Some(sample.to_string()),
        verifier_result: json!({"verdict": "correct", "elapsed_us": 5}),
        advantage: 0.5,
        mean_entropy: 0.25,
    }
}

async fn exercise(store: &Store) {
    let run = RunRecord {
        run_id: "r1".into(),
        method: "steer".into(),
        model: "tiny".into(),
        config: json!({"seed": 1}),
        git_rev: None,
    };
    store.create_run(&run).await.unwrap();
    store.create_run(&run).await.unwrap(); // idempotent
    let rows: Vec<RolloutRow> = (0..2500)
        .map(|i| row("r1", i / 100, &format!("p{}", i % 10), (i % 100) / 10, 0.0))
        .collect();
    store.insert_rollouts(&rows).await.unwrap();
    assert_eq!(store.count_rollouts("r1").await.unwrap(), 2500);
    // Replaying a step (crash, resume) upserts: no duplicates, latest values win.
    let replay: Vec<RolloutRow> = rows[..100]
        .iter()
        .map(|r| RolloutRow {
            reward: 1.0,
            ..r.clone()
        })
        .collect();
    store.insert_rollouts(&replay).await.unwrap();
    assert_eq!(store.count_rollouts("r1").await.unwrap(), 2500);
    let step = StepRecord {
        run_id: "r1".into(),
        step: 0,
        reward_mean: 0.5,
        accuracy: 0.5,
        entropy: 0.2,
        loss: -0.1,
        grad_norm: 0.3,
        clip_frac_low: 0.0,
        clip_frac_high: 0.01,
        response_len_mean: 9.0,
        steer_w_mean: 0.98,
        steer_w_min: 0.8,
        steer_w_max: 1.0,
        steer_w_frac_below_099: 0.1,
        predicted_entropy_change: -0.2,
        coupled_predicted_entropy_change: Some(-1e-4),
        head_step_entropy_change: Some(2e-4),
        realised_entropy_change: None,
        skipped: false,
        timings: json!({"train": 0.1}),
    };
    store.insert_step(&step).await.unwrap();
    store
        .insert_step(&StepRecord {
            loss: -0.2,
            realised_entropy_change: Some(-3e-4),
            ..step
        })
        .await
        .unwrap();
    store.finish_run("r1").await.unwrap();
    // A rollout for an unknown run violates the foreign key.
    assert!(
        store
            .insert_rollouts(&[row("nope", 0, "p", 0, 0.0)])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn postgres_store_upserts_and_migrations_are_idempotent() {
    let db = FreshDb::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    exercise(&store).await;
    let Store::Postgres(pool) = &store else {
        panic!("expected postgres")
    };
    let rewarded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rollouts WHERE run_id = 'r1' AND reward = 1.0")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(rewarded, 100);
    let loss: f64 = sqlx::query_scalar("SELECT loss FROM steps WHERE run_id = 'r1' AND step = 0")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!((loss + 0.2).abs() < 1e-12);
    let (predicted, head_step, realised): (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT coupled_predicted_entropy_change, head_step_entropy_change, \
             realised_entropy_change FROM steps WHERE run_id = 'r1' AND step = 0",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        (predicted, head_step, realised),
        (Some(-1e-4), Some(2e-4), Some(-3e-4))
    );
    let finished: bool =
        sqlx::query_scalar("SELECT finished_at IS NOT NULL FROM runs WHERE run_id = 'r1'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(finished);
    store.close().await;
    // Connecting again re-runs the migrator: already applied, nothing to do, no error.
    let again = Store::connect(&db.url).await.unwrap();
    assert_eq!(again.count_rollouts("r1").await.unwrap(), 2500);
    again.close().await;
}

#[tokio::test]
async fn sqlite_store_upserts_and_migrations_are_idempotent() {
    let dir = std::env::temp_dir().join(format!("e2e-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    exercise(&store).await;
    store.close().await;
    let again = Store::connect(&url).await.unwrap();
    assert_eq!(again.count_rollouts("r1").await.unwrap(), 2500);
    again.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn unsupported_url_is_a_clear_error() {
    let err = Store::connect("mysql://x").await.unwrap_err();
    assert!(
        err.to_string().contains("unsupported database URL"),
        "{err}"
    );
}
