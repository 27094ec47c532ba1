//! Math answer grading: extract the final answer, parse it and the gold answer into the
//! answer language, and decide equivalence, within a fuel budget.
//!
//! extract → lex → parse → evaluate/compare. No I/O and no async: everything is a pure
//! function of its inputs, and every input gets a verdict in bounded time: the lexer caps
//! tokens, the parser caps depth, exact arithmetic refuses oversized results before computing
//! them, and every step spends [`eval::Budget`] fuel ([`FUEL_PER_ITEM`]) under a wall-clock
//! deadline ([`WALL_CLOCK_PER_ITEM`]).

pub mod ast;
pub mod conformance;
pub mod equiv;
pub mod eval;
pub mod extract;
pub mod lexer;
pub mod parser;

#[cfg(test)]
mod props;

use std::time::Instant;

use protocol::{MathItem, MathOptions, MathResult, MathVerdict};

use equiv::Policy;
use eval::Budget;
use extract::{ExtractError, Extracted};

/// Fuel for one item: roughly bignum word-operations plus numeric evaluations.
pub const FUEL_PER_ITEM: u64 = 2_000_000;

/// Wall-clock bound for comparing one item (extraction and parsing are linear and capped
/// separately). Default 50 ms.
pub const WALL_CLOCK_PER_ITEM: std::time::Duration = std::time::Duration::from_millis(50);

/// Grades one item. Never panics on any input; every input returns a verdict.
pub fn grade(item: &MathItem) -> MathResult {
    let start = Instant::now();
    let default_options = MathOptions::default();
    let options = item.options.as_ref().unwrap_or(&default_options);
    let (verdict, extracted) = grade_inner(&item.response, &item.ground_truth, options);
    let correct = verdict == MathVerdict::Correct;
    MathResult {
        id: item.id.clone(),
        correct,
        reward: if correct { 1.0 } else { 0.0 },
        verdict,
        extracted,
        elapsed_us: u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

fn grade_inner(
    response: &str,
    ground_truth: &str,
    o: &MathOptions,
) -> (MathVerdict, Option<String>) {
    let pred = match extract::pred(response, o) {
        Ok(p) => p,
        Err(ExtractError::NoAnswer) => return (MathVerdict::NoAnswer, None),
        Err(ExtractError::TooLarge(t)) => return (MathVerdict::LimitExceeded, Some(t)),
        Err(ExtractError::Unparseable(t)) => {
            // An unparseable answer may still be the gold answer written the same way.
            let same = same_text(&t, ground_truth);
            return (
                if same {
                    MathVerdict::Correct
                } else {
                    MathVerdict::Unparseable
                },
                Some(t),
            );
        }
    };
    let gold = match extract::gold(ground_truth, o) {
        Ok(g) => g,
        Err(ExtractError::TooLarge(_)) => return (MathVerdict::LimitExceeded, Some(pred.text)),
        Err(ExtractError::NoAnswer) => return (MathVerdict::Incorrect, Some(pred.text)),
        Err(ExtractError::Unparseable(g)) => {
            // An unparseable gold `S_{ABC}:S = 7:32` still names its value after the last `=`.
            let value = g.rsplit_once('=').map_or(g.as_str(), |(_, v)| v);
            let same = same_text(&pred.text, &g) || same_text(&pred.text, value);
            return (
                if same {
                    MathVerdict::Correct
                } else {
                    MathVerdict::Incorrect
                },
                Some(pred.text),
            );
        }
    };
    let policy = Policy {
        // Validated at the API (≤ 64); clamped here too so no caller can ask for 10^(2^32).
        float_rounding: o.float_rounding.min(protocol::math::MAX_FLOAT_ROUNDING),
        strict: o.strict,
        allow_set_relation_comp: o.allow_set_relation_comp,
    };
    let mut budget = Budget::with_deadline(FUEL_PER_ITEM, WALL_CLOCK_PER_ITEM);
    let verdict = match equiv::equal(&gold.answer, &pred.answer, &policy, &mut budget) {
        Ok(true) => MathVerdict::Correct,
        Ok(false) if same_text(&pred.text, &gold.text) => MathVerdict::Correct,
        Ok(false) => MathVerdict::Incorrect,
        Err(_) => MathVerdict::LimitExceeded,
    };
    let Extracted { text, .. } = pred;
    (verdict, Some(text))
}

/// The same answer written the same way (ignoring whitespace and math delimiters).
fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '$')
            .collect::<String>()
    };
    let (x, y) = (norm(a), norm(b));
    !x.is_empty() && x == y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(response: &str, gold: &str) -> MathVerdict {
        grade(&MathItem {
            id: None,
            response: response.into(),
            ground_truth: gold.into(),
            options: None,
        })
        .verdict
    }

    #[test]
    fn verdicts() {
        assert_eq!(g(r"so \boxed{7}", "7"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{0.5}", r"\frac{1}{2}"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{\dfrac{2}{4}}", "1/2"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{8}", "7"), MathVerdict::Incorrect);
        assert_eq!(g("7", "7"), MathVerdict::NoAnswer);
        assert_eq!(g(r"\boxed{1,000}", "1000"), MathVerdict::Correct);
        assert_eq!(
            g(r"\boxed{\frac{1}{2^{99}}}", r"\frac{1}{2^{98}}"),
            MathVerdict::Incorrect
        );
        assert_eq!(
            g(r"\boxed{\sqrt{2}/2}", r"\frac{1}{\sqrt{2}}"),
            MathVerdict::Correct
        );
        assert_eq!(g(r"\boxed{(x+1)^2}", "x^2+2x+1"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{\{3, 1\}}", r"\{1,3\}"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{(3, 1)}", "(1,3)"), MathVerdict::Incorrect);
        assert_eq!(g(r"\boxed{[0,1)}", "[0,1]"), MathVerdict::Incorrect);
        assert_eq!(g(r"\boxed{10^{10^{10}}}", "7"), MathVerdict::LimitExceeded);
        assert_eq!(
            g(r"\boxed{\sum_{k=1}^{10} k^2}", "385"),
            MathVerdict::Correct
        );
        assert_eq!(
            g(r"\boxed{\sum_{k=1}^{100000} k}", "5000050000"),
            MathVerdict::LimitExceeded
        );
        let deep = format!(r"\boxed{{{}1{}}}", "{".repeat(5000), "}".repeat(5000));
        assert_eq!(g(&deep, "1"), MathVerdict::LimitExceeded);
    }

    /// Found by `cargo fuzz run grade_math` (crash-2fbff275…): an lcm of a symbol and large
    /// integers overflowed i64 in the numeric evaluator.
    #[test]
    fn fuzz_regression_lcm_overflow() {
        let item = MathItem {
            id: None,
            response: "(L144,2\u{1}$\\lcm(l144,2988,37116,18,988,37116,111111111118,72)$".into(),
            ground_truth: "12322512".into(),
            options: Some(MathOptions {
                require_boxed: false,
                ..MathOptions::default()
            }),
        };
        let r = grade(&item);
        assert!(!r.correct);
    }

    #[test]
    fn require_boxed_off_takes_the_last_number() {
        let item = MathItem {
            id: Some("x".into()),
            response: "so we get 42 ".into(),
            ground_truth: "42".into(),
            options: Some(MathOptions {
                require_boxed: false,
                ..MathOptions::default()
            }),
        };
        let r = grade(&item);
        assert!(r.correct);
        assert_eq!(r.id.as_deref(), Some("x"));
    }
}
