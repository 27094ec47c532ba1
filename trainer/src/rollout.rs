//! Sampling responses: the G samples of one prompt decode together as one batch (they share
//! the prompt length, so no left padding is needed).
//!
//! Temperature sampling on the host from `softmax(logits / T)`, seeded through the caller's RNG
//! so runs are reproducible. The prompt goes through the model once; each later token is one
//! position on the decoder's KV cache ([`Decoder::forward_from`], the same layers and weights
//! as the scoring forward; a test checks the logits agree).

use candle_core::{D, Device, Result, Tensor};
use rand::Rng;

use crate::model::{Decoder, KvCache};
use crate::tokenizer::{PAD_ID, TextTokenizer, TokenizerError};

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Softmax temperature (> 0). STEER's setting: 1.0.
    pub temperature: f64,
    /// Longest response, tokens (EOS included).
    pub max_new_tokens: usize,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    /// Default 1.0 (off). Log-probs for training are of the unfiltered distribution, as verl.
    #[serde(default = "one")]
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; 0 (default) keeps all.
    #[serde(default)]
    pub top_k: usize,
}

fn one() -> f64 {
    1.0
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Prompt token ids.
    pub prompt_ids: Vec<u32>,
    /// Response token ids, ending with EOS or with the token that completed a stop string if
    /// the response ended by itself.
    pub response_ids: Vec<u32>,
    /// True if the response ended by itself (EOS or a stop string), false at the length limit.
    pub finished: bool,
}

/// When a response ends, besides the length limit: at the tokenizer's EOS token, or at the
/// token whose text completes one of the stop strings (`[rollout] stop`, as vLLM's and verl's
/// `stop`). The ending tokens stay in the response (they were sampled and are trained on);
/// the text sent for grading is cut before the stop string, as vLLM does by default
/// (`include_stop_str_in_output = false`).
#[derive(Debug, Clone, Copy)]
pub struct StopRule<'a> {
    tokenizer: &'a TextTokenizer,
    strings: &'a [String],
}

impl<'a> StopRule<'a> {
    /// EOS of `tokenizer`, and `strings` (empty strings are ignored).
    pub fn new(tokenizer: &'a TextTokenizer, strings: &'a [String]) -> Self {
        StopRule { tokenizer, strings }
    }

    /// The end-of-sequence id.
    pub fn eos(&self) -> u32 {
        self.tokenizer.eos_id()
    }

    /// Whether `response` (ids so far) has ended: its last id is EOS or its text contains a
    /// stop string. Decodes the response only when stop strings are set.
    pub fn ended(&self, response: &[u32]) -> std::result::Result<bool, TokenizerError> {
        if response.last() == Some(&self.eos()) {
            return Ok(true);
        }
        if self.strings.iter().all(String::is_empty) {
            return Ok(false);
        }
        let text = self.tokenizer.decode(response)?;
        Ok(self
            .strings
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str())))
    }

    /// The response's text for grading: decoded (special tokens skipped) and cut before the
    /// earliest stop string.
    pub fn text(&self, response: &[u32]) -> std::result::Result<String, TokenizerError> {
        let mut text = self.tokenizer.decode(response)?;
        if let Some(at) = self
            .strings
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            text.truncate(at);
        }
        Ok(text)
    }
}

