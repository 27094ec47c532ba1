//! RoPE frequency scaling from a Hugging Face `config.json` (`rope_scaling`): the kinds the
//! decoder implements, each as `transformers`' `modeling_rope_utils` computes its inverse
//! frequencies. Other kinds (`dynamic`, `yarn`, `longrope`, …) are refused by name when the
//! config is read, never ignored.

use serde::{Deserialize, Serialize};

/// A supported `rope_scaling`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RopeScaling {
    /// Positions divided by `factor` (every frequency divided by it).
    Linear {
        /// Context extension factor (> 0).
        factor: f64,
    },
    /// Llama 3.1's band-wise scaling: wavelengths longer than
    /// `original_max_position_embeddings / low_freq_factor` are divided by `factor`, shorter
    /// than `… / high_freq_factor` kept, and those between interpolated smoothly.
    Llama3 {
        /// Context extension factor (> 0), e.g. 8.
        factor: f64,
        /// Low-frequency band edge, e.g. 1.
        low_freq_factor: f64,
        /// High-frequency band edge (> `low_freq_factor`), e.g. 4.
        high_freq_factor: f64,
        /// Context length the model was pre-trained at, tokens, e.g. 8192.
        original_max_position_embeddings: usize,
    },
}

impl RopeScaling {
    /// Parses a `config.json` `rope_scaling` value: `null` → none; `linear` and `llama3` (named
    /// by `rope_type`, or by the older `type`); anything else is an error naming it.
    pub fn from_hf(v: &serde_json::Value) -> Result<Option<Self>, String> {
        if v.is_null() {
            return Ok(None);
        }
        let obj = v
            .as_object()
            .ok_or_else(|| format!("rope_scaling must be an object or null, got {v}"))?;
        let kind = obj
            .get("rope_type")
            .or_else(|| obj.get("type"))
            .and_then(serde_json::Value::as_str)
            .ok_or("rope_scaling names no rope_type")?;
        let num = |k: &str| {
            obj.get(k)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("rope_scaling {kind:?} needs a number {k}"))
        };
        let s = match kind {
            "default" => return Ok(None),
            "linear" => RopeScaling::Linear {
                factor: num("factor")?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
            },
            other => {
                return Err(format!(
                    "rope_scaling {other:?} is not supported (linear and llama3 are)"
                ));
            }
        };
        s.validate()?;
        Ok(Some(s))
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            RopeScaling::Linear { factor } if factor > 0.0 => Ok(()),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } if factor > 0.0
                && low_freq_factor > 0.0
                && high_freq_factor > low_freq_factor
                && original_max_position_embeddings > 0 =>
            {
                Ok(())
            }
            other => Err(format!("rope_scaling out of range: {other:?}")),
        }
    }

    /// The scaled inverse frequency of one unscaled `inv_freq`.
    pub fn apply(&self, inv_freq: f64) -> f64 {
        match *self {
            RopeScaling::Linear { factor } => inv_freq / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let old = original_max_position_embeddings as f64;
                let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
                if wavelen > old / low_freq_factor {
                    inv_freq / factor
                } else if wavelen < old / high_freq_factor {
                    inv_freq
                } else {
                    let smooth =
                        (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * inv_freq / factor + smooth * inv_freq
                }
            }
        }
    }

    /// The `config.json` value.
    pub fn to_hf(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden inverse frequencies from transformers 4.57.3 (computed in f32, so compared to 1e-6
    /// relative)
    /// for Llama-3.1-8B's RoPE (head_dim 128, theta 500 000), indices 0, 20, 30, 32, 34, 40, 63:
    /// kept, kept, three blended, divided by 8, divided by 8:
    ///
    /// ```python
    /// from transformers import LlamaConfig
    /// from transformers.modeling_rope_utils import (_compute_llama3_parameters,
    ///     _compute_linear_scaling_rope_parameters)
    /// idx = [0, 20, 30, 32, 34, 40, 63]
    /// c = LlamaConfig(hidden_size=4096, num_attention_heads=32, rope_theta=500000.0,
    ///     rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    ///                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    /// print(_compute_llama3_parameters(c, "cpu")[0].double()[idx])
    /// c.rope_scaling = {"rope_type": "linear", "factor": 2.0}
    /// print(_compute_linear_scaling_rope_parameters(c, "cpu")[0].double()[idx])
    /// ```
    #[test]
    fn matches_transformers() {
        let idx = [0usize, 20, 30, 32, 34, 40, 63];
        let llama3 = [
            1.0,
            0.016560440883040428,
            0.0013718936825171113,
            0.0005248460220173001,
            0.0001785077911335975,
            3.428102354519069e-05,
            3.068925877869333e-07,
        ];
        let linear = [
            0.5,
            0.008280220441520214,
            0.001065559801645577,
            0.000707106722984463,
            0.00046923692570999265,
            0.00013712409418076277,
            1.2275703511477332e-06,
        ];
        let l3 = RopeScaling::from_hf(&serde_json::json!({
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192
        }))
        .unwrap()
        .unwrap();
        let lin = RopeScaling::Linear { factor: 2.0 };
        let inv = |i: usize| 1.0 / 500_000f64.powf(2.0 * i as f64 / 128.0);
        for (k, &i) in idx.iter().enumerate() {
            for (s, want) in [(l3, llama3[k]), (lin, linear[k])] {
                let got = s.apply(inv(i));
                assert!(
                    (got - want).abs() <= 1e-6 * want,
                    "{s:?} inv_freq[{i}]: {got} vs transformers {want}"
                );
            }
        }
    }

    #[test]
    fn parses_linear_and_refuses_the_rest_by_name() {
        let lin = RopeScaling::from_hf(&serde_json::json!({"type": "linear", "factor": 2.0}))
            .unwrap()
            .unwrap();
        assert_eq!(lin, RopeScaling::Linear { factor: 2.0 });
        assert_eq!(lin.apply(0.5), 0.25);
        assert_eq!(
            RopeScaling::from_hf(&serde_json::Value::Null).unwrap(),
            None
        );
        for (v, why) in [
            (
                serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
                "\"yarn\"",
            ),
            (
                serde_json::json!({"type": "dynamic", "factor": 2.0}),
                "\"dynamic\"",
            ),
            (serde_json::json!({"rope_type": "linear"}), "factor"),
            (
                serde_json::json!({"rope_type": "linear", "factor": -1.0}),
                "range",
            ),
            (serde_json::json!(3), "object"),
        ] {
            let e = RopeScaling::from_hf(&v).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
        // Round trip through the serialised form.
        let back = RopeScaling::from_hf(&lin.to_hf()).unwrap().unwrap();
        assert_eq!(back, lin);
    }
}
