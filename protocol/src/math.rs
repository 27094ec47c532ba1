//! `POST /v1/math/grade`: grade a batch of model responses against ground-truth answers.
//!
//! Results come back in input order. A wrong or unparseable answer is data (HTTP 200 with a
//! [`MathVerdict`]), never an HTTP error.

use serde::{Deserialize, Serialize};

/// A batch of items to grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeMathRequest {
    /// Items, graded independently; results keep this order.
    pub items: Vec<MathItem>,
}

/// One response to grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MathItem {
    /// Caller's identifier, echoed back in the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model's full response; the answer is extracted from it.
    pub response: String,
    /// The gold answer. If it is wrapped (`\boxed{…}`), the wrapper is removed first; otherwise
    /// the whole string is the answer.
    pub ground_truth: String,
    /// Grading options; absent means the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<MathOptions>,
}

/// What kinds of answers extraction looks for (Math-Verify's extraction targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractionTarget {
    /// LaTeX: `\boxed{}`, `$…$`, `\[…\]`, `\(…\)`, "final answer is $…$".
    Latex,
    /// Plain expressions and numbers: `1,000.5`, `3/4`, `28%`, the last number as a fallback.
    Expr,
    /// One of [`MathOptions::strings`] (multiple-choice letters).
    String,
}

/// Per-item grading options. Unknown keys are rejected (422), never ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MathOptions {
    /// Answer kinds extracted from the response. Default `["latex", "expr"]`.
    pub extraction: Vec<ExtractionTarget>,
    /// Answer kinds extracted from a wrapped ground truth; default: the same as `extraction`.
    /// An unwrapped ground truth (no `$…$`, `\boxed{}`, …) is taken whole.
    pub gold_extraction: Option<Vec<ExtractionTarget>>,
    /// Priority of `\boxed{}` among LaTeX patterns (lower wins; "final answer is" is 0,
    /// "answer:" 100, a bare `$…$` 300; negative disables boxed extraction). Default 0.
    pub latex_boxed_match_priority: i32,
    /// Decimal places at which a decimal literal (a float) is compared with a value that is not
    /// exactly equal to it. Default 6. Unlike Math-Verify, two values that both round to 0 are
    /// not equal unless they agree to that relative precision.
    pub float_rounding: u32,
    /// Variable names must match (`f(x)` ≠ `f(y)`). Default true.
    pub strict: bool,
    /// A relation in the response may match an interval/set gold (`-2 ≤ x ≤ 7` vs `[-2, 7]`).
    /// The reverse direction is always allowed. Default false (an echoed inequality from the
    /// question is not an answer).
    pub allow_set_relation_comp: bool,
    /// Only an answer inside `\boxed{}`/`\fbox{}` counts; without one the verdict is
    /// `no_answer`. Default true (the strict format RL rewards usually want).
    pub require_boxed: bool,
    /// Choices for the `string` target, e.g. `["A", "B", "C", "D"]`. Default empty.
    pub strings: Vec<String>,
    /// Compare `string` answers case-insensitively. Default true.
    pub lowercase: bool,
}

/// Largest `float_rounding` accepted (decimal places).
pub const MAX_FLOAT_ROUNDING: u32 = 64;
/// Most `strings` choices accepted.
pub const MAX_STRINGS: usize = 64;

impl MathOptions {
    /// Checks value ranges; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.float_rounding > MAX_FLOAT_ROUNDING {
            return Err(format!(
                "options.float_rounding: {} is above the maximum of {MAX_FLOAT_ROUNDING}",
                self.float_rounding
            ));
        }
        if self.strings.len() > MAX_STRINGS {
            return Err(format!(
                "options.strings: {} choices exceed the maximum of {MAX_STRINGS}",
                self.strings.len()
            ));
        }
        Ok(())
    }
}

impl Default for MathOptions {
    fn default() -> Self {
        MathOptions {
            extraction: vec![ExtractionTarget::Latex, ExtractionTarget::Expr],
            gold_extraction: None,
            latex_boxed_match_priority: 0,
            float_rounding: 6,
            strict: true,
            allow_set_relation_comp: false,
            require_boxed: true,
            strings: Vec::new(),
            lowercase: true,
        }
    }
}

/// Outcome of grading one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MathVerdict {
    /// The extracted answer equals the gold answer.
    Correct,
    /// An answer was extracted and parsed, and it differs from the gold answer.
    Incorrect,
    /// No answer could be extracted from the response.
    NoAnswer,
    /// An answer was extracted but could not be parsed (or the gold could not be).
    Unparseable,
    /// Grading hit a size, depth or time budget; counted as not correct.
    LimitExceeded,
}

impl MathVerdict {
    /// The verdict's wire name (`"correct"`, `"no_answer"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MathVerdict::Correct => "correct",
            MathVerdict::Incorrect => "incorrect",
            MathVerdict::NoAnswer => "no_answer",
            MathVerdict::Unparseable => "unparseable",
            MathVerdict::LimitExceeded => "limit_exceeded",
        }
    }
}

/// The graded result of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MathResult {
    /// The item's `id`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `verdict == correct`.
    pub correct: bool,
    /// 1.0 if correct, else 0.0.
    pub reward: f64,
    /// Why the answer is (not) correct.
    pub verdict: MathVerdict,
    /// The answer string extracted from the response, if any.
    pub extracted: Option<String>,
    /// Time spent grading this item, microseconds.
    pub elapsed_us: u64,
}

/// Results of a batch, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeMathResponse {
    /// One result per request item.
    pub results: Vec<MathResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_design() {
        let r = MathResult {
            id: Some("a".into()),
            correct: false,
            reward: 0.0,
            verdict: MathVerdict::NoAnswer,
            extracted: None,
            elapsed_us: 3,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "no_answer");
        assert_eq!(v["extracted"], serde_json::Value::Null);
        for k in [
            "id",
            "correct",
            "reward",
            "verdict",
            "extracted",
            "elapsed_us",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
    }

    #[test]
    fn unknown_option_is_rejected() {
        let e = serde_json::from_str::<MathItem>(
            r#"{"response":"x","ground_truth":"1","options":{"bogus":1}}"#,
        );
        assert!(e.is_err());
        let ok: MathItem =
            serde_json::from_str(r#"{"response":"x","ground_truth":"1","options":{}}"#).unwrap();
        assert!(ok.options.unwrap().require_boxed);
    }
}
