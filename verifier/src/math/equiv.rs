//! Equivalence of a predicted answer with the gold answer.
//!
//! Scalars: exact rational comparison when both sides are rational; a decimal literal (a
//! float) compared with a different value is rounded to `float_rounding` places on both sides
//! (Math-Verify's rule), except that two values that both round to zero must also agree
//! relatively (so 2⁻⁹⁹ ≠ 2⁻⁹⁸); irrational constants compare numerically (relative 1e-9);
//! expressions with variables are evaluated at seeded random complex points.
//!
//! Structures follow Math-Verify: set order is irrelevant, tuple order is not, interval
//! brackets matter, `x = 3` matches `3`, a relation gold may match a set or interval answer
//! (the reverse only with `allow_set_relation_comp`), matrices compare element-wise.

use std::collections::BTreeSet;

use num_complex::Complex64;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::ast::{Answer, Constant, Expr, Num, RelOp};
use super::eval::{Budget, LimitExceeded, exact, numeric, rational_f64};

/// Comparison settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Decimal places for float comparisons.
    pub float_rounding: u32,
    /// Variable names must match.
    pub strict: bool,
    /// A relation answer may match a set/interval gold.
    pub allow_set_relation_comp: bool,
}

/// The three outcomes of a comparison.
pub type Cmp = Result<bool, LimitExceeded>;

/// Random points per comparison with free variables.
const POINTS: usize = 10;

