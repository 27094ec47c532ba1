//! Property tests: parsing and grading never panic, equivalence is reflexive and symmetric.

use proptest::prelude::*;
use protocol::{MathItem, MathOptions, MathVerdict};

use super::ast::Answer;
use super::equiv::{Policy, equal};
use super::eval::Budget;
use super::grade;
use super::parser::parse;

/// Random LaTeX expressions from a small grammar.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0u32..200).prop_map(|n| n.to_string()),
        (0u32..100, 1u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
        Just("x".to_string()),
        Just("y".to_string()),
        Just("\\pi".to_string()),
        Just("e".to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}+{b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}-({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})\\cdot({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
            (inner.clone(), 0u32..4).prop_map(|(a, n)| format!("({a})^{{{n}}}")),
            inner.clone().prop_map(|a| format!("\\sqrt{{{a}}}")),
            inner.clone().prop_map(|a| format!("\\sin({a})")),
            inner.prop_map(|a| format!("\\left|{a}\\right|")),
        ]
    })
}

/// Token soup from the LaTeX alphabet the parser knows, for robustness.
fn soup() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "\\frac",
        "\\sqrt",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\\{",
        "\\}",
        "^",
        "_",
        "1",
        "23",
        "x",
        ",",
        "=",
        "\\le",
        "\\pm",
        "\\boxed{",
        "$",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "&",
        "\\\\",
        "!",
        "%",
        "\\text{cm}",
        "\\infty",
        "\\cup",
        "|",
        "\\in",
        "-",
        "+",
        "/",
        "e",
        ".",
        " ",
        "\\left(",
        "\\right)",
        "10^{10^{10}}",
        "\\pi",
        "\\sin",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

fn policy() -> Policy {
    Policy {
        float_rounding: 6,
        strict: true,
        allow_set_relation_comp: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn grade_never_panics_on_latex_soup(r in soup(), g in soup()) {
        let item = MathItem { id: None, response: r, ground_truth: g, options: Some(MathOptions { require_boxed: false, ..MathOptions::default() }) };
        let _ = grade(&item);
    }

    #[test]
    fn equivalence_is_reflexive(e in expr()) {
        let item = MathItem { id: None, response: format!("\\boxed{{{e}}}"), ground_truth: e.clone(), options: None };
        let v = grade(&item).verdict;
        prop_assert!(v == MathVerdict::Correct || v == MathVerdict::LimitExceeded, "{e}: {v:?}");
    }

    #[test]
    fn equivalence_is_symmetric(a in expr(), b in expr()) {
        let (Ok(pa @ Answer::Expr(_)), Ok(pb @ Answer::Expr(_))) = (parse(&a), parse(&b)) else { return Ok(()) };
        let ab = equal(&pa, &pb, &policy(), &mut Budget::new(super::FUEL_PER_ITEM));
        let ba = equal(&pb, &pa, &policy(), &mut Budget::new(super::FUEL_PER_ITEM));
        if let (Ok(x), Ok(y)) = (ab, ba) {
            prop_assert_eq!(x, y, "{} vs {}", a, b);
        }
    }
}
