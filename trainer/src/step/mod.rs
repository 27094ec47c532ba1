//! One RL step, as a reader follows it: sample → grade → advantage → score → update → record.
//! Each phase is owned by one module:
//!
//! * [`sample`]: draw prompts, sample G responses each, grade them through
//!   [`crate::reward::Grader`] (with dynamic sampling, redraw groups without signal);
//! * [`crate::algo::advantage`]: group advantages from the shaped rewards;
//! * [`score`]: log-probs and entropies under π_old, packed into micro-batches;
//! * [`update`]: the optimizer steps over mini-batches of those micro-batches;
//! * [`record`]: the rollout rows for the store and the step's metrics.

pub(crate) mod record;
pub(crate) mod sample;
pub(crate) mod score;
pub(crate) mod update;

use std::collections::HashMap;
use std::time::Instant;

use candle_core::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::algo::{Method, SourceEstimate, advantage};
use crate::config::TrainConfig;
use crate::model::Decoder;
use crate::optim::AdamW;
use crate::reward::Grader;
use crate::store::RolloutRow;
use crate::task::Task;
use crate::tokenizer::TextTokenizer;
use crate::train::TrainError;
pub use record::{EntropyChange, StepMetrics};

/// Everything a step reads but does not change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepContext<'a> {
    /// The run's config.
    pub(crate) cfg: &'a TrainConfig,
    /// The loaded task.
    pub(crate) task: &'a Task,
    /// The trainable policy (its forward builds the autograd graph).
    pub(crate) policy: &'a Decoder,
    /// The frozen initial policy, when a KL penalty is configured.
    pub(crate) reference: Option<&'a Decoder>,
    /// π_old: a detached view of the policy's weights (sees every update, builds no graph).
    pub(crate) frozen_view: &'a Decoder,
    /// Prompts and responses go through it.
    pub(crate) tok: &'a TextTokenizer,
    /// Where the tensors live.
    pub(crate) device: &'a Device,
    /// The verifier, and the grading options.
    pub(crate) grader: Grader<'a>,
}

/// One RL step. Returns the graded rollouts and the step's metrics. Its randomness comes
/// from `(seed, step)` alone, so a resumed run repeats exactly what an uninterrupted one does.
pub(crate) fn rl_step(
    ctx: &StepContext<'_>,
    opt: &mut AdamW,
    run_id: &str,
    step: usize,
) -> Result<(Vec<RolloutRow>, StepMetrics), TrainError> {
    let cfg = ctx.cfg;
    let mut rng = StdRng::seed_from_u64(step_seed(cfg.seed, step));
    let mut clock = Clock::default();

    // 1–2. Sample G responses per prompt and grade them with the verifier. With dynamic
    //      sampling, groups whose rewards are all equal (no learning signal) are dropped and
    //      fresh prompts drawn until the batch is full or the rounds run out.
    let batch = sample::graded_batch(ctx, &mut rng, &mut clock)?;

    // 3. Advantages from the shaped rewards, per group of G.
    let adv = advantage::for_method(
        cfg.algo.method.advantage(),
        &batch.rewards,
        &batch.response_lengths(),
        cfg.rollout.group_size,
        cfg.algo.norm_adv_by_std,
        cfg.algo.params.w_reinforce_lambda,
    );

    // 4. Score the responses under π_old (before any update), per micro-batch.
    let mut old = clock.time("score_old", || {
        score::under_old_policy(ctx, &batch.samples, &adv)
    })?;
    if old.coupled_seconds > 0.0 {
        clock.move_time("score_old", "steer_coupled", old.coupled_seconds);
    }
    if cfg.algo.method == Method::SteerCoupled
        && let SourceEstimate::TopBlocks { blocks } = cfg.algo.steer_coupled.source
    {
        clock.time("steer_coupled", || {
            score::top_block_weights(ctx, opt.params(), &mut old, blocks)
        })?;
    }

    // 5. Optimizer steps: `ppo_epochs` passes over the batch in mini-batches.
    let lr = cfg.schedule.lr(cfg.optim.lr, step, cfg.steps);
    let update = clock.time("train", || update::optimize(ctx, opt, &old.micro, lr, step))?;

    // 5b. `steer-coupled`: its predicted change of the batch's token-mean entropy, the head's
    //     share of the actual step, and the realised change (the batch rescored under the
    //     updated policy).
    let predicted = (cfg.algo.method == Method::SteerCoupled)
        .then(|| old.coupled_predicted_change(lr))
        .flatten();
    let change = match predicted {
        Some(predicted) => clock.time("score_new", || -> Result<_, TrainError> {
            Ok(record::EntropyChange {
                predicted: Some(predicted),
                head_step: old.head_step_change(ctx)?,
                realised: Some(score::entropy_after(ctx, &old)? - old.token_mean_entropy()),
            })
        })?,
        None => record::EntropyChange::default(),
    };

    // 6. Every graded rollout for the store, and the step's metrics.
    let rows = record::rollout_rows(run_id, step, &batch, &adv, &old.row_entropy);
    let metrics = record::step_metrics(step, &batch, &old, update, lr, change, clock.0);
    Ok((rows, metrics))
}

/// Seconds spent per phase of a step, summed over repeats (dynamic sampling's rounds).
#[derive(Debug, Default)]
pub(crate) struct Clock(pub(crate) HashMap<&'static str, f64>);

impl Clock {
    /// Runs `f`, adding its wall time to `phase`.
    pub(crate) fn time<T>(&mut self, phase: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        *self.0.entry(phase).or_default() += t.elapsed().as_secs_f64();
        out
    }

    /// Moves `seconds` of `from`'s time to `to` (a part timed inside a phase).
    pub(crate) fn move_time(&mut self, from: &'static str, to: &'static str, seconds: f64) {
        *self.0.entry(from).or_default() -= seconds;
        *self.0.entry(to).or_default() += seconds;
    }
}

/// The seed of step `step`'s RNG: splitmix64 of `(seed, step)`.
pub(crate) fn step_seed(seed: u64, step: usize) -> u64 {
    let mut z = seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