/// Compares `pred` with `gold`.
pub fn equal(gold: &Answer, pred: &Answer, p: &Policy, b: &mut Budget) -> Cmp {
    b.spend(1)?;
    use Answer as A;
    match (gold, pred) {
        (A::Expr(g), A::Expr(q)) => scalar(g, q, p, b),
        (A::Text(g), A::Text(q)) => Ok(g == q),
        // `x = 3` vs `3`, chains `a = b = 101` vs `101`.
        (A::Relation { .. }, A::Relation { .. }) => relations(gold, pred, p, b),
        (A::Relation { terms, ops }, other) => match assigned_value(terms, ops, false) {
            Some(v) => equal(&A::Expr(v.clone()), other, p, b),
            None => match relation_as_set(terms, ops) {
                Some(set)
                    if matches!(
                        other,
                        A::Interval { .. } | A::Union(_) | A::Member(..) | A::Set(_)
                    ) || matches!(other, A::Tuple(t) if t.len() == 2) =>
                {
                    equal(&set, other, p, b)
                }
                _ => Ok(false),
            },
        },
        (A::Text(t), A::Expr(e)) => {
            Ok(letters(e).is_some_and(|l| l.eq_ignore_ascii_case(&t.replace(' ', ""))))
        }
        (A::Expr(e), A::Text(t)) => {
            Ok(letters(e).is_some_and(|l| l.eq_ignore_ascii_case(&t.replace(' ', ""))))
        }
        (other, A::Relation { terms, ops }) => match assigned_value(terms, ops, true) {
            Some(v) => equal(other, &A::Expr(v.clone()), p, b),
            None if p.allow_set_relation_comp => match relation_as_set(terms, ops) {
                Some(set) => equal(other, &set, p, b),
                None => Ok(false),
            },
            None => Ok(false),
        },
        (A::Member(_, g), A::Member(_, q)) => equal(g, q, p, b),
        (A::Member(_, g), other) => equal(g, other, p, b),
        (other, A::Member(_, q)) => equal(other, q, p, b),
        (
            A::Interval {
                lo: gl,
                hi: gh,
                lo_closed: gc,
                hi_closed: hc,
            },
            A::Interval {
                lo: ql,
                hi: qh,
                lo_closed: pc,
                hi_closed: qc,
            },
        ) => {
            let ends_ok = |closed_g: bool, closed_q: bool, end: &Expr| {
                closed_g == closed_q || is_infinite(end)
            };
            Ok(ends_ok(*gc, *pc, gl)
                && ends_ok(*hc, *qc, gh)
                && scalar(gl, ql, p, b)?
                && scalar(gh, qh, p, b)?)
        }
        // An open interval `(a, b)` is written like a pair.
        (
            A::Interval {
                lo,
                hi,
                lo_closed: false,
                hi_closed: false,
            },
            A::Tuple(items),
        )
        | (
            A::Tuple(items),
            A::Interval {
                lo,
                hi,
                lo_closed: false,
                hi_closed: false,
            },
        ) if items.len() == 2 => Ok(equal(&A::Expr(lo.clone()), &items[0], p, b)?
            && equal(&A::Expr(hi.clone()), &items[1], p, b)?),
        (A::Tuple(g), A::Tuple(q)) | (A::Tuple(g), A::List(q)) | (A::List(g), A::Tuple(q)) => {
            ordered(g, q, p, b)
        }
        (A::Set(g) | A::List(g), A::Set(q) | A::List(q)) => unordered(g, q, p, b),
        (A::Tuple(g), A::Set(q)) | (A::Set(g), A::Tuple(q)) if !p.strict => unordered(g, q, p, b),
        // Unions of intervals as the sets they are: `(-∞, 2] ∪ [2, ∞)` = ℝ.
        (A::Union(_), _) | (_, A::Union(_)) if spans(gold).is_some() && spans(pred).is_some() => {
            same_spans(gold, pred, p, b)
        }
        (A::Union(g), A::Union(q)) => unordered(g, q, p, b),
        (A::Matrix(g), A::Matrix(q)) => {
            if g.len() != q.len() || g.iter().zip(q).any(|(a, c)| a.len() != c.len()) {
                return Ok(false);
            }
            for (gr, qr) in g.iter().zip(q) {
                for (x, y) in gr.iter().zip(qr) {
                    if !scalar(x, y, p, b)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
        // A one-element set or list against a scalar.
        (A::Set(g), q @ A::Expr(_)) if g.len() == 1 => equal(&g[0], q, p, b),
        (g @ A::Expr(_), A::Set(q)) if q.len() == 1 => equal(g, &q[0], p, b),
        _ => Ok(false),
    }
}

fn ordered(g: &[Answer], q: &[Answer], p: &Policy, b: &mut Budget) -> Cmp {
    if g.len() != q.len() {
        return Ok(false);
    }
    for (x, y) in g.iter().zip(q) {
        if !equal(x, y, p, b)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Order-free comparison with duplicates collapsed: every gold element must match a distinct
/// predicted element and vice versa (a hedged superset fails).
fn unordered(g: &[Answer], q: &[Answer], p: &Policy, b: &mut Budget) -> Cmp {
    let g = dedup(g, p, b)?;
    let q = dedup(q, p, b)?;
    if g.len() != q.len() {
        return Ok(false);
    }
    let mut used = vec![false; q.len()];
    for x in &g {
        let mut found = false;
        for (j, y) in q.iter().enumerate() {
            if !used[j] && equal(x, y, p, b)? {
                used[j] = true;
                found = true;
                break;
            }
        }
        if !found {
            return Ok(false);
        }
    }
    Ok(true)
}

fn dedup<'a>(
    xs: &'a [Answer],
    p: &Policy,
    b: &mut Budget,
) -> Result<Vec<&'a Answer>, LimitExceeded> {
    let mut out: Vec<&Answer> = Vec::new();
    for x in xs {
        let mut dup = false;
        for y in &out {
            if equal(y, x, p, b)? {
                dup = true;
                break;
            }
        }
        if !dup {
            out.push(x);
        }
    }
    Ok(out)
}

/// A run of single-letter variables (`odd` read as o·d·d) as the word it spells.
fn letters(e: &Expr) -> Option<String> {
    match e {
        Expr::Sym(s) if s.chars().count() == 1 => Some(s.clone()),
        Expr::Const(Constant::E) => Some("e".into()),
        Expr::Const(Constant::I) => Some("i".into()),
        Expr::Mul(xs) => xs.iter().map(letters).collect(),
        _ => None,
    }
}

/// Built from variables alone (`x`, `AB`, `NO/BO`, `f(x)`, `|AB|`, `y_1`): the left side of
/// an assignment rather than of an equation.
fn symbol_like(e: &Expr) -> bool {
    match e {
        Expr::Sym(_) | Expr::Apply(..) => true,
        Expr::Mul(xs) => xs.iter().all(symbol_like),
        Expr::Div(a, c) => symbol_like(a) && symbol_like(c),
        Expr::Call(super::ast::Func::Abs, a) => a.iter().all(symbol_like),
        _ => false,
    }
}

/// The value a relation assigns: `x = v` (something [`symbol_like`] on the left) gives `v`; a
/// chain with two or more `=` gives its last `=` operand; trailing `≈` parts are ignored when
/// an `=` exists, and `x ≈ v` alone gives `v`. A predicted relation (`lenient`) always gives its
/// last `=` operand: `1/2 = 10/9` answers 10/9.
fn assigned_value<'a>(terms: &'a [Expr], ops: &[RelOp], lenient: bool) -> Option<&'a Expr> {
    if ops.iter().any(|o| !matches!(o, RelOp::Eq | RelOp::Approx)) {
        return None;
    }
    let last_eq = ops.iter().rposition(|o| *o == RelOp::Eq);
    let idx = match last_eq {
        Some(i) => i + 1,
        None => ops.len(),
    };
    let eq_count = ops.iter().filter(|o| **o == RelOp::Eq).count();
    if lenient || eq_count >= 2 || symbol_like(&terms[0]) || (eq_count == 0 && !ops.is_empty()) {
        Some(&terms[idx])
    } else {
        None
    }
}

/// One interval of a union, with its ends' values (±∞ included).
#[derive(Debug)]
struct Span<'a> {
    lo: &'a Expr,
    hi: &'a Expr,
    lo_v: f64,
    hi_v: f64,
    lo_closed: bool,
    hi_closed: bool,
}

