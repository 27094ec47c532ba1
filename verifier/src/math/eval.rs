//! Evaluation of scalar expressions: exact (big rationals, for everything rational-valued)
//! and numeric (complex f64, for irrationals and free variables).
//!
//! Exact evaluation is budgeted: every operation costs [`Budget`] fuel, and a power, factorial
//! or binomial whose result would exceed [`MAX_RESULT_BITS`] is refused *before* it is
//! computed (`10^{10^{10}}` costs nothing), so every call finishes in bounded time.

use num_bigint::{BigInt, Sign};
use num_complex::Complex64;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::ast::{Constant, Expr, Func, Num};

/// Largest exact intermediate result, bits.
pub const MAX_RESULT_BITS: u64 = 1 << 17;

/// Largest factorial argument evaluated exactly.
pub const MAX_FACTORIAL: u64 = 5_000;

/// Fuel for one grading: operations left, and optionally a wall-clock deadline (checked every
/// 64 spends, so the overshoot is at most 64 cheap operations).
#[derive(Debug, Clone)]
pub struct Budget {
    fuel: u64,
    deadline: Option<std::time::Instant>,
    calls: u32,
}

/// The budget ran out, or a result would be too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded;

impl Budget {
    /// A budget of `fuel` operations and no deadline.
    pub fn new(fuel: u64) -> Self {
        Budget {
            fuel,
            deadline: None,
            calls: 0,
        }
    }

    /// A budget of `fuel` operations that also runs out `wall` from now.
    pub fn with_deadline(fuel: u64, wall: std::time::Duration) -> Self {
        Budget {
            fuel,
            deadline: Some(std::time::Instant::now() + wall),
            calls: 0,
        }
    }

    /// Spends `n` units.
    pub fn spend(&mut self, n: u64) -> Result<(), LimitExceeded> {
        if self.fuel < n {
            self.fuel = 0;
            return Err(LimitExceeded);
        }
        self.fuel -= n;
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(64)
            && self.deadline.is_some_and(|d| std::time::Instant::now() > d)
        {
            self.fuel = 0;
            return Err(LimitExceeded);
        }
        Ok(())
    }
}

fn bits(q: &BigRational) -> u64 {
    q.numer().bits().max(q.denom().bits()).max(1)
}

/// The exact value if the expression is rational-valued and free of variables; `Ok(None)` if
/// it is irrational, symbolic or undefined (division by zero).
pub fn exact(e: &Expr, b: &mut Budget) -> Result<Option<BigRational>, LimitExceeded> {
    b.spend(1)?;
    Ok(match e {
        Expr::Num(Num { value, .. }) => Some(value.clone()),
        Expr::Const(_) | Expr::Sym(_) | Expr::Apply(..) => None,
        Expr::Neg(a) => exact(a, b)?.map(|v| -v),
        Expr::Add(xs) => {
            let mut acc = BigRational::zero();
            for x in xs {
                let Some(v) = exact(x, b)? else {
                    return Ok(None);
                };
                b.spend(bits(&v) / 64 + 1)?;
                acc += v;
            }
            Some(acc)
        }
        Expr::Mul(xs) => {
            let mut acc = BigRational::one();
            for x in xs {
                let Some(v) = exact(x, b)? else {
                    return Ok(None);
                };
                if bits(&acc) + bits(&v) > MAX_RESULT_BITS {
                    return Err(LimitExceeded);
                }
                b.spend((bits(&acc) + bits(&v)) / 64 + 1)?;
                acc *= v;
            }
            Some(acc)
        }
        Expr::Div(x, y) => match (exact(x, b)?, exact(y, b)?) {
            (Some(x), Some(y)) if !y.is_zero() => Some(x / y),
            _ => None,
        },
        Expr::Pow(x, y) => {
            let (Some(base), Some(exp)) = (exact(x, b)?, exact(y, b)?) else {
                return Ok(None);
            };
            pow(&base, &exp, b)?
        }
        Expr::Call(f, args) => call(*f, args, b)?,
    })
}

