//! Output comparison, done outside the sandbox: the expected output never enters the box.
//!
//! I/O tests: `\r\n` → `\n`, trailing whitespace of every line and trailing blank lines are
//! ignored; the rest must match exactly, or token by token with a relative tolerance for
//! tokens that both parse as finite numbers. Whole-output comparison only (never "expected
//! is a substring"), so printing many candidates cannot pass.

/// Normalised lines of an output.
fn lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.split('\n').map(|l| l.trim_end()).collect();
    while v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// Two numbers agree within `rel` (relative to the larger magnitude, with `rel` as an
/// absolute floor near zero).
pub(crate) fn close(a: f64, b: f64, rel: f64) -> bool {
    if a == b {
        return true;
    }
    let scale = a.abs().max(b.abs()).max(1.0);
    (a - b).abs() <= rel * scale
}

fn number(tok: &str) -> Option<f64> {
    tok.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Whether `actual` stdout matches `expected` per the rules above.
pub fn outputs_match(actual: &str, expected: &str, float_rel_tol: Option<f64>) -> bool {
    let (a, e) = (lines(actual), lines(expected));
    if a.len() != e.len() {
        return false;
    }
    a.iter().zip(&e).all(|(la, le)| {
        if la == le {
            return true;
        }
        let Some(tol) = float_rel_tol else {
            return false;
        };
        let (ta, te): (Vec<&str>, Vec<&str>) = (
            la.split_whitespace().collect(),
            le.split_whitespace().collect(),
        );
        ta.len() == te.len()
            && ta.iter().zip(&te).all(|(x, y)| {
                x == y || matches!((number(x), number(y)), (Some(p), Some(q)) if close(p, q, tol))
            })
    })
}

/// JSON equality for function-call results: numbers compare by value (`2` equals `2.0`,
/// within `float_rel_tol` if given), objects by keys, arrays element-wise.
pub fn json_match(
    actual: &serde_json::Value,
    expected: &serde_json::Value,
    float_rel_tol: Option<f64>,
) -> bool {
    use serde_json::Value as V;
    match (actual, expected) {
        (V::Number(a), V::Number(b)) => {
            if a == b {
                return true;
            }
            match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => close(x, y, float_rel_tol.unwrap_or(0.0)),
                    _ => false,
                },
            }
        }
        (V::Array(a), V::Array(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| json_match(x, y, float_rel_tol))
        }
        (V::Object(a), V::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| json_match(x, y, float_rel_tol)))
        }
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trailing_whitespace_and_blank_lines_are_ignored() {
        assert!(outputs_match("1 2  \r\n3\n\n\n", "1 2\n3", None));
        assert!(outputs_match("", "\n\n", None));
        assert!(
            !outputs_match("1  2\n", "1 2\n", None),
            "inner spacing counts"
        );
        assert!(
            !outputs_match("\n1\n", "1\n", None),
            "leading blank line counts"
        );
        assert!(!outputs_match("YES\n", "yes\n", None), "case counts");
    }

    #[test]
    fn substring_never_passes() {
        assert!(!outputs_match("1\n2\n3\n", "2\n", None));
        assert!(!outputs_match("2 3\n", "2\n", None));
    }

    #[test]
    fn float_tolerance_applies_to_numbers_only() {
        assert!(!outputs_match("0.3333333\n", "0.33333333\n", None));
        assert!(outputs_match("0.3333333\n", "0.33333333\n", Some(1e-6)));
        assert!(!outputs_match("0.33\n", "0.3333\n", Some(1e-6)));
        assert!(!outputs_match("abc 1.0\n", "abd 1.0\n", Some(0.5)));
        assert!(!outputs_match("nan\n", "nan1\n", Some(0.5)));
    }

    #[test]
    fn json_numbers_by_value() {
        assert!(json_match(
            &json!([2, {"a": 1.0}]),
            &json!([2.0, {"a": 1}]),
            None
        ));
        assert!(!json_match(&json!([1, 2]), &json!([1, 2, 3]), None));
        assert!(!json_match(&json!(0.1), &json!(0.1000001), None));
        assert!(json_match(&json!(0.1), &json!(0.1000001), Some(1e-5)));
        assert!(!json_match(&json!("1"), &json!(1), None));
        assert!(!json_match(&json!(null), &json!(false), None));
    }
}
