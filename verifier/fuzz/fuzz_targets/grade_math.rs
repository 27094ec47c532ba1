//! Fuzzes extraction, parsing and equivalence: any response/gold pair under any option mix
//! must return a verdict without panicking, within the per-item bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{ExtractionTarget, MathItem, MathOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // First byte picks options; the rest splits at the first NUL into response and gold.
    let (flags, rest) = text.split_at(text.char_indices().nth(1).map_or(text.len(), |(i, _)| i));
    let f = flags.bytes().next().unwrap_or(0);
    let (response, gold) = rest.split_once('\0').unwrap_or((rest, "1"));
    let extraction = match f % 4 {
        0 => vec![ExtractionTarget::Latex, ExtractionTarget::Expr],
        1 => vec![ExtractionTarget::Latex],
        2 => vec![ExtractionTarget::Expr],
        _ => vec![ExtractionTarget::String],
    };
    let options = MathOptions {
        extraction,
        require_boxed: f & 4 != 0,
        strict: f & 8 != 0,
        allow_set_relation_comp: f & 16 != 0,
        float_rounding: u32::from(f >> 5),
        strings: vec!["A".into(), "B".into()],
        ..MathOptions::default()
    };
    let item = MathItem { id: None, response: response.to_string(), ground_truth: gold.to_string(), options: Some(options) };
    let start = std::time::Instant::now();
    let r = verifier::math::grade(&item);
    // Bounded: a generous 2 s even for unoptimised fuzz builds with sanitizers.
    assert!(start.elapsed().as_secs() < 2, "took {:?} for {:?}", start.elapsed(), r.verdict);
});
