//! The training loop, top to bottom: format warm-up, then for each step sample G responses per
//! prompt, grade them with the verifier over HTTP, compute group advantages, score the
//! rollouts under π_old, take one optimizer step over micro-batches, and store every graded
//! rollout and the step's metrics.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use indicatif::{ProgressBar, ProgressStyle};
use protocol::MathItem;
use protocol::client::{ClientError, VerifierClient};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::algo::{
    self, AdvantageKind, LossConfig, Method, PolicyOutputs, TokenBatch, WeightStats, advantage,
    logprob,
};
use crate::checkpoint::{self, CheckpointError, CheckpointState};
use crate::config::TrainConfig;
use crate::model::Decoder;
use crate::optim::{AdamW, AdamWConfig, GradAccumulator, Param};
use crate::reward;
use crate::rollout::{self, Packed, Sample};
use crate::store::{
    JournalRecord, RolloutRow, RunRecord, StepRecord, Store, StoreError, StoreWriter, WriterConfig,
    WriterError,
};
use crate::task::{Task, TaskError};
use crate::tokenizer::{TextTokenizer, TokenizerError};

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
    /// Run directory I/O.
    #[error("run directory: {0}")]
    Io(#[from] std::io::Error),
    /// The compute device could not be opened.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
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

/// One step's metrics.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Step (0-based).
    pub step: usize,
    /// Mean reward.
    pub reward_mean: f64,
    /// Fraction correct.
    pub accuracy: f64,
    /// Token-mean π_old entropy of the responses, nats.
    pub entropy: f64,
    /// Loss.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Low/high clip fractions.
    pub clip_frac_low: f64,
    /// High-side clip fraction.
    pub clip_frac_high: f64,
    /// Mean response length, tokens.
    pub response_len_mean: f64,
    /// STEER weights over the step's tokens.
    #[serde(skip)]
    pub weights: WeightStats,
    /// Predicted entropy change (sum, without −η/L).
    pub predicted_entropy_change: f64,
    /// Token-mean KL to the reference policy, when `kl.beta > 0`.
    pub kl: Option<f64>,
    /// Learning rate used for the step.
    pub lr: f64,
    /// Optimizer steps taken on this batch (`ppo_epochs` × mini-batches).
    pub optimizer_steps: usize,
    /// Groups dropped by dynamic sampling for having all-equal rewards.
    pub groups_dropped: usize,
    /// Non-finite gradient: step skipped.
    pub skipped: bool,
    /// Seconds per phase.
    pub timings: HashMap<&'static str, f64>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Evaluations: (steps taken, result); the last one is after the final step.
    pub evals: Vec<(usize, crate::eval::EvalResult)>,
    /// The run's id in the store.
    pub run_id: String,
    /// Per-step metrics.
    pub history: Vec<StepMetrics>,
    /// Rollout rows written.
    pub rollouts_written: usize,
    /// The store URL used.
    pub database_url: String,
}