/// An interval end's real value; `None` for a variable or non-real end.
fn end_value(e: &Expr) -> Option<f64> {
    if is_infinite(e) {
        return Some(if matches!(e, Expr::Neg(_)) {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !free_vars(e).is_empty() {
        return None;
    }
    let z = numeric(e, &|_| None)?;
    (z.im.abs() <= 1e-12 * z.re.abs().max(1.0)).then_some(z.re)
}

fn same_point(a: f64, c: f64) -> bool {
    a == c
        || (a.is_finite()
            && c.is_finite()
            && (a - c).abs() <= 1e-12 * a.abs().max(c.abs()).max(1.0))
}

/// An interval or a union of intervals as sorted, disjoint spans: overlapping spans, and
/// spans that meet at a point one of them contains, are merged. `None` unless every part is
/// an interval with real ends.
fn spans(a: &Answer) -> Option<Vec<Span<'_>>> {
    let (parts, in_union): (Vec<&Answer>, bool) = match a {
        Answer::Union(xs) => (xs.iter().collect(), true),
        one => (vec![one], false),
    };
    let mut all = Vec::with_capacity(parts.len());
    for part in parts {
        let (lo, hi, lo_closed, hi_closed) = match part {
            Answer::Interval {
                lo,
                hi,
                lo_closed,
                hi_closed,
            } => (lo, hi, *lo_closed, *hi_closed),
            // `(0, \infty)` parses as a pair: an open interval inside a union, or with an
            // infinite end.
            Answer::Tuple(ends) => match ends.as_slice() {
                [Answer::Expr(lo), Answer::Expr(hi)]
                    if in_union || is_infinite(lo) || is_infinite(hi) =>
                {
                    (lo, hi, false, false)
                }
                _ => return None,
            },
            _ => return None,
        };
        let (lo_v, hi_v) = (end_value(lo)?, end_value(hi)?);
        if lo_v > hi_v {
            return None;
        }
        all.push(Span {
            lo,
            hi,
            lo_v,
            hi_v,
            lo_closed,
            hi_closed,
        });
    }
    all.sort_by(|x, y| {
        x.lo_v
            .total_cmp(&y.lo_v)
            .then(y.lo_closed.cmp(&x.lo_closed))
    });
    let mut merged: Vec<Span<'_>> = Vec::with_capacity(all.len());
    for s in all {
        if let Some(last) = merged.last_mut() {
            let meet = same_point(last.hi_v, s.lo_v);
            if (last.hi_v > s.lo_v && !meet) || (meet && (last.hi_closed || s.lo_closed)) {
                if same_point(s.hi_v, last.hi_v) {
                    last.hi_closed |= s.hi_closed;
                } else if s.hi_v > last.hi_v {
                    last.hi = s.hi;
                    last.hi_v = s.hi_v;
                    last.hi_closed = s.hi_closed;
                }
                continue;
            }
        }
        merged.push(s);
    }
    Some(merged)
}

/// Two interval unions describe the same set: the same merged spans, ends compared exactly
/// (as scalars) and brackets alike except at ±∞.
fn same_spans(gold: &Answer, pred: &Answer, p: &Policy, b: &mut Budget) -> Cmp {
    let (Some(g), Some(q)) = (spans(gold), spans(pred)) else {
        return Ok(false);
    };
    if g.len() != q.len() {
        return Ok(false);
    }
    for (x, y) in g.iter().zip(&q) {
        let ends = [
            (x.lo, x.lo_v, x.lo_closed, y.lo, y.lo_v, y.lo_closed),
            (x.hi, x.hi_v, x.hi_closed, y.hi, y.hi_v, y.hi_closed),
        ];
        for (ge, gv, gc, qe, qv, qc) in ends {
            let same = if gv.is_infinite() || qv.is_infinite() {
                gv == qv
            } else {
                gc == qc && scalar(ge, qe, p, b)?
            };
            if !same {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn is_infinite(e: &Expr) -> bool {
    match e {
        Expr::Const(Constant::Infinity) => true,
        Expr::Neg(x) => is_infinite(x),
        _ => false,
    }
}

fn neg_inf() -> Expr {
    Expr::Neg(Box::new(Expr::Const(Constant::Infinity)))
}

/// A one-variable inequality (`x ≥ 5`, `-2 ≤ x ≤ 7`, `x ≠ 3`) as the set it describes.
fn relation_as_set(terms: &[Expr], ops: &[RelOp]) -> Option<Answer> {
    let interval = |lo: Expr, hi: Expr, lc: bool, hc: bool| Answer::Interval {
        lo,
        hi,
        lo_closed: lc,
        hi_closed: hc,
    };
    match (terms, ops) {
        ([x, v], [op]) if symbol_like(x) && free_vars(v).is_empty() => Some(match op {
            RelOp::Lt => interval(neg_inf(), v.clone(), false, false),
            RelOp::Le => interval(neg_inf(), v.clone(), false, true),
            RelOp::Gt => interval(v.clone(), Expr::Const(Constant::Infinity), false, false),
            RelOp::Ge => interval(v.clone(), Expr::Const(Constant::Infinity), true, false),
            RelOp::Ne => Answer::Union(vec![
                interval(neg_inf(), v.clone(), false, false),
                interval(v.clone(), Expr::Const(Constant::Infinity), false, false),
            ]),
            RelOp::Eq | RelOp::Approx => Answer::Set(vec![Answer::Expr(v.clone())]),
        }),
        ([v, x], [op]) if symbol_like(x) && free_vars(v).is_empty() => {
            let flipped = match op {
                RelOp::Lt => RelOp::Gt,
                RelOp::Le => RelOp::Ge,
                RelOp::Gt => RelOp::Lt,
                RelOp::Ge => RelOp::Le,
                o => *o,
            };
            relation_as_set(&[x.clone(), v.clone()], &[flipped])
        }
        ([lo, x, hi], [a, c]) if symbol_like(x) => {
            let up = |o: &RelOp| matches!(o, RelOp::Lt | RelOp::Le);
            let down = |o: &RelOp| matches!(o, RelOp::Gt | RelOp::Ge);
            if up(a) && up(c) {
                Some(interval(
                    lo.clone(),
                    hi.clone(),
                    *a == RelOp::Le,
                    *c == RelOp::Le,
                ))
            } else if down(a) && down(c) {
                Some(interval(
                    hi.clone(),
                    lo.clone(),
                    *c == RelOp::Ge,
                    *a == RelOp::Ge,
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Two relations: equal values if both assign one; otherwise the same relation up to a
/// positive (inequalities) or non-zero (equations) factor, with sides possibly swapped.
fn relations(gold: &Answer, pred: &Answer, p: &Policy, b: &mut Budget) -> Cmp {
    let (Answer::Relation { terms: gt, ops: go }, Answer::Relation { terms: pt, ops: po }) =
        (gold, pred)
    else {
        return Ok(false);
    };
    // `-2 ≤ x ≤ 7` against `x ≥ -2`… : compare the sets they describe when both are one-variable.
    let same_vars = || {
        let vars = |ts: &[Expr]| ts.iter().flat_map(free_vars).collect::<BTreeSet<_>>();
        !p.strict || vars(gt) == vars(pt)
    };
    if let (Some(gs), Some(ps)) = (relation_as_set(gt, go), relation_as_set(pt, po))
        && go
            .iter()
            .chain(po)
            .all(|o| !matches!(o, RelOp::Eq | RelOp::Approx))
        && same_vars()
    {
        return equal(&gs, &ps, p, b);
    }
    if let (Some(gv), Some(pv)) = (assigned_value(gt, go, false), assigned_value(pt, po, false)) {
        let same_var = match (&gt[0], &pt[0]) {
            (Expr::Sym(a), Expr::Sym(c)) => a == c || !p.strict,
            _ => true,
        };
        if same_var && scalar(gv, pv, p, b)? {
            return Ok(true);
        }
    }
    if go.len() != 1 || po.len() != 1 {
        return Ok(gt.len() == pt.len() && go == po && {
            let mut all = true;
            for (x, y) in gt.iter().zip(pt) {
                if !scalar(x, y, p, b)? {
                    all = false;
                    break;
                }
            }
            all
        });
    }
    let (gk, gd) = normal_form(&gt[0], go[0], &gt[1]);
    let (pk, pd) = normal_form(&pt[0], po[0], &pt[1]);
    if gk != pk {
        return Ok(false);
    }
    proportional(&gd, &pd, matches!(gk, Kind::Pos | Kind::NonNeg), b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zero,
    NonZero,
    Pos,
    NonNeg,
}

/// `l op r` as `d kind` with `d` one expression: `l < r` → `r − l > 0`.
fn normal_form(l: &Expr, op: RelOp, r: &Expr) -> (Kind, Expr) {
    let diff = |a: &Expr, c: &Expr| Expr::Add(vec![a.clone(), Expr::Neg(Box::new(c.clone()))]);
    match op {
        RelOp::Eq | RelOp::Approx => (Kind::Zero, diff(l, r)),
        RelOp::Ne => (Kind::NonZero, diff(l, r)),
        RelOp::Gt => (Kind::Pos, diff(l, r)),
        RelOp::Ge => (Kind::NonNeg, diff(l, r)),
        RelOp::Lt => (Kind::Pos, diff(r, l)),
        RelOp::Le => (Kind::NonNeg, diff(r, l)),
    }
}

/// Is `q = c·g` for one constant c (positive if `positive`)? Checked at random points.
fn proportional(g: &Expr, q: &Expr, positive: bool, b: &mut Budget) -> Cmp {
    let vars = free_vars(g)
        .union(&free_vars(q))
        .cloned()
        .collect::<Vec<_>>();
    let mut ratio: Option<Complex64> = None;
    let mut used = 0;
    for k in 0..POINTS * 2 {
        b.spend(10)?;
        let env = point_env(&vars, k);
        let (Some(gv), Some(qv)) = (numeric(g, &env), numeric(q, &env)) else {
            continue;
        };
        if gv.norm() < 1e-12 || qv.norm() < 1e-12 {
            if gv.norm() < 1e-12 && qv.norm() < 1e-12 {
                used += 1;
                continue;
            }
            return Ok(false);
        }
        let r = qv / gv;
        match ratio {
            None => ratio = Some(r),
            Some(r0) if (r - r0).norm() > 1e-7 * r0.norm().max(1.0) => return Ok(false),
            _ => {}
        }
        used += 1;
        if used >= POINTS {
            break;
        }
    }
    Ok(used >= 3
        && ratio
            .is_none_or(|r| !positive || (r.re > 0.0 && r.im.abs() < 1e-9 * r.re.abs().max(1.0))))
}

/// Free variable names (undefined function names included).
pub fn free_vars(e: &Expr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(e, &mut out);
    out
}

fn collect(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Sym(s) => {
            out.insert(s.clone());
        }
        Expr::Num(_) | Expr::Const(_) => {}
        Expr::Neg(a) => collect(a, out),
        Expr::Add(xs) | Expr::Mul(xs) | Expr::Call(_, xs) => {
            xs.iter().for_each(|x| collect(x, out))
        }
        Expr::Apply(_, xs) => xs.iter().for_each(|x| collect(x, out)),
        Expr::Div(a, c) | Expr::Pow(a, c) => {
            collect(a, out);
            collect(c, out);
        }
    }
}

fn has_float(e: &Expr) -> bool {
    match e {
        Expr::Num(Num { is_float, .. }) => *is_float,
        Expr::Sym(_) | Expr::Const(_) => false,
        Expr::Neg(a) => has_float(a),
        Expr::Add(xs) | Expr::Mul(xs) | Expr::Call(_, xs) | Expr::Apply(_, xs) => {
            xs.iter().any(has_float)
        }
        Expr::Div(a, c) | Expr::Pow(a, c) => has_float(a) || has_float(c),
    }
}

/// Deterministic sample point `k` for `vars`: positive reals first (where roots and logs are
/// tame), then complex points (which separate `√(x²)` from `x`).
fn point_env(vars: &[String], k: usize) -> impl Fn(&str) -> Option<Complex64> + '_ {
    move |name: &str| {
        let i = vars.iter().position(|v| v == name)?;
        let mut z = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ ((i as u64 + 7).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z ^= z >> 29;
        z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
        let u = (z >> 11) as f64 / (1u64 << 53) as f64;
        let w = ((z.rotate_left(17)) >> 11) as f64 / (1u64 << 53) as f64;
        Some(if k < POINTS / 2 {
            Complex64::new(0.3 + 2.7 * u, 0.0)
        } else {
            Complex64::new(2.0 * u - 1.0, 2.0 * w - 1.0) * 1.5
        })
    }
}

/// Two scalar expressions.
pub fn scalar(g: &Expr, q: &Expr, p: &Policy, b: &mut Budget) -> Cmp {
    if g == q {
        return Ok(true);
    }
    let (gi, qi) = (is_infinite(g), is_infinite(q));
    if gi || qi {
        return Ok(gi && qi && matches!(g, Expr::Neg(_)) == matches!(q, Expr::Neg(_)));
    }
    let gvars = free_vars(g);
    let qvars = free_vars(q);
    if gvars.is_empty() && qvars.is_empty() {
        return constants(g, q, p, b);
    }
    let floats = has_float(g) || has_float(q);
    let (names, rename): (Vec<String>, Vec<(String, String)>) = if gvars == qvars {
        (gvars.iter().cloned().collect(), vec![])
    } else if !p.strict && gvars.len() == qvars.len() {
        (
            gvars.iter().cloned().collect(),
            qvars.iter().cloned().zip(gvars.iter().cloned()).collect(),
        )
    } else {
        // Different variables: equal only if the extra ones cancel, checked numerically below.
        (gvars.union(&qvars).cloned().collect(), vec![])
    };
    let tol = if floats {
        10f64.powi(-(p.float_rounding.min(15) as i32))
    } else {
        1e-8
    };
    let mut agree = 0;
    for k in 0..POINTS * 2 {
        b.spend(20)?;
        let env = point_env(&names, k);
        let qenv = |s: &str| {
            let mapped = rename
                .iter()
                .find(|(from, _)| from == s)
                .map_or(s, |(_, to)| to.as_str());
            env(mapped)
        };
        let (Some(gv), Some(qv)) = (numeric(g, &env), numeric(q, &qenv)) else {
            continue;
        };
        if (gv - qv).norm() > tol * gv.norm().max(qv.norm()).max(1e-300) && (gv - qv).norm() > 1e-12
        {
            return Ok(false);
        }
        agree += 1;
        if agree >= POINTS {
            break;
        }
    }
    Ok(agree >= 3)
}

/// Variable-free scalars.
fn constants(g: &Expr, q: &Expr, p: &Policy, b: &mut Budget) -> Cmp {
    let floats = has_float(g) || has_float(q);
    let ge = exact(g, b)?;
    let qe = exact(q, b)?;
    if let (Some(x), Some(y)) = (&ge, &qe) {
        if x == y {
            return Ok(true);
        }
        if !floats {
            return Ok(false);
        }
        return Ok(rounded_equal_exact(x, y, p.float_rounding));
    }
    let env = |_: &str| None;
    let (Some(gv), Some(qv)) = (numeric(g, &env), numeric(q, &env)) else {
        return Ok(false);
    };
    if floats {
        let d = p.float_rounding.min(15) as i32;
        let close = |a: f64, c: f64| rounded_equal_f64(a, c, d);
        return Ok(close(gv.re, qv.re) && close(gv.im, qv.im));
    }
    let scale = gv.norm().max(qv.norm());
    Ok((gv - qv).norm() <= 1e-9 * scale.max(1e-300))
}

fn rounded_equal_exact(x: &BigRational, y: &BigRational, d: u32) -> bool {
    let scale =
        BigRational::from_integer(num_traits::pow(num_bigint::BigInt::from(10u8), d as usize));
    let round = |v: &BigRational| {
        let s = v * &scale;
        let half = BigRational::new(1.into(), 2.into());
        if s.is_negative() {
            -((-s) + half).floor()
        } else {
            (s + half).floor()
        }
    };
    let (rx, ry) = (round(x), round(y));
    if rx != ry {
        return false;
    }
    if rx.is_zero() && !(x.is_zero() && y.is_zero()) {
        // Both vanish at this precision: also require relative agreement.
        let (fx, fy) = (
            rational_f64(x).unwrap_or(0.0),
            rational_f64(y).unwrap_or(0.0),
        );
        return (fx - fy).abs() <= 10f64.powi(-(d.min(15) as i32)) * fx.abs().max(fy.abs());
    }
    true
}

fn rounded_equal_f64(a: f64, c: f64, d: i32) -> bool {
    let s = 10f64.powi(d);
    let (ra, rc) = ((a * s).round(), (c * s).round());
    if ra != rc {
        // Binary rounding of a decimal literal (0.125 → 0.12499…): allow one ulp of slack.
        return (a - c).abs() <= 0.5 / s + 1e-12 * a.abs().max(c.abs());
    }
    if ra == 0.0 && (a != 0.0 || c != 0.0) {
        return (a - c).abs() <= (1.0 / s) * a.abs().max(c.abs());
    }
    true
}
