//! A training run, top to bottom: build the model and optimizer (or resume them from the
//! checkpoint), open the rollout store, run the format warm-up, then for each step run one RL
//! step ([`crate::step`]: sample → grade → advantage → score → update → record), store its
//! rollouts and metrics, checkpoint and evaluate; at the end, evaluate and save the policy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_nn::VarMap;
use indicatif::{ProgressBar, ProgressStyle};
use protocol::client::{ClientError, RetryPolicy, VerifierClient};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::runtime::Handle;

use crate::checkpoint::{self, CheckpointError, CheckpointState};
use crate::config::{ConfigError, TrainConfig};
use crate::eval::{self, EvalError, EvalResult};
use crate::optim::AdamW;
use crate::reward::Grader;
use crate::step::{self, StepContext, record, step_seed};
use crate::store::{
    JournalRecord, RunRecord, Store, StoreError, StoreWriter, WriterConfig, WriterError,
};
use crate::task::TaskError;
use crate::tokenizer::TokenizerError;

pub use crate::step::StepMetrics;
pub use crate::step::score::token_batch;
pub use crate::warmup::format_warmup;
pub use crate::weights::{detached_view, params_of};

/// Training failures.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Tensor math failed.
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// The verifier could not be reached or rejected a request.
    #[error("verifier: {0}")]
    Verifier(#[from] ClientError),
    /// The rollout store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store writer failed, or could not drain before the end of the run.
    #[error("store writer: {0}")]
    Writer(#[from] WriterError),
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Tokenizing failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The task could not be loaded.
    #[error("task: {0}")]
    Task(#[from] TaskError),
    /// The config does not fit the model or task.
    #[error("config: {0}")]
    Config(String),
    /// Building the starting model (random init or a pretrained file).
    #[error(transparent)]
    Source(#[from] crate::model::source::SourceError),
    /// Evaluating the policy.
    #[error("evaluation: {0}")]
    Eval(#[from] EvalError),
    /// Run directory I/O.
    #[error("run directory: {0}")]
    Io(#[from] std::io::Error),
    /// The compute device could not be opened.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
}

impl From<ConfigError> for TrainError {
    fn from(e: ConfigError) -> Self {
        TrainError::Config(e.to_string())
    }
}

/// Where rollouts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// `sqlite://RUN_DIR/rollouts.sqlite`.
    RunDirSqlite,
    /// A `postgres://…` or `sqlite://…` URL.
    Url(String),
    /// No store (benchmarks only: nothing is recorded).
    Disabled,
}

/// How long a run waits for an unreachable or overloaded verifier by default: 300 s.
pub const DEFAULT_VERIFIER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// Where a run reads and writes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory for the run's files: checkpoint, store journal, the SQLite store by default.
    pub run_dir: PathBuf,
    /// Where graded rollouts and step metrics go.
    pub store: StoreTarget,
    /// Base URL of the verifier (or several, comma-separated).
    pub verifier_url: String,
    /// How long an unreachable or overloaded verifier is waited for (retrying with backoff)
    /// before the run fails. A retried batch is graded again from scratch and stored once.
    pub verifier_patience: std::time::Duration,
    /// Continue the run checkpointed in `run_dir` (same run id, next step) instead of starting
    /// a new one.
    pub resume: bool,
    /// Draw a progress bar and print a line per step.
    pub progress: bool,
    /// Where the model, rollouts and optimizer state live. Default CPU.
    pub device: crate::device::ComputeDevice,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Evaluations: (steps taken, result); the last one is after the final step.
    pub evals: Vec<(usize, EvalResult)>,
    /// The run's id in the store.
    pub run_id: String,
    /// Per-step metrics.
    pub history: Vec<StepMetrics>,
    /// Rollout rows written.
    pub rollouts_written: usize,
    /// The store URL used.
    pub database_url: String,
    /// Whether evaluation used held-out problems, never trained on.
    pub eval_held_out: bool,
}

/// How long the end of a run waits for the store to drain before leaving the rest in the
/// journal for the next start.
pub const STORE_DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// Runs training to completion. Blocking: call it from a thread where `rt.block_on` is
/// allowed (e.g. inside `tokio::task::spawn_blocking`, or a plain thread).
pub fn run(cfg: &TrainConfig, opts: &RunOptions, rt: &Handle) -> Result<RunSummary, TrainError> {
    // The task, the policy and its optimizer; on `--resume`, the checkpoint's weights and state.
    let device = opts.device.open()?;
    let task = cfg.task.load(&cfg.reward)?;
    let mut varmap = VarMap::new();
    let start = crate::model::source::start(cfg.origin()?, cfg.precision, &varmap, &device)?;
    let (policy, tok) = (&start.policy, &start.tokenizer);
    // π_old scoring uses a detached view that shares storage with the Vars, so it sees every
    // update and builds no autograd graph; each step's rollouts sample from a stacked copy of it.
    let frozen_view = detached_view(&varmap, policy)?;
    let params = params_of(&varmap)?;
    let mut opt = AdamW::new(params.clone(), cfg.optim)?;
    let config_json = serde_json::to_value(cfg).map_err(|e| TrainError::Config(e.to_string()))?;
    std::fs::create_dir_all(&opts.run_dir)?;
    let resumed = if opts.resume {
        let state = checkpoint::load(&opts.run_dir, &mut varmap, &mut opt, &device)?;
        if without_steps(&state.config) != without_steps(&config_json) {
            return Err(TrainError::Config(
                "--resume with a different config than the checkpoint's (only `steps` may change)"
                    .into(),
            ));
        }
        Some(state)
    } else {
        None
    };
    let run_id = resumed.as_ref().map_or_else(
        || new_run_id(cfg.algo.method.as_str()),
        |s| s.run_id.clone(),
    );
    let first_step = resumed.as_ref().map_or(0, |s| s.next_step);

    // The store (the run's row, then a journaled writer) and the verifier.
    let (store, database_url) = open_store(&opts.store, &opts.run_dir, rt)?;
    let writer = match &store {
        Some(store) => {
            rt.block_on(store.create_run(&RunRecord {
                run_id: run_id.clone(),
                method: cfg.algo.method.as_str().to_string(),
                model: start.description.clone(),
                config: config_json.clone(),
                git_rev: option_env!("TRAINER_GIT_REV").map(str::to_string),
            }))?;
            let _guard = rt.enter();
            Some(StoreWriter::start(
                store.clone(),
                &opts.run_dir.join(JOURNAL_FILE),
                WriterConfig::default(),
            )?)
        }
        None => None,
    };
    let client = VerifierClient::with_retry(
        &opts.verifier_url,
        RetryPolicy::patient(opts.verifier_patience),
    )?;

    let bar = progress_bar(opts.progress, cfg.steps.saturating_sub(first_step));
    let say = |line: String| {
        if opts.progress {
            bar.suspend(|| println!("{line}"));
        }
    };
    say(match &resumed {
        Some(_) => format!(
            "run {run_id}: resuming at step {} of {}, store {database_url}",
            first_step + 1,
            cfg.steps
        ),
        None => format!(
            "run {run_id}: {} steps of {}, store {database_url}",
            cfg.steps,
            cfg.algo.method.as_str()
        ),
    });

    // Format warm-up (a fresh run only), and the frozen reference for a KL penalty.
    if resumed.is_none() && cfg.warmup.steps > 0 {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let nll = format_warmup(cfg, &task, policy, &params, tok, &device, &mut rng)?;
        say(format!(
            "format warm-up: {} steps, final NLL {nll:.3}",
            cfg.warmup.steps
        ));
    }
    let reference = if cfg.algo.params.kl.beta > 0.0 {
        Some(crate::weights::reference_model(
            &varmap,
            policy,
            &opts.run_dir,
            resumed.is_some(),
        )?)
    } else {
        None
    };

    let ctx = StepContext {
        cfg,
        task: &task,
        policy,
        reference: reference.as_ref(),
        frozen_view: &frozen_view,
        tok,
        device: &device,
        grader: Grader {
            client: &client,
            rt,
            math: cfg.task.grading.as_ref(),
            code: &cfg.reward.code,
        },
    };
    let metrics_path = opts.run_dir.join(METRICS_FILE);
    let mut evals = Vec::new();
    if resumed.is_some() {
        keep_lines(&metrics_path, |step| step < first_step)?;
        // Evaluations up to the resumed step stay; the one after it may be redone.
        keep_lines(&opts.run_dir.join(EVAL_FILE), |step| step <= first_step)?;
        evals = read_evals(&opts.run_dir.join(EVAL_FILE))?;
    } else {
        // A fresh run owns the directory's per-step files (a rerun there starts them anew).
        for f in [METRICS_FILE, EVAL_FILE] {
            match std::fs::remove_file(opts.run_dir.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        if cfg.eval.at_start {
            let e = evaluate_now(&ctx, 0, &opts.run_dir)?;
            say(eval_line(0, &e));
            evals.push((0, e));
        }
    }
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)?;
    let mut history = Vec::with_capacity(cfg.steps.saturating_sub(first_step));
    let mut rollouts_written = 0usize;
    for step in first_step..cfg.steps {
        let (rows, mut metrics) = step::rl_step(&ctx, &mut opt, &run_id, step)?;

        // Rows and the step record are journaled before the checkpoint below: a kill after it
        // can never lose them.
        let t = Instant::now();
        if let Some(w) = &writer {
            let mut records: Vec<JournalRecord> =
                rows.into_iter().map(JournalRecord::Rollout).collect();
            rollouts_written += records.len();
            records.push(JournalRecord::Step(record::step_record(&run_id, &metrics)));
            w.send(&records)?;
        }
        metrics.timings.insert("store", t.elapsed().as_secs_f64());
        // Written before the checkpoint: a run killed between the two redoes this step on
        // `--resume`, which first drops the lines of steps it will redo.
        let line = record::metrics_line(&run_id, &metrics, cfg.algo.method.as_str());
        writeln!(metrics_file, "{line}")?;
        metrics_file.flush()?;

        if (step + 1) % cfg.checkpoint_every == 0 || step + 1 == cfg.steps {
            let state = CheckpointState {
                run_id: run_id.clone(),
                next_step: step + 1,
                optimizer: opt.state().1,
                config: config_json.clone(),
            };
            checkpoint::save(&opts.run_dir, &varmap, &opt, &state)?;
        }
        say(record::step_line(&metrics, cfg.steps));
        bar.inc(1);
        history.push(metrics);
        if cfg.eval.every > 0 && (step + 1) % cfg.eval.every == 0 && step + 1 < cfg.steps {
            let e = evaluate_now(&ctx, step + 1, &opts.run_dir)?;
            say(eval_line(step + 1, &e));
            evals.push((step + 1, e));
        }
    }
    bar.finish_and_clear();

    // The final evaluation, the final policy in the Hugging Face layout (loadable by other
    // tools), and the store drained.
    let final_eval = evaluate_now(&ctx, cfg.steps, &opts.run_dir)?;
    say(eval_line(cfg.steps, &final_eval));
    evals.push((cfg.steps, final_eval));
    crate::model::hf::save(
        &opts.run_dir.join(FINAL_DIR),
        &start.config,
        &varmap,
        Some(tok),
    )
    .map_err(|e| TrainError::Config(format!("saving the final model: {e}")))?;
    if let Some(w) = writer {
        w.send(&[JournalRecord::FinishRun {
            run_id: run_id.clone(),
        }])?;
        let report = rt.block_on(w.close(STORE_DRAIN_DEADLINE))?;
        if report.retries > 0 {
            say(format!(
                "store: {} writes retried while the database was unreachable",
                report.retries
            ));
        }
    }
    if let Some(store) = store {
        rt.block_on(store.close());
    }
    Ok(RunSummary {
        evals,
        run_id,
        history,
        rollouts_written,
        database_url,
        eval_held_out: task.has_held_out(),
    })
}

/// Connects the store `target` names (`None` for [`StoreTarget::Disabled`]) and its URL.
fn open_store(
    target: &StoreTarget,
    run_dir: &Path,
    rt: &Handle,
) -> Result<(Option<Store>, String), TrainError> {
    let url = match target {
        StoreTarget::Disabled => return Ok((None, "none".to_string())),
        StoreTarget::Url(u) => u.clone(),
        StoreTarget::RunDirSqlite => {
            format!("sqlite://{}", run_dir.join("rollouts.sqlite").display())
        }
    };
    Ok((Some(rt.block_on(Store::connect(&url))?), url))
}

/// Evaluation results, one JSON object per line, in the run directory.
pub const EVAL_FILE: &str = "eval.jsonl";

/// Evaluates the current policy on the task's evaluation problems and appends to `eval.jsonl`.
/// Every evaluation of a run draws its samples from the same seed, so two of them differ only
/// by the policy.
fn evaluate_now(
    ctx: &StepContext<'_>,
    steps_taken: usize,
    run_dir: &std::path::Path,
) -> Result<EvalResult, TrainError> {
    let cfg = ctx.cfg;
    let seed = step_seed(cfg.seed ^ 0xE7A1, 0);
    let policy = eval::Policy {
        model: ctx.frozen_view,
        tok: ctx.tok,
        max_new_tokens: cfg.rollout.sampling.max_new_tokens,
        stop: &cfg.rollout.stop,
    };
    let result = eval::evaluate(
        policy,
        ctx.task.eval_problems(),
        &cfg.eval,
        seed,
        ctx.grader,
    )?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(EVAL_FILE))?;
    let mut line = serde_json::to_value(&result).unwrap_or_default();
    if let Some(o) = line.as_object_mut() {
        o.insert("step".into(), steps_taken.into());
    }
    writeln!(f, "{line}")?;
    Ok(result)
}

fn eval_line(steps_taken: usize, e: &EvalResult) -> String {
    let mut line = format!(
        "eval after {steps_taken} steps: avg@{k} {:.3}  pass@1 {:.3}  pass@{k} {:.3}  ({} problems)",
        e.avg_at_k,
        e.pass_at_1,
        e.pass_at_k,
        e.problems,
        k = e.k
    );
    if e.by_source.len() > 1 {
        for (src, s) in &e.by_source {
            line.push_str(&format!(
                "\n  {src}: avg@{k} {:.3}  pass@{k} {:.3}  ({} problems)",
                s.avg_at_k,
                s.pass_at_k,
                s.problems,
                k = e.k
            ));
        }
    }
    line
}

/// Subdirectory of the run directory holding the final policy (HF layout).
pub const FINAL_DIR: &str = "final";

/// Per-step metrics, one JSON object per line, in the run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// The evaluations recorded in `eval.jsonl`, with the steps taken before each; none where the
/// file is missing.
fn read_evals(path: &Path) -> Result<Vec<(usize, crate::eval::EvalResult)>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
            let step = v
                .get("step")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0) as usize;
            let e = serde_json::from_value(v)
                .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
            Ok((step, e))
        })
        .collect()
}