/// How long the end of a run waits for the store to drain before leaving the rest in the
/// journal for the next start.
pub const STORE_DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// Runs training to completion. Blocking: call it from a thread where `rt.block_on` is
/// allowed (e.g. inside `tokio::task::spawn_blocking`, or a plain thread).
pub fn run(cfg: &TrainConfig, opts: &RunOptions, rt: &Handle) -> Result<RunSummary, TrainError> {
    let device = opts.device.open()?;
    let task = cfg.task.load()?;
    let mut varmap = VarMap::new();
    let start = crate::model::source::start(cfg, &varmap, &device)?;
    let (model_cfg, policy, tok) = (start.config, start.policy, start.tokenizer);
    // π_old scoring uses a detached view that shares storage with the Vars, so it sees every
    // update and builds no autograd graph; each step's rollouts sample from a stacked copy of it.
    let frozen_view = detached_view(&varmap, &policy)?;
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

    let (store, database_url) = match &opts.store {
        StoreTarget::Disabled => (None, "none".to_string()),
        target => {
            let url = match target {
                StoreTarget::Url(u) => u.clone(),
                _ => format!(
                    "sqlite://{}",
                    opts.run_dir.join("rollouts.sqlite").display()
                ),
            };
            (Some(rt.block_on(Store::connect(&url))?), url)
        }
    };
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
        protocol::client::RetryPolicy::patient(opts.verifier_patience),
    )?;

    let bar = progress_bar(opts.progress, cfg.steps.saturating_sub(first_step));
    let say = |line: String| {
        if opts.progress {
            bar.suspend(|| println!("{line}"));
        }
    };
    match &resumed {
        Some(_) => say(format!(
            "run {run_id}: resuming at step {} of {}, store {database_url}",
            first_step + 1,
            cfg.steps
        )),
        None => say(format!(
            "run {run_id}: {} steps of {}, store {database_url}",
            cfg.steps,
            cfg.algo.method.as_str()
        )),
    }
    if resumed.is_none() && cfg.warmup.steps > 0 {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let nll = format_warmup(cfg, &task, &policy, &params, &tok, &device, &mut rng)?;
        say(format!(
            "format warm-up: {} steps, final NLL {nll:.3}",
            cfg.warmup.steps
        ));
    }

    let reference = if cfg.algo.params.kl.beta > 0.0 {
        Some(reference_model(
            &varmap,
            &policy,
            &opts.run_dir,
            resumed.is_some(),
        )?)
    } else {
        None
    };
    let ctx = StepContext {
        cfg,
        task: &task,
        policy: &policy,
        reference: reference.as_ref(),
        frozen_view: &frozen_view,
        tok: &tok,
        device: &device,
        client: &client,
        rt,
    };
    let metrics_path = opts.run_dir.join(METRICS_FILE);
    if resumed.is_some() {
        keep_metrics_before(&metrics_path, first_step)?;
    }
    let mut metrics_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)?;
    let mut history = Vec::with_capacity(cfg.steps.saturating_sub(first_step));
    let mut evals = Vec::new();
    let mut rollouts_written = 0usize;
    for step in first_step..cfg.steps {
        let (rows, mut metrics) = rl_step(&ctx, &mut opt, &run_id, step)?;
        let t = Instant::now();
        if let Some(w) = &writer {
            // Journaled before the checkpoint below: a kill after it can never lose these rows.
            let mut records: Vec<JournalRecord> =
                rows.into_iter().map(JournalRecord::Rollout).collect();
            rollouts_written += records.len();
            records.push(JournalRecord::Step(step_record(&run_id, &metrics)));
            w.send(&records)?;
        }
        metrics.timings.insert("store", t.elapsed().as_secs_f64());
        let mut line = serde_json::to_value(step_record(&run_id, &metrics)).unwrap_or_default();
        if let Some(o) = line.as_object_mut() {
            o.insert("kl".into(), metrics.kl.into());
            o.insert("lr".into(), metrics.lr.into());
            o.insert("optimizer_steps".into(), metrics.optimizer_steps.into());
            o.insert("groups_dropped".into(), metrics.groups_dropped.into());
            o.insert("method".into(), cfg.algo.method.as_str().into());
        }
        // Written before the checkpoint: a run killed between the two redoes this step on
        // `--resume`, which first drops the lines of steps it will redo.
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
        say(step_line(&metrics, cfg.steps));
        bar.inc(1);
        history.push(metrics);
        if cfg.eval.every > 0 && (step + 1) % cfg.eval.every == 0 && step + 1 < cfg.steps {
            let e = evaluate_now(&ctx, step + 1, &opts.run_dir)?;
            say(eval_line(step + 1, &e));
            evals.push((step + 1, e));
        }
    }
    bar.finish_and_clear();
    let final_eval = evaluate_now(&ctx, cfg.steps, &opts.run_dir)?;
    say(eval_line(cfg.steps, &final_eval));
    evals.push((cfg.steps, final_eval));
    // The final policy in the Hugging Face layout, loadable by other tools.
    crate::model::hf::save(
        &opts.run_dir.join(FINAL_DIR),
        &model_cfg,
        &varmap,
        Some(&tok),
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
    })
}