/// Samples `g` responses to `prompt_ids`, each ending where `stop` says or at the length
/// limit; top-k and top-p filter each draw. `model` should be a detached (non-Var) view so no
/// autograd graph is built. Finished rows are padded with [`PAD_ID`] while the others go on
/// (0, a valid id in every vocabulary; padding is masked downstream).
#[allow(
    clippy::too_many_arguments,
    reason = "the sampler's inputs, each distinct"
)]
pub fn sample_group<R: Rng>(
    model: &Decoder,
    prompt_ids: &[u32],
    g: usize,
    cfg: &SamplingConfig,
    stop: &StopRule<'_>,
    device: &Device,
    rng: &mut R,
) -> Result<Vec<Sample>> {
    if prompt_ids.is_empty() {
        candle_core::bail!("empty prompt");
    }
    if cfg.temperature.is_nan() || cfg.temperature <= 0.0 {
        candle_core::bail!("temperature must be > 0, got {}", cfg.temperature);
    }
    let plen = prompt_ids.len();
    let mut rows: Vec<Vec<u32>> = vec![prompt_ids.to_vec(); g];
    // Response length of each row once it has ended by itself.
    let mut ended: Vec<Option<usize>> = vec![None; g];
    // The prompt once through the model on one row (the group shares it), its cache widened
    // to the g rows, then one token per row per step on the KV cache.
    let mut cache = KvCache::default();
    if cfg.max_new_tokens == 0 {
        return Ok(finish(rows, ended, prompt_ids));
    }
    let prompt = Tensor::from_vec(prompt_ids.to_vec(), (1, plen), device)?;
    let mut logits = model.forward_last(&prompt, &mut cache)?; // (1, v), then (g, v)
    cache = cache.repeat_rows(g)?;
    for step in 0..cfg.max_new_tokens {
        let probs =
            candle_nn::ops::softmax(&(&logits / cfg.temperature)?, D::Minus1)?.to_vec2::<f32>()?;
        for (i, row) in rows.iter_mut().enumerate() {
            if ended[i].is_some() {
                row.push(PAD_ID);
                continue;
            }
            // Row i's distribution; before the first token every row has the prompt's.
            let p = &probs[i.min(probs.len() - 1)];
            row.push(draw(&truncate(p, cfg.top_k, cfg.top_p), rng));
            if stop.ended(&row[plen..]).map_err(candle_core::Error::wrap)? {
                ended[i] = Some(row.len() - plen);
            }
        }
        if step + 1 == cfg.max_new_tokens || ended.iter().all(Option::is_some) {
            break;
        }
        let last: Vec<u32> = rows.iter().map(|r| r[r.len() - 1]).collect();
        logits = model.forward_last(&Tensor::from_vec(last, (g, 1), device)?, &mut cache)?;
    }
    Ok(finish(rows, ended, prompt_ids))
}

/// The samples of `rows` (prompt then response, padded), each cut where it ended by itself.
fn finish(rows: Vec<Vec<u32>>, ended: Vec<Option<usize>>, prompt_ids: &[u32]) -> Vec<Sample> {
    let plen = prompt_ids.len();
    rows.into_iter()
        .zip(ended)
        .map(|(r, end)| Sample {
            prompt_ids: prompt_ids.to_vec(),
            response_ids: r[plen..plen + end.unwrap_or(r.len() - plen)].to_vec(),
            finished: end.is_some(),
        })
        .collect()
}

/// The distribution restricted to its `top_k` most likely tokens (0: all) and then to the
/// smallest prefix reaching mass `top_p`; not renormalised (the draw normalises).
pub fn truncate(probs: &[f32], top_k: usize, top_p: f64) -> Vec<f32> {
    if top_k == 0 && top_p >= 1.0 {
        return probs.to_vec();
    }
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let keep_k = if top_k == 0 {
        probs.len()
    } else {
        top_k.min(probs.len())
    };
    let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    let mut out = vec![0.0; probs.len()];
    let mut mass = 0.0;
    for &i in order.iter().take(keep_k) {
        out[i] = probs[i];
        mass += f64::from(probs[i]) / total;
        if mass >= top_p - 1e-6 {
            break;
        }
    }
    out
}

/// Inverse-CDF draw from a probability vector.
fn draw<R: Rng>(probs: &[f32], rng: &mut R) -> u32 {
    let u: f64 = rng.random();
    let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    let mut acc = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        acc += f64::from(p) / total;
        if u < acc {
            return i as u32;
        }
    }
    (probs.len() - 1) as u32
}

/// One value per row (an advantage, say) spread over that row's response tokens of a
/// row-major `(rows, cols)` mask, 0 elsewhere.
pub fn per_token(row_values: &[f32], mask: &[bool], cols: usize) -> Vec<f32> {
    mask.iter()
        .enumerate()
        .map(|(c, &m)| if m { row_values[c / cols] } else { 0.0 })
        .collect()
}