/// Keeps the lines of a per-step JSON Lines file (`metrics.jsonl`, `eval.jsonl`) whose `step`
/// passes `keep` (a resumed run redoes the others), replacing the file atomically. A missing
/// file is fine.
fn keep_lines(path: &Path, keep: impl Fn(usize) -> bool) -> Result<(), TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut kept = String::with_capacity(text.len());
    for line in text.lines() {
        let step = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("step")?.as_u64());
        // A torn last line (no valid JSON) is dropped with the redone steps.
        if step.is_some_and(|s| keep(s as usize)) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, kept)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Journal file name inside the run directory.
pub const JOURNAL_FILE: &str = "store-journal.jsonl";

/// A config JSON without its `steps` key (the one setting a resume may change).
fn without_steps(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("steps");
    }
    v
}

fn new_run_id(method: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let suffix: u32 = rand::random();
    format!("{method}-{ms}-{suffix:08x}")
}

fn progress_bar(enabled: bool, steps: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {elapsed} elapsed, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_keeps_only_the_metrics_of_finished_steps() {
        let dir = std::env::temp_dir().join(format!("keep-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(METRICS_FILE);
        // Steps 0..=3 written, the checkpoint says 3 is next, the last line was torn by a kill.
        std::fs::write(
            &path,
            "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4,\"lo",
        )
        .unwrap();
        keep_lines(&path, |s| s < 3).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n"
        );
        keep_lines(&dir.join("absent.jsonl"), |s| s < 3).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