/// Everything a step reads but does not change.
struct StepContext<'a> {
    cfg: &'a TrainConfig,
    /// The loaded task.
    task: &'a Task,
    policy: &'a Decoder,
    /// The frozen initial policy, when a KL penalty is configured.
    reference: Option<&'a Decoder>,
    frozen_view: &'a Decoder,
    tok: &'a TextTokenizer,
    device: &'a Device,
    client: &'a VerifierClient,
    rt: &'a Handle,
}

/// One RL step: sample, grade, score under π_old, update. Returns the graded rollouts and the
/// step's metrics. Its randomness comes from `(seed, step)` alone, so a resumed run repeats
/// exactly what an uninterrupted one does.
fn rl_step(
    ctx: &StepContext<'_>,
    opt: &mut AdamW,
    run_id: &str,
    step: usize,
) -> Result<(Vec<RolloutRow>, StepMetrics), TrainError> {
    let cfg = ctx.cfg;
    let device = ctx.device;
    let mut rng = StdRng::seed_from_u64(step_seed(cfg.seed, step));
    let mut timings = HashMap::new();

    // 1–2. Sample G responses per prompt and grade them with the verifier. With dynamic
    //      sampling, groups whose rewards are all equal (no learning signal) are dropped and
    //      fresh prompts are drawn until the batch is full or the rounds run out.
    let g = cfg.rollout.group_size;
    let (mut problems, mut samples, mut texts, mut results, mut rewards) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<f32>::new(),
    );
    let (mut generate_s, mut reward_s, mut groups_dropped) = (0f64, 0f64, 0usize);
    let mut used = std::collections::HashSet::new();
    let rounds = if cfg.rollout.dynamic_sampling {
        cfg.rollout.max_sampling_rounds.max(1)
    } else {
        1
    };
    // The sampler's copy with stacked projections, taken from this step's weights.
    let sampler = ctx.frozen_view.fused()?;
    for _round in 0..rounds {
        let need = cfg.rollout.prompts_per_step - problems.len();
        if need == 0 {
            break;
        }
        let t = Instant::now();
        let fresh: Vec<crate::task::Problem> = ctx
            .task
            .sample(&mut rng, need + used.len())
            .into_iter()
            .filter(|p| !used.contains(&p.id))
            .take(need)
            .collect();
        if fresh.is_empty() {
            break;
        }
        let mut group_samples: Vec<Sample> = Vec::with_capacity(fresh.len() * g);
        let stop = rollout::StopRule::new(ctx.tok, &cfg.rollout.stop);
        for p in &fresh {
            used.insert(p.id.clone());
            let ids = ctx.tok.encode(&ctx.tok.chat_text(&p.chat())?)?;
            group_samples.extend(rollout::sample_group(
                &sampler,
                &ids,
                g,
                &cfg.rollout.sampling,
                &stop,
                device,
                &mut rng,
            )?);
        }
        let group_texts = group_samples
            .iter()
            .map(|s| stop.text(&s.response_ids))
            .collect::<Result<Vec<_>, _>>()?;
        generate_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let items: Vec<MathItem> = group_texts
            .iter()
            .enumerate()
            .map(|(i, text)| MathItem {
                id: Some(format!("{}#{}", fresh[i / g].id, i % g)),
                response: text.clone(),
                ground_truth: fresh[i / g].answer.clone(),
                options: cfg.task.grading.clone(),
            })
            .collect();
        let graded = ctx.rt.block_on(reward::grade(ctx.client, items))?;
        reward_s += t.elapsed().as_secs_f64();
        for (k, p) in fresh.into_iter().enumerate() {
            let range = k * g..(k + 1) * g;
            let shaped: Vec<f64> = range
                .clone()
                .map(|i| {
                    cfg.rollout
                        .shaped_reward(graded[i].reward, group_samples[i].response_ids.len())
                })
                .collect();
            let uninformative = shaped.iter().all(|&r| r == shaped[0]);
            if cfg.rollout.dynamic_sampling && uninformative && rounds > 1 {
                groups_dropped += 1;
                continue;
            }
            problems.push(p);
            samples.extend_from_slice(&group_samples[range.clone()]);
            texts.extend_from_slice(&group_texts[range.clone()]);
            results.extend_from_slice(&graded[range]);
            rewards.extend(shaped.iter().map(|&r| r as f32));
        }
    }
    if problems.is_empty() {
        return Err(TrainError::Config(format!(
            "dynamic sampling found no prompt with differing rewards in {rounds} rounds; raise rollout.max_sampling_rounds"
        )));
    }
    timings.insert("generate", generate_s);
    timings.insert("reward", reward_s);
    let adv = match cfg.algo.method.advantage() {
        AdvantageKind::Grpo => advantage::grpo(&rewards, g, cfg.algo.norm_adv_by_std),
        AdvantageKind::Rloo => advantage::rloo(&rewards, g),
        AdvantageKind::Opo => {
            let lengths: Vec<usize> = samples.iter().map(|s| s.response_ids.len()).collect();
            advantage::opo(&rewards, &lengths, g)
        }
        AdvantageKind::WReinforce => {
            advantage::w_reinforce(&rewards, cfg.algo.params.w_reinforce_lambda)
        }
    };

    // 3. Score under π_old (before any update), per micro-batch.
    let t = Instant::now();
    let order: Vec<usize> = (0..samples.len()).collect();
    let mut micro = Vec::new();
    let mut row_entropy = vec![0f64; samples.len()];
    let (mut ent_sum, mut ent_tokens) = (0f64, 0usize);
    for chunk in order.chunks(cfg.algo.micro_batch_size) {
        let refs: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
        let packed = rollout::pack(&refs, device)?;
        let (old_logp, entropy) = logprob::score(
            ctx.frozen_view,
            &packed,
            cfg.rollout.sampling.temperature,
            true,
        )?;
        let entropy = entropy.expect("asked for");
        let entropy_host = entropy.flatten_all()?.to_vec1::<f32>()?;
        for (r, &i) in chunk.iter().enumerate() {
            let cells = r * packed.cols..(r + 1) * packed.cols;
            let (s, n) = cells
                .filter(|&c| packed.mask[c])
                .fold((0f64, 0usize), |(s, n), c| {
                    (s + f64::from(entropy_host[c]), n + 1)
                });
            row_entropy[i] = if n > 0 { s / n as f64 } else { 0.0 };
            ent_sum += s;
            ent_tokens += n;
        }
        let batch = token_batch(
            &packed,
            old_logp,
            entropy_host,
            chunk.iter().map(|&i| adv[i]),
            device,
        )?;
        micro.push((packed, batch));
    }
    timings.insert("score_old", t.elapsed().as_secs_f64());

    // 4. Optimizer steps: `ppo_epochs` passes over the batch in mini-batches; each mini-batch is
    //    one optimizer step, the mean over its micro-batches of their losses. π_old stays the
    //    policy that sampled the batch, so later mini-batches see ratios away from 1.
    let t = Instant::now();
    let (mut loss_sum, mut clip_low, mut clip_high, mut predicted) = (0f64, 0f64, 0f64, 0f64);
    let mut weights = WeightStats::default();
    let (mut kl_sum, mut kl_n) = (0f64, 0usize);
    let (mut grad_norm_sum, mut any_skipped, mut opt_steps, mut evaluated) =
        (0f64, false, 0usize, 0usize);
    let temperature = cfg.rollout.sampling.temperature;
    let lr = cfg.schedule.lr(cfg.optim.lr, step, cfg.steps);
    let micro_per_mini = cfg
        .algo
        .mini_batch_size
        .map_or(micro.len(), |m| m.div_ceil(cfg.algo.micro_batch_size))
        .max(1);
    for _epoch in 0..cfg.algo.ppo_epochs {
        for (mini_idx, mini) in micro.chunks(micro_per_mini).enumerate() {
            let mut acc = GradAccumulator::new(opt.params().len());
            let n_micro = mini.len() as f64;
            let mut mini_loss = 0f64;
            for (k, (packed, batch)) in mini.iter().enumerate() {
                // The entropy (with its gradient) only where the loss uses it.
                let (logp, entropy) = logprob::score(
                    ctx.policy,
                    packed,
                    temperature,
                    cfg.algo.method == Method::EntropyBonus,
                )?;
                let ref_logp = match ctx.reference {
                    Some(r) if cfg.algo.params.kl.beta > 0.0 => {
                        Some(logprob::score(r, packed, temperature, false)?.0)
                    }
                    _ => None,
                };
                let loss_cfg = LossConfig {
                    method: cfg.algo.method,
                    clip: &cfg.algo.clip,
                    steer: &cfg.algo.steer,
                    params: &cfg.algo.params,
                    agg: cfg.algo.loss_agg,
                    seed: step_seed(cfg.seed, step) ^ ((mini_idx * micro_per_mini + k) as u64),
                };
                let outputs = PolicyOutputs {
                    logp: &logp,
                    entropy: entropy.as_ref(),
                    ref_logp: ref_logp.as_ref(),
                };
                let (loss, stats) = algo::micro_batch_loss(&loss_cfg, &outputs, batch)?;
                if let Some(kl) = stats.kl {
                    kl_sum += kl;
                    kl_n += 1;
                }
                let scaled = (loss / n_micro)?;
                mini_loss += f64::from(scaled.to_scalar::<f32>()?);
                acc.add(opt.params(), &scaled.backward()?)?;
                clip_low += stats.clip_frac_low;
                clip_high += stats.clip_frac_high;
                predicted += stats.predicted_entropy_change;
                weights = weights.merge(stats.weights);
                evaluated += 1;
            }
            let outcome = opt.step(&acc.into_grads(), lr)?;
            loss_sum += mini_loss;
            grad_norm_sum += outcome.grad_norm;
            any_skipped |= outcome.skipped;
            opt_steps += 1;
        }
    }
    let (clip_low, clip_high) = (
        clip_low / evaluated.max(1) as f64,
        clip_high / evaluated.max(1) as f64,
    );
    let outcome = crate::optim::StepOutcome {
        grad_norm: grad_norm_sum / opt_steps.max(1) as f64,
        skipped: any_skipped,
    };
    let loss_sum = loss_sum / opt_steps.max(1) as f64;
    timings.insert("train", t.elapsed().as_secs_f64());

    let rows: Vec<RolloutRow> = samples
        .iter()
        .zip(&results)
        .enumerate()
        .map(|(i, (s, r))| RolloutRow {
            run_id: run_id.to_string(),
            step: step as i32,
            prompt_id: problems[i / g].id.clone(),
            sample_idx: (i % g) as i32,
            prompt: problems[i / g].prompt.clone(),
            response: texts[i].clone(),
            ground_truth: problems[i / g].answer.clone(),
            num_tokens: s.response_ids.len() as i32,
            finished: s.finished,
            reward: f64::from(rewards[i]),
            verdict: r.verdict.as_str().to_string(),
            extracted: r.extracted.clone(),
            verifier_result: serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
            advantage: f64::from(adv[i]),
            mean_entropy: row_entropy[i],
        })
        .collect();
    let n = samples.len() as f64;
    let metrics = StepMetrics {
        step,
        reward_mean: rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n,
        accuracy: results.iter().filter(|r| r.correct).count() as f64 / n,
        entropy: ent_sum / ent_tokens.max(1) as f64,
        loss: loss_sum,
        grad_norm: outcome.grad_norm,
        clip_frac_low: clip_low,
        clip_frac_high: clip_high,
        response_len_mean: samples
            .iter()
            .map(|s| s.response_ids.len() as f64)
            .sum::<f64>()
            / n,
        weights,
        predicted_entropy_change: predicted,
        kl: (kl_n > 0).then(|| kl_sum / kl_n as f64),
        lr,
        optimizer_steps: opt_steps,
        groups_dropped,
        skipped: outcome.skipped,
        timings,
    };
    Ok((rows, metrics))
}

