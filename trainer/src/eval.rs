//! Evaluation: sample `k` responses per problem, grade them with the verifier, and report
//! avg@k (mean accuracy over all samples) and the unbiased pass@k of Chen et al. (2021),
//! overall and per `data_source`.

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::model::Decoder;
use crate::reward::{Grader, Submission};
use crate::rollout::{self, SamplingConfig};
use crate::task::Problem;
use crate::tokenizer::{TextTokenizer, TokenizerError};

/// Evaluation failures.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Tensor math failed.
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    /// Tokenizing failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The verifier could not be reached or rejected a request.
    #[error("verifier: {0}")]
    Verifier(#[from] protocol::client::ClientError),
}

/// Evaluation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many steps (0: only at the end). Default 0.
    pub every: usize,
    /// Samples per problem. Default 8.
    pub k: usize,
    /// Sampling temperature. Default 1.0 (verl's validation default also uses top-p 0.7).
    pub temperature: f64,
    /// Nucleus sampling for evaluation. Default 1.0.
    pub top_p: f64,
    /// Evaluate only the task's first this many problems (in file order); 0, the default,
    /// evaluates all of them.
    pub max_problems: usize,
    /// Also evaluate before the first RL step (after the format warm-up), with the same
    /// problems and sampling seed as every later evaluation: the accuracy RL starts from.
    /// Default false.
    pub at_start: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 0,
            k: 8,
            temperature: 1.0,
            top_p: 1.0,
            max_problems: 0,
            at_start: false,
        }
    }
}

/// Evaluation result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Problems evaluated.
    pub problems: usize,
    /// Samples per problem.
    pub k: usize,
    /// Mean accuracy over all samples.
    pub avg_at_k: f64,
    /// Mean over problems of the unbiased pass@k.
    pub pass_at_k: f64,
    /// Unbiased pass@1 (equal to avg@k in expectation).
    pub pass_at_1: f64,
    /// The same scores per `data_source`.
    pub by_source: std::collections::BTreeMap<String, SourceScores>,
}

/// The scores of one data source's problems.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourceScores {
    /// Problems of this source evaluated.
    pub problems: usize,
    /// Mean accuracy over their samples.
    pub avg_at_k: f64,
    /// Mean unbiased pass@k.
    pub pass_at_k: f64,
    /// Mean unbiased pass@1.
    pub pass_at_1: f64,
}

impl SourceScores {
    /// Scores from the correct-sample counts of each problem, `k` samples each.
    pub fn from_counts(correct: &[usize], k: usize) -> Self {
        let n = correct.len().max(1) as f64;
        SourceScores {
            problems: correct.len(),
            avg_at_k: correct.iter().sum::<usize>() as f64 / (n * k as f64),
            pass_at_k: correct.iter().map(|&c| pass_at_k(k, c, k)).sum::<f64>() / n,
            pass_at_1: correct.iter().map(|&c| pass_at_k(k, c, 1)).sum::<f64>() / n,
        }
    }
}

/// Unbiased pass@k from `n` samples of which `c` are correct: `1 − C(n−c, k)/C(n, k)`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if k > n {
        return f64::NAN;
    }
    if n - c < k {
        return 1.0;
    }
    // Product form, numerically stable: Π_{i=n−c+1}^{n} (1 − k/i).
    1.0 - ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

/// What evaluation samples from: the policy and its tokenizer, with the training rollouts'
/// length limit and stop strings.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The model (its stacked-projection copy samples).
    pub model: &'a Decoder,
    /// Prompts and responses go through it.
    pub tok: &'a TextTokenizer,
    /// Longest response, tokens (`rollout.sampling.max_new_tokens`).
    pub max_new_tokens: usize,
    /// Stop strings (`rollout.stop`).
    pub stop: &'a [String],
}

/// Evaluates `policy` on `problems` at the evaluation's own temperature and top-p (`cfg`),
/// grading through `grader`.
pub fn evaluate(
    policy: Policy<'_>,
    problems: &[Problem],
    cfg: &EvalConfig,
    seed: u64,
    grader: Grader<'_>,
) -> Result<EvalResult, EvalError> {
    let Policy {
        model,
        tok,
        max_new_tokens,
        stop,
    } = policy;
    let device = model.device().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sampling = SamplingConfig {
        temperature: cfg.temperature,
        max_new_tokens,
        top_p: cfg.top_p,
        top_k: 0,
    };
    let problems = match cfg.max_problems {
        0 => problems,
        n => &problems[..n.min(problems.len())],
    };
    let mut texts = Vec::with_capacity(problems.len() * cfg.k);
    let stop = rollout::StopRule::new(tok, stop);
    let model = &model.fused()?;
    for p in problems {
        let ids = tok.encode(&tok.chat_text(&p.chat())?)?;
        for s in rollout::sample_group(model, &ids, cfg.k, &sampling, &stop, &device, &mut rng)? {
            texts.push(stop.text(&s.response_ids)?);
        }
    }
    let subs: Vec<Submission<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Submission {
            problem: &problems[i / cfg.k],
            response: text,
            sample: i % cfg.k,
        })
        .collect();
    let results = grader.grade(&subs)?;
    let correct: Vec<usize> = results
        .chunks(cfg.k)
        .map(|g| g.iter().filter(|r| r.correct).count())
        .collect();
    let all = SourceScores::from_counts(&correct, cfg.k);
    let mut per: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (p, &c) in problems.iter().zip(&correct) {
        per.entry(p.data_source.clone()).or_default().push(c);
    }
    Ok(EvalResult {
        problems: problems.len(),
        k: cfg.k,
        avg_at_k: all.avg_at_k,
        pass_at_k: all.pass_at_k,
        pass_at_1: all.pass_at_1,
        by_source: per
            .into_iter()
            .map(|(src, counts)| (src, SourceScores::from_counts(&counts, cfg.k)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Python: from math import comb; 1 - comb(n-c, k)/comb(n, k)
    //   (n=10, c=3, k=1) -> 0.3; (10, 3, 5) -> 0.916667; (10, 0, 5) -> 0.0; (10, 8, 5) -> 1.0
    #[test]
    fn unbiased_pass_at_k_golden_numbers() {
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert!((pass_at_k(10, 3, 5) - 0.916_667).abs() < 1e-6);
        assert_eq!(pass_at_k(10, 0, 5), 0.0);
        assert_eq!(pass_at_k(10, 8, 5), 1.0);
        assert!(pass_at_k(3, 1, 5).is_nan());
    }

    // Two problems, k = 4, 1 and 4 correct: avg@4 = 5/8; pass@4 = (1 + 1)/2;
    // pass@1 = (0.25 + 1)/2 = 0.625.
    #[test]
    fn source_scores_average_over_problems() {
        let s = SourceScores::from_counts(&[1, 4], 4);
        assert_eq!(s.problems, 2);
        assert!((s.avg_at_k - 0.625).abs() < 1e-12);
        assert!((s.pass_at_k - 1.0).abs() < 1e-12);
        assert!((s.pass_at_1 - 0.625).abs() < 1e-12);
    }
}
