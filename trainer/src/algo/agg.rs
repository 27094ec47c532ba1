//! Loss aggregation: how per-token losses become one scalar (verl's `loss_agg_mode`).

use candle_core::{D, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Aggregation mode (verl names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAgg {
    /// `Σ mask·ℓ / Σ mask` over the micro-batch (verl's default; STEER's setting).
    #[default]
    TokenMean,
    /// Mean over sequences of each sequence's token sum.
    SeqMeanTokenSum,
    /// Mean over sequences of each sequence's token mean (GRPO's original).
    SeqMeanTokenMean,
    /// Sum over sequences of token sums, divided by the horizon (the padded response length;
    /// Dr. GRPO).
    SeqMeanTokenSumNorm,
}

impl LossAgg {
    /// Aggregates `loss` `(b, t)` under `mask` `(b, t)` (1.0 valid, 0.0 padding).
    pub fn aggregate(self, loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let masked = (loss * mask)?;
        match self {
            LossAgg::TokenMean => masked
                .sum_all()?
                .broadcast_div(&mask.sum_all()?.maximum(1.0)?),
            LossAgg::SeqMeanTokenSum => masked.sum(D::Minus1)?.mean_all(),
            LossAgg::SeqMeanTokenMean => {
                let per_seq = masked
                    .sum(D::Minus1)?
                    .broadcast_div(&mask.sum(D::Minus1)?.maximum(1.0)?)?;
                per_seq.mean_all()
            }
            LossAgg::SeqMeanTokenSumNorm => {
                let (_, t) = loss.dims2()?;
                masked.sum_all()? / (t.max(1) as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    // Independent Python (same dual-clip token losses as `ppo_clip::tests`, rows of 3, the last
    // token padding):
    //   seq_sum=[sum(L[i]*mask[i] for i in r) for r in rows]; seq_cnt=[...]
    //   token-mean -0.33351, seq-mean-token-sum sum(seq_sum)/2 = -0.833776,
    //   seq-mean-token-mean mean(s/c) = -0.244592, seq-mean-token-sum-norm sum(seq_sum)/3 = -0.555851
    #[test]
    fn all_modes_golden_numbers() {
        let dev = Device::Cpu;
        let loss =
            Tensor::new(&[[-1.657_756f32, -0.909_796, 0.5], [0.4, 0.0, -2.0]], &dev).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev).unwrap();
        for (mode, want) in [
            (LossAgg::TokenMean, -0.33351f32),
            (LossAgg::SeqMeanTokenSum, -0.833_776),
            (LossAgg::SeqMeanTokenMean, -0.244_592),
            (LossAgg::SeqMeanTokenSumNorm, -0.555_851),
        ] {
            let got = mode
                .aggregate(&loss, &mask)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!((got - want).abs() < 1e-5, "{mode:?}: {got}");
        }
    }
}
