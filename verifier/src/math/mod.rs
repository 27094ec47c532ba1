//! Math answer grading: extract the final answer from a response, parse it and the ground truth
//! as exact rationals, and compare.
//!
//! No I/O and no async: everything here is a pure function of its inputs, bounded in time by
//! the input caps in [`number`] (digit counts) and the linear scans in [`extract`].

pub mod extract;
pub mod number;

use std::time::Instant;

use protocol::{MathItem, MathOptions, MathResult, MathVerdict};

use number::NumberError;

/// Longest extracted answer that is parsed, bytes. Longer answers are `limit_exceeded`.
pub const MAX_ANSWER_BYTES: usize = 4096;

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
    options: &MathOptions,
) -> (MathVerdict, Option<String>) {
    let Some(pred) = extract::answer(response, options.require_boxed) else {
        return (MathVerdict::NoAnswer, None);
    };
    let extracted = Some(pred.to_string());
    if pred.len() > MAX_ANSWER_BYTES || ground_truth.len() > MAX_ANSWER_BYTES {
        return (MathVerdict::LimitExceeded, extracted);
    }
    let gold = extract::gold(ground_truth);
    let gold_value = match number::parse(gold) {
        Ok(v) => v,
        Err(NumberError::TooLarge) => return (MathVerdict::LimitExceeded, extracted),
        // A gold answer that is not a number is compared as a normalised string.
        Err(NumberError::Invalid) => {
            let same = normalise_text(gold) == normalise_text(pred);
            return (
                if same {
                    MathVerdict::Correct
                } else {
                    MathVerdict::Incorrect
                },
                extracted,
            );
        }
    };
    match number::parse(pred) {
        Ok(v) if v == gold_value => (MathVerdict::Correct, extracted),
        Ok(_) => (MathVerdict::Incorrect, extracted),
        Err(NumberError::TooLarge) => (MathVerdict::LimitExceeded, extracted),
        Err(NumberError::Invalid) => (MathVerdict::Unparseable, extracted),
    }
}

/// Whitespace-insensitive text form used when the gold is not a number.
fn normalise_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
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
        assert_eq!(g(r"\boxed{seven}", "7"), MathVerdict::Unparseable);
        assert_eq!(g(r"\boxed{1,000}", "1000"), MathVerdict::Correct);
        assert_eq!(g(r"\boxed{A}", "A"), MathVerdict::Correct);
        let huge = format!(r"\boxed{{{}}}", "9".repeat(5000));
        assert_eq!(g(&huge, "7"), MathVerdict::LimitExceeded);
    }

    #[test]
    fn require_boxed_off_takes_whole_response() {
        let item = MathItem {
            id: Some("x".into()),
            response: " 42 ".into(),
            ground_truth: "42".into(),
            options: Some(MathOptions {
                require_boxed: false,
            }),
        };
        let r = grade(&item);
        assert!(r.correct);
        assert_eq!(r.reward, 1.0);
        assert_eq!(r.id.as_deref(), Some("x"));
    }
}
