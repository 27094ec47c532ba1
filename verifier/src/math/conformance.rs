//! The `config` object of the external conformance cases (`../shared/conformance`, written in
//! Math-Verify's terms) as [`MathOptions`]. Used by the conformance test and the benchmark.
//!
//! `requires_boxed` maps to `require_boxed`; `grader`, `derived` and `normalization` describe
//! where a case came from and are not options. Absent keys take Math-Verify's test defaults
//! (boxed priority 0, float rounding 6, strict, no boxed requirement).

use protocol::{ExtractionTarget, MathOptions};
use serde_json::Value;

/// Options for a case's `config`.
pub fn options_from_case_config(config: &Value) -> MathOptions {
    let targets = |v: &Value| -> Option<Vec<ExtractionTarget>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|t| match t.as_str() {
                    Some("latex") => Some(ExtractionTarget::Latex),
                    Some("expr") => Some(ExtractionTarget::Expr),
                    Some("string") => Some(ExtractionTarget::String),
                    _ => None,
                })
                .collect()
        })
    };
    let d = MathOptions::default();
    MathOptions {
        extraction: targets(&config["extraction"]).unwrap_or(d.extraction),
        gold_extraction: targets(&config["gold_extraction"]),
        latex_boxed_match_priority: config["latex_boxed_match_priority"]
            .as_i64()
            .map_or(0, |p| {
                p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
            }),
        float_rounding: config["float_rounding"].as_u64().map_or(6, |f| {
            f.min(u64::from(protocol::math::MAX_FLOAT_ROUNDING)) as u32
        }),
        strict: config["strict"].as_bool().unwrap_or(true),
        allow_set_relation_comp: config["allow_set_relation_comp"].as_bool().unwrap_or(false),
        require_boxed: config["requires_boxed"].as_bool().unwrap_or(false),
        strings: config["strings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        lowercase: config["lowercase"].as_bool().unwrap_or(true),
    }
}
