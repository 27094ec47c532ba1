//! Fuzzes the code-test comparison done outside the sandbox: never a panic, and the
//! relations it must have: an output matches itself, matching is symmetric, and a tolerance
//! only ever accepts more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verifier::judge::compare::{json_match, outputs_match};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\0').unwrap_or((text, ""));
    let tol = Some(1e-6);
    assert!(outputs_match(a, a, None));
    assert_eq!(outputs_match(a, b, None), outputs_match(b, a, None));
    assert_eq!(outputs_match(a, b, tol), outputs_match(b, a, tol));
    if outputs_match(a, b, None) {
        assert!(outputs_match(a, b, tol));
    }
    if let (Ok(x), Ok(y)) = (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        assert!(json_match(&x, &x, None) || has_nan_like(&x));
        assert_eq!(json_match(&x, &y, tol), json_match(&y, &x, tol));
    }
});

/// serde_json never yields NaN, but keep the reflexivity check honest if that changes.
fn has_nan_like(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_nan),
        serde_json::Value::Array(a) => a.iter().any(has_nan_like),
        serde_json::Value::Object(o) => o.values().any(has_nan_like),
        _ => false,
    }
}
