//! Phases 1–2: draw prompts, sample G responses per prompt from π_old, grade them.
//!
//! With dynamic sampling (DAPO), a group whose shaped rewards are all equal carries no
//! learning signal: it is dropped and fresh prompts are drawn, for at most
//! `rollout.max_sampling_rounds` rounds.

use std::collections::HashSet;

use rand::rngs::StdRng;

use super::{Clock, StepContext};
use crate::model::Decoder;
use crate::reward::{Graded, Submission};
use crate::rollout::{self, Sample, StopRule};
use crate::task::Problem;
use crate::train::TrainError;

/// A step's graded rollouts: group `k` is `problems[k]` and rows `k·G .. (k+1)·G`.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The prompts kept, one per group.
    pub(crate) problems: Vec<Problem>,
    /// The sampled responses.
    pub(crate) samples: Vec<Sample>,
    /// Each response's text as graded (cut at a stop string).
    pub(crate) texts: Vec<String>,
    /// The verifier's judgement of each response.
    pub(crate) results: Vec<Graded>,
    /// Each response's reward after shaping (the overlong penalty).
    pub(crate) rewards: Vec<f32>,
    /// Groups dropped by dynamic sampling.
    pub(crate) groups_dropped: usize,
}

impl Batch {
    /// Each response's length, tokens.
    pub(crate) fn response_lengths(&self) -> Vec<usize> {
        self.samples.iter().map(|s| s.response_ids.len()).collect()
    }
}

/// Samples and grades `rollout.prompts_per_step` groups (fewer if the task has fewer
/// problems), timing `generate` and `reward`.
pub(crate) fn graded_batch(
    ctx: &StepContext<'_>,
    rng: &mut StdRng,
    clock: &mut Clock,
) -> Result<Batch, TrainError> {
    let cfg = &ctx.cfg.rollout;
    let g = cfg.group_size;
    let rounds = if cfg.dynamic_sampling {
        cfg.max_sampling_rounds.max(1)
    } else {
        1
    };
    // The sampler's copy with stacked projections, taken from this step's weights.
    let sampler = ctx.frozen_view.fused()?;
    let stop = StopRule::new(ctx.tok, &cfg.stop);
    let mut batch = Batch::default();
    let mut used = HashSet::new();
    for _round in 0..rounds {
        let need = cfg.prompts_per_step - batch.problems.len();
        if need == 0 {
            break;
        }
        let (fresh, samples, texts) = clock.time("generate", || {
            let fresh: Vec<Problem> = ctx
                .task
                .sample(rng, need + used.len())
                .into_iter()
                .filter(|p| !used.contains(&p.id))
                .take(need)
                .collect();
            used.extend(fresh.iter().map(|p| p.id.clone()));
            let samples = generate(ctx, &sampler, &stop, &fresh, rng)?;
            let texts = samples
                .iter()
                .map(|s| stop.text(&s.response_ids))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, TrainError>((fresh, samples, texts))
        })?;
        if fresh.is_empty() {
            break;
        }
        let graded = clock.time("reward", || {
            let subs: Vec<Submission<'_>> = texts
                .iter()
                .enumerate()
                .map(|(i, text)| Submission {
                    problem: &fresh[i / g],
                    response: text,
                    sample: i % g,
                })
                .collect();
            ctx.grader.grade(&subs)
        })?;
        for (k, p) in fresh.into_iter().enumerate() {
            let range = k * g..(k + 1) * g;
            let shaped: Vec<f64> = range
                .clone()
                .map(|i| cfg.shaped_reward(graded[i].reward, samples[i].response_ids.len()))
                .collect();
            let uninformative = shaped.iter().all(|&r| r == shaped[0]);
            if cfg.dynamic_sampling && uninformative && rounds > 1 {
                batch.groups_dropped += 1;
                continue;
            }
            batch.problems.push(p);
            batch.samples.extend_from_slice(&samples[range.clone()]);
            batch.texts.extend_from_slice(&texts[range.clone()]);
            batch.results.extend_from_slice(&graded[range]);
            batch.rewards.extend(shaped.iter().map(|&r| r as f32));
        }
    }
    if batch.problems.is_empty() {
        return Err(TrainError::Config(format!(
            "dynamic sampling found no prompt with differing rewards in {rounds} rounds; raise rollout.max_sampling_rounds"
        )));
    }
    Ok(batch)
}

/// G responses to each problem, in problem order.
fn generate(
    ctx: &StepContext<'_>,
    sampler: &Decoder,
    stop: &StopRule<'_>,
    problems: &[Problem],
    rng: &mut StdRng,
) -> Result<Vec<Sample>, TrainError> {
    let g = ctx.cfg.rollout.group_size;
    let mut samples = Vec::with_capacity(problems.len() * g);
    for p in problems {
        let ids = ctx.tok.encode(&ctx.tok.chat_text(&p.chat())?)?;
        samples.extend(rollout::sample_group(
            sampler,
            &ids,
            g,
            &ctx.cfg.rollout.sampling,
            stop,
            ctx.device,
            rng,
        )?);
    }
    Ok(samples)
}