fn pow(
    base: &BigRational,
    exp: &BigRational,
    b: &mut Budget,
) -> Result<Option<BigRational>, LimitExceeded> {
    if base.is_zero() {
        return Ok(if exp.is_positive() {
            Some(BigRational::zero())
        } else if exp.is_zero() {
            Some(BigRational::one())
        } else {
            None
        });
    }
    if base.abs().is_one() && exp.is_integer() {
        let odd = exp.to_integer().is_odd();
        return Ok(Some(if base.is_negative() && odd {
            -BigRational::one()
        } else {
            BigRational::one()
        }));
    }
    // Root part: x^(p/q) is rational only if x is a perfect q-th power.
    let q = exp.denom().to_u32();
    let Some(q) = q else {
        return Err(LimitExceeded);
    };
    let root = if q == 1 {
        base.clone()
    } else {
        if q > 64 || (base.is_negative() && q % 2 == 0) {
            return Ok(None);
        }
        match (int_root(base.numer(), q), int_root(base.denom(), q)) {
            (Some(n), Some(d)) => BigRational::new(n, d),
            _ => return Ok(None),
        }
    };
    let p = exp.numer().abs();
    let p = p.to_u64().ok_or(LimitExceeded)?;
    if bits(&root).saturating_mul(p) > MAX_RESULT_BITS {
        return Err(LimitExceeded);
    }
    b.spend(bits(&root).saturating_mul(p) / 64 + 1)?;
    let v = num_traits::pow(root, p as usize);
    Ok(Some(if exp.is_negative() { v.recip() } else { v }))
}

/// The exact q-th root of a non-negative or odd-root integer, if it is one.
fn int_root(n: &BigInt, q: u32) -> Option<BigInt> {
    let neg = n.sign() == Sign::Minus;
    let r = n.abs().nth_root(q);
    if num_traits::pow(r.clone(), q as usize) == n.abs() {
        Some(if neg { -r } else { r })
    } else {
        None
    }
}

