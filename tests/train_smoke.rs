use trainer::algo::Method;
use trainer::config::TrainConfig;
use trainer::device::{ComputeDevice, Precision};
use trainer::reward::spawn_embedded_verifier;
use trainer::store::Store;
use trainer::train::{self, RunOptions, StoreTarget};

use crate::support::FreshDb;

fn small_config(method: Method) -> TrainConfig {
    let mut cfg = TrainConfig::demo();
    cfg.steps = 3;
    cfg.warmup.steps = 20;
    cfg.eval.at_start = false;
    cfg.algo.method = method;
    cfg
}

/// Options for a fresh (not resumed) run that keeps its rollouts in the run directory's SQLite file.
fn sqlite_opts(run_dir: &std::path::Path, verifier_url: &str) -> RunOptions {
    RunOptions {
        run_dir: run_dir.to_path_buf(),
        store: StoreTarget::RunDirSqlite,
        verifier_url: verifier_url.to_string(),
        verifier_patience: train::DEFAULT_VERIFIER_PATIENCE,
        resume: false,
        progress: false,
        device: ComputeDevice::Cpu,
    }
}

async fn run_blocking(cfg: TrainConfig, opts: RunOptions) -> train::RunSummary {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || train::run(&cfg, &opts, &handle))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steer_run_writes_every_rollout_to_postgres() {
    let db = FreshDb::create().await;
    let verifier = spawn_embedded_verifier().await.unwrap();
    let cfg = small_config(Method::Steer);
    let expected = cfg.steps * cfg.rollout.prompts_per_step * cfg.rollout.group_size;
    let run_dir = std::env::temp_dir().join(format!("e2e-train-pg-{}", std::process::id()));
    let opts = RunOptions {
        run_dir: run_dir.clone(),
        store: StoreTarget::Url(db.url.clone()),
        verifier_url: verifier.url.clone(),
        verifier_patience: train::DEFAULT_VERIFIER_PATIENCE,
        resume: false,
        progress: false,
        device: ComputeDevice::Cpu,
    };
    let summary = run_blocking(cfg.clone(), opts).await;
    assert_eq!(summary.history.len(), cfg.steps);
    assert_eq!(summary.rollouts_written, expected);
    for m in &summary.history {
        assert!(
            m.loss.is_finite() && m.grad_norm.is_finite() && m.entropy > 0.0,
            "{m:?}"
        );
        assert!(
            m.weights.min >= 0.8 - 1e-6 && m.weights.max <= 1.0 + 1e-6,
            "{m:?}"
        );
    }

    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store.count_rollouts(&summary.run_id).await.unwrap(),
        expected as i64
    );
    let Store::Postgres(pool) = &store else {
        panic!("expected postgres")
    };
    let (steps, bad): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM steps WHERE run_id = $1), \
                (SELECT COUNT(*) FROM rollouts WHERE run_id = $1 AND (verdict = '' OR response IS NULL \
                 OR reward NOT IN (0, 1) OR (verdict = 'correct') <> (reward = 1)))",
    )
    .bind(&summary.run_id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((steps, bad), (cfg.steps as i64, 0));
    store.close().await;
    std::fs::remove_dir_all(&run_dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpo_run_defaults_to_sqlite_in_the_run_dir() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let cfg = small_config(Method::Grpo);
    let run_dir = std::env::temp_dir().join(format!("e2e-train-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let opts = sqlite_opts(&run_dir, &verifier.url);
    let summary = run_blocking(cfg.clone(), opts).await;
    assert!(run_dir.join("rollouts.sqlite").exists());
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            run_dir.join(train::FINAL_DIR).join(f).is_file(),
            "final/{f}"
        );
    }
    assert_eq!(
        Some(trainer::model::hf::read_config(&run_dir.join(train::FINAL_DIR)).unwrap()),
        cfg.model
    );
    // The final evaluation: every evaluation problem of the task (the demo's held-out lists),
    // k samples each, also in eval.jsonl.
    let (steps_taken, e) = summary.evals.last().cloned().unwrap();
    let n_problems = cfg.task.load(&cfg.reward).unwrap().eval_problems().len();
    assert_eq!(
        (steps_taken, e.problems, e.k),
        (cfg.steps, n_problems, cfg.eval.k)
    );
    assert!((0.0..=1.0).contains(&e.avg_at_k) && e.pass_at_k >= e.pass_at_1 - 1e-12);
    assert_eq!(
        std::fs::read_to_string(run_dir.join(train::EVAL_FILE))
            .unwrap()
            .lines()
            .count(),
        1
    );
    let store = Store::connect(&summary.database_url).await.unwrap();
    let expected = cfg.steps * cfg.rollout.prompts_per_step * cfg.rollout.group_size;
    assert_eq!(
        store.count_rollouts(&summary.run_id).await.unwrap(),
        expected as i64
    );
    assert!(
        summary.history.iter().all(|m| m.weights.mean == 1.0),
        "GRPO does not reweight"
    );
    store.close().await;

    // The saved directory is a starting point: `[pretrained] hf` loads its architecture, weights
    // and tokenizer (EOS from tokenizer_config.json), and a run trains on from it.
    let final_dir = run_dir.join(train::FINAL_DIR);
    assert!(final_dir.join("tokenizer_config.json").is_file());
    let mut next = cfg.clone();
    next.model = None;
    next.pretrained = Some(trainer::config::PretrainedConfig {
        gguf: None,
        hf: Some(final_dir.clone()),
    });
    next.steps = 1;
    next.warmup.steps = 0;
    next.validate().unwrap();
    let varmap = candle_nn::VarMap::new();
    let start = trainer::model::source::start(
        next.origin().unwrap(),
        next.precision,
        &varmap,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(Some(&start.config), cfg.model.as_ref());
    assert_eq!(start.tokenizer.eos_id(), trainer::tokenizer::EOS_ID);
    let saved = candle_core::safetensors::load(
        final_dir.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let loaded: std::collections::HashMap<String, candle_core::Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    assert_eq!(loaded.len(), saved.len());
    for (name, t) in &saved {
        let diff = (&loaded[name] - t)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "{name}");
    }
    let resumed_dir = run_dir.join("from-final");
    let again = run_blocking(next, sqlite_opts(&resumed_dir, &verifier.url)).await;
    assert_eq!(again.history.len(), 1);
    std::fs::remove_dir_all(&run_dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_verifier_is_a_clear_error() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = small_config(Method::Grpo);
    cfg.warmup.steps = 0;
    let run_dir = std::env::temp_dir().join(format!("e2e-train-down-{}", std::process::id()));
    // Patience of 1 s: the client retries with backoff (0.1 + 0.2 + 0.4 + 0.8 s), then fails.
    let opts = RunOptions {
        verifier_patience: std::time::Duration::from_secs(1),
        ..sqlite_opts(&run_dir, &format!("http://127.0.0.1:{port}"))
    };
    let handle = tokio::runtime::Handle::current();
    let started = std::time::Instant::now();
    let err = tokio::task::spawn_blocking(move || train::run(&cfg, &opts, &handle))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(err.to_string().contains("5 attempts"), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    std::fs::remove_dir_all(&run_dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_run_repeats_the_uninterrupted_run_exactly() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let mut cfg = small_config(Method::Steer);
    cfg.steps = 4;
    // The first half below is a 2-step run; a rate schedule over the run's total steps would
    // differ between the two, so the rate is constant here.
    cfg.schedule = trainer::optim::LrSchedule::default();
    let base = std::env::temp_dir().join(format!("e2e-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let opts = |dir: &str, resume: bool| RunOptions {
        resume,
        ..sqlite_opts(&base.join(dir), &verifier.url)
    };
    let full = run_blocking(cfg.clone(), opts("full", false)).await;
    let mut first_half = cfg.clone();
    first_half.steps = 2;
    let part = run_blocking(first_half, opts("split", false)).await;
    let rest = run_blocking(cfg.clone(), opts("split", true)).await;
    assert_eq!(part.run_id, rest.run_id, "resume continues the same run");
    assert_eq!(
        rest.history.iter().map(|m| m.step).collect::<Vec<_>>(),
        vec![2, 3]
    );
    for (a, b) in full.history[2..].iter().zip(&rest.history) {
        assert_eq!(
            (
                a.reward_mean,
                a.loss,
                a.entropy,
                a.grad_norm,
                a.weights.mean
            ),
            (
                b.reward_mean,
                b.loss,
                b.entropy,
                b.grad_norm,
                b.weights.mean
            ),
            "step {}",
            a.step
        );
    }
    let store = Store::connect(&rest.database_url).await.unwrap();
    let expected = cfg.steps * cfg.rollout.prompts_per_step * cfg.rollout.group_size;
    assert_eq!(
        store.count_rollouts(&rest.run_id).await.unwrap(),
        expected as i64
    );
    store.close().await;
    // A config change other than `steps` is refused.
    let mut other = cfg.clone();
    other.optim.lr *= 2.0;
    let handle = tokio::runtime::Handle::current();
    let o = opts("split", true);
    let err = tokio::task::spawn_blocking(move || train::run(&other, &o, &handle))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("different config"), "{err}");
    std::fs::remove_dir_all(&base).ok();
}

/// Every method of STEER.md §3 runs two steps of `configs/tiny-cpu.toml` and writes metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_runs_two_steps_and_writes_metrics() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trainer/configs/tiny-cpu.toml"
    ))
    .unwrap();
    let base = std::env::temp_dir().join(format!("e2e-methods-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    for method in Method::ALL {
        let mut cfg = TrainConfig::from_toml(&text).unwrap();
        cfg.algo.method = method;
        cfg.algo.clip = method.default_clip();
        cfg.steps = 2;
        cfg.warmup.steps = 5;
        if method == Method::Grpo {
            cfg.algo.params.kl.beta = 0.05; // also exercise the reference model and KL term
        }
        let dir = base.join(method.as_str());
        let opts = sqlite_opts(&dir, &verifier.url);
        let summary = run_blocking(cfg, opts).await;
        assert_eq!(summary.history.len(), 2, "{method:?}");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join(train::METRICS_FILE))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{method:?}");
        for l in &lines {
            assert_eq!(l["method"], method.as_str());
            for key in [
                "reward_mean",
                "accuracy",
                "entropy",
                "loss",
                "grad_norm",
                "clip_frac_low",
                "steer_w_mean",
            ] {
                assert!(
                    l[key].as_f64().is_some_and(f64::is_finite),
                    "{method:?} {key}: {l}"
                );
            }
        }
        if method == Method::Grpo {
            assert!(
                lines.iter().all(|l| l["kl"].as_f64().is_some()),
                "KL reported when beta > 0"
            );
        }
        // Weights stay in their mapping's range (reweighting itself is checked by the golden tests).
        let (lo, hi) = match method {
            Method::Steer | Method::SteerCoupled => (0.8, 1.0),
            Method::SteerLinear => (0.8, 1.2),
            _ => (1.0, 1.0),
        };
        // steer-coupled reports its predicted and realised entropy change; the others do not.
        for l in &lines {
            for key in [
                "coupled_predicted_entropy_change",
                "realised_entropy_change",
            ] {
                if method == Method::SteerCoupled {
                    assert!(
                        l[key].as_f64().is_some_and(f64::is_finite),
                        "{method:?} {key}: {l}"
                    );
                } else {
                    assert!(l[key].is_null(), "{method:?} {key}: {l}");
                }
            }
        }
        for l in &lines {
            let (wmin, wmax) = (
                l["steer_w_min"].as_f64().unwrap(),
                l["steer_w_max"].as_f64().unwrap(),
            );
            assert!(
                wmin >= lo - 1e-6 && wmax <= hi + 1e-6,
                "{method:?}: weights in [{wmin}, {wmax}]"
            );
        }
    }
    // steer-coupled over the last block (the source side by reruns of the trainable model).
    let mut cfg = TrainConfig::from_toml(&text).unwrap();
    cfg.algo.method = Method::SteerCoupled;
    cfg.algo.steer_coupled.source = trainer::algo::SourceEstimate::TopBlocks { blocks: 1 };
    cfg.steps = 2;
    cfg.warmup.steps = 5;
    let dir = base.join("steer-coupled-top1");
    let summary = run_blocking(cfg, sqlite_opts(&dir, &verifier.url)).await;
    assert_eq!(summary.history.len(), 2);
    for m in &summary.history {
        assert!(
            m.weights.min >= 0.8 - 1e-6 && m.weights.max <= 1.0 + 1e-6 && m.weights.count > 0,
            "{m:?}"
        );
        assert!(
            m.entropy_change.predicted.is_some_and(f64::is_finite)
                && m.entropy_change.realised.is_some_and(f64::is_finite),
            "{m:?}"
        );
    }
    std::fs::remove_dir_all(&base).ok();
}

/// `precision = "bf16"`: bf16 forward passes over f32 master weights train the demo on the CPU
/// too (with the KL reference and STEER), the metrics are finite and the checkpoint stays f32.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bf16_compute_trains_with_f32_master_weights() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let mut cfg = TrainConfig::from_toml(&format!(
        "precision = \"bf16\"\n{}",
        trainer::config::DEMO_TOML
    ))
    .unwrap();
    assert_eq!(cfg.precision, Precision::Bf16);
    cfg.algo.method = Method::Steer;
    cfg.algo.params.kl.beta = 0.05;
    cfg.steps = 3;
    cfg.warmup.steps = 20;
    let dir = std::env::temp_dir().join(format!("e2e-bf16-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let summary = run_blocking(cfg, sqlite_opts(&dir, &verifier.url)).await;
    assert_eq!(summary.history.len(), 3);
    for m in &summary.history {
        assert!(
            m.loss.is_finite() && m.grad_norm.is_finite() && m.entropy > 0.0,
            "{m:?}"
        );
    }
    // Some step had rewards that differ within a group, so gradients flowed through bf16.
    assert!(
        summary.history.iter().any(|m| m.grad_norm > 0.0),
        "{:?}",
        summary.history
    );
    let state = trainer::checkpoint::read_state(&dir).unwrap();
    assert_eq!(state.config["precision"], "bf16");
    let weights = candle_core::safetensors::load(
        dir.join("checkpoint").join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert!(!weights.is_empty());
    assert!(
        weights
            .values()
            .all(|t| t.dtype() == candle_core::DType::F32)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `ppo_epochs` passes in mini-batches: 2 epochs × (64 responses / 16 per mini-batch) = 8
/// optimizer steps per rollout batch, all against the same π_old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ppo_epochs_and_mini_batches_take_several_optimizer_steps() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let mut cfg = small_config(Method::Steer);
    cfg.steps = 2;
    cfg.algo.ppo_epochs = 2;
    cfg.algo.mini_batch_size = Some(16);
    let run_dir = std::env::temp_dir().join(format!("e2e-ppo-epochs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let opts = sqlite_opts(&run_dir, &verifier.url);
    let summary = run_blocking(cfg, opts).await;
    for m in &summary.history {
        assert_eq!(m.optimizer_steps, 8, "{m:?}");
        assert!(m.loss.is_finite() && m.grad_norm.is_finite());
    }
    std::fs::remove_dir_all(&run_dir).ok();
}

/// Dynamic sampling keeps only groups whose rewards differ, backfilling with fresh prompts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_sampling_trains_only_on_informative_groups() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let mut cfg = small_config(Method::Grpo);
    cfg.steps = 2;
    cfg.warmup.steps = 60;
    cfg.rollout.prompts_per_step = 2;
    cfg.rollout.dynamic_sampling = true;
    let run_dir = std::env::temp_dir().join(format!("e2e-dynamic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let opts = sqlite_opts(&run_dir, &verifier.url);
    let summary = run_blocking(cfg, opts).await;
    let store = Store::connect(&summary.database_url).await.unwrap();
    let Store::Sqlite(pool) = &store else {
        panic!("expected sqlite")
    };
    let groups: Vec<(i64, String, f64, f64)> = sqlx::query_as(
        "SELECT step, prompt_id, MIN(reward), MAX(reward) FROM rollouts WHERE run_id = $1 GROUP BY step, prompt_id",
    )
    .bind(&summary.run_id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(!groups.is_empty());
    for (step, prompt, lo, hi) in &groups {
        assert!(lo < hi, "step {step} kept an uninformative group {prompt}");
    }
    let dropped: usize = summary.history.iter().map(|m| m.groups_dropped).sum();
    println!(
        "dynamic sampling: kept {} groups, dropped {dropped}",
        groups.len()
    );
    store.close().await;
    std::fs::remove_dir_all(&run_dir).ok();
}

/// Training on prompts from a JSON Lines file in verl's row schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trains_on_a_jsonl_dataset() {
    let verifier = spawn_embedded_verifier().await.unwrap();
    let run_dir = std::env::temp_dir().join(format!("e2e-jsonl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).unwrap();
    let data = run_dir.join("train.jsonl");
    let rows: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({
                "data_source": if i % 2 == 0 { "toy" } else { "toy-odd" },
                "prompt": [{"role": "user", "content": format!("{i}*2=")}],
                "reward_model": {"ground_truth": (i * 2).to_string()},
                "id": format!("dbl-{i}"),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&data, rows.join("\n")).unwrap();
    let mut cfg = small_config(Method::Steer);
    cfg.task = trainer::task::TaskConfig {
        max_operand: None,
        dataset: Some(data),
        largest: None,
        programs: None,
        eval_dataset: None,
        grading: None,
    };
    let opts = sqlite_opts(&run_dir, &verifier.url);
    let summary = run_blocking(cfg.clone(), opts).await;
    assert_eq!(
        summary.rollouts_written,
        cfg.steps * 6.min(cfg.rollout.prompts_per_step) * cfg.rollout.group_size
    );
    let last = &summary.evals.last().unwrap().1;
    assert_eq!(last.problems, 6);
    // Per data source: "toy" for even rows, "toy-odd" for odd ones, 3 problems each, and the
    // overall avg@k is their problem-weighted mean.
    let (even, odd) = (&last.by_source["toy"], &last.by_source["toy-odd"]);
    assert_eq!((even.problems, odd.problems), (3, 3));
    assert!((last.avg_at_k - (even.avg_at_k + odd.avg_at_k) / 2.0).abs() < 1e-12);
    let store = Store::connect(&summary.database_url).await.unwrap();
    let Store::Sqlite(pool) = &store else {
        panic!("expected sqlite")
    };
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT prompt_id FROM rollouts WHERE run_id = $1")
            .bind(&summary.run_id)
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(ids.iter().all(|id| id.starts_with("dbl-")), "{ids:?}");
    store.close().await;
    std::fs::remove_dir_all(&run_dir).ok();
}
