//! `steer-coupled`: STEER's reweighting (`STEER.md` §2, the same exponential and linear
//! mappings, [`steer::weights_in`]) with Ω replaced by each token's estimated contribution to
//! the entropy change of every response position of the batch: the source side of the output
//! head's empirical NTK ([`head::source`]), computed under π_old before any optimizer step.
//!
//! ```text
//! u_s = π_s ⊙ (log π_s + H_s)                 (∂H_s/∂z_s = −u_s, z_s = W h_s / τ)
//! C_t = −A_t · Σ_s (h_s·h_t)/τ² · (u_{s,y_t} − Σ_{j ∈ top_k(π_t)} π_{t,j} u_{s,j})
//! w_t = mapping(|C_t|)   max/min of |C| over one micro-batch (default) or the whole batch
//! ```
//!
//! `C_t` is, per unit learning rate, the first-order change of `Σ_s H_s` (over all response
//! positions `s` of the batch) that an SGD step on token `t`'s loss term `−A_t·r_t` causes
//! through the output head `W`; the `t = s` term is the token's own tabular change, every
//! other term is the coupling through the shared head that STEER's Ω cannot see. The sum over
//! `s` never forms the `N × N` kernel: `O(N·m·d)` for `N` positions, `m` kept tokens and
//! hidden size `d` (`docs/entropy-study.md` derives it). The weights are constants: nothing
//! here carries a gradient.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use super::coupled::{HeadInputs, head};
use super::steer::{self, Range, WeightMapping};

/// Which tokens the max/min of |C| that a mapping normalises by runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normaliser {
    /// The valid tokens of one micro-batch (STEER's released normaliser). Default.
    #[default]
    MicroBatch,
    /// Every valid token of the step's batch.
    Batch,
}

/// Which estimate of each token's contribution the weights read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum SourceEstimate {
    /// The output head's NTK in closed form ([`head::source`], the probe's `coupled_head`
    /// source side): a few head-sized products. Default.
    #[default]
    Head,
    /// The output head, the final norm and the last `blocks` blocks rerun from the residual
    /// stream ([`crate::algo::coupled::TopBlocks::source`], the probe's `coupled_top{k}`): one
    /// forward to the residual, one backward through the rerun layers and two reruns (a central
    /// difference along the entropy gradient), with the trainable parameters.
    TopBlocks {
        /// Blocks rerun (at most all of them).
        blocks: usize,
    },
}

/// `steer-coupled` settings (`[algo.steer_coupled]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SteerCoupledConfig {
    /// The |C| → weight mapping. Default: exponential with λ_min = 0.8, as `steer`.
    pub mapping: WeightMapping,
    /// Where max/min of |C| are taken. Default: one micro-batch.
    pub normaliser: Normaliser,
    /// Tokens of each π_t kept in `u_s·π_t` (the rest of the vocabulary is dropped; `u_s`
    /// itself is never truncated). Default 16; at least the vocabulary size is exact.
    pub top_k: usize,
    /// The estimate of `C_t`. Default: the output head ([`SourceEstimate::Head`]).
    pub source: SourceEstimate,
}

impl Default for SteerCoupledConfig {
    fn default() -> Self {
        SteerCoupledConfig {
            mapping: WeightMapping::Exponential { lambda_min: 0.8 },
            normaliser: Normaliser::MicroBatch,
            top_k: 16,
            source: SourceEstimate::Head,
        }
    }
}

/// One micro-batch's coupled quantities, row-major `(rows, cols)` like its mask, 0 on padding.
#[derive(Debug, Clone, PartialEq)]
pub struct CoupledTokens {
    /// `C_t`: the token's contribution to the batch's summed entropy change, per unit
    /// learning rate, for the loss term `−A_t·r_t`.
    pub contribution: Vec<f32>,
    /// The token's weight.
    pub weights: Vec<f32>,
}

/// One micro-batch as the weights need it.
#[derive(Debug, Clone, Copy)]
pub struct MicroCells<'a> {
    /// Response mask `(rows, cols)`, row-major.
    pub mask: &'a [bool],
    /// Per-token advantage `(rows, cols)`, row-major.
    pub adv: &'a [f32],
}