fn ints(args: &[Expr], b: &mut Budget) -> Result<Option<Vec<BigInt>>, LimitExceeded> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        match exact(a, b)? {
            Some(v) if v.is_integer() => out.push(v.to_integer()),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn call(f: Func, args: &[Expr], b: &mut Budget) -> Result<Option<BigRational>, LimitExceeded> {
    let one = |b: &mut Budget| -> Result<Option<BigRational>, LimitExceeded> { exact(&args[0], b) };
    Ok(match f {
        Func::Abs => one(b)?.map(|v| v.abs()),
        Func::Floor => one(b)?.map(|v| v.floor()),
        Func::Ceil => one(b)?.map(|v| v.ceil()),
        Func::Min | Func::Max => {
            let mut best: Option<BigRational> = None;
            for a in args {
                let Some(v) = exact(a, b)? else {
                    return Ok(None);
                };
                best = Some(match best {
                    None => v,
                    Some(cur) => {
                        if (f == Func::Min) == (v < cur) {
                            v
                        } else {
                            cur
                        }
                    }
                });
            }
            best
        }
        Func::Gcd | Func::Lcm => {
            let Some(ns) = ints(args, b)? else {
                return Ok(None);
            };
            let mut acc = ns[0].abs();
            for n in &ns[1..] {
                b.spend(acc.bits() / 32 + 1)?;
                acc = if f == Func::Gcd {
                    acc.gcd(n)
                } else if acc.is_zero() || n.is_zero() {
                    BigInt::zero()
                } else {
                    acc.lcm(n)
                };
                if acc.bits() > MAX_RESULT_BITS {
                    return Err(LimitExceeded);
                }
            }
            Some(BigRational::from_integer(acc))
        }
        Func::Mod => {
            let (Some(a), Some(m)) = (exact(&args[0], b)?, exact(&args[1], b)?) else {
                return Ok(None);
            };
            if m.is_zero() {
                None
            } else {
                Some(&a - &m * (&a / &m).floor())
            }
        }
        Func::Factorial => {
            let Some(n) = one(b)? else { return Ok(None) };
            if !n.is_integer() || n.is_negative() {
                return Ok(None);
            }
            let n = n
                .to_integer()
                .to_u64()
                .filter(|&n| n <= MAX_FACTORIAL)
                .ok_or(LimitExceeded)?;
            b.spend(n * (n.max(2).ilog2() as u64 + 1) / 32 + 1)?;
            Some(BigRational::from_integer(
                (1..=n).fold(BigInt::one(), |acc, k| acc * k),
            ))
        }
        Func::Binom => {
            let Some(ns) = ints(args, b)? else {
                return Ok(None);
            };
            let (n, k) = (&ns[0], &ns[1]);
            if k.is_negative() || n.is_negative() || k > n {
                return Ok(Some(BigRational::zero()));
            }
            let k = k
                .min(&(n - k))
                .to_u64()
                .filter(|&k| k <= 100_000)
                .ok_or(LimitExceeded)?;
            if (n.bits()).saturating_mul(k) > MAX_RESULT_BITS {
                return Err(LimitExceeded);
            }
            b.spend(k + 1)?;
            let mut acc = BigInt::one();
            for i in 0..k {
                acc = acc * (n - i) / (i + 1);
            }
            Some(BigRational::from_integer(acc))
        }
        Func::Sqrt => {
            let Some(x) = one(b)? else { return Ok(None) };
            let index = match args.get(1) {
                Some(e) => match exact(e, b)? {
                    Some(v) if v.is_integer() && v.is_positive() => v,
                    _ => return Ok(None),
                },
                None => BigRational::from_integer(2.into()),
            };
            pow(&x, &index.recip(), b)?
        }
        _ => None,
    })
}

/// Numeric value with variables bound by `env` (undefined variables: `None`).
pub fn numeric(e: &Expr, env: &dyn Fn(&str) -> Option<Complex64>) -> Option<Complex64> {
    let v = match e {
        Expr::Num(Num { value, .. }) => Complex64::new(rational_f64(value)?, 0.0),
        Expr::Const(Constant::Pi) => Complex64::new(std::f64::consts::PI, 0.0),
        Expr::Const(Constant::E) => Complex64::new(std::f64::consts::E, 0.0),
        Expr::Const(Constant::I) => Complex64::new(0.0, 1.0),
        Expr::Const(Constant::Infinity) => return None,
        Expr::Sym(s) => env(s)?,
        Expr::Neg(a) => -numeric(a, env)?,
        Expr::Add(xs) => xs
            .iter()
            .map(|x| numeric(x, env))
            .sum::<Option<Complex64>>()?,
        Expr::Mul(xs) => xs
            .iter()
            .map(|x| numeric(x, env))
            .product::<Option<Complex64>>()?,
        Expr::Div(x, y) => numeric(x, env)? / numeric(y, env)?,
        Expr::Pow(x, y) => {
            let (bv, ev) = (numeric(x, env)?, numeric(y, env)?);
            if ev.im == 0.0 && ev.re.fract() == 0.0 && ev.re.abs() < 1e6 {
                bv.powi(ev.re as i32)
            } else if bv.im == 0.0 && bv.re < 0.0 && ev.im == 0.0 {
                // Real odd roots of negatives: (-8)^(1/3) = -2 as in school algebra.
                let inv = 1.0 / ev.re;
                if (inv.round() - inv).abs() < 1e-9 && (inv.round() as i64) % 2 != 0 {
                    Complex64::new(-(-bv.re).powf(ev.re), 0.0)
                } else {
                    bv.powc(ev)
                }
            } else {
                bv.powc(ev)
            }
        }
        Expr::Apply(name, args) => {
            // An undefined function: a fixed smooth function of its arguments, chosen by name.
            let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
                (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3)
            });
            let mut acc = Complex64::new((h % 7) as f64 * 0.1 + 0.3, 0.0);
            for (k, a) in args.iter().enumerate() {
                let x = numeric(a, env)?;
                let w = ((h >> (8 * (k % 8))) & 0xff) as f64 / 255.0 + 0.5;
                acc += (x * w).sin() + x * x * 0.1 * w;
            }
            acc
        }
        Expr::Call(f, args) => {
            let a: Vec<Complex64> = args
                .iter()
                .map(|x| numeric(x, env))
                .collect::<Option<_>>()?;
            let x = *a.first()?;
            match f {
                Func::Sin => x.sin(),
                Func::Cos => x.cos(),
                Func::Tan => x.tan(),
                Func::Cot => 1.0 / x.tan(),
                Func::Sec => 1.0 / x.cos(),
                Func::Csc => 1.0 / x.sin(),
                Func::Asin => x.asin(),
                Func::Acos => x.acos(),
                Func::Atan => x.atan(),
                Func::Sinh => x.sinh(),
                Func::Cosh => x.cosh(),
                Func::Tanh => x.tanh(),
                Func::Ln => x.ln(),
                Func::Log => match a.get(1) {
                    Some(base) => x.ln() / base.ln(),
                    None => x.ln() / std::f64::consts::LN_10,
                },
                Func::Exp => x.exp(),
                Func::Sqrt => match a.get(1) {
                    Some(n)
                        if x.im == 0.0
                            && x.re < 0.0
                            && n.im == 0.0
                            && (n.re.round() as i64) % 2 != 0 =>
                    {
                        Complex64::new(-(-x.re).powf(1.0 / n.re), 0.0)
                    }
                    Some(n) => x.powc(1.0 / n),
                    None => x.sqrt(),
                },
                Func::Abs => Complex64::new(x.norm(), 0.0),
                Func::Floor => Complex64::new(real(x)?.floor(), 0.0),
                Func::Ceil => Complex64::new(real(x)?.ceil(), 0.0),
                Func::Factorial => Complex64::new(gamma(real(x)? + 1.0)?, 0.0),
                Func::Binom => {
                    let (n, k) = (real(x)?, real(*a.get(1)?)?);
                    Complex64::new(
                        gamma(n + 1.0)? / (gamma(k + 1.0)? * gamma(n - k + 1.0)?),
                        0.0,
                    )
                }
                Func::Min | Func::Max => {
                    let mut vals = a.iter().map(|v| real(*v)).collect::<Option<Vec<_>>>()?;
                    vals.sort_by(f64::total_cmp);
                    Complex64::new(
                        if *f == Func::Min {
                            vals[0]
                        } else {
                            vals[vals.len() - 1]
                        },
                        0.0,
                    )
                }
                Func::Gcd | Func::Lcm => {
                    // Integers up to 2^53 only; an lcm that overflows has no exact f64 value.
                    let to_int = |z: Complex64| -> Option<i64> {
                        let r = real(z)?.round().abs();
                        (r <= 9.007_199_254_740_992e15).then_some(r as i64)
                    };
                    let mut acc = to_int(x)?;
                    for v in &a[1..] {
                        let n = to_int(*v)?;
                        acc = if *f == Func::Gcd {
                            acc.gcd(&n)
                        } else if acc == 0 || n == 0 {
                            0
                        } else {
                            (acc / acc.gcd(&n)).checked_mul(n)?
                        };
                    }
                    Complex64::new(acc as f64, 0.0)
                }
                Func::Mod => {
                    let (p, m) = (real(x)?, real(*a.get(1)?)?);
                    Complex64::new(p - m * (p / m).floor(), 0.0)
                }
            }
        }
    };
    // No negative zeros: −(4 + 0i) is −4 − 0i, on the far side of the square root's branch
    // cut, and √(−4 − 0i) would be −2i rather than the principal 2i.
    let v = Complex64::new(v.re + 0.0, v.im + 0.0);
    (v.re.is_finite() && v.im.is_finite()).then_some(v)
}

