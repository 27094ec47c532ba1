//! Which verifier endpoint a row's responses go to: its [`RewardKind`], resolved when the
//! task loads from (first that answers) the config's `[reward.kinds]` override for the row's
//! `data_source`, the built-in source table ([`kind_of_source`], after verl's
//! `default_compute_score`), the row's `ability` (`math`, `code`/`coding`), and last the row's
//! shape (code tests present: code; else math).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A row's kind: the endpoint that grades its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// `/v1/math/grade` against a gold answer.
    Math,
    /// `/v1/code/judge` against tests (the response text as is: the verifier runs its last
    /// fenced code block).
    Code,
}

impl RewardKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::Math => "math",
            RewardKind::Code => "code",
        }
    }
}

/// Name fragments of code data sources (matched in the lowercased `data_source`, so
/// `likaixin/TACO-verified`, `openai/openai_humaneval` or `deepcoder/lcbv5` are found).
const CODE_SOURCES: [&str; 13] = [
    "codecontests",
    "code_contests",
    "apps",
    "codeforces",
    "taco",
    "livecodebench",
    "lcb",
    "primeintellect",
    "humaneval",
    "mbpp",
    "leetcode",
    "deepcoder",
    "kodcode",
];

/// Name fragments of math data sources.
const MATH_SOURCES: [&str; 10] = [
    "gsm8k",
    "math",
    "aime",
    "amc",
    "numina",
    "olympiad",
    "deepscaler",
    "dapo",
    "geometry",
    "minerva",
];

/// The kind verl's `default_compute_score` gives `data_source`, or `None` for a source it
/// does not know. Code names are checked first (`mathcode…` is code).
pub fn kind_of_source(data_source: &str) -> Option<RewardKind> {
    let s = data_source.to_ascii_lowercase();
    if CODE_SOURCES.iter().any(|c| s.contains(c)) {
        Some(RewardKind::Code)
    } else if MATH_SOURCES.iter().any(|m| s.contains(m)) {
        Some(RewardKind::Math)
    } else {
        None
    }
}

/// The kind of a row by its declared `data_source` and `ability`, before its shape is
/// looked at: the override table first, then [`kind_of_source`], then `ability`.
pub fn declared_kind(
    overrides: &BTreeMap<String, RewardKind>,
    data_source: &str,
    ability: Option<&str>,
) -> Option<RewardKind> {
    overrides
        .get(data_source)
        .copied()
        .or_else(|| kind_of_source(data_source))
        .or_else(|| match ability.map(str::to_ascii_lowercase).as_deref() {
            Some("code" | "coding" | "programming") => Some(RewardKind::Code),
            Some("math" | "mathematics") => Some(RewardKind::Math),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_route_like_verl() {
        for code in [
            "codecontests",
            "apps",
            "taco",
            "livecodebench",
            "primeintellect",
            "humaneval",
            "mbpp",
            "likaixin/TACO-verified",
            "openai/openai_humaneval",
            "deepcoder/lcbv5",
        ] {
            assert_eq!(kind_of_source(code), Some(RewardKind::Code), "{code}");
        }
        for math in [
            "openai/gsm8k",
            "lighteval/MATH",
            "math_dapo",
            "aime2024",
            "numina_olympiads",
        ] {
            assert_eq!(kind_of_source(math), Some(RewardKind::Math), "{math}");
        }
        assert_eq!(kind_of_source("jsonl"), None);
        assert_eq!(kind_of_source("my-puzzles"), None);
    }

    #[test]
    fn overrides_win_then_sources_then_ability() {
        let mut o = BTreeMap::new();
        o.insert("apps".to_string(), RewardKind::Math);
        o.insert("my-puzzles".to_string(), RewardKind::Code);
        assert_eq!(declared_kind(&o, "apps", None), Some(RewardKind::Math));
        assert_eq!(
            declared_kind(&o, "my-puzzles", Some("math")),
            Some(RewardKind::Code)
        );
        assert_eq!(declared_kind(&o, "taco", None), Some(RewardKind::Code));
        assert_eq!(
            declared_kind(&o, "other", Some("coding")),
            Some(RewardKind::Code)
        );
        assert_eq!(
            declared_kind(&o, "other", Some("Math")),
            Some(RewardKind::Math)
        );
        assert_eq!(declared_kind(&o, "other", None), None);
    }
}