/// Evaluation results, one JSON object per line, in the run directory.
pub const EVAL_FILE: &str = "eval.jsonl";

/// Evaluates the current policy on every problem of the task and appends to `eval.jsonl`.
fn evaluate_now(
    ctx: &StepContext<'_>,
    steps_taken: usize,
    run_dir: &std::path::Path,
) -> Result<crate::eval::EvalResult, TrainError> {
    let cfg = ctx.cfg;
    let seed = step_seed(cfg.seed ^ 0xE7A1, steps_taken);
    let result = crate::eval::evaluate(
        ctx.frozen_view,
        ctx.tok,
        ctx.task.eval_problems(),
        &cfg.eval,
        &cfg.rollout,
        seed,
        crate::eval::Grader {
            client: ctx.client,
            rt: ctx.rt,
            options: cfg.task.grading.as_ref(),
        },
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

fn eval_line(steps_taken: usize, e: &crate::eval::EvalResult) -> String {
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

/// Keeps the lines of `metrics.jsonl` for steps before `next_step` (a resumed run redoes the
/// others), replacing the file atomically. A missing file is fine.
fn keep_metrics_before(path: &Path, next_step: usize) -> Result<(), TrainError> {
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
        if step.is_some_and(|s| (s as usize) < next_step) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, kept)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The frozen reference policy: the weights at the start of RL, saved in the run directory so
/// a resumed run keeps the same reference.
fn reference_model(
    varmap: &VarMap,
    policy: &Decoder,
    run_dir: &std::path::Path,
    resumed: bool,
) -> Result<Decoder, TrainError> {
    let device = policy.device();
    let path = run_dir.join("reference.safetensors");
    let tensors: HashMap<String, Tensor> = if resumed && path.is_file() {
        candle_core::safetensors::load(&path, device)?
    } else {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
        let copies = data
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        drop(data);
        candle_core::safetensors::save(&copies, &path)?;
        copies
    };
    Ok(Decoder::new(
        policy.config(),
        VarBuilder::from_tensors(tensors, DType::F32, device),
    )?
    .with_compute_dtype(policy.compute_dtype()))
}

/// Journal file name inside the run directory.
pub const JOURNAL_FILE: &str = "store-journal.jsonl";

/// The seed of step `step`'s RNG: splitmix64 of `(seed, step)`.
fn step_seed(seed: u64, step: usize) -> u64 {
    let mut z = seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A config JSON without its `steps` key (the one setting a resume may change).
fn without_steps(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("steps");
    }
    v
}

/// Supervised warm-up on format-only examples; returns the last step's mean NLL.
pub(crate) fn format_warmup(
    cfg: &TrainConfig,
    task: &Task,
    policy: &Decoder,
    params: &[Param],
    tok: &TextTokenizer,
    device: &Device,
    rng: &mut StdRng,
) -> Result<f64, TrainError> {
    let mut opt = AdamW::new(
        params.to_vec(),
        AdamWConfig {
            lr: cfg.warmup.lr,
            ..cfg.optim
        },
    )?;
    let mut last = f64::NAN;
    for _ in 0..cfg.warmup.steps {
        let examples = (0..cfg.warmup.batch_size)
            .map(|_| {
                let (prompt, response) = task.format_example(rng);
                let mut response_ids = tok.encode(&response)?;
                response_ids.push(tok.eos_id());
                Ok(Sample {
                    prompt_ids: tok.encode(&tok.prompt_text(&prompt)?)?,
                    response_ids,
                    finished: true,
                })
            })
            .collect::<Result<Vec<_>, TokenizerError>>()?;
        let packed = rollout::pack(&examples.iter().collect::<Vec<_>>(), device)?;
        let logp = logprob::score(policy, &packed, 1.0, false)?.0;
        let mask = mask_tensor(&packed, device)?;
        let nll = algo::LossAgg::TokenMean.aggregate(&logp.neg()?, &mask)?;
        last = f64::from(nll.to_scalar::<f32>()?);
        let mut acc = GradAccumulator::new(opt.params().len());
        acc.add(opt.params(), &nll.backward()?)?;
        opt.step(&acc.into_grads(), cfg.warmup.lr)?;
    }
    Ok(last)
}

fn mask_tensor(packed: &Packed, device: &Device) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = packed
        .mask
        .iter()
        .map(|&b| f32::from(u8::from(b)))
        .collect();
    Tensor::from_vec(m, (packed.rows, packed.cols), device)
}

/// Builds the per-token inputs of one micro-batch; `adv` gives one advantage per row.
pub fn token_batch(
    packed: &Packed,
    old_logp: Tensor,
    entropy_old_host: Vec<f32>,
    adv: impl Iterator<Item = f32>,
    device: &Device,
) -> candle_core::Result<TokenBatch> {
    let row_adv: Vec<f32> = adv.collect();
    let adv_host = rollout::per_token(&row_adv, &packed.mask, packed.cols);
    Ok(TokenBatch {
        old_logp_host: old_logp.flatten_all()?.to_vec1::<f32>()?,
        old_logp,
        adv: Tensor::from_vec(adv_host.clone(), (packed.rows, packed.cols), device)?,
        mask: mask_tensor(packed, device)?,
        adv_host,
        entropy_old_host,
        mask_host: packed.mask.clone(),
    })
}

/// A model over detached views of the VarMap's tensors (shared storage, no graph): π_old's
/// view of the policy, and what the sampler's per-step [`Decoder::fused`] copy is taken from.
pub fn detached_view(varmap: &VarMap, policy: &Decoder) -> candle_core::Result<Decoder> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
    let tensors: HashMap<String, Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    drop(data);
    Ok(Decoder::new(
        policy.config(),
        VarBuilder::from_tensors(tensors, DType::F32, policy.device()),
    )?
    .with_compute_dtype(policy.compute_dtype()))
}

/// Trainable parameters; weight decay on matrices only.
pub fn params_of(varmap: &VarMap) -> candle_core::Result<Vec<Param>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::msg("varmap lock poisoned"))?;
    Ok(data
        .iter()
        .map(|(name, var)| Param {
            name: name.clone(),
            var: var.clone(),
            decay: var.rank() >= 2,
        })
        .collect())
}