/// A right-padded batch for scoring: `inputs[t]` predicts `targets[t]`.
#[derive(Debug, Clone)]
pub struct Packed {
    /// `(b, t)` input ids.
    pub inputs: Tensor,
    /// `(b, t)` target ids.
    pub targets: Tensor,
    /// Row-major `(b, t)`: true where the target is a response token.
    pub mask: Vec<bool>,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// The first column holding a response target in any row: the columns before it are
    /// prompt in every row, so scoring needs no logits there.
    pub first_response_col: usize,
}

/// Packs samples into shifted, right-padded input/target tensors with a response mask.
pub fn pack(samples: &[&Sample], device: &Device) -> Result<Packed> {
    let cols = samples
        .iter()
        .map(|s| s.prompt_ids.len() + s.response_ids.len() - 1)
        .max()
        .unwrap_or(0);
    let rows = samples.len();
    let (mut inputs, mut targets, mut mask) = (
        vec![PAD_ID; rows * cols],
        vec![PAD_ID; rows * cols],
        vec![false; rows * cols],
    );
    for (r, s) in samples.iter().enumerate() {
        let seq: Vec<u32> = s
            .prompt_ids
            .iter()
            .chain(&s.response_ids)
            .copied()
            .collect();
        let plen = s.prompt_ids.len();
        for j in 0..seq.len() - 1 {
            inputs[r * cols + j] = seq[j];
            targets[r * cols + j] = seq[j + 1];
            mask[r * cols + j] = j + 1 >= plen;
        }
    }
    let first_response_col = samples
        .iter()
        .map(|s| s.prompt_ids.len() - 1)
        .min()
        .unwrap_or(0)
        .min(cols.saturating_sub(1));
    Ok(Packed {
        inputs: Tensor::from_vec(inputs, (rows, cols), device)?,
        targets: Tensor::from_vec(targets, (rows, cols), device)?,
        mask,
        rows,
        cols,
        first_response_col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decoder::tests::tiny_config;
    use crate::tokenizer::EOS_ID;
    use candle_core::DType;
    use candle_nn::{VarBuilder, VarMap};
    use rand::SeedableRng;

    #[test]
    fn sampling_is_seeded_and_bounded() {
        let vm = VarMap::new();
        let dev = Device::Cpu;
        let model = Decoder::new(
            &tiny_config(9),
            VarBuilder::from_varmap(&vm, DType::F32, &dev),
        )
        .unwrap();
        let cfg = SamplingConfig {
            temperature: 1.0,
            max_new_tokens: 6,
            top_p: 1.0,
            top_k: 0,
        };
        let tok = TextTokenizer::char_level().unwrap();
        let stop = StopRule::new(&tok, &[]);
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            sample_group(&model, &[3, 4, 5], 4, &cfg, &stop, &dev, &mut rng).unwrap()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_eq!(a.len(), 4);
        for s in &a {
            assert!(!s.response_ids.is_empty() && s.response_ids.len() <= 6);
            assert!(!s.response_ids[..s.response_ids.len() - 1].contains(&EOS_ID));
            assert_eq!(s.finished, s.response_ids.last() == Some(&EOS_ID));
        }
    }

    /// A 9-token model (the char vocabulary's specials, newline, space, `!`, `"`, `#`, `$`)
    /// with weights drawn from N(0, std²) under `seed`, and sampling at temperature 1.
    fn seeded_sampler(
        seed: u64,
        std: f64,
        max_new_tokens: usize,
        top_k: usize,
    ) -> (VarMap, Decoder, SamplingConfig) {
        let vm = VarMap::new();
        let model = Decoder::new(
            &tiny_config(9),
            VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        )
        .unwrap();
        crate::model::init_weights(&vm, seed, std).unwrap();
        let cfg = SamplingConfig {
            temperature: 1.0,
            max_new_tokens,
            top_p: 1.0,
            top_k,
        };
        (vm, model, cfg)
    }

    /// top-k = 1 is greedy: every row of every seed is the same argmax continuation.
    #[test]
    fn top_k_one_is_greedy() {
        let dev = Device::Cpu;
        let (_vm, model, cfg) = seeded_sampler(4, 0.5, 8, 1);
        let tok = TextTokenizer::char_level().unwrap();
        let stop = StopRule::new(&tok, &[]);
        let run = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            sample_group(&model, &[3, 4, 5], 3, &cfg, &stop, &dev, &mut rng).unwrap()
        };
        let (a, b) = (run(1), run(2));
        assert!(a.iter().chain(&b).all(|s| s == &a[0]), "{a:?} {b:?}");
        // The first token is the argmax of the prompt's last logits.
        let logits = model
            .forward(&Tensor::new(&[[3u32, 4, 5]], &dev).unwrap())
            .unwrap()
            .squeeze(0)
            .unwrap()
            .get(2)
            .unwrap()
            .argmax(0)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
        assert_eq!(a[0].response_ids[0], logits);
    }

    /// A response ends with the token that completes a stop string (here one of one and of two
    /// characters); the graded text is cut before it; responses at the length limit hold none.
    #[test]
    fn stop_strings_end_responses_and_are_cut_from_the_text() {
        let dev = Device::Cpu;
        let (_vm, model, cfg) = seeded_sampler(6, 0.1, 12, 0);
        let tok = TextTokenizer::char_level().unwrap();
        let strings = ["#".to_string(), "!!".to_string()];
        let stop = StopRule::new(&tok, &strings);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let samples = sample_group(&model, &[3, 4], 32, &cfg, &stop, &dev, &mut rng).unwrap();
        let has_stop = |t: &str| t.contains('#') || t.contains("!!");
        let mut by_string = 0;
        for s in &samples {
            let text = tok.decode(&s.response_ids).unwrap();
            let before = tok
                .decode(&s.response_ids[..s.response_ids.len() - 1])
                .unwrap();
            let by_eos = s.response_ids.last() == Some(&EOS_ID);
            if s.finished && !by_eos {
                by_string += 1;
                assert!(has_stop(&text) && !has_stop(&before), "{text:?}");
            } else {
                assert!(!has_stop(&before), "{text:?} went on past a stop string");
            }
            if !s.finished {
                assert_eq!(s.response_ids.len(), 12);
            }
            let graded = stop.text(&s.response_ids).unwrap();
            assert!(
                !has_stop(&graded) && text.starts_with(&graded),
                "{graded:?}"
            );
        }
        assert!(by_string >= 4, "only {by_string} of 32 stopped at a string");
    }

    #[test]
    fn top_k_and_top_p_truncate() {
        let p = [0.1f32, 0.5, 0.15, 0.25];
        assert_eq!(truncate(&p, 0, 1.0), p.to_vec());
        assert_eq!(truncate(&p, 2, 1.0), vec![0.0, 0.5, 0.0, 0.25]);
        assert_eq!(truncate(&p, 0, 0.7), vec![0.0, 0.5, 0.0, 0.25]);
        assert_eq!(truncate(&p, 0, 0.5), vec![0.0, 0.5, 0.0, 0.0]);
        assert_eq!(truncate(&p, 1, 0.99), vec![0.0, 0.5, 0.0, 0.0]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..200 {
            assert!([1, 3].contains(&draw(&truncate(&p, 2, 1.0), &mut rng)));
        }
    }

    #[test]
    fn pack_shifts_and_masks() {
        let a = Sample {
            prompt_ids: vec![10, 11],
            response_ids: vec![12, EOS_ID],
            finished: true,
        };
        let b = Sample {
            prompt_ids: vec![10, 11],
            response_ids: vec![13, 14, EOS_ID],
            finished: true,
        };
        let p = pack(&[&a, &b], &Device::Cpu).unwrap();
        assert_eq!((p.rows, p.cols), (2, 4));
        assert_eq!(
            p.inputs.to_vec2::<u32>().unwrap(),
            vec![vec![10, 11, 12, 0], vec![10, 11, 13, 14]]
        );
        assert_eq!(
            p.targets.to_vec2::<u32>().unwrap(),
            vec![vec![11, 12, EOS_ID, 0], vec![11, 13, 14, EOS_ID]]
        );
        assert_eq!(
            p.mask,
            vec![false, true, true, false, false, true, true, true]
        );
    }
}