fn real(z: Complex64) -> Option<f64> {
    (z.im.abs() <= 1e-12 * z.re.abs().max(1.0)).then_some(z.re)
}

/// A rational as f64, also when numerator and denominator overflow f64 separately.
pub fn rational_f64(q: &BigRational) -> Option<f64> {
    if let (Some(n), Some(d)) = (q.numer().to_f64(), q.denom().to_f64())
        && n.is_finite()
        && d.is_finite()
        && d != 0.0
    {
        return Some(n / d);
    }
    let shift = q.numer().bits() as i64 - q.denom().bits() as i64;
    if shift.abs() > 1000 {
        return None;
    }
    let scaled = if shift > 0 {
        q / BigRational::from_integer(BigInt::one() << (shift as usize))
    } else {
        q * BigRational::from_integer(BigInt::one() << ((-shift) as usize))
    };
    let n = scaled.numer().to_f64()?;
    let d = scaled.denom().to_f64()?;
    Some(n / d * 2f64.powi(shift as i32))
}

/// Γ(x) for real x (Lanczos), `None` at poles.
fn gamma(x: f64) -> Option<f64> {
    if x <= 0.0 && x.fract() == 0.0 {
        return None;
    }
    if x < 0.5 {
        return Some(std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x)?));
    }
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let v = (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::ast::Answer;
    use crate::math::parser::parse;

    fn ex(s: &str) -> Result<Option<BigRational>, LimitExceeded> {
        let Ok(Answer::Expr(e)) = parse(s) else {
            panic!("{s} did not parse")
        };
        exact(&e, &mut Budget::new(1_000_000))
    }

    fn q(n: i64, d: i64) -> Option<BigRational> {
        Some(BigRational::new(n.into(), d.into()))
    }

    #[test]
    fn exact_values() {
        assert_eq!(ex("\\frac{1}{2}+0.25"), Ok(q(3, 4)));
        assert_eq!(ex("\\sqrt{16}"), Ok(q(4, 1)));
        assert_eq!(ex("\\sqrt[3]{-8}"), Ok(q(-2, 1)));
        assert_eq!(ex("\\sqrt{2}"), Ok(None));
        assert_eq!(ex("2^{-3}"), Ok(q(1, 8)));
        assert_eq!(ex("\\gcd(24, 6128)"), Ok(q(8, 1)));
        assert_eq!(ex("\\operatorname{lcm}(8, 9, 21)"), Ok(q(504, 1)));
        assert_eq!(ex("\\binom{16}{2}"), Ok(q(120, 1)));
        assert_eq!(ex("\\lfloor 3.5 \\rfloor"), Ok(q(3, 1)));
        assert_eq!(ex("7 \\mod 3"), Ok(q(1, 1)));
        assert_eq!(
            ex("10!").map(|v| v.map(|v| v.to_integer())),
            Ok(Some(3_628_800.into()))
        );
        assert_eq!(ex("1/0"), Ok(None));
    }

    #[test]
    fn huge_powers_are_refused_cheaply() {
        assert_eq!(ex("10^{10^{10}}"), Err(LimitExceeded));
        assert_eq!(ex("5^{(5^{(5^{(5^5)})} - 4)}"), Err(LimitExceeded));
        assert_eq!(ex("100000!"), Err(LimitExceeded));
        assert!(ex("2^{50000}").unwrap().is_some());
    }

    #[test]
    fn numeric_values() {
        let Ok(Answer::Expr(e)) = parse("\\sin{\\frac{\\pi}{2}} + e^{i\\pi}") else {
            panic!()
        };
        let v = numeric(&e, &|_| None).unwrap();
        assert!(v.norm() < 1e-12, "{v}");
        let Ok(Answer::Expr(e)) = parse("5!") else {
            panic!()
        };
        assert!((numeric(&e, &|_| None).unwrap().re - 120.0).abs() < 1e-9);
    }
}
