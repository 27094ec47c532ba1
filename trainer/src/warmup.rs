//! Supervised format warm-up before RL: a few steps on responses in the task's answer format
//! carrying random (not correct) answers, so a random-init model emits gradeable responses.

use candle_core::Device;
use rand::rngs::StdRng;

use crate::algo::{self, logprob};
use crate::config::TrainConfig;
use crate::model::Decoder;
use crate::optim::{AdamW, AdamWConfig, GradAccumulator, Param};
use crate::rollout::{self, Sample};
use crate::step::score::mask_tensor;
use crate::task::Task;
use crate::tokenizer::{TextTokenizer, TokenizerError};
use crate::train::TrainError;

/// Runs `cfg.warmup.steps` supervised steps on [`Task::format_example`]s; returns the last
/// step's mean NLL.
pub fn format_warmup(
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