fn new_run_id(method: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let suffix: u32 = rand::random();
    format!("{method}-{ms}-{suffix:08x}")
}

fn step_record(run_id: &str, m: &StepMetrics) -> StepRecord {
    StepRecord {
        run_id: run_id.to_string(),
        step: m.step as i32,
        reward_mean: m.reward_mean,
        accuracy: m.accuracy,
        entropy: m.entropy,
        loss: m.loss,
        grad_norm: m.grad_norm,
        clip_frac_low: m.clip_frac_low,
        clip_frac_high: m.clip_frac_high,
        response_len_mean: m.response_len_mean,
        steer_w_mean: m.weights.mean,
        steer_w_min: m.weights.min,
        steer_w_max: m.weights.max,
        steer_w_frac_below_099: m.weights.frac_below_099,
        predicted_entropy_change: m.predicted_entropy_change,
        skipped: m.skipped,
        timings: serde_json::to_value(&m.timings).unwrap_or(serde_json::Value::Null),
    }
}

fn step_line(m: &StepMetrics, total: usize) -> String {
    format!(
        "step {:>3}/{total}  reward {:.3}  acc {:.3}  entropy {:.4}  loss {:+.4}  |g| {:.3}  w {:.3} [{:.3}, {:.3}]  clip {:.3}/{:.3}  len {:.1}{}",
        m.step + 1,
        m.reward_mean,
        m.accuracy,
        m.entropy,
        m.loss,
        m.grad_norm,
        m.weights.mean,
        m.weights.min,
        m.weights.max,
        m.clip_frac_low,
        m.clip_frac_high,
        m.response_len_mean,
        if m.skipped {
            "  (skipped: non-finite gradient)"
        } else {
            ""
        }
    )
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
        keep_metrics_before(&path, 3).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n"
        );
        keep_metrics_before(&dir.join("absent.jsonl"), 3).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
