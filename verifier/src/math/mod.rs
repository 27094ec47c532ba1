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
            return (
                if matches_unparsed_gold(&g, &pred.text) {
                    MathVerdict::Correct
                } else {
                    MathVerdict::Incorrect
                },
                Some(pred.text),
            );
        }
    };
    let verdict = compare(&gold, &pred, o);
    let Extracted { text, .. } = pred;
    (verdict, Some(text))
}

/// Compares an extracted gold answer with an extracted response answer under `o`'s
/// comparison options (`float_rounding`, `strict`, `allow_set_relation_comp`), within
/// [`FUEL_PER_ITEM`] and [`WALL_CLOCK_PER_ITEM`]: `Correct`, `Incorrect` or `LimitExceeded`.
/// Asymmetric like Math-Verify's `verify(gold, pred)`.
pub fn compare(gold: &Extracted, pred: &Extracted, o: &MathOptions) -> MathVerdict {
    let policy = Policy {
        // Validated at the API (≤ 64); clamped here too so no caller can ask for 10^(2^32).
        float_rounding: o.float_rounding.min(protocol::math::MAX_FLOAT_ROUNDING),
        strict: o.strict,
        allow_set_relation_comp: o.allow_set_relation_comp,
    };
    let mut budget = Budget::with_deadline(FUEL_PER_ITEM, WALL_CLOCK_PER_ITEM);
    match equiv::equal(&gold.answer, &pred.answer, &policy, &mut budget) {
        Ok(true) => MathVerdict::Correct,
        Ok(false) if same_text(&pred.text, &gold.text) => MathVerdict::Correct,
        Ok(false) => MathVerdict::Incorrect,
        Err(_) => MathVerdict::LimitExceeded,
    }
}

/// Does an answer written `pred_text` match a gold answer that did not parse? When it is
/// written the same way, or as the gold's value after its last `=` (an unparseable
/// `S_{ABC}:S = 7:32` still names 7:32).
pub fn matches_unparsed_gold(gold: &str, pred_text: &str) -> bool {
    let value = gold.rsplit_once('=').map_or(gold, |(_, v)| v);
    same_text(pred_text, gold) || same_text(pred_text, value)
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

    /// The held-out categories (issue 20): repeating decimals, square roots of negatives,
    /// thin-space thousands, units with `\text`/`\mathrm` and powers, unions equal to ℝ, and
    /// 200–300-deep nesting under the 400-deep limit.
    #[test]
    fn held_out_categories() {
        let misses = std::cell::RefCell::new(Vec::new());
        let check = |answer: &str, gold: &str, want: MathVerdict| {
            let got = g(&format!(r"\boxed{{{answer}}}"), gold);
            if got != want {
                misses
                    .borrow_mut()
                    .push(format!("{answer} vs {gold}: {got:?}, want {want:?}"));
            }
        };
        let ok = |answer: &str, gold: &str| check(answer, gold, MathVerdict::Correct);
        let wrong = |answer: &str, gold: &str| check(answer, gold, MathVerdict::Incorrect);
        // Repeating decimals.
        ok(r"0.\overline{3}", r"\frac{1}{3}");
        ok(r"0.\overline{6}", r"\frac{2}{3}");
        ok(r"0.1\overline{6}", r"\frac{1}{6}");
        ok(r"1.\overline{142857}", r"\frac{8}{7}");
        ok(r"0.\overline{9}", "1");
        ok(r"2.\overline{27}", r"\frac{25}{11}");
        ok(r"-0.\overline{3}", r"-\frac{1}{3}");
        ok(r"\frac{1}{3}", r"0.\overline{3}");
        ok(r"0.\dot{3}", r"\frac{1}{3}");
        ok(r"0.(3)", r"\frac{1}{3}");
        wrong(r"0.\overline{3}", "0.33");
        wrong(r"0.\overline{3}", r"\frac{3}{10}");
        wrong(r"0.3", r"0.\overline{3}");
        // Square roots of negative numbers are imaginary.
        ok(r"\sqrt{-4}", "2i");
        ok(r"\sqrt{-1}", "i");
        ok(r"\sqrt{-3}", r"i\sqrt{3}");
        ok(r"1+\sqrt{-1}", "1+i");
        ok(r"\frac{-2 + \sqrt{-16}}{2}", "-1+2i");
        ok(r"\pm\sqrt{-9}", r"\pm 3i");
        ok(r"2i", r"\sqrt{-4}");
        wrong(r"\sqrt{-4}", "2");
        wrong(r"\sqrt{-4}", "-2i+1");
        // Thin-space (and other spacing) thousands separators.
        ok(r"1\,000", "1000");
        ok(r"12\,345\,678", "12345678");
        ok(r"1\,000.5", "1000.5");
        ok(r"1\;000", "1000");
        ok(r"1{,}000", "1000");
        ok(r"1\,000\,000", r"10^6");
        wrong(r"1\,000", "1");
        // Units with \text / \mathrm and powers.
        ok(r"5\text{ cm}^2", "5");
        ok(r"5 \text{cm}^{2}", "5");
        ok(r"5\,\mathrm{cm}^2", "5");
        ok(r"5\mathrm{~m}^{3}", "5");
        ok(r"12\text{ m/s}", "12");
        ok(r"9.8\,\mathrm{m/s^2}", "9.8");
        ok(r"3\text{ km}^2", r"3");
        ok(r"20\text{ cm}^3", r"20");
        wrong(r"5\text{ cm}^2", "25");
        // Interval unions equal to the reals.
        ok(r"(-\infty, 2] \cup [2, \infty)", r"\mathbb{R}");
        ok(r"(-\infty, 2) \cup [2, \infty)", r"(-\infty, \infty)");
        ok(r"(-\infty,\infty)", r"\mathbb{R}");
        ok(r"\mathbb{R}", r"(-\infty, 0] \cup (0, \infty)");
        ok(r"(-\infty, 1) \cup [1, 3] \cup (3, \infty)", r"\mathbb{R}");
        ok(r"(-\infty, 3) \cup (1, \infty)", r"\mathbb{R}");
        wrong(r"(-\infty, 2) \cup (2, \infty)", r"\mathbb{R}");
        wrong(r"(-\infty, 2] \cup [3, \infty)", r"\mathbb{R}");
        // Deep but legitimate nesting, under the 400-deep limit.
        for depth in [200, 250, 300] {
            ok(&format!("{}1{}", "(".repeat(depth), ")".repeat(depth)), "1");
            ok(&format!("{}7{}", "{".repeat(depth), "}".repeat(depth)), "7");
            let nested = format!("{}16{}", r"\sqrt{".repeat(depth / 2), "}".repeat(depth / 2));
            let got = g(&format!(r"\boxed{{{nested}}}"), "1");
            if got == MathVerdict::LimitExceeded {
                misses
                    .borrow_mut()
                    .push(format!("sqrt depth {}: {got:?}", depth / 2));
            }
        }
        let sum = (1..=250).fold(String::from("0"), |acc, k| format!("({acc}+{k})"));
        ok(&sum, "31375");
        let fracs = (0..200).fold(String::from("1"), |acc, _| format!(r"\frac{{{acc}}}{{1}}"));
        ok(&fracs, "1");
        // Still refused past the limit.
        let too_deep = format!("{}1{}", "(".repeat(450), ")".repeat(450));
        check(&too_deep, "1", MathVerdict::LimitExceeded);
        let misses = misses.into_inner();
        assert!(
            misses.is_empty(),
            "{} misses:\n{}",
            misses.len(),
            misses.join("\n")
        );
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
