//! Loss aggregation: how per-token losses become one scalar (verl's `loss_agg_mode`).

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Aggregation mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossAgg {
    /// `Σ mask·ℓ / Σ mask` over the micro-batch (verl's default; STEER's setting).
    #[default]
    TokenMean,
}

impl LossAgg {
    /// Aggregates `loss` `(b, t)` under `mask` `(b, t)` (1.0 valid, 0.0 padding).
    pub fn aggregate(self, loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            LossAgg::TokenMean => {
                let denom = mask.sum_all()?.maximum(1.0)?;
                (loss * mask)?.sum_all()?.broadcast_div(&denom)
            }
        }
    }
}