/// The weights of every micro-batch of a step from the output head. `heads[i]` holds the
/// valid positions of micro-batch `i` in row-major order (as [`HeadInputs::at_valid`] gives
/// them) under π_old, `cells[i]` its mask and advantages; `head_weight` is the output head
/// `(V, d)` and `temperature` the policy's.
pub fn batch_weights(
    heads: &[HeadInputs],
    cells: &[MicroCells<'_>],
    head_weight: &Tensor,
    temperature: f64,
    cfg: &SteerCoupledConfig,
) -> Result<Vec<CoupledTokens>> {
    if heads.len() != cells.len() {
        candle_core::bail!(
            "{} head inputs for {} micro-batches",
            heads.len(),
            cells.len()
        );
    }
    for (h, c) in heads.iter().zip(cells) {
        let valid = c.mask.iter().filter(|&&m| m).count();
        if h.len() != valid {
            candle_core::bail!("{} head positions for {valid} valid cells", h.len());
        }
    }
    let a = valid_advantages(cells)?;
    let c = if a.is_empty() {
        Vec::new()
    } else {
        head::source(&HeadInputs::cat(heads)?, head_weight, &a, temperature)?
    };
    weights_from(&c, cells, cfg)
}

/// The advantages `a_t = A_t` at the valid cells of every micro-batch, in batch order.
pub fn valid_advantages(cells: &[MicroCells<'_>]) -> Result<Vec<f32>> {
    if let Some(c) = cells.iter().find(|c| c.adv.len() != c.mask.len()) {
        candle_core::bail!("{} advantages for {} cells", c.adv.len(), c.mask.len());
    }
    Ok(cells
        .iter()
        .flat_map(|c| {
            c.adv
                .iter()
                .zip(c.mask)
                .filter(|&(_, &m)| m)
                .map(|(&a, _)| a)
        })
        .collect())
}

/// The weights of every micro-batch from the contributions `C_t` at the valid cells of all of
/// them, in batch order (from [`head::source`] or
/// [`crate::algo::coupled::TopBlocks::source`] with `a_t = A_t`).
pub fn weights_from(
    contributions: &[f64],
    cells: &[MicroCells<'_>],
    cfg: &SteerCoupledConfig,
) -> Result<Vec<CoupledTokens>> {
    let valid: usize = cells
        .iter()
        .map(|c| c.mask.iter().filter(|&&m| m).count())
        .sum();
    if contributions.len() != valid {
        candle_core::bail!(
            "{} contributions for {valid} valid cells",
            contributions.len()
        );
    }
    let mut it = contributions.iter();
    let contributions: Vec<Vec<f32>> = cells
        .iter()
        .map(|cell| {
            cell.mask
                .iter()
                .map(|&m| {
                    if m {
                        it.next().map_or(0.0, |&c| c as f32)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let batch_range = contributions
        .iter()
        .zip(cells)
        .map(|(c, cell)| Range::of(c, cell.mask))
        .fold(Range::of(&[], &[]), Range::union);
    Ok(contributions
        .into_iter()
        .zip(cells)
        .map(|(contribution, cell)| {
            let range = match cfg.normaliser {
                Normaliser::MicroBatch => Range::of(&contribution, cell.mask),
                Normaliser::Batch => batch_range,
            };
            let weights = steer::weights_in(&contribution, cell.mask, &cfg.mapping, range);
            CoupledTokens {
                contribution,
                weights,
            }
        })
        .collect())
}

/// The first-order change of the batch's token-mean entropy that one SGD step of size `lr` on
/// the weighted token-mean surrogate `−(1/N) Σ_t w_t A_t r_t` causes through the parameters the
/// contributions cover (the output head, or the top blocks): `lr/N² · Σ_t w_t C_t` over the `N`
/// valid tokens. (Under AdamW the actual step is not `lr`·gradient: compare its sign and trend
/// with the realised change, not its scale.)
pub fn predicted_change(tokens: &[CoupledTokens], masks: &[&[bool]], lr: f64) -> f64 {
    let n = masks
        .iter()
        .map(|m| m.iter().filter(|&&v| v).count())
        .sum::<usize>()
        .max(1) as f64;
    let sum: f64 = tokens
        .iter()
        .zip(masks)
        .flat_map(|(t, m)| {
            t.contribution
                .iter()
                .zip(&t.weights)
                .zip(m.iter())
                .filter(|&(_, &v)| v)
                .map(|((&c, &w), _)| f64::from(c) * f64::from(w))
        })
        .sum();
    lr * sum / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two micro-batches of one row each: `(h (cells, d), targets, mask, adv)`.
    fn micro(
        rows: &[[f32; 3]],
        y: &[u32],
        mask: &[bool],
        adv: f32,
    ) -> (Tensor, Tensor, Vec<bool>, Vec<f32>) {
        let dev = Device::Cpu;
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let h = Tensor::from_vec(flat, (1, rows.len(), 3), &dev).unwrap();
        let t = Tensor::from_vec(y.to_vec(), (1, y.len()), &dev).unwrap();
        let a = mask.iter().map(|&m| if m { adv } else { 0.0 }).collect();
        (h, t, mask.to_vec(), a)
    }

    /// The config's TOML form: every key optional, unknown ones refused.
    #[test]
    fn config_parses_with_defaults_and_refuses_unknown_keys() {
        let cfg: SteerCoupledConfig =
            toml::from_str("normaliser = \"batch\"\n[source]\nkind = \"top-blocks\"\nblocks = 2\n")
                .unwrap();
        assert_eq!(cfg.normaliser, Normaliser::Batch);
        assert_eq!(cfg.source, SourceEstimate::TopBlocks { blocks: 2 });
        assert_eq!(cfg.top_k, 16);
        let empty: SteerCoupledConfig = toml::from_str("").unwrap();
        assert_eq!(empty, SteerCoupledConfig::default());
        assert!(toml::from_str::<SteerCoupledConfig>("topk = 3").is_err());
        assert!(toml::from_str::<SteerCoupledConfig>("[source]\nkind = \"all\"").is_err());
    }

    /// The batch normaliser spans both micro-batches, so the micro-batch with the smaller
    /// contributions gets weights closer to 1 under it than under its own normaliser; padding
    /// gets 0 and zero advantages contribute nothing.
    #[test]
    fn normalisers_and_padding() {
        let dev = Device::Cpu;
        let w = Tensor::new(
            &[
                [1.0f32, 0.0, 0.5],
                [0.0, 1.0, -0.5],
                [0.5, 0.5, 0.0],
                [-1.0, 0.2, 0.3],
            ],
            &dev,
        )
        .unwrap();
        let parts = [
            micro(
                &[[1.0, 0.5, -0.5], [0.2, 1.0, 0.3], [0.0, 0.0, 0.0]],
                &[0, 1, 2],
                &[true, true, false],
                2.0,
            ),
            micro(
                &[[0.5, -1.0, 0.2], [0.3, 0.3, 0.3], [0.9, 0.1, 0.0]],
                &[3, 0, 1],
                &[true, true, true],
                0.1,
            ),
        ];
        let heads: Vec<HeadInputs> = parts
            .iter()
            .map(|(h, t, m, _)| {
                let logits = h.broadcast_matmul(&w.t().unwrap()).unwrap();
                HeadInputs::at_valid(h, &logits, t, m, 1.0, 4).unwrap()
            })
            .collect();
        let cells: Vec<MicroCells<'_>> = parts
            .iter()
            .map(|(_, _, m, a)| MicroCells { mask: m, adv: a })
            .collect();
        let run = |normaliser| {
            let cfg = SteerCoupledConfig {
                normaliser,
                ..SteerCoupledConfig::default()
            };
            batch_weights(&heads, &cells, &w, 1.0, &cfg).unwrap()
        };
        let (micro_w, batch_w) = (run(Normaliser::MicroBatch), run(Normaliser::Batch));
        assert_eq!(micro_w[0].contribution, batch_w[0].contribution);
        assert_eq!(
            (micro_w[0].weights[2], micro_w[0].contribution[2]),
            (0.0, 0.0)
        );
        let max_of = |t: &CoupledTokens| t.contribution.iter().fold(0f32, |m, c| m.max(c.abs()));
        assert!(max_of(&micro_w[1]) < max_of(&micro_w[0]), "{micro_w:?}");
        // Under its own normaliser the largest |C| of micro-batch 1 gets λ_min (or the floor).
        let min1 = micro_w[1].weights.iter().fold(1f32, |m, &w| m.min(w));
        let min1_batch = batch_w[1].weights.iter().fold(1f32, |m, &w| m.min(w));
        assert!(min1_batch > min1, "{micro_w:?} {batch_w:?}");
        assert_eq!(micro_w[0].weights, batch_w[0].weights);
        // No advantage, no contribution, weight 1.
        let zero: Vec<Vec<f32>> = parts
            .iter()
            .map(|(_, _, m, _)| vec![0.0; m.len()])
            .collect();
        let cells0: Vec<MicroCells<'_>> = parts
            .iter()
            .zip(&zero)
            .map(|((_, _, m, _), a)| MicroCells { mask: m, adv: a })
            .collect();
        let none = batch_weights(&heads, &cells0, &w, 1.0, &SteerCoupledConfig::default()).unwrap();
        assert!(none[1].contribution.iter().all(|&c| c == 0.0));
        assert!(none[1].weights.iter().all(|&w| w == 1.0));
        let masks: Vec<&[bool]> = parts.iter().map(|p| p.2.as_slice()).collect();
        assert_eq!(predicted_change(&none, &masks, 1e-3), 0.0);
        assert!(predicted_change(&micro_w, &masks, 1e-3).is_finite());
    }
}
